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
import { mapBounded } from '../core/pool';
import { ConfigError, InputError } from '../core/errors';
import { compileGlob, validateGlob, type Glob } from '../core/glob';
import { canonicalHost, isRegistryHost, isRepository } from '../core/reference';
import { backoffDelay, sleep, type RetryPolicy } from '../core/retry';
import type { PushEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { InventoryImage, RegistryInventory } from '../registry/catalog';
import type { RegistryClientFactory } from '../registry/types';
import { isTransientFailure } from './durable';
import type { SigningPipeline } from './pipeline';
import { errorFields, type RuleOutcome, type SigningReport } from './report';
import { signedWitnesses, type WitnessProbe } from './presence';

/** Which images a backfill covers: a configured registry host and a repository glob under it. */
export interface BackfillTarget {
  /** The configured registry host, as `registries[]` spells it. */
  readonly registry: string;
  /** Repository glob (`team-a/**`); `**` for every repository. */
  readonly repositories: Glob;
  /** The pattern as given (`localhost:5000/team-a`). */
  readonly pattern: string;
}

/** The flag a backfill pattern comes from, named by parse errors. */
const PATTERN_FIELD = '--all';

/**
 * Reads `host/glob`: `localhost:5000/team-a/**`; `localhost:5000/team-a` (a namespace or a
 * repository: it and everything under it); `localhost:5000` (everything). The host must be one of
 * `hosts` (signing reaches no other). Throws InputError REQUEST_INVALID naming `--all`.
 */
export function parseBackfillPattern(pattern: string, hosts: readonly string[]): BackfillTarget {
  const invalid = (message: string): InputError => new InputError('REQUEST_INVALID', PATTERN_FIELD, message);
  const slash = pattern.indexOf('/');
  const given = slash < 0 ? pattern : pattern.slice(0, slash);
  const rest = slash < 0 ? '' : pattern.slice(slash + 1).replace(/\/+$/, '');
  const registry = hosts.find((host) => canonicalHost(host) === canonicalHost(given));
  if (!isRegistryHost(given) || registry === undefined) {
    throw invalid(
      `"${given}" in "${pattern}" is not a configured registry (registries: ${hosts.join(', ') || 'none'})`,
    );
  }
  const wildcard = /[*?]/.test(rest);
  if (rest !== '' && !wildcard && !isRepository(rest)) {
    throw invalid(`"${rest}" in "${pattern}" is not a repository name (lowercase, slash-separated)`);
  }
  const glob = rest === '' ? '**' : wildcard ? rest : `${rest}/**`;
  const problem = validateGlob(glob);
  if (problem !== undefined) throw invalid(`"${rest}" in "${pattern}" ${problem}`);
  const compiled = compileGlob(glob);
  const exact = rest !== '' && !wildcard ? rest : undefined;
  return {
    registry,
    pattern,
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
  /**
   * Nothing written, and nothing failed: a rule's conditions did not hold, or the image was
   * deleted since it was listed (each rule's `reason` says which).
   */
  | 'not-signed'
  /** `--dry-run`: would be signed. */
  | 'would-sign'
  | 'failed';

/** What one rule did (or would do) for an image, under one tag (undefined: the digest alone). */
export interface BackfillRuleResult {
  readonly rule: string;
  readonly tag: string | undefined;
  readonly status: RuleOutcome['status'] | 'would-sign' | 'skipped';
  /** For `not-signed`, `waiting` and `skipped`: why nothing was written. */
  readonly reason?: string;
}

/** One image's result. */
export interface BackfillResult {
  /** `registry/repository@digest`; `registry/repository` when the repository could not be listed. */
  readonly image: string;
  readonly repository: string;
  /** Empty when the repository could not be listed. */
  readonly digest: string;
  readonly tags: readonly string[];
  readonly status: BackfillStatus;
  /** The rules (and tags) signed, or that would be. */
  readonly rules: readonly BackfillRuleResult[];
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
  /** The pattern as given. */
  readonly pattern: string;
  readonly dryRun: boolean;
  /** Stopped early (Ctrl-C, SIGTERM): images not started were left for the next run. */
  readonly interrupted: boolean;
  readonly repositories: number;
  readonly durationMs: number;
  readonly results: readonly BackfillResult[];
}

/** The statuses of a backfill, in the order summaries list them. */
export const BACKFILL_STATUSES: readonly BackfillStatus[] = [
  'signed',
  'already-signed',
  'would-sign',
  'not-signed',
  'failed',
];

/** What a backfill runs on. */
export interface BackfillDeps {
  readonly pipeline: Pick<SigningPipeline, 'rulesFor' | 'signRules' | 'payloadFor'>;
  readonly registries: RegistryClientFactory;
  readonly keys: Pick<KeyRing, 'get'>;
  /** The configured signing rules (`--rule` must name an enabled one). */
  readonly rules: readonly SigningRule[];
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
  /** Attempts per image (and per repository listing) when a failure may pass; default 3. */
  readonly attempts?: number;
  readonly retry?: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
  readonly onResult?: (result: BackfillResult, progress: BackfillProgress) => void;
  readonly onProgress?: (progress: BackfillProgress) => void;
}

export const DEFAULT_BACKFILL_CONCURRENCY = 8;
/** Repositories listed at once. */
const LISTING_CONCURRENCY = 4;

/** One image with the rules that cover its repository. */
interface Work {
  readonly repository: string;
  readonly image: InventoryImage;
  readonly rules: readonly SigningRule[];
}

/**
 * Runs a backfill over `options.target`; resolves to the summary. It throws for bad input (an
 * unknown or disabled `--rule`) and when the registry's repository list cannot be read; a
 * repository whose images cannot be listed, and an image that cannot be signed, are `failed`
 * results. An abort (`signal`) resolves to an `interrupted` summary of what was finished.
 */
export async function backfill(deps: BackfillDeps, options: BackfillOptions): Promise<BackfillSummary> {
  const started = performance.now();
  const { registry } = options.target;
  if (options.rule !== undefined) checkRule(deps.rules, options.rule);
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_BACKFILL_CONCURRENCY));
  const counts = Object.fromEntries(BACKFILL_STATUSES.map((s) => [s, 0])) as Record<BackfillStatus, number>;
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
  const record = (result: BackfillResult): void => {
    results.push(result);
    counts[result.status]++;
    const now = progress();
    options.onResult?.(result, now);
    options.onProgress?.(now);
  };
  const aborted = (): boolean => options.signal?.aborted === true;
  const readOptions = options.signal !== undefined ? { signal: options.signal } : {};

  // Listing: repositories under the pattern that some rule covers, their images a few at a time.
  const inventory = deps.inventory(registry);
  const repositories: string[] = [];
  try {
    for await (const repository of inventory.repositories(readOptions)) {
      if (!options.target.repositories.test(repository)) continue;
      if (deps.pipeline.rulesFor(registry, repository, options.rule).length === 0) continue;
      repositories.push(repository);
    }
  } catch (err) {
    // Interrupted while listing: a summary of nothing done, not an error.
    if (!aborted()) throw err;
  }
  const queue: Work[] = [];
  await mapBounded(
    repositories,
    LISTING_CONCURRENCY,
    async (repository) => {
      const rules = deps.pipeline.rulesFor(registry, repository, options.rule);
      let images: InventoryImage[];
      try {
        images = await withRetries(options, async () => inventory.images(repository, readOptions));
      } catch (err) {
        if (aborted()) return;
        total++;
        record({
          image: `${registry}/${repository}`,
          repository,
          digest: '',
          tags: [],
          status: 'failed',
          rules: [],
          ...errorFields(err),
        });
        return;
      }
      for (const image of images) queue.push({ repository, image, rules });
      total += images.length;
      options.onProgress?.(progress());
    },
    options.signal,
  );
  listing = false;
  signingStarted = performance.now();
  options.onProgress?.(progress());

  await mapBounded(
    queue,
    concurrency,
    async (work) => record(await backfillWithRetries(deps, options, registry, work)),
    options.signal,
  );

  return {
    ...progress(),
    registry,
    pattern: options.target.pattern,
    dryRun: options.dryRun === true,
    interrupted: aborted(),
    repositories: repositories.length,
    durationMs: performance.now() - started,
    results,
  };
}

/** `--rule NAME` must name an enabled rule (the pipeline's `signImage` says the same). */
function checkRule(rules: readonly SigningRule[], name: string): void {
  const rule = rules.find((r) => r.name === name);
  if (rule === undefined) throw new ConfigError('RULE_UNKNOWN', `no signing rule named "${name}"`);
  if (!rule.enabled) throw new ConfigError('RULE_UNKNOWN', `signing rule "${name}" is disabled`);
}

/** The retry policy of a backfill's own attempts (each registry request is retried by its client too). */
function policyOf(options: BackfillOptions): RetryPolicy {
  return {
    attempts: Math.max(1, options.attempts ?? 3),
    baseDelayMs: options.retry?.baseDelayMs ?? 500,
    maxDelayMs: options.retry?.maxDelayMs ?? 10_000,
  };
}

/** Runs `op` again, with backoff, while it throws a transient failure; an abort stops the waits. */
async function withRetries<T>(options: BackfillOptions, op: () => Promise<T>): Promise<T> {
  const policy = policyOf(options);
  for (let n = 1; ; n++) {
    try {
      return await op();
    } catch (err) {
      if (!isTransientFailure(errorFields(err).errorCode) || n >= policy.attempts) throw err;
      if (!(await pause(backoffDelay(policy, n), options.signal))) throw err;
    }
  }
}

/**
 * One image, attempted again while it fails in a way that may pass (throttling, outages). An
 * attempt after a partial success finds what the earlier one wrote already signed: the rules it
 * signed stay in the result.
 */
async function backfillWithRetries(
  deps: BackfillDeps,
  options: BackfillOptions,
  registry: string,
  work: Work,
): Promise<BackfillResult> {
  const policy = policyOf(options);
  const signedBefore: BackfillRuleResult[] = [];
  for (let n = 1; ; n++) {
    const result = await backfillImage(deps, options, registry, work);
    const merged = mergeSigned(result, signedBefore);
    const transient = result.status === 'failed' && isTransientFailure(result.errorCode ?? 'INTERNAL');
    if (!transient || n >= policy.attempts) return merged;
    signedBefore.push(...result.rules.filter((r) => r.status === 'signed'));
    if (!(await pause(backoffDelay(policy, n), options.signal))) return merged;
  }
}

/** `result` with the rules earlier attempts signed; `signed` when they did and it found them so. */
function mergeSigned(result: BackfillResult, signedBefore: readonly BackfillRuleResult[]): BackfillResult {
  if (signedBefore.length === 0) return result;
  const again = (r: BackfillRuleResult): boolean =>
    result.rules.some((s) => s.rule === r.rule && s.tag === r.tag);
  const rules = [...signedBefore.filter((r) => !again(r)), ...result.rules];
  return { ...result, rules, status: result.status === 'already-signed' ? 'signed' : result.status };
}

/** Waits `ms`; false when `signal` fired (before or during the wait). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await sleep(ms, signal);
    return true;
  } catch {
    return false;
  }
}

async function backfillImage(
  deps: BackfillDeps,
  options: BackfillOptions,
  registry: string,
  work: Work,
): Promise<BackfillResult> {
  const { repository, image } = work;
  const base = {
    image: `${registry}/${repository}@${image.digest}`,
    repository,
    digest: image.digest,
    tags: image.tags,
  };
  try {
    const needs = await unsigned(deps, registry, work);
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
    const done: BackfillRuleResult[] = [];
    let failed: RuleOutcome | undefined;
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
      if (report.skipped !== undefined) {
        // Deleted since it was listed, say: nothing to sign, and nothing wrong.
        for (const rule of names) done.push({ rule, tag, status: 'skipped', reason: report.skipped });
        continue;
      }
      // Children of an index signed by recursive rules are part of the image's outcome.
      for (const outcome of report.outcomes) {
        if (outcome.status === 'failed') failed ??= outcome;
        done.push({
          rule: outcome.rule,
          tag,
          status: outcome.status,
          ...(outcome.unmet !== undefined
            ? { reason: `${outcome.unmet.condition}: ${outcome.unmet.reason}` }
            : {}),
        });
      }
    }
    const has = (status: BackfillRuleResult['status']): boolean => done.some((r) => r.status === status);
    const status: BackfillStatus =
      failed !== undefined
        ? 'failed'
        : has('signed')
          ? 'signed'
          : has('not-signed') || has('waiting') || has('skipped')
            ? 'not-signed'
            : 'already-signed';
    return {
      ...base,
      status,
      rules: done,
      ...(failed !== undefined
        ? { error: failed.error ?? 'failed', errorCode: failed.errorCode ?? 'INTERNAL' }
        : {}),
    };
  } catch (err) {
    return { ...base, status: 'failed', rules: [], ...errorFields(err) };
  }
}

/**
 * Per rule, the tags its witness has not signed yet (undefined: the digest, for `simple` rules).
 * A tag-less signature of the witness vouches for the digest under every tag.
 */
async function unsigned(
  deps: BackfillDeps,
  registry: string,
  { repository, image, rules }: Work,
): Promise<{ rule: SigningRule; tag: string | undefined }[]> {
  const target = { registry, repository, digest: image.digest };
  const tagsOf = (rule: SigningRule): (string | undefined)[] =>
    rule.signatureType === 'simple' || image.tags.length === 0 ? [undefined] : [...image.tags];
  const probes: WitnessProbe[] = await Promise.all(
    rules.map(async (rule) => ({
      witness: rule.witness,
      publicKey: await deps.keys.get(rule.witness).publicKey(),
      tags: tagsOf(rule),
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
    if (signed.includes(undefined)) return [];
    if (rule.signatureType === 'simple') return signed.length > 0 ? [] : [{ rule, tag: undefined }];
    return tagsOf(rule)
      .filter((tag) => !signed.includes(tag))
      .map((tag) => ({ rule, tag }));
  });
}
