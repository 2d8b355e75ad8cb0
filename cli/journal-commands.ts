/**
 * `signet failures` and `signet replay --local`: the local service's dead letters, listed and
 * driven again. Both work whether or not `signet serve` runs: listing reads the journal without
 * its lock; a replay requeues into a running service's journal (its worker signs them within
 * seconds) or, with no service running, signs them itself and reports how each went.
 */
import { existsSync } from 'node:fs';
import type { SignetConfig } from '../lib/config/types';
import { InputError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { Journal, JournalError, type DeadLetter } from '../lib/journal';
import { ensureLocalKeys } from '../lib/keys/provision';
import { DurableSigning } from '../lib/signing/durable';
import { createSignet } from '../lib/signet';

/** A dead letter as `signet failures --json` prints it. */
export interface FailureView {
  readonly id: string;
  readonly image: string;
  readonly code: string;
  readonly permanent: boolean;
  readonly attempts: number;
  readonly firstSeenAt: string;
  readonly failedAt: string;
  readonly message: string;
}

const imageOf = (letter: DeadLetter): string => {
  const { registry, repository, tag, digest } = letter.event;
  return `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}@${digest}`;
};

/** Dead letters of the config's journal, newest first; none when there is no journal yet. */
export function listFailures(config: SignetConfig, id?: string): FailureView[] {
  if (!existsSync(config.journal.path)) return [];
  const journal = Journal.openReadOnly(config.journal.path);
  try {
    return journal.deadLetters(id !== undefined ? { id } : {}).map((letter) => ({
      id: letter.id,
      image: imageOf(letter),
      code: letter.code,
      permanent: letter.permanent,
      attempts: letter.attempts,
      firstSeenAt: new Date(letter.firstSeenAt).toISOString(),
      failedAt: new Date(letter.failedAt).toISOString(),
      message: letter.message,
    }));
  } finally {
    journal.close();
  }
}

/** A table for a terminal: one line per dead letter. */
export function failuresTable(failures: readonly FailureView[]): string {
  if (failures.length === 0) return 'no dead letters\n';
  const rows = failures.map((f) => [f.id, f.failedAt, f.code, String(f.attempts), f.image]);
  const header = ['ID', 'FAILED AT', 'CODE', 'ATTEMPTS', 'IMAGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  const details = failures.map((f) => `  ${f.id}: ${f.message}`);
  return `${[line(header), ...rows.map(line)].join('\n')}\n\n${details.join('\n')}\n`;
}

/** What `signet replay --local` did. */
export interface LocalReplaySummary {
  /** `requeued`: handed to the running service; `replayed`: signed (or dead again) here. */
  readonly mode: 'requeued' | 'replayed';
  readonly requeued: readonly string[];
  /** With `replayed`: ids signed now, and ids dead-lettered again (with their new failure). */
  readonly signed: readonly string[];
  readonly failed: readonly FailureView[];
}

/**
 * Requeues dead letters (all, or `ids`). With the service running, its worker signs them; without
 * it, this process opens the journal as its owner and signs them until each is done or dead again.
 */
export async function replayLocal(
  config: SignetConfig,
  ids: readonly string[] | undefined,
  logger: Logger,
): Promise<LocalReplaySummary> {
  if (!existsSync(config.journal.path)) return { mode: 'replayed', requeued: [], signed: [], failed: [] };
  let owner: Journal;
  try {
    owner = Journal.open(config.journal.path);
  } catch (err) {
    if (!(err instanceof JournalError) || err.code !== 'JOURNAL_LOCKED') throw err;
    const shared = Journal.openShared(config.journal.path);
    try {
      checkIds(shared, ids);
      const requeued = shared.requeue(ids).map((r) => r.id);
      logger.info('dead letters requeued into the running service', { count: requeued.length });
      return { mode: 'requeued', requeued, signed: [], failed: [] };
    } finally {
      shared.close();
    }
  }
  try {
    checkIds(owner, ids);
    const letters = owner.requeue(ids);
    const requeued = letters.map((r) => r.id);
    if (requeued.length === 0) return { mode: 'replayed', requeued, signed: [], failed: [] };
    await ensureLocalKeys(config, logger);
    const signet = createSignet(config, { logger });
    const signing = new DurableSigning({
      pipeline: signet.pipeline,
      journal: owner,
      settings: config.journal,
      logger,
    });
    signing.start();
    // Until nothing requeued is pending any more: signed, or dead again (its retries exhausted).
    await waitUntil(() => {
      const depth = owner.depth();
      return depth.pending + depth.running === 0;
    });
    await signing.stop();
    // A letter is judged by the entry that carried it (its own, or the same image's waiting entry).
    const deadLetters = owner.deadLetters();
    const dead = new Set(deadLetters.map((l) => l.id));
    const carriers = new Set(letters.map((r) => r.entry));
    const failed = deadLetters
      .filter((l) => carriers.has(l.id))
      .map((letter) => ({
        id: letter.id,
        image: imageOf(letter),
        code: letter.code,
        permanent: letter.permanent,
        attempts: letter.attempts,
        firstSeenAt: new Date(letter.firstSeenAt).toISOString(),
        failedAt: new Date(letter.failedAt).toISOString(),
        message: letter.message,
      }));
    const signed = letters.filter((r) => !dead.has(r.entry)).map((r) => r.id);
    return { mode: 'replayed', requeued, signed, failed };
  } finally {
    owner.close();
  }
}

/** Every id asked for must be a dead letter, checked before anything moves. */
function checkIds(journal: Journal, asked: readonly string[] | undefined): void {
  const missing = (asked ?? []).filter((id) => journal.deadLetters({ id }).length === 0);
  if (missing.length > 0)
    throw new InputError('REQUEST_INVALID', '--id', `no dead letter with id ${missing.join(', ')}`);
}

async function waitUntil(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 100));
}
