/**
 * Records into the ledger without ever holding up the work it records. The hooks (`admission`,
 * `verification`, `signing`) only append what they are given to a queue, in O(1): no record is
 * built, nothing is serialised, no I/O. The queue is turned into records and written in batches,
 * after `flushIntervalMs` or once `maxBatch` entries wait, in chunks that yield to the event loop
 * between them, so a burst of admissions waits at most one chunk's write.
 *
 * When the store fails, the records stay queued and are tried again at the next flush; beyond
 * `maxPending` the oldest are dropped, logged and counted (the answers were given long ago).
 * In Lambda, where an environment may be frozen the moment the handler returns, the handler
 * awaits `flush()` itself after its answer is built.
 */
import type { AdmissionOutcome } from '../admission/controller';
import type { SigningRule } from '../config/types';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { SigningReport } from '../signing/pipeline';
import type { ImageDecision } from '../verification/decision';
import { admissionRecord, admittedImages, signatureRecords, verifyRecord } from './records';
import {
  placementKey,
  type AdmittedImage,
  type DecisionRecord,
  type Ledger,
  type LedgerBatch,
  type SignatureRecord,
} from './types';

/** What a recorder writes with. */
export interface LedgerRecorderOptions {
  readonly ledger: Ledger;
  readonly logger: Logger;
  /** `serve`, `lambda`, `cli`: written into signature records. */
  readonly recordedBy: string;
  /** The configured rules, whose conditions are recorded with their signatures. */
  readonly rules?: readonly SigningRule[];
  /** Write this long after the first record waits; default 1 s. 0: only on `flush()`. */
  readonly flushIntervalMs?: number;
  /** Write as soon as this many entries wait; default 500. Also the size of one write. */
  readonly maxBatch?: number;
  /** Entries kept while the store fails; the oldest beyond it are dropped. Default 100,000. */
  readonly maxPending?: number;
  /** An admitted placement written less than this long ago is not written again; default 10 min. */
  readonly admittedRefreshMs?: number;
  /** `prune` runs at most this often, after a write; default 1 h. 0: never. */
  readonly pruneEveryMs?: number;
  readonly clock?: () => number;
  /** Told about records dropped and writes that failed (metrics). */
  readonly onFailure?: (failure: { readonly dropped: number; readonly error: unknown }) => void;
}

/** An entry as the hooks queue it: what they were given, and when. */
type Entry =
  | { readonly $case: 'admission'; readonly at: number; readonly outcome: AdmissionOutcome }
  | { readonly $case: 'verify'; readonly at: number; readonly decision: ImageDecision }
  | {
      readonly $case: 'signing';
      readonly at: number;
      readonly report: SigningReport;
      readonly eventId: string | undefined;
    }
  /**
   * One entry's records, built already (requeued after a failed write, so that a retry writes the
   * same decision ids and a dropped entry is one entry, whatever it held).
   */
  | { readonly $case: 'built'; readonly batch: LedgerBatch };

/**
 * First in, first out, with O(1) push and drop-oldest: `Array.shift`/`splice(0, n)` would move
 * every entry behind, on the caller's path once the store has been failing for a while.
 */
class EntryQueue {
  private items: (Entry | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(entry: Entry): void {
    this.items.push(entry);
  }

  /** Removes and returns the oldest `count` entries. */
  take(count: number): Entry[] {
    const end = Math.min(this.items.length, this.head + count);
    const taken = this.items.slice(this.head, end) as Entry[];
    this.discard(end - this.head);
    return taken;
  }

  /** Drops the oldest `count` entries. */
  discard(count: number): void {
    const end = Math.min(this.items.length, this.head + count);
    this.items.fill(undefined, this.head, end);
    this.head = end;
    // Compact once the dead front outweighs the live entries: amortised O(1) per entry.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Puts `entries` back in front, in their order (a failed write's, on the flush's path). */
  requeue(entries: readonly Entry[]): void {
    this.items = [...entries, ...this.items.slice(this.head)];
    this.head = 0;
  }
}

const EMPTY: LedgerBatch = { signatures: [], decisions: [], admitted: [] };

/** One batch of many entries' records. */
function merge(built: readonly { readonly batch: LedgerBatch }[]): LedgerBatch {
  const signatures: SignatureRecord[] = [];
  const decisions: DecisionRecord[] = [];
  const admitted: AdmittedImage[] = [];
  for (const { batch } of built) {
    signatures.push(...batch.signatures);
    decisions.push(...batch.decisions);
    admitted.push(...batch.admitted);
  }
  return { signatures, decisions, admitted };
}

/** The queue in front of a ledger; see the file comment. */
export class LedgerRecorder {
  private readonly queue = new EntryQueue();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private dropped = 0;
  private dropLogged = false;
  private lastPrune: number;
  private readonly written = new Map<string, { at: number; verdict: string }>();
  private readonly clock: () => number;
  private readonly interval: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly refreshMs: number;
  private readonly pruneEveryMs: number;

  constructor(private readonly options: LedgerRecorderOptions) {
    this.clock = options.clock ?? Date.now;
    this.interval = options.flushIntervalMs ?? 1000;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.maxPending = Math.max(this.maxBatch, options.maxPending ?? 100_000);
    this.refreshMs = options.admittedRefreshMs ?? 600_000;
    this.pruneEveryMs = options.pruneEveryMs ?? 3_600_000;
    this.lastPrune = this.clock();
  }

  /** An answered admission review (the controller's `observe` hook). */
  admission(outcome: AdmissionOutcome): void {
    this.enqueue({ $case: 'admission', at: this.clock(), outcome });
  }

  /** A `POST /verify` decision (the surface's `onDecision` hook). */
  verification(decision: ImageDecision): void {
    this.enqueue({ $case: 'verify', at: this.clock(), decision });
  }

  /** A finished signing attempt (`DurableSigning`'s `onReport`, the sign function). */
  signing(report: SigningReport, eventId?: string): void {
    this.enqueue({ $case: 'signing', at: this.clock(), report, eventId });
  }

  /** Entries waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** Writes everything queued so far; rejects (keeping the records queued) when the store fails. */
  flush(): Promise<void> {
    this.clearTimer();
    const previous = this.flushing ?? Promise.resolve();
    const run = previous.then(() => this.drain());
    const current = run.finally(() => {
      if (this.flushing === current) this.flushing = undefined;
    });
    this.flushing = current;
    return current;
  }

  /** Stops the timer and writes what is queued (errors logged, not thrown). */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    await this.flush().catch(() => undefined);
  }

  private enqueue(entry: Entry): void {
    this.queue.push(entry);
    if (this.queue.length > this.maxPending) this.drop(this.queue.length - this.maxPending);
    if (this.closed) return;
    if (this.queue.length >= this.maxBatch) {
      if (this.flushing === undefined) this.schedule(0);
    } else if (this.timer === undefined && this.interval > 0) {
      this.schedule(this.interval);
    }
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => undefined);
    }, ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const built = this.build(this.queue.take(this.maxBatch));
      const batch = merge(built);
      try {
        await this.options.ledger.write(batch);
        this.remember(batch.admitted);
        if (this.dropLogged) {
          this.dropLogged = false;
          this.options.logger.warn('ledger writes work again', { droppedSinceFailing: this.dropped });
          this.dropped = 0;
        }
      } catch (error) {
        // Kept, built, at the front: the next flush tries them first. A queue that overflowed
        // while the write was failing loses its oldest here.
        this.queue.requeue(built);
        if (this.queue.length > this.maxPending) this.drop(this.queue.length - this.maxPending);
        this.options.logger.error('ledger write failed; records kept for the next attempt', {
          pending: this.queue.length,
          cause: describeError(error),
        });
        this.options.onFailure?.({ dropped: 0, error });
        if (!this.closed && this.interval > 0) this.schedule(this.interval);
        throw error;
      }
      // Let answers waiting behind this chunk go first.
      if (this.queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await this.maybePrune();
  }

  /** Each entry as its records; one that cannot be turned into records is logged and left out. */
  private build(entries: readonly Entry[]): Extract<Entry, { $case: 'built' }>[] {
    const built: Extract<Entry, { $case: 'built' }>[] = [];
    for (const entry of entries) {
      try {
        built.push({ $case: 'built', batch: this.records(entry) });
      } catch (error) {
        this.options.logger.error('ledger record not built', {
          entry: entry.$case,
          cause: describeError(error),
        });
      }
    }
    return built;
  }

  private records(entry: Entry): LedgerBatch {
    switch (entry.$case) {
      case 'built':
        return entry.batch;
      case 'signing':
        return {
          signatures: signatureRecords(entry.report, {
            eventId: entry.eventId,
            recordedBy: this.options.recordedBy,
            rules: this.options.rules ?? [],
            now: entry.at,
          }),
          decisions: [],
          admitted: [],
        };
      case 'verify':
        return { signatures: [], decisions: [verifyRecord(entry.decision, entry.at)], admitted: [] };
      case 'admission': {
        const record = admissionRecord(entry.outcome, entry.at);
        if (record === undefined) return EMPTY;
        return {
          signatures: [],
          decisions: [record],
          admitted: admittedImages(record).filter((a) => this.due(a)),
        };
      }
    }
  }

  /** An admitted placement is written again only when its verdict changed or its refresh is due. */
  private due(image: AdmittedImage): boolean {
    const seen = this.written.get(placementKey(image));
    return (
      seen === undefined || seen.verdict !== image.verdict || image.lastAdmittedAt - seen.at >= this.refreshMs
    );
  }

  private remember(admitted: readonly AdmittedImage[]): void {
    for (const image of admitted) {
      this.written.set(placementKey(image), { at: image.lastAdmittedAt, verdict: image.verdict });
    }
    // Bounded: forgetting only costs a write that was not needed.
    if (this.written.size > 100_000) this.written.clear();
  }

  private drop(count: number): void {
    this.queue.discard(count);
    this.dropped += count;
    // Logged once per failing spell, not once per admission (each would drop one more).
    if (!this.dropLogged) {
      this.dropLogged = true;
      this.options.logger.error('ledger records dropped: the store has been failing', {
        dropped: count,
        maxPending: this.maxPending,
      });
    }
    this.options.onFailure?.({ dropped: count, error: undefined });
  }

  private async maybePrune(): Promise<void> {
    if (this.pruneEveryMs <= 0) return;
    const now = this.clock();
    if (now - this.lastPrune < this.pruneEveryMs) return;
    this.lastPrune = now;
    try {
      await this.options.ledger.prune(now);
    } catch (error) {
      this.options.logger.warn('ledger prune failed', { cause: describeError(error) });
    }
  }
}
