/**
 * Drains the push journal: claims due entries up to a concurrency bound, runs one signing attempt
 * for each, and records the outcome (done, retry later with backoff, or dead-letter). Between
 * batches it sleeps until the next entry is due or `notify` says new pushes were accepted.
 */
import { describeError } from '../core/errors';
import { type Logger, silentLogger } from '../core/logger';
import { backoffDelay, type RetryPolicy } from '../core/retry';
import type { Journal } from './store';
import type { JournalEntry, JournalFailure } from './types';

/** What one attempt at an entry came to. */
export type AttemptResult =
  | { readonly $case: 'done' }
  /** Transient: try again later (until maxAttempts). */
  | { readonly $case: 'retry'; readonly code: string; readonly message: string }
  /** Permanent: no retry can help, dead-letter now. */
  | { readonly $case: 'failed'; readonly code: string; readonly message: string }
  /** Waiting for something the push needs (its scan result): due again at `until`, not an attempt. */
  | { readonly $case: 'wait'; readonly until: number; readonly code: string; readonly message: string };

/** How a JournalWorker attempts entries and how patiently it retries them. */
export interface JournalWorkerOptions {
  /** One attempt at one entry; a throw counts as a transient failure with code INTERNAL. */
  readonly process: (entry: JournalEntry) => Promise<AttemptResult>;
  /** Attempts in flight at once (default 8). */
  readonly concurrency?: number;
  /** Attempts in all; a 'retry' on the last one dead-letters the entry (default 8). */
  readonly maxAttempts?: number;
  /** Exponential backoff with full jitter between attempts (default 1 s doubling up to 5 min). */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly logger?: Logger;
  /** Epoch milliseconds; tests pass a fake (and the same one to the Journal). */
  readonly clock?: () => number;
  /** Uniform in [0, 1), for the jitter; tests pass a constant. */
  readonly random?: () => number;
  /**
   * Longest sleep between looks at the journal (default 5 s): another process (`signet replay
   * --local`) may requeue dead letters into it without being able to notify this one.
   */
  readonly pollMs?: number;
}

interface Settings {
  readonly pollMs: number;
  readonly process: (entry: JournalEntry) => Promise<AttemptResult>;
  readonly concurrency: number;
  readonly backoff: RetryPolicy;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly random: () => number;
}

const DEFAULT_GRACE_MS = 10_000;
/** Longest delay setTimeout honours; a later due time is simply re-checked then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The loop that signs from the journal; one per journal owner. */
export class JournalWorker {
  private readonly journal: Journal;
  private readonly settings: Settings;
  private readonly inFlight = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: NodeJS.Immediate | undefined;

  constructor(journal: Journal, options: JournalWorkerOptions) {
    this.journal = journal;
    const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 8));
    this.settings = {
      process: options.process,
      concurrency: Math.max(1, Math.floor(options.concurrency ?? 8)),
      backoff: {
        attempts: maxAttempts,
        baseDelayMs: options.backoff?.baseMs ?? 1_000,
        maxDelayMs: options.backoff?.maxMs ?? 300_000,
      },
      logger: options.logger ?? silentLogger,
      clock: options.clock ?? Date.now,
      random: options.random ?? Math.random,
      pollMs: Math.max(1, Math.floor(options.pollMs ?? 5_000)),
    };
  }

  /** Starts claiming; pending work from before a restart is picked up at once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.pump();
  }

  /** Says new pushes were accepted; bursts of calls coalesce into one look at the journal. */
  notify(): void {
    if (!this.started || this.wake !== undefined) return;
    this.wake = setImmediate(() => {
      this.wake = undefined;
      this.pump();
    });
    this.wake.unref();
  }

  /**
   * Stops claiming and waits up to `graceMs` for attempts in flight. Attempts still running then
   * stay `running` in the journal and are recovered at the next open.
   */
  async stop(graceMs: number = DEFAULT_GRACE_MS): Promise<void> {
    this.started = false;
    this.cancelWakeups();
    if (this.inFlight.size === 0) return;
    let grace: NodeJS.Timeout | undefined;
    // Deliberately not unref'd: a shutdown that awaits stop() should get its grace period.
    const expired = new Promise<void>((resolve) => (grace = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all(this.inFlight), expired]);
    clearTimeout(grace);
    if (this.inFlight.size > 0) {
      this.settings.logger.warn('journal worker stopped with attempts in flight; they resume at restart', {
        running: this.inFlight.size,
      });
    }
  }

  /** Resolves once nothing is running and nothing pending is due (for tests and drains). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Claims what the free slots allow, then sleeps until the next due time. Never throws. */
  private pump(): void {
    if (this.started) {
      this.cancelWakeups();
      try {
        const now = this.settings.clock();
        const free = this.settings.concurrency - this.inFlight.size;
        for (const entry of this.journal.claim(free, now)) this.launch(entry);
        // With every slot busy, the next completion pumps again; no timer is needed.
        if (this.inFlight.size < this.settings.concurrency) {
          const due = this.journal.nextDueAt();
          this.wakeAfter(Math.min(this.settings.pollMs, due === undefined ? Infinity : due - now));
        }
      } catch (error) {
        this.settings.logger.error('journal worker cannot read the journal; trying again', {
          error: describeError(error),
        });
        this.wakeAfter(this.settings.backoff.baseDelayMs);
      }
    }
    this.settleIdle();
  }

  private launch(entry: JournalEntry): void {
    const run: Promise<void> = this.attempt(entry)
      .finally(() => {
        this.inFlight.delete(run);
        this.pump();
      })
      // attempt() and pump() catch everything; this only guards against a throwing logger.
      .catch(() => undefined);
    this.inFlight.add(run);
  }

  private async attempt(entry: JournalEntry): Promise<void> {
    const attempt = entry.attempts + 1;
    // Only crashes mid-attempt (counted by recover) get an entry here with no attempt left.
    const result: AttemptResult =
      entry.attempts >= this.settings.backoff.attempts
        ? {
            $case: 'retry',
            code: entry.lastError?.code ?? 'ATTEMPTS_EXHAUSTED',
            message: `not attempted again after ${entry.attempts} attempts: ${entry.lastError?.message ?? ''}`,
          }
        : await this.run(entry);
    try {
      this.record(entry, attempt, result);
    } catch (error) {
      // The entry stays `running` until the next open recovers it; the push is not lost.
      this.settings.logger.error('journal worker cannot record an attempt', {
        entryId: entry.id,
        image: imageOf(entry),
        outcome: result.$case,
        error: describeError(error),
      });
    }
  }

  private async run(entry: JournalEntry): Promise<AttemptResult> {
    try {
      return await this.settings.process(entry);
    } catch (error) {
      this.settings.logger.warn('signing attempt threw', { entryId: entry.id, error: describeError(error) });
      return { $case: 'retry', code: 'INTERNAL', message: describeError(error) };
    }
  }

  private record(entry: JournalEntry, attempt: number, result: AttemptResult): void {
    switch (result.$case) {
      case 'done':
        this.journal.complete(entry.id);
        return;
      case 'retry': {
        const failure = { code: result.code, message: result.message };
        if (attempt >= this.settings.backoff.attempts) {
          this.deadLetter(entry, attempt, { ...failure, permanent: false });
          return;
        }
        const delayMs = backoffDelay(this.settings.backoff, attempt, this.settings.random);
        this.journal.retry(entry.id, failure, this.settings.clock() + delayMs);
        this.settings.logger.warn('signing attempt failed; will retry', {
          entryId: entry.id,
          image: imageOf(entry),
          attempt,
          delayMs,
          ...failure,
        });
        return;
      }
      case 'failed':
        this.deadLetter(entry, attempt, { code: result.code, message: result.message, permanent: true });
        return;
      case 'wait':
        this.journal.wait(entry.id, result.until, { code: result.code, message: result.message });
        this.settings.logger.info('push waits', {
          entryId: entry.id,
          image: imageOf(entry),
          until: new Date(result.until).toISOString(),
          code: result.code,
        });
        return;
    }
  }

  private deadLetter(
    entry: JournalEntry,
    attempts: number,
    failure: JournalFailure & { readonly permanent: boolean },
  ): void {
    this.journal.deadLetter(entry.id, failure);
    this.settings.logger.error('push dead-lettered', {
      entryId: entry.id,
      image: imageOf(entry),
      attempts,
      ...failure,
    });
  }

  private wakeAfter(ms: number): void {
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, ms)),
    );
    this.timer.unref();
  }

  private cancelWakeups(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.wake !== undefined) clearImmediate(this.wake);
    this.wake = undefined;
  }

  private isIdle(): boolean {
    if (this.inFlight.size > 0) return false;
    const due = this.journal.nextDueAt();
    return due === undefined || due > this.settings.clock();
  }

  private settleIdle(): void {
    if (this.idleWaiters.length === 0) return;
    try {
      if (!this.isIdle()) return;
    } catch {
      return; // A journal that cannot be read is not known to be idle.
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** The image an entry is about, as logs show it. */
function imageOf(entry: JournalEntry): string {
  const { registry, repository, tag, digest } = entry.event;
  return `${registry}/${repository}${tag === undefined ? '' : `:${tag}`}@${digest}`;
}
