/**
 * The one way Signet adds entries to a manifest that other writers share (a digest's cosign
 * `sha256-<hex>.sig` manifest, its `sha256-<hex>` referrers fallback index): read the manifest at
 * the tag, add our entries, keep everyone else's, write, then read it back and check both ours
 * and the ones the write was based on. A registry has no conditional PUT, so a concurrent writer
 * can replace the manifest between any two of those steps; whoever finds something missing merges
 * what is there with what went missing and writes again, after a bounded, jittered backoff.
 */
import { PublishError, RegistryError } from '../core/errors';
import { backoffDelay, sleep, type RetryPolicy } from '../core/retry';
import type { FetchedManifest, RegistryClient } from '../registry/types';

/** What the tag held at one read: the manifest digest (undefined: no manifest) and its entries. */
export interface ManifestEntries<E> {
  readonly digest: string | undefined;
  readonly entries: readonly E[];
}

/** A manifest to put at the tag. */
export interface ManifestWrite {
  readonly bytes: Buffer;
  readonly mediaType: string;
}

/** What one kind of shared manifest is made of, and which of its entries are ours. */
export interface AppendSpec<E> {
  /** Names the manifest in messages: `signature manifest`, `referrers index`. */
  readonly what: string;
  /**
   * The entries of the manifest at the tag (none when `fetched` is undefined). Throws PublishError
   * SIGNATURE_MANIFEST_INVALID for a manifest of another kind: it may be someone else's data.
   */
  read(fetched: FetchedManifest | undefined, where: string): readonly E[];
  /** Our entries that `entries` does not hold yet (nor anything equivalent): the write adds them. */
  missing(entries: readonly E[]): readonly E[];
  /** Whether two entries are the same one: how everyone else's entries are recognised and kept. */
  same(a: E, b: E): boolean;
  /** The manifest holding exactly `entries`, once the blobs it references (its config) are uploaded. */
  write(entries: readonly E[]): Promise<ManifestWrite>;
  /**
   * After a write the registry refused with BLOB_UNKNOWN (another writer uploading the same blob
   * at that moment makes distribution briefly forget it): upload our entries' blobs again.
   */
  reupload?(): Promise<void>;
}

/** Where an append stands when the interleaving hook is called. */
export interface AppendStep {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  /** 1 for the first write. */
  readonly round: number;
  /** `write`: the manifest was read and the write based on it is next; `check`: written, read-back next. */
  readonly step: 'write' | 'check';
}

/** Called between the steps of an append: lets a test have a concurrent writer act there. */
export type InterleaveHook = (at: AppendStep) => Promise<void> | void;

/** How hard an append tries. */
export interface AppendPolicy {
  /** Write rounds before giving up with CONFLICT_RETRIES_EXHAUSTED. */
  readonly maxRounds: number;
  /** Backoff between rounds. */
  readonly backoff: RetryPolicy;
  readonly interleave?: InterleaveHook;
}

/** Where an append left the manifest. */
export interface AppendResult<E> extends ManifestEntries<E> {
  /** Rounds that wrote (or tried to); 0 when everything was already there. */
  readonly rounds: number;
}

/** Reads the manifest at `tag` into entries. */
export async function readManifestEntries<E>(
  client: RegistryClient,
  repository: string,
  tag: string,
  spec: Pick<AppendSpec<E>, 'read'>,
): Promise<ManifestEntries<E>> {
  const fetched = await client.getManifest(repository, tag);
  return { digest: fetched?.digest, entries: spec.read(fetched, `${client.host}/${repository}:${tag}`) };
}

/**
 * Adds `spec.missing(...)` to the manifest at `tag`, keeping every entry someone else wrote, until
 * a read after a write shows ours and everything that write was based on. `start` is a read the
 * caller has just made (it saves one). Throws PublishError CONFLICT_RETRIES_EXHAUSTED when other
 * writers kept replacing the manifest for `policy.maxRounds` rounds, and a write's own error
 * otherwise (a BLOB_UNKNOWN only in the last round; before, it costs a round).
 */
export async function appendToManifest<E>(
  client: RegistryClient,
  repository: string,
  tag: string,
  spec: AppendSpec<E>,
  policy: AppendPolicy,
  start?: ManifestEntries<E>,
): Promise<AppendResult<E>> {
  const at = { registry: client.host, repository, tag };
  let seen = start ?? (await readManifestEntries(client, repository, tag, spec));
  // What the next write is based on: the last read, plus what of our base a lost race dropped.
  let base = seen.entries;
  // Ours, as written: left out of a merge, since `missing` puts back those still needed, and one
  // a concurrent writer holds an equivalent of (same payload, valid under the same key) would be
  // a second signature by the same witness.
  const added: E[] = [];
  const holds = (entries: readonly E[], entry: E): boolean => entries.some((e) => spec.same(e, entry));
  for (let round = 1; ; round++) {
    const ours = spec.missing(base);
    const restoring = base.some((entry) => !holds(seen.entries, entry));
    if (ours.length === 0 && !restoring) return { ...seen, rounds: round - 1 };

    const entries = [...base, ...ours];
    await policy.interleave?.({ ...at, round, step: 'write' });
    let written: readonly E[] = base;
    try {
      const manifest = await spec.write(entries);
      await client.putManifest(repository, tag, manifest.bytes, manifest.mediaType);
      written = entries;
      added.push(...ours);
    } catch (error) {
      if (!(error instanceof RegistryError && error.code === 'BLOB_UNKNOWN')) throw error;
      if (round >= policy.maxRounds) throw error;
      // Our write did not happen: upload again, and let the check below send us round again.
      await spec.reupload?.();
    }

    await policy.interleave?.({ ...at, round, step: 'check' });
    // Another writer may have replaced the manifest between our read and our write (what we based
    // the write on would then be missing) or right after it (ours would be).
    const after = await readManifestEntries(client, repository, tag, spec);
    if (spec.missing(after.entries).length === 0 && written.every((entry) => holds(after.entries, entry))) {
      return { ...after, rounds: round };
    }
    if (round >= policy.maxRounds) {
      throw new PublishError(
        'CONFLICT_RETRIES_EXHAUSTED',
        `${client.host}/${repository}:${tag}: concurrent writers kept replacing the ${spec.what}; gave up after ${round} rounds`,
      );
    }
    const lost = written.filter((entry) => !holds(after.entries, entry) && !holds(added, entry));
    seen = after;
    base = [...after.entries, ...lost];
    await sleep(backoffDelay(policy.backoff, round));
  }
}
