/**
 * Durable signing for the local service: every signable push is written to the journal before it
 * is acknowledged, and signed from there with bounded retries. A transient failure (registry or
 * KMS unreachable, throttled, a lost write race) is retried with backoff; a permanent one
 * (unusable key, algorithm misfit, content the registry serves wrong) and exhausted retries are
 * dead-lettered (`signet failures`, `signet replay --local`). The sender sees a 5xx only when the
 * journal itself cannot write, so no event can hold up the registry's notification queue.
 */
import type { JournalSettings } from '../config/types';
import type { Logger } from '../core/logger';
import type { PushEvent, ScanEvent } from '../events/types';
import { Journal, JournalWorker, type AttemptResult, type JournalEntry } from '../journal';
import { pushOfScan } from './conditions';
import type { IntakeOutcome, PushIntake } from './intake';
import type { SigningPipeline } from './pipeline';
import { MANIFEST_GONE, type RuleOutcome, type SigningReport } from './report';

/**
 * Attempts at a push whose manifest the registry does not know. A registry may announce a push a
 * moment before it serves it, so one miss is retried; repeated misses mean the image is gone.
 */
const MANIFEST_UNKNOWN_ATTEMPTS = 3;

/**
 * Failure codes another attempt may cure: throttling, outages, connection failures, a concurrent
 * writer's half-linked blob or a lost write race, an interrupted attempt. Anything else (bad
 * keys, misfit algorithms, refused credentials, malformed content) is permanent: retrying it would
 * only delay the dead letter that tells someone to act.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'RATE_LIMITED',
  'UNAVAILABLE',
  'UNREACHABLE',
  'BLOB_UNKNOWN',
  'ABORTED',
  'KMS_THROTTLED',
  'KMS_UNAVAILABLE',
  'KMS_SIGN_FAILED',
  'CONFLICT_RETRIES_EXHAUSTED',
  // A witness's transparency log or timestamp authority is down: nothing was published without it.
  'TLOG_UNAVAILABLE',
  'TSA_UNAVAILABLE',
  'INTERNAL',
]);

/** True when a failure with this code may succeed on another attempt. */
export const isTransientFailure = (code: string): boolean => TRANSIENT_CODES.has(code);

/** What one signing attempt means for its journal entry. */
export function classifyReport(report: SigningReport, attemptsBefore: number): AttemptResult {
  if (report.skipped === MANIFEST_GONE) {
    const message = `${report.image}: the registry does not hold this manifest`;
    return attemptsBefore + 1 >= MANIFEST_UNKNOWN_ATTEMPTS
      ? { $case: 'failed', code: 'MANIFEST_UNKNOWN', message }
      : { $case: 'retry', code: 'MANIFEST_UNKNOWN', message };
  }
  const failed = report.outcomes.filter((o) => o.status === 'failed');
  if (failed.length === 0) {
    const waiting = report.outcomes.filter((o) => o.status === 'waiting');
    if (waiting.length === 0) return { $case: 'done' };
    // Rules waiting for the scan: decided again when it arrives, or when the first wait ends.
    const until = Math.min(...waiting.map((o) => o.waitUntil ?? 0));
    const rules = waiting.map((o) => `"${o.rule}"`).join(', ');
    return {
      $case: 'wait',
      until,
      code: 'SCAN_PENDING',
      message: `${report.image}: rules ${rules} wait for the scan result`,
    };
  }
  const message = failed.map(describeFailure).join('; ');
  const codes = failed.map((o) => o.errorCode ?? 'INTERNAL');
  const transient = codes.find(isTransientFailure);
  // One transient failure is worth another attempt: rules that signed cost a manifest read then.
  if (transient !== undefined) return { $case: 'retry', code: transient, message };
  return { $case: 'failed', code: codes[0] ?? 'INTERNAL', message };
}

const describeFailure = (o: RuleOutcome): string =>
  `rule "${o.rule}" (witness "${o.witness}"): ${o.errorCode ?? 'INTERNAL'}: ${o.error ?? 'failed'}`;

/** What durable signing runs on. */
export interface DurableSigningDeps {
  readonly pipeline: SigningPipeline;
  readonly journal: Journal;
  readonly settings: JournalSettings;
  readonly logger: Logger;
  /** Told about each finished attempt (metrics, tests). */
  readonly onReport?: (report: SigningReport, entry: JournalEntry) => void;
}

/** The journal-backed intake and the worker that signs from the journal. */
export class DurableSigning implements PushIntake {
  readonly worker: JournalWorker;

  constructor(private readonly deps: DurableSigningDeps) {
    this.worker = new JournalWorker(deps.journal, {
      process: (entry) => this.attempt(entry),
      concurrency: deps.settings.concurrency,
      maxAttempts: deps.settings.maxAttempts,
      backoff: { baseMs: deps.settings.retryBaseMs, maxMs: deps.settings.retryMaxMs },
      logger: deps.logger,
    });
  }

  /**
   * Keeps scan results (waking the pushes waiting for them) and journals, for a scan that woke
   * none, the push it re-drives (an image pushed before Signet ran, a rescan): the rules that
   * wait for scans then decide it. Throws JournalError when the journal cannot write.
   */
  async acceptScans(scans: readonly ScanEvent[]): Promise<readonly IntakeOutcome[]> {
    const woken = this.deps.journal.recordScans(scans);
    const outcomes: IntakeOutcome[] = [];
    const redriven: PushEvent[] = [];
    scans.forEach((scan, i) => {
      const event = pushOfScan(scan);
      const ids = woken[i] ?? [];
      if (ids.length > 0) {
        for (const id of ids) outcomes.push({ $case: 'accepted', id, duplicate: true, event });
      } else {
        redriven.push(event);
      }
    });
    outcomes.push(...(await this.accept(redriven)));
    this.worker.notify();
    return outcomes;
  }

  /**
   * Plans each push without the network and journals the signable ones in one transaction.
   * Throws JournalError when the journal cannot write: the sender must deliver again.
   */
  async accept(events: readonly PushEvent[]): Promise<readonly IntakeOutcome[]> {
    const outcomes: (IntakeOutcome | undefined)[] = [];
    const signable: { index: number; event: PushEvent }[] = [];
    events.forEach((event, index) => {
      const plan = this.deps.pipeline.plan(event);
      if (plan.$case === 'skip') outcomes[index] = { $case: 'ignored', reason: plan.reason, event };
      else signable.push({ index, event });
    });
    if (signable.length > 0) {
      const accepted = this.deps.journal.accept(signable.map((s) => s.event));
      signable.forEach(({ index, event }, i) => {
        const entry = accepted[i];
        if (entry !== undefined)
          outcomes[index] = { $case: 'accepted', id: entry.id, duplicate: entry.duplicate, event };
      });
      this.worker.notify();
    }
    return outcomes.filter((o): o is IntakeOutcome => o !== undefined);
  }

  start(): void {
    this.worker.start();
  }

  /** Stops claiming work and waits up to `graceMs` for attempts in flight. */
  stop(graceMs?: number): Promise<void> {
    return this.worker.stop(graceMs);
  }

  private async attempt(entry: JournalEntry): Promise<AttemptResult> {
    const { registry, repository, digest } = entry.event;
    const scan = this.deps.journal.scanResult(registry, repository, digest);
    const report = await this.deps.pipeline.handlePush(entry.event, {
      ...(scan !== undefined ? { scan } : {}),
      firstSeenAt: entry.firstSeenAt,
    });
    this.deps.onReport?.(report, entry);
    return classifyReport(report, entry.attempts);
  }
}
