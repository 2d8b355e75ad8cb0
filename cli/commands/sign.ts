/**
 * `signet sign IMAGE [--rule NAME]`: signs an image already in the registry.
 * `signet sign --all PATTERN`: signs every image under PATTERN that a rule covers and its witness
 * has not signed yet (lib/signing/backfill.ts), with a progress line on a terminal.
 */
import { loadConfigFile } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { InputError } from '../../lib/core/errors';
import { canonicalHost, parseReference } from '../../lib/core/reference';
import { ensureLocalKeys } from '../../lib/keys/provision';
import { inventoryOf, type RegistryInventory } from '../../lib/registry/catalog';
import { EcrInventory, ecrInventoryOf } from '../../lib/registry/ecr-catalog';
import {
  BACKFILL_STATUSES,
  backfill,
  parseBackfillPattern,
  type BackfillResult,
  type BackfillSummary,
} from '../../lib/signing/backfill';
import { reportFailed, type ScanLookup, type SigningReport } from '../../lib/signing/pipeline';
import { createSignet, type Signet } from '../../lib/signet';
import { isTerminal, printJson, table, type Out } from '../output';
import { formatDuration, ProgressLine } from '../progress';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

/** Flags that only mean something with `--all`. */
const ALL_ONLY = ['dry-run', 'concurrency'] as const;
/** The most images `--concurrency` may work on at once. */
const MAX_CONCURRENCY = 64;

export async function sign(ctx: CommandContext): Promise<number> {
  const pattern = ctx.flags.string('all');
  const image = ctx.args[0];
  if (pattern !== undefined) {
    if (image !== undefined) {
      throw new InputError('REQUEST_INVALID', '--all', `signs every image under PATTERN; drop "${image}"`);
    }
    return signAll(ctx, pattern);
  }
  if (image === undefined) {
    throw new InputError(
      'REQUEST_INVALID',
      'IMAGE',
      'is required: signet sign IMAGE, or signet sign --all PATTERN',
    );
  }
  for (const name of ALL_ONLY) {
    if (ctx.flags.has(name)) {
      throw new InputError('REQUEST_INVALID', `--${name}`, 'goes with --all PATTERN (a backfill)');
    }
  }
  const ref = parseReference(image, 'IMAGE');
  const config = await loadConfigFile(ctx.configPath);
  await ensureLocalKeys(config, ctx.logger);
  const inventories = new Inventories(config);
  const signet = createSignet(config, { logger: ctx.logger, scans: inventories.scans });
  let report: SigningReport;
  try {
    report = await signet.pipeline.signImage(ref, ctx.flags.string('rule'));
  } finally {
    signet.keys.close();
    inventories.close();
  }
  if (ctx.json) printJson(ctx.out, report);
  else ctx.out.write(signReport(report));
  return signExitCode(report);
}

/** 1 when a rule failed, 3 when nothing was attempted, else 0. */
export function signExitCode(report: SigningReport): number {
  if (reportFailed(report)) return EXIT.failed;
  if (report.skipped !== undefined) return EXIT.nothingToDo;
  return EXIT.ok;
}

/** The report for a terminal: the image, then one row per rule and digest. */
export function signReport(report: SigningReport): string {
  if (report.skipped !== undefined) return `nothing to do for ${report.image}: ${report.skipped}\n`;
  const failed = reportFailed(report);
  const rows = report.outcomes.map((o) => [
    o.rule,
    o.witness,
    o.status,
    o.digest === report.digest ? '' : o.digest,
    o.status === 'failed' ? `${o.errorCode ?? 'INTERNAL'}: ${o.error ?? ''}` : o.signatureRef,
  ]);
  const children = rows.some((r) => r[3] !== '');
  const header = ['RULE', 'WITNESS', 'STATUS', ...(children ? ['CHILD'] : []), 'SIGNATURE / ERROR'];
  const body = rows.map((r) => (children ? r : [r[0], r[1], r[2], r[4]]) as string[]);
  return `${failed ? 'FAILED' : 'SIGNED'}  ${report.image}\n${table(header, body)}`;
}

/** `--all PATTERN`: the backfill, its progress on a terminal, its results as a table or JSON lines. */
async function signAll(ctx: CommandContext, pattern: string): Promise<number> {
  const concurrency = concurrencyFlag(ctx.flags.string('concurrency'));
  const config = await loadConfigFile(ctx.configPath);
  const target = parseBackfillPattern(
    pattern,
    config.registries.map((r) => r.host),
  );
  await ensureLocalKeys(config, ctx.logger);
  const progress = !ctx.json && isTerminal(ctx.err) ? new ProgressLine(ctx.err) : undefined;
  // Per-image log lines would bury the progress line; the summary says the same at the end.
  const logger = progress?.around(ctx.logger, !ctx.flags.has('log-level')) ?? ctx.logger;
  const inventories = new Inventories(config);
  const signet: Signet = createSignet(config, { logger, scans: inventories.scans });

  // Ctrl-C (or SIGTERM) stops starting images; those in flight finish their atomic appends. A
  // second Ctrl-C finds Node's default handler again and ends the process at once.
  const abort = new AbortController();
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    abort.abort();
    progress?.clear();
    if (!ctx.json) ctx.err.write('interrupted: finishing the images in flight (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let summary: BackfillSummary;
  try {
    summary = await backfill(
      {
        pipeline: signet.pipeline,
        registries: signet.registries,
        keys: signet.keys,
        rules: config.signingRules,
        inventory: (host) => inventories.of(host, signet),
      },
      {
        target,
        concurrency,
        dryRun: ctx.flags.boolean('dry-run'),
        ...(ctx.flags.string('rule') !== undefined ? { rule: ctx.flags.string('rule') } : {}),
        signal: abort.signal,
        // The start of signing and its end are drawn whatever the redraw rate.
        onProgress: (now) =>
          progress?.update(now, !now.listing && (now.done === 0 || now.done === now.total)),
        onResult: (result) => {
          if (ctx.json) ctx.out.write(`${JSON.stringify({ type: 'image', ...result })}\n`);
        },
      },
    );
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    progress?.clear();
    signet.keys.close();
    inventories.close();
  }
  if (ctx.json) {
    const { results: _results, ...rest } = summary;
    ctx.out.write(`${JSON.stringify({ type: 'summary', ...rest })}\n`);
  } else {
    writeBackfillSummary(ctx.out, summary);
  }
  return backfillExitCode(summary);
}

/** 1 when an image failed or the run was interrupted, 3 when no image was covered, else 0. */
export function backfillExitCode(summary: BackfillSummary): number {
  if (summary.counts.failed > 0 || summary.interrupted) return EXIT.failed;
  if (summary.total === 0) return EXIT.nothingToDo;
  return EXIT.ok;
}

/** The end of a backfill on a terminal: a headline, the counts, then the failed (and would-sign) images. */
export function writeBackfillSummary(out: Out, summary: BackfillSummary): void {
  const where = `${summary.pattern}${summary.dryRun ? ' (dry run)' : ''}`;
  if (summary.total === 0 && !summary.interrupted) {
    out.write(`nothing to do: no image under ${where} is covered by an enabled signing rule\n`);
    return;
  }
  const left = summary.total - summary.done;
  const headline = summary.interrupted
    ? `interrupted after ${summary.done} of ${summary.total} images under ${where}; ${left} not started (run it again to resume)`
    : `${summary.done} images in ${summary.repositories} repositories under ${where}`;
  out.write(`${headline}, in ${formatDuration(summary.durationMs / 1000)}\n`);
  out.write(
    table(
      ['STATUS', 'IMAGES'],
      BACKFILL_STATUSES.map((status) => [status, String(summary.counts[status])]),
    ),
  );
  const failed = summary.results.filter((r) => r.status === 'failed');
  if (failed.length > 0) {
    out.write(
      `\n${table(
        ['FAILED', 'CODE', 'ERROR'],
        failed.map((r) => [r.image, r.errorCode ?? 'INTERNAL', r.error ?? '']),
      )}`,
    );
  }
  const wouldSign = summary.results.filter((r) => r.status === 'would-sign');
  if (wouldSign.length > 0) {
    out.write(
      `\n${table(
        ['WOULD SIGN', 'RULES'],
        wouldSign.map((r) => [r.image, ruleList(r)]),
      )}`,
    );
  }
}

/** `release (v1, v2), audit`: the rules of a result, with the tags each signs under. */
function ruleList(result: BackfillResult): string {
  const byRule = new Map<string, string[]>();
  for (const { rule, tag } of result.rules) {
    byRule.set(rule, [...(byRule.get(rule) ?? []), ...(tag !== undefined ? [tag] : [])]);
  }
  return [...byRule]
    .map(([rule, tags]) => (tags.length > 0 ? `${rule} (${tags.join(', ')})` : rule))
    .join(', ');
}

function concurrencyFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_CONCURRENCY) {
    throw new InputError(
      'REQUEST_INVALID',
      '--concurrency',
      `must be an integer from 1 to ${MAX_CONCURRENCY}, got "${value}"`,
    );
  }
  return n;
}

/**
 * One inventory per configured registry, made when first asked for; ECR's also answers scan
 * results, so that rules with scan conditions can decide images already in the registry.
 */
class Inventories {
  private readonly made = new Map<string, RegistryInventory>();

  constructor(private readonly config: SignetConfig) {}

  /** Where a manual sign finds scan results: the ECR API of an ECR registry. */
  readonly scans: ScanLookup = {
    scanResult: async (registry, repository, digest) => {
      const inventory = this.made.get(canonicalHost(registry)) ?? this.ecr(registry);
      return inventory instanceof EcrInventory ? inventory.scanResult(repository, digest) : undefined;
    },
  };

  of(host: string, signet: Pick<Signet, 'registries'>): RegistryInventory {
    const key = canonicalHost(host);
    let inventory = this.made.get(key);
    if (inventory === undefined) {
      // parseBackfillPattern admits configured hosts only.
      const registry = this.registry(host) ?? { host, kind: 'distribution', auth: { $case: 'anonymous' } };
      inventory = inventoryOf(registry, signet.registries.client(host));
      this.made.set(key, inventory);
    }
    return inventory;
  }

  close(): void {
    for (const inventory of this.made.values()) if (inventory instanceof EcrInventory) inventory.destroy();
  }

  private ecr(host: string): EcrInventory | undefined {
    const registry = this.registry(host);
    if (registry?.kind !== 'ecr') return undefined;
    const inventory = ecrInventoryOf(registry);
    this.made.set(canonicalHost(host), inventory);
    return inventory;
  }

  private registry(host: string): SignetConfig['registries'][number] | undefined {
    return this.config.registries.find((r) => canonicalHost(r.host) === canonicalHost(host));
  }
}
