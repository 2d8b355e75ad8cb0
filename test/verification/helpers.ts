/**
 * Unit-test helpers: an in-memory RegistryClient (the interface, not a fake server: unit tests
 * never touch the network) that records every call, cosign signatures written into it with the
 * independent writer's pure functions, and configs with freshly generated keys.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Policy, SignetConfig, Witness } from '../../lib/config/types';
import { RegistryError } from '../../lib/core/errors';
import { signatureTag } from '../../lib/core/reference';
import type {
  Descriptor,
  FetchedManifest,
  ImageIndex,
  ManifestHead,
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
} from '../support/cosign-writer';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Makes a call fail: return an error to throw it, undefined to proceed. */
export type FailureHook = (call: string) => Error | undefined;

/** One registry host in memory. */
export class MemoryRegistry implements RegistryClient {
  readonly calls: string[] = [];
  readonly manifests = new Map<string, { bytes: Buffer; mediaType: string; digest: string }>();
  readonly blobs = new Map<string, Buffer>();
  fail: FailureHook = () => undefined;

  constructor(readonly host: string) {}

  private record(call: string): void {
    this.calls.push(call);
    const error = this.fail(call);
    if (error !== undefined) throw error;
  }

  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    this.record(`HEAD ${repository}:${reference}`);
    const m = this.manifests.get(`${repository}:${reference}`);
    return m && { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  async getManifest(repository: string, reference: string): Promise<FetchedManifest | undefined> {
    this.record(`GET manifest ${repository}:${reference}`);
    const m = this.manifests.get(`${repository}:${reference}`);
    return (
      m && {
        digest: m.digest,
        mediaType: m.mediaType,
        bytes: m.bytes,
        manifest: JSON.parse(m.bytes.toString('utf8')),
      }
    );
  }

  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<string> {
    const digest = sha256(bytes);
    this.manifests.set(`${repository}:${reference}`, { bytes, mediaType, digest });
    this.manifests.set(`${repository}:${digest}`, { bytes, mediaType, digest });
    return digest;
  }

  async getBlob(repository: string, digest: string): Promise<Buffer> {
    this.record(`GET blob ${repository}@${digest}`);
    const blob = this.blobs.get(`${repository}@${digest}`);
    if (blob === undefined)
      throw new RegistryError('NOT_FOUND', this.host, `blob ${digest} not found`, { status: 404 });
    if (sha256(blob) !== digest)
      throw new RegistryError('DIGEST_MISMATCH', this.host, `blob ${digest} has another digest`);
    return blob;
  }

  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    this.blobs.set(`${repository}@${digest}`, bytes);
    return digest;
  }

  /** When false, getReferrers answers "no API" and the fallback tag is read instead. */
  referrersApi = false;
  readonly referrers = new Map<string, Descriptor[]>();

  async getReferrers(repository: string, digest: string): Promise<ImageIndex | undefined> {
    this.record(`GET referrers ${repository}@${digest}`);
    if (!this.referrersApi) return undefined;
    return {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: this.referrers.get(`${repository}@${digest}`) ?? [],
    };
  }

  /**
   * Attaches a Sigstore bundle (v0.3, DSSE over an in-toto statement) as a referrer of `digest`,
   * through the referrers API or the `sha256-<hex>` fallback index, as cosign v3 does.
   */
  async attachBundle(
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
        mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        verificationMaterial: { publicKey: { hint: 'test' }, tlogEntries: [] },
        dsseEnvelope: {
          payload: statement.toString('base64'),
          payloadType: type,
          signatures: [{ sig: cosignSign(key, options.signedBytes ?? pae).toString('base64'), keyid: '' }],
        },
      }),
    );
    const empty = Buffer.from('{}');
    await this.pushBlob(repository, empty);
    await this.pushBlob(repository, bundle);
    const subject = this.manifests.get(`${repository}:${digest}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha256(empty) },
        layers: [
          {
            mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
            size: bundle.length,
            digest: sha256(bundle),
          },
        ],
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: subject?.bytes.length ?? 0,
          digest,
        },
      }),
    );
    const manifestDigest = await this.putManifest(
      repository,
      sha256(manifest),
      manifest,
      'application/vnd.oci.image.manifest.v1+json',
    );
    const descriptor: Descriptor = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: manifest.length,
      digest: manifestDigest,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    };
    const key_ = `${repository}@${digest}`;
    this.referrers.set(key_, [...(this.referrers.get(key_) ?? []), descriptor]);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: this.referrers.get(key_),
      }),
    );
    await this.putManifest(
      repository,
      digest.replace(':', '-'),
      index,
      'application/vnd.oci.image.index.v1+json',
    );
    return manifestDigest;
  }

  /** Pushes a small image manifest under `tag`; returns its digest. */
  async pushImage(repository: string, tag: string, seed = tag): Promise<string> {
    const config = Buffer.from(JSON.stringify({ seed }));
    await this.pushBlob(repository, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          size: config.length,
          digest: sha256(config),
        },
        layers: [],
      }),
    );
    return this.putManifest(repository, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
  }

  /** The layers of `digest`'s `.sig` manifest. */
  signatureLayers(repository: string, digest: string): LayerDescriptor[] {
    const m = this.manifests.get(`${repository}:${signatureTag(digest)}`);
    return m ? (JSON.parse(m.bytes.toString('utf8')) as { layers: LayerDescriptor[] }).layers : [];
  }

  /** Replaces the `.sig` manifest of `digest` with these layers. */
  async putSignatureLayers(
    repository: string,
    digest: string,
    layers: readonly LayerDescriptor[],
  ): Promise<void> {
    const config = cosignConfig(layers);
    await this.pushBlob(repository, config);
    await this.putManifest(
      repository,
      signatureTag(digest),
      cosignManifest(layers, config),
      'application/vnd.oci.image.manifest.v1+json',
    );
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
    await this.pushBlob(repository, payload);
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

/** A key pair and the inline-PEM witness of its public half. */
export interface TestKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly witness: Witness;
}

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa-2048';

export function testKey(name: string, kind: KeyKind = 'ec-p256'): TestKey {
  const pair =
    kind === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: kind === 'ec-p384' ? 'P-384' : 'P-256' });
  const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    witness: { name, key: { $case: 'publicKeyPem', pem }, description: undefined },
  };
}

/** A policy with defaults a test can override. */
export function policy(overrides: Partial<Policy> & Pick<Policy, 'name' | 'images' | 'attestors'>): Policy {
  return {
    enabled: true,
    clusters: ['*'],
    namespaces: ['*'],
    mode: 'enforce',
    mutateDigest: false,
    failurePolicy: 'deny',
    signedIdentity: { type: 'matchRepository' },
    ...overrides,
  };
}

/** The parts of a config verification reads. */
export function verificationConfig(
  witnesses: readonly Witness[],
  policies: readonly Policy[],
  admission: Partial<SignetConfig['admission']> = {},
): Pick<SignetConfig, 'policies' | 'witnesses' | 'admission'> {
  return {
    witnesses,
    policies,
    admission: {
      noMatchingPolicy: 'deny',
      cacheTtlSeconds: 300,
      cacheMaxEntries: 1000,
      excludeNamespaces: [],
      deadlineMs: 9000,
      maxSignatures: 64,
      maxReviewBytes: 8 * 1024 * 1024,
      ...admission,
    },
  };
}
