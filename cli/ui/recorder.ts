/**
 * The status page's memory of a running service: the latest signatures, failed attempts, admission
 * denials and findings in bounded rings, and per-minute counts over the last hour, fed by the
 * hooks `cli/serve.ts` already has (the signing reports, the admission controller's outcomes, the
 * events surface's intake); dead letters are read from the journal. Nothing here outlives the
 * process: the ledger is what remembers.
 */
import type { AdmissionOutcome } from '../../lib/admission/controller';
import { extractImages } from '../../lib/admission/review';
import type { DeadLetter, JournalEntry } from '../../lib/journal';
import { classifyReport } from '../../lib/signing/durable';
import type { IntakeOutcome } from '../../lib/signing/intake';
import type { SigningReport } from '../../lib/signing/report';
import {
  SERIES,
  type CounterSeries,
  type DeadLetterRecord,
  type DenialRecord,
  type FailureRecord,
  type FindingRecord,
  type SeriesName,
  type SignatureRecord,
  type StatusSource,
} from './source';

/** The newest `capacity` items, newest first on read. */
export class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
  }

  /** At most `n` items, newest first. */
  latest(n: number): T[] {
    const out: T[] = [];
    const size = this.items.length;
    for (let i = 1; i <= Math.min(n, size); i++) out.push(this.items[(this.next - i + size) % size] as T);
    return out;
  }
}

const MINUTE_MS = 60_000;
/** Minutes charted. */
export const SERIES_MINUTES = 60;

/** Counts per minute for the last `SERIES_MINUTES` minutes. */
export class MinuteCounts {
  private readonly buckets = new Map<number, Record<SeriesName, number>>();

  constructor(private readonly clock: () => number) {}

  add(name: SeriesName, n = 1): void {
    if (n <= 0) return;
    const minute = Math.floor(this.clock() / MINUTE_MS);
    let bucket = this.buckets.get(minute);
    if (bucket === undefined) {
      bucket = Object.fromEntries(SERIES.map((s) => [s, 0])) as Record<SeriesName, number>;
      this.buckets.set(minute, bucket);
      // Forget what has scrolled out of the window.
      for (const key of this.buckets.keys()) if (key <= minute - SERIES_MINUTES) this.buckets.delete(key);
    }
    bucket[name] += n;
  }

  snapshot(): CounterSeries {
    const last = Math.floor(this.clock() / MINUTE_MS);
    const first = last - SERIES_MINUTES + 1;
    const minutes = Array.from({ length: SERIES_MINUTES }, (_, i) => this.buckets.get(first + i));
    return {
      start: first * MINUTE_MS,
      stepMs: MINUTE_MS,
      series: SERIES.map((name) => ({ name, values: minutes.map((b) => b?.[name] ?? 0) })),
    };
  }
}

/** What the recorder reads dead letters from (the journal). */
export interface DeadLetterStore {
  deadLetters(options: { limit?: number }): DeadLetter[];
}

/** How many of each kind of record are kept. */
const CAPACITY = 200;

/** `registry/repository[:tag]@digest` of a push. */
const imageOf = (event: DeadLetter['event']): string =>
  `${event.registry}/${event.repository}${event.tag !== undefined ? `:${event.tag}` : ''}@${event.digest}`;

/** The running service's `StatusSource`, fed by its hooks. */
export class StatusRecorder implements StatusSource {
  private readonly signatures = new Ring<SignatureRecord>(CAPACITY);
  private readonly failures = new Ring<FailureRecord>(CAPACITY);
  private readonly denials = new Ring<DenialRecord>(CAPACITY);
  private readonly found = new Ring<FindingRecord>(CAPACITY);
  private readonly counts: MinuteCounts;
  private readonly clock: () => number;

  constructor(
    private readonly deps: {
      readonly journal?: DeadLetterStore;
      /** `journal.maxAttempts`: a transient failure on the last attempt dead-letters the push too. */
      readonly maxAttempts?: number;
      /** Epoch milliseconds (tests). */
      readonly clock?: () => number;
    } = {},
  ) {
    this.clock = deps.clock ?? Date.now;
    this.counts = new MinuteCounts(this.clock);
  }

  /** One signing attempt from the journal (`DurableSigning`'s `onReport`). */
  signing(report: SigningReport, entry: JournalEntry): void {
    const at = this.clock();
    for (const outcome of report.outcomes) {
      if (outcome.status === 'signed' || outcome.status === 'already-signed') {
        this.signatures.push({
          at,
          image: report.image,
          rule: outcome.rule,
          witness: outcome.witness,
          status: outcome.status,
        });
        if (outcome.status === 'signed') this.counts.add('signed');
      }
    }
    // The journal's own verdict on the attempt: a retry, a dead letter, or done.
    const result = classifyReport(report, entry.attempts);
    if (result.$case === 'done') return;
    this.failures.push({
      at,
      image: report.image,
      code: result.code,
      message: result.message,
      attempt: entry.attempts + 1,
      final: result.$case === 'failed' || entry.attempts + 1 >= (this.deps.maxAttempts ?? Infinity),
    });
    this.counts.add('failed');
  }

  /** What the events surface did with one delivery's pushes. */
  intake(outcomes: readonly IntakeOutcome[]): void {
    this.counts.add('pushes', outcomes.length);
  }

  /** One answered AdmissionReview (the controller's `observe`). */
  admission(outcome: AdmissionOutcome): void {
    const at = this.clock();
    const { request, response, cluster } = outcome;
    this.counts.add(response.allowed ? 'admitted' : 'denied');
    const object =
      `${request.kind.kind} ${request.namespace !== undefined ? `${request.namespace}/` : ''}${request.name ?? ''}`.trim();
    if (!response.allowed) {
      let recorded = 0;
      const denial = (
        field: string | undefined,
        image: string | undefined,
        code: string,
        message: string,
      ): void => {
        recorded++;
        this.denials.push({ at, object, cluster, field, image, code, message, dryRun: request.dryRun });
      };
      // Parts of the object that deny by themselves (a container list that is not a list, an image that is not a string).
      const extraction = extractImages(request);
      if (extraction.$case === 'images') {
        for (const problem of extraction.problems)
          denial(problem.field, undefined, 'OBJECT_INVALID', problem.message);
        for (const site of extraction.sites)
          if (site.problem !== undefined) denial(site.field, site.image, 'INVALID_REFERENCE', site.problem);
      }
      for (const { site, decision } of outcome.images) {
        if (!decision.allowed)
          denial(site.field, site.image, decision.reason?.code ?? 'DENIED', decision.message);
      }
      // Denied without any of those: the review's deadline, an internal error.
      if (recorded === 0) denial(undefined, undefined, 'DENIED', response.status?.message ?? 'denied');
    }
    for (const { site, decision } of outcome.images) {
      if (decision.verdict !== 'warn') continue;
      this.found.push({
        at,
        image:
          decision.digest !== undefined && !site.image.includes('@')
            ? `${site.image}@${decision.digest}`
            : site.image,
        namespace: request.namespace,
        code: decision.reason?.code ?? 'UNVERIFIED',
        message: decision.message,
        source: 'admission',
      });
    }
  }

  recentSignatures(n: number): Promise<readonly SignatureRecord[]> {
    return Promise.resolve(this.signatures.latest(n));
  }

  recentFailures(n: number): Promise<readonly FailureRecord[]> {
    return Promise.resolve(this.failures.latest(n));
  }

  recentDenials(n: number): Promise<readonly DenialRecord[]> {
    return Promise.resolve(this.denials.latest(n));
  }

  findings(n: number): Promise<readonly FindingRecord[]> {
    return Promise.resolve(this.found.latest(n));
  }

  deadLetters(n: number): Promise<readonly DeadLetterRecord[]> {
    const journal = this.deps.journal;
    if (journal === undefined) return Promise.resolve([]);
    return Promise.resolve(
      journal.deadLetters({ limit: n }).map((letter) => ({
        id: letter.id,
        failedAt: letter.failedAt,
        image: imageOf(letter.event),
        code: letter.code,
        message: letter.message,
        attempts: letter.attempts,
        permanent: letter.permanent,
      })),
    );
  }

  series(): Promise<CounterSeries> {
    return Promise.resolve(this.counts.snapshot());
  }
}
