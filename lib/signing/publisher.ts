import type { KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../config/types';
import { PublishError, RegistryError } from '../core/errors';
import { KeyedMutex } from '../core/mutex';
import { signatureTag } from '../core/reference';
import { backoffDelay, sleep, type RetryPolicy } from '../core/retry';
import { sha256Digest } from '../cosign/payload';
import {
  layerSignature,
  signatureConfigBlob,
  signatureLayerDescriptor,
  signatureManifest,
} from '../cosign/signature-manifest';
import { verifySignature } from '../keys/algorithms';
import type { Descriptor, ImageManifest, RegistryClient } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';

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

export interface PublisherOptions {
  /** Read-modify-write rounds before giving up on a contended manifest. */
  readonly maxRounds: number;
  /** Backoff between rounds. */
  readonly backoff: RetryPolicy;
}

export const DEFAULT_PUBLISHER_OPTIONS: PublisherOptions = {
  maxRounds: 8,
  backoff: { attempts: 8, baseDelayMs: 50, maxDelayMs: 1_000 },
};

/**
 * Appends cosign signature layers to a digest's `sha256-<hex>.sig` manifest without losing anyone
 * else's layers. Work on one digest is serialized inside the process; across processes every write
 * is followed by a read that checks both our layers and the layers we based the write on, and a
 * lost race is retried with backoff. A candidate already present (same payload digest, signature
 * valid under the same key) is neither signed nor written again.
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
    let current = await readSignatureManifest(client, repository, tag);
    const outcomes = new Map<string, CandidateOutcome>();
    const missing = candidates.filter((candidate) => {
      if (current.layers.some((layer) => isSameSignature(layer, candidate))) {
        outcomes.set(candidate.id, { $case: 'present', id: candidate.id });
        return false;
      }
      return true;
    });
    if (missing.length === 0) {
      return {
        outcomes: ordered(candidates, outcomes),
        signatureTag: where,
        manifestDigest: current.digest,
        rounds: 0,
      };
    }

    // Sign and upload payloads once, outside the read-modify-write loop, so the window between
    // reading the manifest and writing it stays as short as possible.
    const signed = await Promise.all(
      missing.map(async (candidate) => {
        try {
          const signature = await candidate.sign(candidate.payload);
          await client.pushBlob(repository, candidate.payload);
          return { candidate, layer: signatureLayerDescriptor({ ...candidate, signature }) };
        } catch (error) {
          outcomes.set(candidate.id, { $case: 'failed', id: candidate.id, error });
          return undefined;
        }
      }),
    );
    const pending = signed.filter((entry) => entry !== undefined);
    if (pending.length === 0) {
      return {
        outcomes: ordered(candidates, outcomes),
        signatureTag: where,
        manifestDigest: current.digest,
        rounds: 0,
      };
    }

    // What the registry held at the last read: layers of `current` not in it must be written back.
    let stored = current.layers;
    for (let round = 1; ; round++) {
      const toAdd = pending.filter(
        ({ candidate }) => !current.layers.some((l) => isSameSignature(l, candidate)),
      );
      const restoring = current.layers.some((layer) => !stored.some((l) => sameLayer(l, layer)));
      let written: readonly Descriptor[] = current.layers;
      if (toAdd.length > 0 || restoring) {
        const layers = [...current.layers, ...toAdd.map(({ layer }) => layer)];
        const config = signatureConfigBlob(layers);
        await client.pushBlob(repository, config);
        const bytes = Buffer.from(JSON.stringify(signatureManifest(layers, config)), 'utf8');
        try {
          await client.putManifest(repository, tag, bytes, MEDIA_TYPES.ociManifest);
          written = layers;
        } catch (error) {
          // Another writer uploading the same payload or config blob at this moment makes the
          // distribution registry briefly report it unknown (it rewrites the repository's link
          // file in place). Our write did not happen: upload again and take another round.
          if (!(error instanceof RegistryError && error.code === 'BLOB_UNKNOWN')) throw error;
          if (round >= this.options.maxRounds) throw error;
          await Promise.all(pending.map(({ candidate }) => client.pushBlob(repository, candidate.payload)));
        }
      }
      // Check after the write: another writer may have replaced the manifest between our read
      // and our write (their layers would then be missing) or right after it (ours would be).
      const after = await readSignatureManifest(client, repository, tag);
      const oursPresent = pending.every(({ candidate }) =>
        after.layers.some((l) => isSameSignature(l, candidate)),
      );
      const basePresent = written.every((layer) => after.layers.some((l) => sameLayer(l, layer)));
      if (oursPresent && basePresent) {
        for (const { candidate, layer } of pending) {
          // Ours is the layer there, or another writer's equivalent signature is.
          const oursThere = after.layers.some((l) => sameLayer(l, layer));
          outcomes.set(candidate.id, { $case: oursThere ? 'written' : 'present', id: candidate.id });
        }
        return {
          outcomes: ordered(candidates, outcomes),
          signatureTag: where,
          manifestDigest: after.digest,
          rounds: round,
        };
      }
      if (round >= this.options.maxRounds) {
        throw new PublishError(
          'CONFLICT_RETRIES_EXHAUSTED',
          `${client.host}/${where}: concurrent writers kept replacing the signature manifest; gave up after ${round} rounds`,
        );
      }
      // Merge what the other writer wrote with what we saw, so their layers survive our retry.
      // Our own layers are left out: `toAdd` puts back the ones still missing, and one the other
      // writer already holds an equivalent of (same payload, valid under the same key) would be
      // a second signature by the same witness.
      const merged = [...after.layers];
      for (const layer of written) {
        const ours = pending.some((entry) => sameLayer(entry.layer, layer));
        if (!ours && !merged.some((l) => sameLayer(l, layer))) merged.push(layer);
      }
      current = { digest: after.digest, layers: merged };
      stored = after.layers;
      await sleep(backoffDelay(this.options.backoff, round));
    }
  }
}

interface SignatureManifestState {
  readonly digest: string | undefined;
  readonly layers: readonly Descriptor[];
}

async function readSignatureManifest(
  client: RegistryClient,
  repository: string,
  tag: string,
): Promise<SignatureManifestState> {
  const fetched = await client.getManifest(repository, tag);
  if (fetched === undefined) return { digest: undefined, layers: [] };
  const manifest = fetched.manifest;
  if (!('layers' in manifest) || !Array.isArray(manifest.layers)) {
    // Never overwrite something we do not understand: it may be someone else's data.
    throw new PublishError(
      'SIGNATURE_MANIFEST_INVALID',
      `${client.host}/${repository}:${tag} is not an image manifest (${fetched.mediaType}); refusing to overwrite it`,
    );
  }
  return { digest: fetched.digest, layers: (manifest as ImageManifest).layers };
}

function isSameSignature(layer: Descriptor, candidate: SignatureCandidate): boolean {
  if (layer.digest !== sha256Digest(candidate.payload)) return false;
  const signature = layerSignature(layer);
  return (
    signature !== undefined &&
    verifySignature(candidate.publicKey, candidate.algorithm, candidate.payload, signature)
  );
}

function sameLayer(a: Descriptor, b: Descriptor): boolean {
  return (
    a.digest === b.digest &&
    a.annotations?.['dev.cosignproject.cosign/signature'] ===
      b.annotations?.['dev.cosignproject.cosign/signature']
  );
}

function ordered(
  candidates: readonly SignatureCandidate[],
  outcomes: ReadonlyMap<string, CandidateOutcome>,
): CandidateOutcome[] {
  // Every candidate has an outcome by construction; a missing one would be a bug, reported as a failure.
  return candidates.map(
    (candidate) =>
      outcomes.get(candidate.id) ?? {
        $case: 'failed',
        id: candidate.id,
        error: new Error('no outcome recorded'),
      },
  );
}
