/**
 * Sigstore bundles as cosign v3 writes them with `--new-bundle-format`: a DSSE envelope over an
 * in-toto statement (predicate `https://sigstore.dev/cosign/sign/v1`, subject the image digest),
 * in a Sigstore bundle v0.3, stored as an OCI referrer of the image: an image manifest with
 * `artifactType` the bundle media type, an empty config, the bundle as its one layer and the image
 * as its `subject`. A registry with the OCI referrers API indexes it by itself; on one without
 * (distribution 2.8), the `sha256-<hex>` fallback tag holds an index of the referrers, updated
 * here with the same read, write, check-after and bounded retry as the `.sig` manifest.
 */
import type { KeyObject } from 'node:crypto';
import { bundleToJSON, toDSSEBundle } from '@sigstore/bundle';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm } from '../config/types';
import { PublishError } from '../core/errors';
import { KeyedMutex } from '../core/mutex';
import { onceUntilFailure } from '../core/once';
import { referrersFallbackTag } from '../core/reference';
import { sha256Digest as sha256 } from '../cosign/payload';
import { backoffDelay, sleep } from '../core/retry';
import { verifySignature } from '../keys/algorithms';
import type { Descriptor, ImageIndex, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  loadBundleSignatures,
  preAuthEncoding,
} from '../verification/signatures';
import { DEFAULT_PUBLISHER_OPTIONS, type CandidateOutcome, type PublisherOptions } from './publisher';

/** One bundle that should exist for a digest: who signs it, with what. */
export interface BundleCandidate {
  /** Caller's label for outcomes (the rule name). */
  readonly id: string;
  readonly publicKey: KeyObject;
  readonly algorithm: SigningAlgorithm;
  /** Called only when no valid bundle by this key exists yet. */
  signer(): Promise<Signer>;
}

/** Where one publish left the bundles. */
export interface BundlePublishResult {
  readonly outcomes: readonly CandidateOutcome[];
  /** `registry/repository@<referrer manifest digest>` of each written bundle, by candidate id. */
  readonly written: ReadonlyMap<string, string>;
}

const EMPTY_CONFIG = Buffer.from('{}');
/** On the referrer manifest and on its entry in the fallback index, as cosign writes them. */
const BUNDLE_ANNOTATIONS = {
  'dev.sigstore.bundle.content': 'dsse-envelope',
  'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE,
} as const;
const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

/** The in-toto statement cosign v3 signs for an image: the digest, named by its repository. */
export function cosignSignStatement(imageName: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: IN_TOTO_STATEMENT_V1,
      subject: [{ name: imageName, digest: { sha256: digest.slice('sha256:'.length) } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
    'utf8',
  );
}

/** The referrer manifest that carries one bundle, with `subject` the image. */
export function bundleReferrerManifest(subject: Descriptor, bundle: Buffer, created: Date): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: MEDIA_TYPES.sigstoreBundle,
    config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
    layers: [{ mediaType: MEDIA_TYPES.sigstoreBundle, digest: sha256(bundle), size: bundle.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { ...BUNDLE_ANNOTATIONS, 'org.opencontainers.image.created': created.toISOString() },
  };
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}

/**
 * Publishes cosign-v3 bundles for a digest, one per candidate, unless a bundle over this digest's
 * statement that verifies under the candidate's key is already there. Work on one digest is
 * serialized in the process; across processes, the fallback index is written, read back and
 * merged again while another writer replaced it.
 */
export class BundlePublisher {
  private readonly locks = new KeyedMutex();
  private readonly options: PublisherOptions;

  constructor(
    options: Partial<PublisherOptions> = {},
    private readonly now: () => Date = () => new Date(),
  ) {
    this.options = { ...DEFAULT_PUBLISHER_OPTIONS, ...options };
  }

  publish(
    client: RegistryClient,
    repository: string,
    subject: Descriptor,
    candidates: readonly BundleCandidate[],
  ): Promise<BundlePublishResult> {
    return this.locks.run(`${client.host}/${repository}@${subject.digest}#bundles`, () =>
      this.publishLocked(client, repository, subject, candidates),
    );
  }

  private async publishLocked(
    client: RegistryClient,
    repository: string,
    subject: Descriptor,
    candidates: readonly BundleCandidate[],
  ): Promise<BundlePublishResult> {
    const existing = await loadBundleSignatures(client, repository, subject.digest);
    // A registry that is down or throttling may be hiding a bundle: do not write a second one.
    if (existing.bundleError !== undefined) throw existing.bundleError;
    const outcomes = new Map<string, CandidateOutcome>();
    const written = new Map<string, string>();
    const referrers: Descriptor[] = [];
    const statement = cosignSignStatement(`${client.host}/${repository}`, subject.digest);
    // The empty config every referrer manifest names: uploaded (or found) once per publish.
    const emptyConfig = onceUntilFailure(() => client.pushBlob(repository, EMPTY_CONFIG));

    await Promise.all(
      candidates.map(async (candidate) => {
        const present = existing.evidence.some(
          (e) =>
            e.source === 'bundle' &&
            e.claims.digests.includes(subject.digest) &&
            verifySignature(candidate.publicKey, candidate.algorithm, e.signedData, e.signature),
        );
        if (present) {
          outcomes.set(candidate.id, { $case: 'present', id: candidate.id });
          return;
        }
        try {
          // What @sigstore/sign's DSSEBundleBuilder does with no transparency-log witness, without
          // importing the package's index (which brings Fulcio, Rekor and TSA clients into the
          // Lambda bundles: 0.66 MB → 1.6 MB).
          const signer = await candidate.signer();
          const signed = await signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
          const bundle = toDSSEBundle({
            artifact: statement,
            artifactType: IN_TOTO_PAYLOAD_TYPE,
            signature: signed.signature,
            keyHint: signed.key.$case === 'publicKey' ? signed.key.hint : undefined,
            certificateChain: false,
          });
          const bundleBytes = Buffer.from(JSON.stringify(bundleToJSON(bundle)), 'utf8');
          const manifest = bundleReferrerManifest(subject, bundleBytes, this.now());
          await Promise.all([emptyConfig(), client.pushBlob(repository, bundleBytes)]);
          const digest = await client.putManifest(
            repository,
            sha256(manifest),
            manifest,
            MEDIA_TYPES.ociManifest,
          );
          referrers.push({
            mediaType: MEDIA_TYPES.ociManifest,
            digest,
            size: manifest.length,
            artifactType: MEDIA_TYPES.sigstoreBundle,
            annotations: BUNDLE_ANNOTATIONS,
          });
          written.set(candidate.id, `${client.host}/${repository}@${digest}`);
          outcomes.set(candidate.id, { $case: 'written', id: candidate.id });
        } catch (error) {
          outcomes.set(candidate.id, { $case: 'failed', id: candidate.id, error });
        }
      }),
    );

    // A registry with the referrers API indexes the new manifests by their subject itself.
    if (referrers.length > 0 && existing.referrersApi !== true) {
      try {
        await this.addToFallbackIndex(client, repository, subject.digest, referrers);
      } catch (error) {
        // The referrer manifests exist, but nobody can find them: the bundle is not published.
        for (const id of written.keys()) outcomes.set(id, { $case: 'failed', id, error });
        written.clear();
      }
    }
    return {
      outcomes: candidates.map(
        (c) => outcomes.get(c.id) ?? { $case: 'failed', id: c.id, error: new Error('no outcome recorded') },
      ),
      written,
    };
  }

  /** Adds `referrers` to the `sha256-<hex>` fallback index, keeping every entry someone else wrote. */
  private async addToFallbackIndex(
    client: RegistryClient,
    repository: string,
    digest: string,
    referrers: readonly Descriptor[],
  ): Promise<void> {
    const tag = referrersFallbackTag(digest);
    let current = await readIndex(client, repository, tag);
    for (let round = 1; ; round++) {
      const missing = referrers.filter((r) => !current.some((d) => d.digest === r.digest));
      if (missing.length === 0) return;
      const index: ImageIndex = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [...current, ...missing],
      };
      const bytes = Buffer.from(JSON.stringify(index), 'utf8');
      await client.putManifest(repository, tag, bytes, MEDIA_TYPES.ociIndex);
      const after = await readIndex(client, repository, tag);
      const kept = [...current, ...referrers].every((r) => after.some((d) => d.digest === r.digest));
      if (kept) return;
      if (round >= this.options.maxRounds) {
        throw new PublishError(
          'CONFLICT_RETRIES_EXHAUSTED',
          `${client.host}/${repository}:${tag}: concurrent writers kept replacing the referrers index; gave up after ${round} rounds`,
        );
      }
      // Someone replaced the index between our read and write: start from what they wrote (the
      // read after ours) and add ours, and whatever of the previous index they dropped, once more.
      const lost = current.filter((d) => !after.some((a) => a.digest === d.digest));
      if (lost.length > 0) referrers = [...referrers, ...lost];
      current = after;
      await sleep(backoffDelay(this.options.backoff, round));
    }
  }
}

async function readIndex(client: RegistryClient, repository: string, tag: string): Promise<Descriptor[]> {
  const fetched = await client.getManifest(repository, tag);
  if (fetched === undefined) return [];
  if (!('manifests' in fetched.manifest)) {
    // Never overwrite something we do not understand: it may be someone else's data.
    throw new PublishError(
      'SIGNATURE_MANIFEST_INVALID',
      `${client.host}/${repository}:${tag} is not an image index (${fetched.mediaType}); refusing to overwrite it`,
    );
  }
  return [...fetched.manifest.manifests];
}
