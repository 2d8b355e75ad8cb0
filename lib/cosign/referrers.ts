/**
 * Where Sigstore bundles live in a registry, read side: the referrers of an image digest, through
 * the OCI referrers API or, on a registry without it, the `sha256-<hex>` fallback index tag; each
 * bundle referrer's manifest and its bundle layer, read bounded by what the descriptors declare
 * (and, for a message-signature bundle, the image manifest it signs).
 */
import { RegistryError } from '../core/errors';
import { referrersFallbackTag } from '../core/reference';
import type { Descriptor, FetchedManifest, ReadOptions, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { bundleEvidence, isBundleType, MAX_BUNDLE_BYTES, messageDigestOf, readBundleJson } from './bundle';
import type { RejectedSignature, SignatureEvidence } from './evidence';

/** Reads one blob of a repository, no larger than its descriptor's size. */
export type BlobReader = (descriptor: Pick<Descriptor, 'digest' | 'size'>) => Promise<Buffer>;

/**
 * Reads blobs of one repository, each bounded by the size its descriptor declares; two layers may
 * carry the same payload (two signers of one simple-mode payload): one GET.
 */
export function blobReader(client: RegistryClient, repository: string, read: ReadOptions = {}): BlobReader {
  const blobs = new Map<string, Promise<Buffer>>();
  return ({ digest, size }) => {
    const key = `${digest}|${size}`;
    let pending = blobs.get(key);
    if (pending === undefined) {
      pending = client.getBlob(repository, digest, { ...read, size });
      blobs.set(key, pending);
    }
    return pending;
  };
}

/** Registry errors that say the content is missing or bad: the signature is unusable, nothing broke. */
export const isContentError = (err: unknown): err is RegistryError =>
  err instanceof RegistryError &&
  (err.code === 'NOT_FOUND' ||
    err.code === 'DIGEST_MISMATCH' ||
    err.code === 'PROTOCOL' ||
    err.code === 'TOO_LARGE');

/** The bundle referrers of one digest, read. */
export interface BundleReferrers {
  readonly evidence: SignatureEvidence[];
  readonly rejected: RejectedSignature[];
  /** Whether the registry answered the OCI referrers API (else the fallback tag was read). */
  readonly referrersApi: boolean;
  /** Bundle referrers beyond `maxBundles` that were not read. */
  readonly unread: number;
}

/**
 * Reads the Sigstore bundle referrers of `digest`: at most `maxBundles` of them, each into
 * evidence or, when its content is missing or malformed, a rejected signature. Any other registry
 * error (unreachable, throttled, refused) is thrown: the caller decides what it means.
 */
export async function readBundleReferrers(
  client: RegistryClient,
  repository: string,
  digest: string,
  maxBundles: number,
  read: ReadOptions = {},
  blob: BlobReader = blobReader(client, repository, read),
): Promise<BundleReferrers> {
  let referrers: readonly Descriptor[];
  const index = await client.getReferrers(repository, digest, MEDIA_TYPES.sigstoreBundle, read);
  if (index !== undefined) {
    referrers = index.manifests;
  } else {
    // No referrers API: the fallback tag holds an index of the referrers, if anyone wrote one.
    const fallback = await client.getManifest(repository, referrersFallbackTag(digest), read);
    referrers = fallback !== undefined && 'manifests' in fallback.manifest ? fallback.manifest.manifests : [];
  }
  const bundles = referrers.filter((d) => isBundleType(d.artifactType));
  // Read once, and only when a message-signature bundle needs the manifest it signs.
  let subject: Promise<FetchedManifest | undefined> | undefined;
  const subjectManifest = (): Promise<FetchedManifest | undefined> =>
    (subject ??= client.getManifest(repository, digest, read));
  const entries = await Promise.all(
    bundles.slice(0, maxBundles).map(async (descriptor) => {
      try {
        return await readBundle(client, repository, digest, descriptor, blob, read, subjectManifest);
      } catch (err) {
        if (isContentError(err))
          return { source: 'bundle' as const, id: descriptor.digest, problem: err.message };
        throw err;
      }
    }),
  );
  const result: BundleReferrers = {
    evidence: [],
    rejected: [],
    referrersApi: index !== undefined,
    unread: Math.max(0, bundles.length - maxBundles),
  };
  for (const entry of entries) {
    if ('problem' in entry) result.rejected.push(entry);
    else result.evidence.push(entry);
  }
  return result;
}

async function readBundle(
  client: RegistryClient,
  repository: string,
  digest: string,
  descriptor: Descriptor,
  blob: BlobReader,
  read: ReadOptions,
  subjectManifest: () => Promise<FetchedManifest | undefined>,
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
  const json = readBundleJson(await blob(layer));
  if (typeof json === 'string') return reject(json);
  const message = messageDigestOf(json);
  if (typeof message === 'string') return reject(message);
  let artifact: Buffer | undefined;
  if (message !== undefined) {
    // A message signature signs the image manifest's bytes: its digest must be the subject's.
    if (message.digest !== digest) return reject(`message signature is over ${message.digest}`);
    artifact = (await subjectManifest())?.bytes;
    if (artifact === undefined) return reject(`the signed manifest ${digest} is not found`);
  }
  const parsed = bundleEvidence(json, artifact);
  if (typeof parsed === 'string') return reject(parsed);
  return { ...parsed, id: descriptor.digest };
}
