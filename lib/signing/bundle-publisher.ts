/**
 * Publishes Sigstore bundles as cosign v3 writes them with `--new-bundle-format` (the format lives
 * in lib/cosign: `dsse.ts`, `bundle-writer.ts`), each stored as an OCI referrer of the image. A
 * registry with the OCI referrers API indexes it by itself; on one without (distribution 2.8),
 * the `sha256-<hex>` fallback tag holds an index of the referrers, updated with the same read,
 * write, check-after and bounded retry as the `.sig` manifest (`appendToManifest`).
 */
import type { KeyObject } from 'node:crypto';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm } from '../config/types';
import { PublishError, RegistryError } from '../core/errors';
import { KeyedMutex } from '../core/mutex';
import { isObject } from '../core/json';
import { onceUntilFailure } from '../core/once';
import { referrersFallbackTag } from '../core/reference';
import {
  BUNDLE_ANNOTATIONS,
  bundleReferrerManifest,
  dsseBundle,
  dsseEnvelopeJson,
  EMPTY_CONFIG,
} from '../cosign/bundle-writer';
import type { SigningProof } from '../cosign/log-evidence';
import type { SignedEnvelope } from '../transparency';
import { cosignSignStatement, IN_TOTO_PAYLOAD_TYPE, preAuthEncoding } from '../cosign/dsse';
import type { SignatureEvidence } from '../cosign/evidence';
import { sha256Digest as sha256 } from '../cosign/payload';
import { readBundleReferrers } from '../cosign/referrers';
import { verifySignature } from '../keys/algorithms';
import type { Descriptor, FetchedManifest, ImageIndex, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { appendToManifest, type AppendSpec } from './append';
import { DEFAULT_PUBLISHER_OPTIONS, type CandidateOutcome, type PublisherOptions } from './publisher';

/** One bundle that should exist for a digest: who signs it, with what. */
export interface BundleCandidate {
  /** Caller's label for outcomes (the rule name). */
  readonly id: string;
  readonly publicKey: KeyObject;
  readonly algorithm: SigningAlgorithm;
  /** Called only when no valid bundle by this key exists yet. */
  signer(): Promise<Signer>;
  /** The witness's log entry and timestamp for the signed envelope; throwing publishes nothing. */
  prove?(envelope: SignedEnvelope): Promise<SigningProof>;
  /** What an existing bundle must carry to count as this candidate's (a witness with a log needs an entry). */
  readonly requires?: { readonly tlogEntry: boolean; readonly timestamp: boolean };
}

/** Where one publish left the bundles. */
export interface BundlePublishResult {
  readonly outcomes: readonly CandidateOutcome[];
  /** `registry/repository@<referrer manifest digest>` of each written bundle, by candidate id. */
  readonly written: ReadonlyMap<string, string>;
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
    const existing = await existingBundles(client, repository, subject.digest);
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
            e.claims.digests.includes(subject.digest) &&
            carriesProof(e, candidate.requires) &&
            verifySignature(candidate.publicKey, candidate.algorithm, e.signedData, e.signature),
        );
        if (present) {
          outcomes.set(candidate.id, { $case: 'present', id: candidate.id });
          return;
        }
        try {
          const signer = await candidate.signer();
          const signed = await signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
          const keyHint = signed.key.$case === 'publicKey' ? signed.key.hint : undefined;
          const proof =
            candidate.prove === undefined
              ? {}
              : await candidate.prove({
                  envelopeJson: dsseEnvelopeJson(statement, signed.signature, keyHint),
                  payload: statement,
                  signature: signed.signature,
                });
          const bundle = dsseBundle(statement, signed.signature, keyHint, proof);
          const manifest = bundleReferrerManifest(subject, bundle, this.now());
          await Promise.all([emptyConfig(), client.pushBlob(repository, bundle)]);
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
    await appendToManifest(
      client,
      repository,
      referrersFallbackTag(digest),
      {
        ...FALLBACK_INDEX,
        missing: (entries) => referrers.filter((r) => !entries.some((d) => d.digest === r.digest)),
        write: (manifests) => {
          const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests };
          return Promise.resolve({
            bytes: Buffer.from(JSON.stringify(index), 'utf8'),
            mediaType: MEDIA_TYPES.ociIndex,
          });
        },
      },
      this.options,
    );
  }
}

/** True when a bundle carries the log entry and timestamp `requires` asks for (a bundle signed before the witness had them does not). */
function carriesProof(evidence: SignatureEvidence, requires: BundleCandidate['requires']): boolean {
  if (requires === undefined || evidence.material.$case !== 'sigstore-bundle') return true;
  const { bundle } = evidence.material;
  const material = isObject(bundle) ? bundle.verificationMaterial : undefined;
  const count = (list: unknown): number => (Array.isArray(list) ? list.length : 0);
  const tlogEntries = count(isObject(material) ? material.tlogEntries : undefined);
  const timestamps = isObject(material) ? material.timestampVerificationData : undefined;
  const rfc3161 = count(isObject(timestamps) ? timestamps.rfc3161Timestamps : undefined);
  return (!requires.tlogEntry || tlogEntries > 0) && (!requires.timestamp || rfc3161 > 0);
}

/** Bundle referrers of one digest looked at for one already there. */
const MAX_BUNDLES_READ = 32;

/**
 * The bundles already there for `digest`, and whether the registry has the referrers API. A
 * registry that refuses or garbles the API (405, 403, junk) has none for us (undefined: not
 * known, so the fallback index is written); one that is down or throttling may be hiding one, so
 * its error is thrown rather than a second bundle written.
 */
async function existingBundles(
  client: RegistryClient,
  repository: string,
  digest: string,
): Promise<{ readonly evidence: readonly SignatureEvidence[]; readonly referrersApi: boolean | undefined }> {
  try {
    return await readBundleReferrers(client, repository, digest, MAX_BUNDLES_READ);
  } catch (error) {
    if (error instanceof RegistryError && !error.retryable) return { evidence: [], referrersApi: undefined };
    throw error;
  }
}

/** The fallback index as a list of referrer descriptors, one per manifest digest. */
const FALLBACK_INDEX: Pick<AppendSpec<Descriptor>, 'what' | 'read' | 'same'> = {
  what: 'referrers index',
  read: (fetched: FetchedManifest | undefined, where: string): readonly Descriptor[] => {
    if (fetched === undefined) return [];
    if (!('manifests' in fetched.manifest)) {
      // Never overwrite something we do not understand: it may be someone else's data.
      throw new PublishError(
        'SIGNATURE_MANIFEST_INVALID',
        `${where} is not an image index (${fetched.mediaType}); refusing to overwrite it`,
      );
    }
    return fetched.manifest.manifests;
  },
  same: (a, b) => a.digest === b.digest,
};
