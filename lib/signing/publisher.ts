import type { KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../config/types';
import { PublishError } from '../core/errors';
import { KeyedMutex } from '../core/mutex';
import { signatureTag } from '../core/reference';
import type { RetryPolicy } from '../core/retry';
import { sha256Digest } from '../cosign/payload';
import {
  layerSignature,
  SIGNATURE_ANNOTATION,
  signatureConfigBlob,
  signatureLayerDescriptor,
  signatureManifest,
} from '../cosign/signature-manifest';
import { verifySignature } from '../keys/algorithms';
import type { Descriptor, FetchedManifest, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { appendToManifest, readManifestEntries, type AppendSpec, type InterleaveHook } from './append';

/** One signature that should exist on a digest: its payload, who signs it, and how. */
export interface SignatureCandidate {
  /** Caller's label for outcomes (the rule name). */
  readonly id: string;
  readonly payload: Buffer;
  readonly publicKey: KeyObject;
  readonly algorithm: SigningAlgorithm;
  /** Produces the signature over `payload`; called only when the signature is not there yet. */
  sign(payload: Buffer): Promise<Buffer>;
  /** Extra layer annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Annotations made from the signature once it exists: the witness's transparency-log entry and
   * timestamp. Throwing fails the candidate: nothing is published without them.
   */
  prove?(signature: Buffer): Promise<Readonly<Record<string, string>>>;
  /** Annotations a layer must carry to count as this candidate (a witness with a log needs its entry). */
  readonly requiredAnnotations?: readonly string[];
}

/** What happened to one candidate. */
export type CandidateOutcome =
  | { readonly $case: 'written'; readonly id: string }
  | { readonly $case: 'present'; readonly id: string }
  | { readonly $case: 'failed'; readonly id: string; readonly error: unknown };

/** The result of one publish: per-candidate outcomes and where the signatures live. */
export interface PublishResult {
  readonly outcomes: readonly CandidateOutcome[];
  /** `repository:sha256-<hex>.sig` */
  readonly signatureTag: string;
  /** Digest of the `.sig` manifest after the write (undefined when nothing was there or written). */
  readonly manifestDigest: string | undefined;
  /** Read-modify-write rounds it took. */
  readonly rounds: number;
}

/** How hard the publishers try on a contended manifest (the `.sig` manifest, the fallback index). */
export interface PublisherOptions {
  /** Read-modify-write rounds before giving up on a contended manifest. */
  readonly maxRounds: number;
  /** Backoff between rounds. */
  readonly backoff: RetryPolicy;
  /** Called between the steps of every append (tests: a concurrent writer winning a race). */
  readonly interleave?: InterleaveHook;
}

export const DEFAULT_PUBLISHER_OPTIONS: PublisherOptions = {
  maxRounds: 8,
  backoff: { attempts: 8, baseDelayMs: 50, maxDelayMs: 1_000 },
};

/**
 * Appends cosign signature layers to a digest's `sha256-<hex>.sig` manifest without losing anyone
 * else's layers. Work on one digest is serialized inside the process; across processes every write
 * is followed by a read that checks both our layers and the layers we based the write on, and a
 * lost race is retried with backoff (`appendToManifest`). A candidate already present (same
 * payload digest, signature valid under the same key, the annotations it requires) is neither
 * signed nor written again. A candidate that proves its signature (a transparency-log entry, a
 * timestamp) is published with the proof or not at all.
 */
export class SignaturePublisher {
  private readonly locks = new KeyedMutex();
  private readonly options: PublisherOptions;

  constructor(options: Partial<PublisherOptions> = {}) {
    this.options = { ...DEFAULT_PUBLISHER_OPTIONS, ...options };
  }

  publish(
    client: RegistryClient,
    repository: string,
    digest: string,
    candidates: readonly SignatureCandidate[],
  ): Promise<PublishResult> {
    return this.locks.run(`${client.host}/${repository}@${digest}`, () =>
      this.publishLocked(client, repository, digest, candidates),
    );
  }

  private async publishLocked(
    client: RegistryClient,
    repository: string,
    digest: string,
    candidates: readonly SignatureCandidate[],
  ): Promise<PublishResult> {
    const tag = signatureTag(digest);
    const where = `${repository}:${tag}`;
    const current = await readManifestEntries(client, repository, tag, SIGNATURE_LAYERS);
    const outcomes = new Map<string, CandidateOutcome>();
    const result = (manifestDigest: string | undefined, rounds: number): PublishResult => ({
      outcomes: candidates.map(
        (c) => outcomes.get(c.id) ?? { $case: 'failed', id: c.id, error: new Error('no outcome recorded') },
      ),
      signatureTag: where,
      manifestDigest,
      rounds,
    });
    const missing = candidates.filter((candidate) => {
      if (current.entries.some((layer) => isSameSignature(layer, candidate))) {
        outcomes.set(candidate.id, { $case: 'present', id: candidate.id });
        return false;
      }
      return true;
    });

    // Sign and upload payloads once, outside the read-modify-write loop, so the window between
    // reading the manifest and writing it stays as short as possible.
    const signed = await Promise.all(
      missing.map(async (candidate) => {
        try {
          const signature = await candidate.sign(candidate.payload);
          const proof = candidate.prove === undefined ? {} : await candidate.prove(signature);
          await client.pushBlob(repository, candidate.payload);
          const annotations = { ...candidate.annotations, ...proof };
          return { candidate, layer: signatureLayerDescriptor({ ...candidate, signature, annotations }) };
        } catch (error) {
          outcomes.set(candidate.id, { $case: 'failed', id: candidate.id, error });
          return undefined;
        }
      }),
    );
    const pending = signed.filter((entry) => entry !== undefined);
    if (pending.length === 0) return result(current.digest, 0);

    const after = await appendToManifest(
      client,
      repository,
      tag,
      {
        ...SIGNATURE_LAYERS,
        // A candidate is there when its layer is, or another writer's equivalent signature is.
        missing: (layers) =>
          pending
            .filter(({ candidate }) => !layers.some((l) => isSameSignature(l, candidate)))
            .map(({ layer }) => layer),
        write: async (layers) => {
          const config = signatureConfigBlob(layers);
          await client.pushBlob(repository, config);
          const bytes = Buffer.from(JSON.stringify(signatureManifest(layers, config)), 'utf8');
          return { bytes, mediaType: MEDIA_TYPES.ociManifest };
        },
        reupload: async () => {
          await Promise.all(pending.map(({ candidate }) => client.pushBlob(repository, candidate.payload)));
        },
      },
      this.options,
      current,
    );
    for (const { candidate, layer } of pending) {
      const oursThere = after.entries.some((l) => sameLayer(l, layer));
      outcomes.set(candidate.id, { $case: oursThere ? 'written' : 'present', id: candidate.id });
    }
    return result(after.digest, after.rounds);
  }
}

/** The `.sig` manifest as a list of layers; a layer is its payload digest and signature. */
const SIGNATURE_LAYERS: Pick<AppendSpec<Descriptor>, 'what' | 'read' | 'same'> = {
  what: 'signature manifest',
  read: (fetched: FetchedManifest | undefined, where: string): readonly Descriptor[] => {
    if (fetched === undefined) return [];
    if (!('layers' in fetched.manifest) || !Array.isArray(fetched.manifest.layers)) {
      // Never overwrite something we do not understand: it may be someone else's data.
      throw new PublishError(
        'SIGNATURE_MANIFEST_INVALID',
        `${where} is not an image manifest (${fetched.mediaType}); refusing to overwrite it`,
      );
    }
    return fetched.manifest.layers;
  },
  same: sameLayer,
};

function isSameSignature(layer: Descriptor, candidate: SignatureCandidate): boolean {
  if (layer.digest !== sha256Digest(candidate.payload)) return false;
  // A layer signed before the witness had a log (or a TSA) is not this candidate's: it lacks the entry.
  if (candidate.requiredAnnotations?.some((name) => !layer.annotations?.[name])) return false;
  const signature = layerSignature(layer);
  return (
    signature !== undefined &&
    verifySignature(candidate.publicKey, candidate.algorithm, candidate.payload, signature)
  );
}

function sameLayer(a: Descriptor, b: Descriptor): boolean {
  return (
    a.digest === b.digest && a.annotations?.[SIGNATURE_ANNOTATION] === b.annotations?.[SIGNATURE_ANNOTATION]
  );
}
