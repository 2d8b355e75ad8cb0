import type { PushEvent, ScanResult } from '../events/types';

/** Why an attempt failed, as the signing side reports it (an error code and a human message). */
export interface JournalFailure {
  readonly code: string;
  readonly message: string;
}

/** A push waiting in the journal (pending) or being signed (running). Times are epoch milliseconds. */
export interface JournalEntry {
  readonly id: string;
  readonly event: PushEvent;
  /** Attempts that failed or were interrupted by a crash; the one about to run is `attempts + 1`. */
  readonly attempts: number;
  readonly firstSeenAt: number;
  readonly lastError: JournalFailure | undefined;
}

/** A push Signet gave up on: retries exhausted, or a failure that no retry can fix. */
export interface DeadLetter {
  readonly id: string;
  readonly event: PushEvent;
  /** Attempts made, the failing one included. */
  readonly attempts: number;
  readonly firstSeenAt: number;
  readonly failedAt: number;
  readonly code: string;
  readonly message: string;
  /** True when the failure was permanent; false when transient failures exhausted the attempts. */
  readonly permanent: boolean;
}

/** What `accept` did with one event: a new entry, or the id of the identical one already waiting. */
export interface AcceptedPush {
  readonly id: string;
  readonly duplicate: boolean;
}

/** How much work the journal holds, for health checks and metrics. */
export interface JournalDepth {
  /** Pending entries, those waiting for a scan result (`Journal.waiting`) included. */
  readonly pending: number;
  readonly running: number;
  readonly deadLetters: number;
}

/** A scan result to keep, for the image it is about. */
export interface ScanRecord {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly result: ScanResult;
}

/** Options of `Journal.open` and `Journal.openReadOnly`. */
export interface JournalOptions {
  /** Epoch milliseconds; tests pass a fake. */
  readonly clock?: () => number;
  /** How long a statement waits for another connection's write lock before failing. */
  readonly busyTimeoutMs?: number;
}

/** A dead letter moved back into the journal, and the entry that now carries it. */
export interface RequeuedLetter {
  /** The dead letter's id. */
  readonly id: string;
  /** Its own id when it was requeued; another entry's when the same image was already waiting. */
  readonly entry: string;
}
