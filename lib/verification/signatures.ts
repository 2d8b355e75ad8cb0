/**
 * Reads every signature stored for one image digest, whoever wrote it (Signet, cosign, any
 * cosign-format signer), into signed bytes + signature + claims, once per digest: the cosign
 * legacy `sha256-<hex>.sig` manifest (one payload blob per layer, with the certificate, chain,
 * Rekor bundle and RFC 3161 timestamp annotations keyless signers add) and, when asked, Sigstore
 * bundle referrers (DSSE or message signature), read through the referrers API or its
 * `sha256-<hex>` fallback index tag. No key is involved here: witness checks run on what this
 * returns.
 */
import { RegistryError } from '../core/errors';
import { signatureTag } from '../core/reference';
import type { RejectedSignature, SignatureEvidence } from '../cosign/evidence';
import { identityTag, MAX_PAYLOAD_BYTES, parsePayload } from '../cosign/payload';
import { blobReader, isContentError, readBundleReferrers, type BlobReader } from '../cosign/referrers';
import { CERTIFICATE_ANNOTATION, layerSignature } from '../cosign/signature-manifest';
import type { Descriptor, FetchedManifest, ReadOptions, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { COSIGN_ANNOTATIONS } from '../sigstore/cosign-layer';

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
    const found = await readBundleReferrers(client, repository, digest, options.maxBundles, read, blob);
    return loaded(client, repository, digest, { ...found, notes: [] }, undefined);
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
  // Only the annotations Sigstore verification reads are kept (a layer may carry anything else).
  const annotations: Record<string, string> = {};
  for (const name of Object.values(COSIGN_ANNOTATIONS)) {
    const value = layer.annotations?.[name];
    if (typeof value === 'string') annotations[name] = value;
  }
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
    material: { $case: 'cosign-layer', annotations },
  };
}
