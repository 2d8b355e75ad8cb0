/**
 * Reads every signature stored for one image digest, whoever wrote it (Signet, cosign, any
 * cosign-format signer), into signed bytes + signature + claims, once per digest: the cosign
 * legacy `sha256-<hex>.sig` manifest (one payload blob per layer) and, when asked, Sigstore
 * bundle (v0.3, DSSE) referrers, read through the referrers API or its `sha256-<hex>` fallback
 * index tag. No key is involved here: witness checks run on what this returns.
 */
import { RegistryError } from '../core/errors';
import { referrersFallbackTag, signatureTag } from '../core/reference';
import { MAX_PAYLOAD_BYTES, parsePayload } from '../cosign/payload';
import { CERTIFICATE_ANNOTATION, layerSignature } from '../cosign/signature-manifest';
import type { Descriptor, FetchedManifest, ReadOptions, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';

/** Where a signature was found. */
export type SignatureSource = 'cosign' | 'bundle';

/** What a signature claims about the image it signs. */
export interface SignatureClaims {
  /** The manifest digests the signed payload names (`docker-manifest-digest`, or statement subjects). */
  readonly digests: readonly string[];
  /** `critical.identity.docker-reference` of a cosign payload. */
  readonly identity: string | undefined;
  /**
   * Each digest with the repository the signature names for it, as written: a cosign payload's
   * docker-reference, a statement's subject names. Matched against the policy's signedIdentity.
   */
  readonly subjects: readonly { readonly digest: string; readonly name: string | undefined }[];
  /** The tag of a default-mode identity (`repository:tag`); undefined for simple mode and bundles. */
  readonly tag: string | undefined;
}

/** One signature ready for a key: the exact bytes signed, the signature, and the claims. */
export interface SignatureEvidence {
  readonly source: SignatureSource;
  /** The payload blob digest (cosign) or the bundle manifest digest. */
  readonly id: string;
  readonly signedData: Buffer;
  readonly signature: Buffer;
  readonly claims: SignatureClaims;
  /** The PEM certificate that came with the signature (keyless signers), if any. */
  readonly certificate: string | undefined;
}

/** A signature that could not be read, and why (shown in verification detail). */
export interface RejectedSignature {
  readonly source: SignatureSource;
  readonly id: string;
  readonly problem: string;
}

/** Every signature of one digest. */
export interface LoadedSignatures {
  /** `registry/repository:sha256-<hex>.sig`, for messages. */
  readonly signatureRef: string;
  readonly evidence: readonly SignatureEvidence[];
  /** Signatures that could not be used (they count as signatures that do not verify). */
  readonly rejected: readonly RejectedSignature[];
  /** Problems with the listings themselves (an unreadable `.sig` manifest, unread layers). */
  readonly notes: readonly string[];
  /**
   * An operational failure (registry unreachable, throttled) while reading bundle referrers. The
   * cosign signatures were read; a witness they do not satisfy is reported with this error.
   */
  readonly bundleError: unknown;
  /** Whether the registry has the OCI referrers API; undefined when bundles were not looked for. */
  readonly referrersApi: boolean | undefined;
  /** Signatures beyond the cap (`maxLayers`, `maxBundles`) that were not read. */
  readonly unread: number;
}

/** Bounds on what one digest's signatures may cost. */
export interface SignatureLoaderOptions {
  /** Also read Sigstore bundle referrers. */
  readonly bundles: boolean;
  /** Layers of the `.sig` manifest looked at; the rest are ignored (and reported). */
  readonly maxLayers: number;
  /** Bundle referrers looked at. */
  readonly maxBundles: number;
}

export const DEFAULT_SIGNATURE_LOADER_OPTIONS: SignatureLoaderOptions = {
  bundles: true,
  maxLayers: 256,
  maxBundles: 32,
};

/** The DSSE payload type of in-toto statements, and the predicate cosign v3 signs images with. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const MAX_BUNDLE_BYTES = 1024 * 1024;

/** DSSE v1 pre-authentication encoding: what a DSSE signature signs. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

/** The tag of a `docker-reference` identity (`host/repo:tag`), or undefined for a repository-only one. */
export function identityTag(identity: string): string | undefined {
  const at = identity.indexOf('@');
  const name = at >= 0 ? identity.slice(0, at) : identity;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

/** Registry errors that say the content is missing or bad: the signature is unusable, nothing broke. */
const isContentError = (err: unknown): err is RegistryError =>
  err instanceof RegistryError &&
  (err.code === 'NOT_FOUND' ||
    err.code === 'DIGEST_MISMATCH' ||
    err.code === 'PROTOCOL' ||
    err.code === 'TOO_LARGE');

/**
 * Loads the signatures of `digest` in `repository`: the cosign `.sig` manifest and, when
 * `options.bundles`, the Sigstore bundle referrers, read in parallel. Operational registry errors
 * on the `.sig` manifest or its payload blobs are thrown (the caller turns them into a reason);
 * malformed or missing content only rejects the signature concerned.
 */
export async function loadSignatures(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: SignatureLoaderOptions = DEFAULT_SIGNATURE_LOADER_OPTIONS,
  read: ReadOptions = {},
): Promise<LoadedSignatures> {
  const blob = blobReader(client, repository, read);
  const [cosign, bundles] = await Promise.all([
    loadCosignSignatures(client, repository, digest, options, blob, read).then((found) =>
      loaded(client, repository, digest, found, undefined),
    ),
    options.bundles
      ? loadBundleSignatures(client, repository, digest, options, read, blob)
      : Promise.resolve(loaded(client, repository, digest, nothingFound(), undefined)),
  ]);
  return mergeSignatures(cosign, bundles);
}

/** Only the cosign `.sig` manifest's signatures (errors as in `loadSignatures`). */
export async function loadCosignOnly(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: SignatureLoaderOptions = DEFAULT_SIGNATURE_LOADER_OPTIONS,
  read: ReadOptions = {},
): Promise<LoadedSignatures> {
  const found = await loadCosignSignatures(
    client,
    repository,
    digest,
    options,
    blobReader(client, repository, read),
    read,
  );
  return loaded(client, repository, digest, found, undefined);
}

/**
 * Only the Sigstore bundle referrers' signatures. Never throws: bundles only ever add signatures.
 * A registry that refuses or garbles the referrers API (405, 403, junk) has no bundles for us;
 * only a registry that is down or throttling might be hiding one, and only that is kept, as
 * `bundleError`, for a witness the other signatures do not satisfy.
 */
export async function loadBundleSignatures(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: SignatureLoaderOptions = DEFAULT_SIGNATURE_LOADER_OPTIONS,
  read: ReadOptions = {},
  blob: BlobReader = blobReader(client, repository, read),
): Promise<LoadedSignatures> {
  try {
    const found = await loadBundles(client, repository, digest, options, blob, read);
    return loaded(client, repository, digest, found, undefined);
  } catch (error) {
    // A review past its budget or deadline stops here too: those are verdicts, not gaps.
    if (error instanceof RegistryError && (error.code === 'BUDGET_EXCEEDED' || error.code === 'ABORTED'))
      throw error;
    if (error instanceof RegistryError && !error.retryable) {
      const found = { ...nothingFound(), notes: [`bundle referrers unreadable: ${error.message}`] };
      return loaded(client, repository, digest, found, undefined);
    }
    return loaded(client, repository, digest, nothingFound(), error);
  }
}

/** Both sets of signatures of one digest as one. */
export function mergeSignatures(a: LoadedSignatures, b: LoadedSignatures): LoadedSignatures {
  return {
    signatureRef: a.signatureRef,
    evidence: [...a.evidence, ...b.evidence],
    rejected: [...a.rejected, ...b.rejected],
    notes: [...a.notes, ...b.notes],
    bundleError: a.bundleError ?? b.bundleError,
    referrersApi: a.referrersApi ?? b.referrersApi,
    unread: a.unread + b.unread,
  };
}

/** Reads one blob of a repository, no larger than its descriptor's size. */
type BlobReader = (descriptor: Pick<Descriptor, 'digest' | 'size'>) => Promise<Buffer>;

/**
 * Reads blobs of one repository, each bounded by the size its descriptor declares; two layers may
 * carry the same payload (two signers of one simple-mode payload): one GET.
 */
function blobReader(client: RegistryClient, repository: string, read: ReadOptions): BlobReader {
  const blobs = new Map<string, Promise<Buffer>>();
  return ({ digest: blobDigest, size }) => {
    const key = `${blobDigest}|${size}`;
    let pending = blobs.get(key);
    if (pending === undefined) {
      pending = client.getBlob(repository, blobDigest, { ...read, size });
      blobs.set(key, pending);
    }
    return pending;
  };
}

function loaded(
  client: RegistryClient,
  repository: string,
  digest: string,
  found: Found,
  bundleError: unknown,
): LoadedSignatures {
  return {
    signatureRef: `${client.host}/${repository}:${signatureTag(digest)}`,
    evidence: found.evidence,
    rejected: found.rejected,
    notes: found.notes,
    bundleError,
    referrersApi: found.referrersApi,
    unread: found.unread,
  };
}

interface Found {
  readonly evidence: SignatureEvidence[];
  readonly rejected: RejectedSignature[];
  readonly notes: string[];
  referrersApi?: boolean;
  unread: number;
}

const nothingFound = (): Found => ({ evidence: [], rejected: [], notes: [], unread: 0 });

/** `result` with each signature read filed as evidence or as rejected. */
function sorted(result: Found, read: readonly (SignatureEvidence | RejectedSignature)[]): Found {
  for (const entry of read) {
    if ('problem' in entry) result.rejected.push(entry);
    else result.evidence.push(entry);
  }
  return result;
}

async function loadCosignSignatures(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: SignatureLoaderOptions,
  blob: BlobReader,
  read: ReadOptions,
): Promise<Found> {
  const result = nothingFound();
  const tag = signatureTag(digest);
  let fetched: FetchedManifest | undefined;
  try {
    fetched = await client.getManifest(repository, tag, read);
  } catch (err) {
    if (!isContentError(err)) throw err;
    result.notes.push(`${tag}: signature manifest unreadable: ${err.message}`);
    return result;
  }
  if (fetched === undefined) return result;
  if (!('layers' in fetched.manifest)) {
    result.notes.push(`${tag} holds an index, not a signature manifest`);
    return result;
  }
  const layers = fetched.manifest.layers;
  if (layers.length > options.maxLayers) {
    result.unread = layers.length - options.maxLayers;
    result.notes.push(`${tag}: ${result.unread} layers beyond the first ${options.maxLayers} were not read`);
  }
  const entries = await Promise.all(
    layers.slice(0, options.maxLayers).map((layer) => readLayer(layer, blob)),
  );
  return sorted(result, entries);
}

async function readLayer(
  layer: Descriptor,
  blob: BlobReader,
): Promise<SignatureEvidence | RejectedSignature> {
  const reject = (problem: string): RejectedSignature => ({ source: 'cosign', id: layer.digest, problem });
  if (layer.mediaType !== MEDIA_TYPES.cosignSimpleSigning)
    return reject(`layer media type ${layer.mediaType}`);
  const signature = layerSignature(layer);
  if (signature === undefined) return reject('no base64 signature annotation');
  // Skip oversized payloads before downloading them; parsePayload would refuse them anyway.
  if (layer.size > MAX_PAYLOAD_BYTES)
    return reject(`payload of ${layer.size} bytes is over ${MAX_PAYLOAD_BYTES}`);
  let payload: Buffer;
  try {
    // getBlob checks the blob's digest: a swapped payload never gets this far.
    payload = await blob(layer);
  } catch (err) {
    if (isContentError(err)) return reject(`payload blob: ${err.message}`);
    throw err;
  }
  const parsed = parsePayload(payload);
  if (!parsed.ok) return reject(`payload ${parsed.problem.field} ${parsed.problem.message}`);
  const identity = parsed.payload.critical.identity['docker-reference'];
  const certificate = layer.annotations?.[CERTIFICATE_ANNOTATION];
  return {
    source: 'cosign',
    id: layer.digest,
    signedData: payload,
    signature,
    claims: {
      digests: [parsed.payload.critical.image['docker-manifest-digest']],
      identity,
      subjects: [{ digest: parsed.payload.critical.image['docker-manifest-digest'], name: identity }],
      tag: identityTag(identity),
    },
    certificate: typeof certificate === 'string' && certificate.length > 0 ? certificate : undefined,
  };
}

const isBundleType = (type: string | undefined): boolean =>
  type !== undefined && type.startsWith('application/vnd.dev.sigstore.bundle');

async function loadBundles(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: SignatureLoaderOptions,
  blob: BlobReader,
  read: ReadOptions,
): Promise<Found> {
  const result = nothingFound();
  let referrers: readonly Descriptor[];
  const index = await client.getReferrers(repository, digest, MEDIA_TYPES.sigstoreBundle, read);
  result.referrersApi = index !== undefined;
  if (index !== undefined) {
    referrers = index.manifests;
  } else {
    // No referrers API: the fallback tag holds an index of the referrers, if anyone wrote one.
    const fallback = await client.getManifest(repository, referrersFallbackTag(digest), read);
    referrers = fallback !== undefined && 'manifests' in fallback.manifest ? fallback.manifest.manifests : [];
  }
  const bundles = referrers.filter((d) => isBundleType(d.artifactType));
  result.unread = Math.max(0, bundles.length - options.maxBundles);
  const entries = await Promise.all(
    bundles.slice(0, options.maxBundles).map(async (descriptor) => {
      try {
        return await readBundle(client, repository, digest, descriptor, blob, read);
      } catch (err) {
        if (isContentError(err))
          return { source: 'bundle' as const, id: descriptor.digest, problem: err.message };
        throw err;
      }
    }),
  );
  return sorted(result, entries);
}

async function readBundle(
  client: RegistryClient,
  repository: string,
  digest: string,
  descriptor: Descriptor,
  blob: BlobReader,
  read: ReadOptions,
): Promise<SignatureEvidence | RejectedSignature> {
  const reject = (problem: string): RejectedSignature => ({
    source: 'bundle',
    id: descriptor.digest,
    problem,
  });
  const fetched = await client.getManifest(repository, descriptor.digest, read);
  if (fetched === undefined) return reject('referrer manifest not found');
  if (!('layers' in fetched.manifest)) return reject('referrer is an index, not a manifest');
  const manifest = fetched.manifest;
  if (manifest.subject !== undefined && manifest.subject.digest !== digest) {
    return reject(`referrer subject is ${manifest.subject.digest}`);
  }
  const layer = manifest.layers.find((l) => isBundleType(l.mediaType));
  if (layer === undefined) return reject('no bundle layer');
  if (layer.size > MAX_BUNDLE_BYTES)
    return reject(`bundle of ${layer.size} bytes is over ${MAX_BUNDLE_BYTES}`);
  const bytes = await blob(layer);
  const parsed = parseBundle(bytes);
  if (typeof parsed === 'string') return reject(parsed);
  return { ...parsed, id: descriptor.digest };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const decodeBase64 = (value: unknown): Buffer | undefined =>
  typeof value === 'string' && value.length > 0 && BASE64.test(value)
    ? Buffer.from(value, 'base64')
    : undefined;

/**
 * Reads a Sigstore bundle holding a DSSE envelope over an in-toto statement with cosign's signing
 * predicate; returns the evidence (id left to the caller) or the problem.
 */
export function parseBundle(bytes: Buffer): Omit<SignatureEvidence, 'id'> | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'bundle is not JSON';
  }
  if (!isObject(json)) return 'bundle is not a JSON object';
  if (typeof json.mediaType !== 'string' || !isBundleType(json.mediaType))
    return 'bundle mediaType is not a Sigstore bundle';
  const envelope = json.dsseEnvelope;
  if (!isObject(envelope)) return 'bundle has no dsseEnvelope (message-signature bundles are not supported)';
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `DSSE payloadType is not ${IN_TOTO_PAYLOAD_TYPE}`;
  const payload = decodeBase64(envelope.payload);
  if (payload === undefined) return 'DSSE payload is not base64';
  const signatures = Array.isArray(envelope.signatures) ? envelope.signatures : [];
  const signature =
    signatures.length === 1 && isObject(signatures[0]) ? decodeBase64(signatures[0].sig) : undefined;
  if (signature === undefined) return 'DSSE envelope must hold exactly one base64 signature';
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'in-toto statement is not JSON';
  }
  if (!isObject(statement)) return 'in-toto statement is not a JSON object';
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return `predicateType ${String(statement.predicateType)} is not ${COSIGN_SIGN_PREDICATE}`;
  }
  const subjects = (Array.isArray(statement.subject) ? statement.subject : [])
    .map((s) =>
      isObject(s) && isObject(s.digest) && typeof s.digest.sha256 === 'string'
        ? { digest: `sha256:${s.digest.sha256}`, name: typeof s.name === 'string' ? s.name : undefined }
        : undefined,
    )
    .filter((s) => s !== undefined && /^sha256:[a-f0-9]{64}$/.test(s.digest)) as {
    digest: string;
    name: string | undefined;
  }[];
  const digests = subjects.map((s) => s.digest);
  if (digests.length === 0) return 'in-toto statement has no sha256 subject';
  const material = isObject(json.verificationMaterial) ? json.verificationMaterial : {};
  const rawCertificate = isObject(material.certificate)
    ? decodeBase64(material.certificate.rawBytes)
    : undefined;
  return {
    source: 'bundle',
    signedData: preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload),
    signature,
    claims: { digests, identity: undefined, subjects, tag: undefined },
    certificate:
      rawCertificate === undefined
        ? undefined
        : `-----BEGIN CERTIFICATE-----\n${rawCertificate.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`,
  };
}
