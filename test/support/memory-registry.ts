/**
 * An in-memory RegistryClient for unit tests (the interface, not a fake server: unit tests never
 * touch the network). It behaves like the real client where Signet depends on it: reads honour
 * `ReadOptions` (an aborted signal, the byte budget, a blob's descriptor size), a manifest PUT
 * refuses blobs it has not been given (BLOB_UNKNOWN), a digest reference must match the bytes, and
 * manifests with a `subject` are indexed for the referrers API. Every client call is recorded
 * (`HEAD`, `GET manifest`, `PUT manifest`, `GET blob`, `PUT blob`, `GET referrers`), may be made
 * to fail (`fail`, `failNext`) and may let a concurrent writer act first (`before`). The test
 * helpers (`pushImage`, `sign`, `attachBundle`, …) write directly, unrecorded and never failing.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { RegistryError } from '../../lib/core/errors';
import { signatureTag } from '../../lib/core/reference';
import type {
  BlobReadOptions,
  Descriptor,
  FetchedManifest,
  ImageIndex,
  ManifestHead,
  ReadOptions,
  RegistryClient,
  RegistryClientFactory,
} from '../../lib/registry/types';
import {
  cosignConfig,
  cosignLayer,
  cosignManifest,
  cosignPayload,
  cosignSign,
  type LayerDescriptor,
  type SignOptions,
} from './cosign-writer';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** Makes a call fail: return an error to throw it, undefined to proceed. */
export type FailureHook = (call: string) => Error | undefined;

/** Runs before a call is served: where a test has a concurrent writer act. */
export type BeforeHook = (call: string) => Promise<void> | void;

interface StoredManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

/** One registry host in memory. */
export class MemoryRegistry implements RegistryClient {
  readonly calls: string[] = [];
  readonly manifests = new Map<string, StoredManifest>();
  readonly blobs = new Map<string, Buffer>();
  /** Referrer descriptors by `repository@subject digest`, indexed as manifests are stored. */
  readonly referrers = new Map<string, Descriptor[]>();
  /** When false, getReferrers answers "no API" and the fallback tag is read instead. */
  referrersApi = false;
  fail: FailureHook = () => undefined;
  before: BeforeHook = () => undefined;
  private readonly faults: { prefix: string; error: Error; times: number }[] = [];

  constructor(readonly host: string) {}

  /** The next `times` calls starting with `prefix` throw `error` (after `fail` is asked). */
  failNext(prefix: string, error: Error, times = 1): void {
    this.faults.push({ prefix, error, times });
  }

  private async serve(call: string, options: ReadOptions = {}): Promise<void> {
    this.calls.push(call);
    await this.before(call);
    if (options.signal?.aborted === true) throw new RegistryError('ABORTED', this.host, `${call}: aborted`);
    const error = this.fail(call);
    if (error !== undefined) throw error;
    const fault = this.faults.find((f) => f.times > 0 && call.startsWith(f.prefix));
    if (fault !== undefined) {
      fault.times--;
      throw fault.error;
    }
  }

  async headManifest(
    repository: string,
    reference: string,
    options?: ReadOptions,
  ): Promise<ManifestHead | undefined> {
    await this.serve(`HEAD ${repository}:${reference}`, options);
    const m = this.manifests.get(`${repository}:${reference}`);
    return m && { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  async getManifest(
    repository: string,
    reference: string,
    options?: ReadOptions,
  ): Promise<FetchedManifest | undefined> {
    const call = `GET manifest ${repository}:${reference}`;
    await this.serve(call, options);
    const m = this.manifests.get(`${repository}:${reference}`);
    if (m === undefined) return undefined;
    options?.budget?.take(m.bytes.length, call);
    return {
      digest: m.digest,
      mediaType: m.mediaType,
      bytes: m.bytes,
      manifest: JSON.parse(m.bytes.toString('utf8')) as FetchedManifest['manifest'],
    };
  }

  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<string> {
    await this.serve(`PUT manifest ${repository}:${reference}`);
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', this.host, `manifest ${reference} has digest ${digest}`);
    }
    const manifest = JSON.parse(bytes.toString('utf8')) as Partial<FetchedManifest['manifest']>;
    // As distribution does: an image manifest may only name blobs the repository has.
    if ('layers' in manifest) {
      const named = [...(manifest.config !== undefined ? [manifest.config] : []), ...(manifest.layers ?? [])];
      const unknown = named.find((d) => !this.blobs.has(`${repository}@${d.digest}`));
      if (unknown !== undefined) {
        throw new RegistryError('BLOB_UNKNOWN', this.host, `blob unknown to registry: ${unknown.digest}`, {
          status: 400,
        });
      }
    }
    return this.store(repository, reference, bytes, mediaType);
  }

  async getBlob(repository: string, digest: string, options: BlobReadOptions = {}): Promise<Buffer> {
    const call = `GET blob ${repository}@${digest}`;
    await this.serve(call, options);
    const blob = this.blobs.get(`${repository}@${digest}`);
    if (blob === undefined)
      throw new RegistryError('NOT_FOUND', this.host, `blob ${digest} not found`, { status: 404 });
    // As the real client: a body of any length but the descriptor's is refused.
    const { size } = options;
    if (size !== undefined && blob.length > size) {
      options.budget?.take(size + 1, call);
      throw new RegistryError('TOO_LARGE', this.host, `${call}: a body past ${size} bytes is over the limit`);
    }
    options.budget?.take(blob.length, call);
    if (size !== undefined && blob.length < size) {
      throw new RegistryError(
        'PROTOCOL',
        this.host,
        `${call}: the body ended after ${blob.length} of ${size} bytes`,
      );
    }
    if (sha256(blob) !== digest)
      throw new RegistryError('DIGEST_MISMATCH', this.host, `blob ${digest} has another digest`);
    return blob;
  }

  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    await this.serve(`PUT blob ${repository}@${digest}`);
    return this.storeBlob(repository, bytes);
  }

  async getReferrers(
    repository: string,
    digest: string,
    artifactType?: string,
    options?: ReadOptions,
  ): Promise<ImageIndex | undefined> {
    await this.serve(`GET referrers ${repository}@${digest}`, options);
    if (!this.referrersApi) return undefined;
    const all = this.referrers.get(`${repository}@${digest}`) ?? [];
    return {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType),
    };
  }

  // ---- Test helpers: direct writes, neither recorded nor failed. ----

  /** Stores a manifest under `reference` and its digest, indexing it by its `subject`. */
  store(repository: string, reference: string, bytes: Buffer, mediaType: string): string {
    const digest = sha256(bytes);
    const stored = { bytes, mediaType, digest };
    this.manifests.set(`${repository}:${reference}`, stored);
    this.manifests.set(`${repository}:${digest}`, stored);
    const manifest = JSON.parse(bytes.toString('utf8')) as Partial<FetchedManifest['manifest']> & {
      config?: Descriptor;
    };
    if (manifest.subject !== undefined) {
      const key = `${repository}@${manifest.subject.digest}`;
      const listed = (this.referrers.get(key) ?? []).filter((d) => d.digest !== digest);
      const descriptor: Descriptor = {
        mediaType,
        size: bytes.length,
        digest,
        ...(manifest.artifactType !== undefined || manifest.config !== undefined
          ? { artifactType: manifest.artifactType ?? manifest.config?.mediaType }
          : {}),
        ...(manifest.annotations !== undefined ? { annotations: manifest.annotations } : {}),
      };
      this.referrers.set(key, [...listed, descriptor]);
    }
    return digest;
  }

  storeBlob(repository: string, bytes: Buffer): string {
    const digest = sha256(bytes);
    this.blobs.set(`${repository}@${digest}`, bytes);
    return digest;
  }

  /** Forgets a blob (as distribution briefly does while another writer uploads it). */
  deleteBlob(repository: string, digest: string): void {
    this.blobs.delete(`${repository}@${digest}`);
  }

  /** The parsed manifest at `reference`, if any. */
  manifestAt<T = FetchedManifest['manifest']>(repository: string, reference: string): T | undefined {
    const m = this.manifests.get(`${repository}:${reference}`);
    return m && (JSON.parse(m.bytes.toString('utf8')) as T);
  }

  /**
   * Attaches a Sigstore bundle (v0.3, DSSE over an in-toto statement) as a referrer of `digest`,
   * through the referrers API and the `sha256-<hex>` fallback index, as cosign v3 does.
   */
  attachBundle(
    repository: string,
    digest: string,
    key: KeyObject,
    options: { subjectDigest?: string; predicateType?: string; signedBytes?: Buffer } = {},
  ): Promise<string> {
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [
          {
            name: `${this.host}/${repository}`,
            digest: { sha256: (options.subjectDigest ?? digest).slice(7) },
          },
        ],
        predicateType: options.predicateType ?? 'https://sigstore.dev/cosign/sign/v1',
        predicate: {},
      }),
    );
    const type = 'application/vnd.in-toto+json';
    // DSSE v1 PAE, written out here independently of Signet's implementation.
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]);
    const bundle = Buffer.from(
      JSON.stringify({
        mediaType: BUNDLE,
        verificationMaterial: { publicKey: { hint: 'test' }, tlogEntries: [] },
        dsseEnvelope: {
          payload: statement.toString('base64'),
          payloadType: type,
          signatures: [{ sig: cosignSign(key, options.signedBytes ?? pae).toString('base64'), keyid: '' }],
        },
      }),
    );
    const empty = Buffer.from('{}');
    this.storeBlob(repository, empty);
    this.storeBlob(repository, bundle);
    const subject = this.manifests.get(`${repository}:${digest}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: BUNDLE,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha256(empty) },
        layers: [{ mediaType: BUNDLE, size: bundle.length, digest: sha256(bundle) }],
        subject: { mediaType: OCI_MANIFEST, size: subject?.bytes.length ?? 0, digest },
      }),
    );
    const manifestDigest = this.store(repository, sha256(manifest), manifest, OCI_MANIFEST);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: this.referrers.get(`${repository}@${digest}`),
      }),
    );
    this.store(repository, digest.replace(':', '-'), index, OCI_INDEX);
    return Promise.resolve(manifestDigest);
  }

  /** Pushes a small image manifest under `tag`; returns its digest. */
  pushImage(repository: string, tag: string, seed = tag): Promise<string> {
    const config = Buffer.from(JSON.stringify({ seed }));
    this.storeBlob(repository, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          size: config.length,
          digest: sha256(config),
        },
        layers: [],
      }),
    );
    return Promise.resolve(this.store(repository, tag, manifest, OCI_MANIFEST));
  }

  /** Pushes an OCI index of `children` (manifest digests already pushed) under `tag`; returns its digest. */
  pushIndex(repository: string, tag: string, children: readonly string[]): Promise<string> {
    const manifests = children.map((digest) => {
      const child = this.manifests.get(`${repository}:${digest}`);
      return { mediaType: child?.mediaType ?? OCI_MANIFEST, size: child?.bytes.length ?? 0, digest };
    });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    return Promise.resolve(this.store(repository, tag, index, OCI_INDEX));
  }

  /** The layers of `digest`'s `.sig` manifest. */
  signatureLayers(repository: string, digest: string): LayerDescriptor[] {
    return this.manifestAt<{ layers: LayerDescriptor[] }>(repository, signatureTag(digest))?.layers ?? [];
  }

  /** Replaces the `.sig` manifest of `digest` with these layers. */
  putSignatureLayers(repository: string, digest: string, layers: readonly LayerDescriptor[]): Promise<void> {
    const config = cosignConfig(layers);
    this.storeBlob(repository, config);
    this.store(repository, signatureTag(digest), cosignManifest(layers, config), OCI_MANIFEST);
    return Promise.resolve();
  }

  /** Appends a cosign signature layer for `digest`, signed by `key`. */
  async sign(
    repository: string,
    digest: string,
    key: KeyObject,
    options: SignOptions & {
      tag?: string;
      payloadDigest?: string;
      signedBytes?: Buffer;
      payload?: Buffer;
    } = {},
  ): Promise<LayerDescriptor> {
    const identity = `${this.host}/${repository}${options.tag !== undefined ? `:${options.tag}` : ''}`;
    const payload = options.payload ?? cosignPayload(identity, options.payloadDigest ?? digest);
    this.storeBlob(repository, payload);
    const layer = cosignLayer(payload, cosignSign(key, options.signedBytes ?? payload, options));
    await this.putSignatureLayers(repository, digest, [...this.signatureLayers(repository, digest), layer]);
    return layer;
  }

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }
}

/** Hands out MemoryRegistry clients and records which hosts were asked for. */
export class MemoryRegistries implements RegistryClientFactory {
  readonly registries = new Map<string, MemoryRegistry>();
  readonly requested: string[] = [];

  add(host: string): MemoryRegistry {
    const registry = new MemoryRegistry(host);
    this.registries.set(host, registry);
    return registry;
  }

  client(host: string): MemoryRegistry {
    this.requested.push(host);
    const registry = this.registries.get(host);
    if (registry === undefined) {
      // An unknown host behaves like a registry nobody answers.
      const unreachable = new MemoryRegistry(host);
      unreachable.fail = () => new RegistryError('UNREACHABLE', host, 'connect ECONNREFUSED');
      return unreachable;
    }
    return registry;
  }
}
