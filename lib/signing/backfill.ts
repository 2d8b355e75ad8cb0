/**
 * Bulk backfill (`signet sign --all PATTERN`): every image a registry holds under a pattern that a
 * rule covers and whose witness has not signed it yet is signed, with bounded concurrency and each
 * rule's conditions respected. What is there already is found by reading the digest's `.sig`
 * manifest (a layer with exactly the payload the rule would write costs no other read), so a
 * second run signs nothing and costs one manifest read per digest. Every signature is one atomic
 * append to the `.sig` manifest: an interrupted run leaves nothing half-written, and the next run
 * resumes by skipping what is signed.
 *
 * A `default` rule vouches for a digest under each of its tags (admission by tag checks the signed
 * tag), so it signs every tag its witness has not signed (a tag-less signature covers them all); a
 * `simple` rule signs the digest once.
 */
import type { SigningRule } from '../config/types';
import { ConfigError, describeError } from '../core/errors';
import { compileGlob, type Glob } from '../core/glob';
import { canonicalHost, isRegistryHost } from '../core/reference';
import { backoffDelay, sleep, type RetryPolicy } from '../core/retry';
import type { PushEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { InventoryImage, RegistryInventory } from '../registry/catalog';
import type { RegistryClientFactory } from '../registry/types';
import { isTransientFailure } from './durable';
import type { RuleOutcome, SigningPipeline, SigningReport } from './pipeline';
import { signedWitnesses, type WitnessProbe } from './presence';

/** Which images a backfill covers: a configured registry host and a repository glob under it. */
export interface BackfillTarget {
  readonly registry: string;
  /** Repository glob (`team-a/**`); `**` for every repository. */
  readonly repositories: Glob;
}

/**
 * Reads `host/glob`: `localhost:5000/team-a/**`; `localhost:5000/team-a` (a namespace or a
 * repository: it and everything under it); `localhost:5000` (everything). The host must be one of
 * `hosts` (signing reaches no other). Throws ConfigError CONFIG_INVALID naming the problem.
 */
export function parseBackfillPattern(pattern: string, hosts: readonly string[]): BackfillTarget {
  const slash = pattern.indexOf('/');
  const host = canonicalHost(slash < 0 ? pattern : pattern.slice(0, slash));
  const rest = slash < 0 ? '' : pattern.slice(slash + 1).replace(/\/+$/, '');
  if (!isRegistryHost(host) || !hosts.includes(host)) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `--all ${pattern}: "${host}" is not a configured registry (registries: ${hosts.join(', ') || 'none'})`,
    );
  }
  const glob = rest === '' ? '**' : /[*?]/.test(rest) ? rest : `${rest}/**`;
  let compiled: Glob;
  try {
    compiled = compileGlob(glob);
  } catch (err) {
    throw new ConfigError('CONFIG_INVALID', `--all ${pattern}: ${describeError(err)}`, { cause: err });
  }
  const exact = rest !== '' && !/[*?]/.test(rest) ? rest : undefined;
  return {
    registry: host,
    repositories:
      exact === undefined
        ? compiled
        : { pattern: glob, test: (repository) => repository === exact || compiled.test(repository) },
  };
}

/** What became of one image. */
export type BackfillStatus =
  /** At least one signature was written. */
  | 'signed'
  /** Every covering rule's witness had signed it already. */
  | 'already-signed'
  /** A rule's conditions did not hold (nothing written for it). */
  | 'not-signed'
  /** `--dry-run`: would be signed. */
  | 'would-sign'
  | 'failed';

/** One image's result. */
export interface BackfillResult {
  /** `registry/repository@digest`. */
  readonly image: string;
  readonly repository: string;
  readonly digest: string;
  readonly tags: readonly string[];
  readonly status: BackfillStatus;
  /** The rules (and tags) signed, or that would be. */
  readonly rules: readonly {
    readonly rule: string;
    readonly tag: string | undefined;
    readonly status: string;
  }[];
  readonly error?: string;
  readonly errorCode?: string;
}

/** Where a backfill stands. */
export interface BackfillProgress {
  /** Images listed so far (the total once `listing` is false). */
  readonly total: number;
  readonly listing: boolean;
  readonly done: number;
  readonly counts: Readonly<Record<BackfillStatus, number>>;
  /** Images finished per second since signing started. */
  readonly rate: number;
  /** Seconds left at the current rate; undefined while listing or before the first image. */
  readonly etaSeconds: number | undefined;
}

/** The whole run. */
export interface BackfillSummary extends BackfillProgress {
  readonly registry: string;
  readonly pattern: string;
  readonly dryRun: boolean;
  /** Stopped early (Ctrl-C, SIGTERM): images not started were left for the next run. */
  readonly interrupted: boolean;
  readonly repositories: number;
  readonly durationMs: number;
  readonly results: readonly BackfillResult[];
}

/** What a backfill runs on. */
export interface BackfillDeps {
  readonly pipeline: SigningPipeline;
  readonly registries: RegistryClientFactory;
  readonly keys: Pick<KeyRing, 'get'>;
  /** The inventory of a configured registry host. */
  readonly inventory: (host: string) => RegistryInventory;
}

/** How a backfill runs. */
export interface BackfillOptions {
  readonly target: BackfillTarget;
  /** Images worked on at once (registry and KMS requests scale with it); default 8. */
  readonly concurrency?: number;
  /** List what would be signed; sign nothing. */
  readonly dryRun?: boolean;
  /** Only this rule. */
  readonly rule?: string;
  /** Ends the run early: no image is started after it fires; those in flight finish. */
  readonly signal?: AbortSignal;
  /** Attempts per image when a failure may pass (throttling, outages); default 3. */
  readonly attempts?: number;
  readonly retry?: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
  readonly onResult?: (result: BackfillResult, progress: BackfillProgress) => void;
  readonly onProgress?: (progress: BackfillProgress) => void;
}

export const DEFAULT_BACKFILL_CONCURRENCY = 8;
/** Repositories listed at once. */
const LISTING_CONCURRENCY = 4;

const STATUSES: readonly BackfillStatus[] = [
  'signed',
  'already-signed',
  'not-signed',
  'would-sign',
  'failed',
];

/** One image with what it needs: per rule, the tags (undefined: the digest alone) still unsigned. */
interface Work {
  readonly repository: string;
  readonly image: InventoryImage;
  readonly rules: readonly SigningRule[];
}

/** Runs a backfill over `options.target`; resolves to the summary (it throws only for bad input). */
export async function backfill(deps: BackfillDeps, options: BackfillOptions): Promise<BackfillSummary> {
  const started = performance.now();
  const { registry } = options.target;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_BACKFILL_CONCURRENCY));
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<BackfillStatus, number>;
  const results: BackfillResult[] = [];
  let total = 0;
  let listing = true;
  let signingStarted: number | undefined = undefined;
  const progress = (): BackfillProgress => {
    const done = results.length;
    const elapsed = signingStarted === undefined ? 0 : (performance.now() - signingStarted) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    return {
      total,
      listing,
      done,
      counts: { ...counts },
      rate,
      etaSeconds: listing || rate === 0 ? undefined : (total - done) / rate,
    };
  };

  // Listing: repositories under the pattern that some rule covers, a few at a time.
  const inventory = deps.inventory(registry);
  const repositories: string[] = [];
  for await (const repository of inventory.repositories({
    ...(options.signal ? { signal: options.signal } : {}),
  })) {
    if (!options.target.repositories.test(repository)) continue;
    if (deps.pipeline.rulesFor(registry, repository, options.rule).length === 0) continue;
    repositories.push(repository);
  }
  const queue: Work[] = [];
  await pool(repositories, LISTING_CONCURRENCY, options.signal, async (repository) => {
    const rules = deps.pipeline.rulesFor(registry, repository, options.rule);
    for (const image of await inventory.images(repository)) queue.push({ repository, image, rules });
    total = queue.length;
    options.onProgress?.(progress());
  });
  listing = false;
  total = queue.length;
  signingStarted = performance.now();
  options.onProgress?.(progress());

  await pool(queue, concurrency, options.signal, async (work) => {
    const result = await withRetries(options, () => backfillImage(deps, options, registry, work));
    results.push(result);
    counts[result.status]++;
    const now = progress();
    options.onResult?.(result, now);
    options.onProgress?.(now);
  });

  return {
    ...progress(),
    registry,
    pattern: options.target.repositories.pattern,
    dryRun: options.dryRun === true,
    interrupted: options.signal?.aborted === true,
    repositories: repositories.length,
    durationMs: performance.now() - started,
    results,
  };
}

/** Retries an image whose failure may pass (throttling, outages), with backoff. */
async function withRetries(
  options: BackfillOptions,
  attempt: () => Promise<BackfillResult>,
): Promise<BackfillResult> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const policy: RetryPolicy = {
    attempts,
    baseDelayMs: options.retry?.baseDelayMs ?? 500,
    maxDelayMs: options.retry?.maxDelayMs ?? 10_000,
  };
  for (let n = 1; ; n++) {
    const result = await attempt();
    const transient = result.status === 'failed' && isTransientFailure(result.errorCode ?? 'INTERNAL');
    if (!transient || n >= attempts || options.signal?.aborted === true) return result;
    await sleep(backoffDelay(policy, n));
  }
}

async function backfillImage(
  deps: BackfillDeps,
  options: BackfillOptions,
  registry: string,
  work: Work,
): Promise<BackfillResult> {
  const { repository, image, rules } = work;
  const base = {
    image: `${registry}/${repository}@${image.digest}`,
    repository,
    digest: image.digest,
    tags: image.tags,
  };
  let needs: { rule: SigningRule; tag: string | undefined }[];
  try {
    needs = await unsigned(deps, registry, repository, image, rules);
  } catch (err) {
    return { ...base, status: 'failed', rules: [], ...errorFields(err) };
  }
  if (needs.length === 0) return { ...base, status: 'already-signed', rules: [] };
  if (options.dryRun === true) {
    return {
      ...base,
      status: 'would-sign',
      rules: needs.map(({ rule, tag }) => ({ rule: rule.name, tag, status: 'would-sign' })),
    };
  }
  // One signing run per tag, with the rules that still need it under that tag.
  const byTag = new Map<string | undefined, string[]>();
  for (const { rule, tag } of needs) byTag.set(tag, [...(byTag.get(tag) ?? []), rule.name]);
  const outcomes: { tag: string | undefined; outcome: RuleOutcome }[] = [];
  for (const [tag, names] of byTag) {
    const event: PushEvent = {
      registry,
      repository,
      digest: image.digest,
      tag,
      mediaType: undefined,
      artifactType: undefined,
      source: 'manual',
      id: undefined,
    };
    const report: SigningReport = await deps.pipeline.signRules(event, names);
    if (report.skipped !== undefined && report.outcomes.length === 0) continue;
    // Children of an index signed by recursive rules are part of the image's outcome.
    for (const outcome of report.outcomes) outcomes.push({ tag, outcome });
  }
  const failed = outcomes.find(({ outcome }) => outcome.status === 'failed')?.outcome;
  const status: BackfillStatus =
    failed !== undefined
      ? 'failed'
      : outcomes.some(({ outcome }) => outcome.status === 'signed')
        ? 'signed'
        : outcomes.some(({ outcome }) => outcome.status === 'not-signed')
          ? 'not-signed'
          : 'already-signed';
  return {
    ...base,
    status,
    rules: outcomes.map(({ tag, outcome }) => ({
      rule: outcome.rule,
      tag,
      status: outcome.status,
      ...(outcome.unmet !== undefined ? { reason: outcome.unmet.reason } : {}),
    })),
    ...(failed !== undefined
      ? { error: failed.error ?? 'failed', errorCode: failed.errorCode ?? 'INTERNAL' }
      : {}),
  };
}

/** Per rule, the tags its witness has not signed yet (undefined: the digest, for `simple` rules). */
async function unsigned(
  deps: BackfillDeps,
  registry: string,
  repository: string,
  image: InventoryImage,
  rules: readonly SigningRule[],
): Promise<{ rule: SigningRule; tag: string | undefined }[]> {
  const target = { registry, repository, digest: image.digest };
  const tagsOf = (rule: SigningRule): (string | undefined)[] =>
    rule.signatureType === 'simple' || image.tags.length === 0 ? [undefined] : [...image.tags];
  const probes: WitnessProbe[] = await Promise.all(
    rules.map(async (rule) => ({
      witness: rule.witness,
      publicKey: await deps.keys.get(rule.witness).publicKey(),
      // A rule with conditions writes what held into its payload: not known before it signs.
      expected:
        rule.conditions === undefined
          ? await Promise.all(tagsOf(rule).map((tag) => deps.pipeline.payloadFor(rule, target, tag)))
          : [],
    })),
  );
  const present = await signedWitnesses(deps.registries.client(registry), repository, image.digest, probes);
  return rules.flatMap((rule) => {
    const signed = present.get(rule.witness) ?? [];
    // A signature without a tag vouches for the digest under any tag.
    if (signed.includes(undefined)) return [];
    if (rule.signatureType === 'simple') return signed.length > 0 ? [] : [{ rule, tag: undefined }];
    return tagsOf(rule)
      .filter((tag) => !signed.includes(tag))
      .map((tag) => ({ rule, tag }));
  });
}

/** Runs `work` over `items`, at most `limit` at once, starting none once `signal` fired. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && signal?.aborted !== true) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function errorFields(error: unknown): { error: string; errorCode: string } {
  return { error: describeError(error), errorCode: (error as { code?: string }).code ?? 'INTERNAL' };
}
