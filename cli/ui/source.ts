/**
 * What the status page (`GET /ui`) shows, and where it comes from. The page reads a `StatusSource`
 * only: today `StatusRecorder` (rings fed by the service's hooks, and the journal's dead letters);
 * the ledger (lib/ledger) plugs in by implementing some or all of it, combined with `overlay`.
 */

/** A signature written (or found already there) for one rule on one push. */
export interface SignatureRecord {
  /** Epoch milliseconds. */
  readonly at: number;
  /** `registry/repository[:tag]@digest`. */
  readonly image: string;
  readonly rule: string;
  readonly witness: string;
  readonly status: 'signed' | 'already-signed';
}

/** A signing attempt that failed; `final` when the push was dead-lettered with it. */
export interface FailureRecord {
  readonly at: number;
  readonly image: string;
  readonly code: string;
  readonly message: string;
  /** The attempt's number (1 for the first). */
  readonly attempt: number;
  readonly final: boolean;
}

/** A push Signet gave up on (the journal's dead letters). */
export interface DeadLetterRecord {
  readonly id: string;
  readonly failedAt: number;
  readonly image: string;
  readonly code: string;
  readonly message: string;
  readonly attempts: number;
  readonly permanent: boolean;
}

/** One denied image (or a denial without one: a deadline, a malformed object) of an admission review. */
export interface DenialRecord {
  readonly at: number;
  /** `Deployment production/web`. */
  readonly object: string;
  readonly cluster: string | undefined;
  readonly field: string | undefined;
  readonly image: string | undefined;
  readonly code: string;
  readonly message: string;
  readonly dryRun: boolean;
}

/**
 * An image that runs, or was admitted, without being trusted: until the ledger re-verifies admitted
 * images, the images admission let through with a warning (audit-mode policies, `failurePolicy:
 * allow`, `noMatchingPolicy: warn`).
 */
export interface FindingRecord {
  readonly at: number;
  readonly image: string;
  readonly namespace: string | undefined;
  readonly code: string;
  readonly message: string;
  /** Where it was found: `admission` (a warning), `reverify` (the ledger). */
  readonly source: string;
}

/** The counters the page charts, per minute over the last hour, oldest minute first. */
export interface CounterSeries {
  /** Epoch milliseconds of the first minute's start. */
  readonly start: number;
  readonly stepMs: number;
  readonly series: readonly { readonly name: SeriesName; readonly values: readonly number[] }[];
}

/** The counters the page charts. */
export const SERIES = ['pushes', 'signed', 'failed', 'admitted', 'denied'] as const;
export type SeriesName = (typeof SERIES)[number];

/** Where the status page reads from. Every list is newest first and at most `n` long. */
export interface StatusSource {
  recentSignatures(n: number): Promise<readonly SignatureRecord[]>;
  recentFailures(n: number): Promise<readonly FailureRecord[]>;
  recentDenials(n: number): Promise<readonly DenialRecord[]>;
  deadLetters(n: number): Promise<readonly DeadLetterRecord[]>;
  findings(n: number): Promise<readonly FindingRecord[]>;
  series(): Promise<CounterSeries>;
}

/**
 * `base` with some of its parts answered by `over` instead: how the ledger takes over signatures,
 * denials and findings while the per-minute series keep coming from the in-memory recorder.
 */
export function overlay(base: StatusSource, over: Partial<StatusSource>): StatusSource {
  return {
    recentSignatures: (n) => (over.recentSignatures ?? base.recentSignatures.bind(base))(n),
    recentFailures: (n) => (over.recentFailures ?? base.recentFailures.bind(base))(n),
    recentDenials: (n) => (over.recentDenials ?? base.recentDenials.bind(base))(n),
    deadLetters: (n) => (over.deadLetters ?? base.deadLetters.bind(base))(n),
    findings: (n) => (over.findings ?? base.findings.bind(base))(n),
    series: () => (over.series ?? base.series.bind(base))(),
  };
}
