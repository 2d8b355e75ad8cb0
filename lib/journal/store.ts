/**
 * The durable push journal: every accepted push is committed to an embedded SQLite database before
 * the service answers 202, so that a crash (kill -9, and with `synchronous=FULL` a power loss) loses
 * no push. Signing then drains the journal at its own pace (see worker.ts).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeError } from '../core/errors';
import type { PushEvent } from '../events/types';
import { JournalError } from './errors';
import { acquireOwnerLock, type OwnerLock } from './lock';
import {
  type DeadLetterRow,
  decodeScan,
  encodeEvent,
  encodeScan,
  type EntryRow,
  migrate,
  schemaVersion,
  toDeadLetter,
  toEntry,
} from './schema';
import type {
  AcceptedPush,
  RequeuedLetter,
  DeadLetter,
  JournalDepth,
  JournalEntry,
  JournalFailure,
  JournalOptions,
  ScanRecord,
} from './types';
import type { ScanResult } from '../events/types';

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
/** Scan results older than this are forgotten (a push that needs one after that waits for a new scan). */
const SCAN_RETENTION_MS = 30 * 24 * 3600 * 1000;

// A crash mid-attempt counts as a failed attempt, so that a push whose signing kills the process
// reaches maxAttempts and is dead-lettered instead of crashing every restart.
const INTERRUPTED: JournalFailure = {
  code: 'INTERRUPTED',
  message: 'the process stopped during the attempt',
};

const ENTRY_COLUMNS = 'id, event, attempts, first_seen_at, last_error_code, last_error_message';
const DEAD_LETTER_COLUMNS = 'id, event, attempts, first_seen_at, failed_at, code, message, permanent';

/** The push journal over one SQLite file: pending and running entries, and dead letters. */
export class Journal {
  /** Absolute path of the database file. */
  readonly file: string;
  /** True for a connection from `openReadOnly`, which cannot write. */
  readonly readOnly: boolean;
  private readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly lock: OwnerLock | undefined;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(
    db: Database.Database,
    file: string,
    clock: () => number,
    lock?: OwnerLock,
    readOnly = lock === undefined,
  ) {
    this.db = db;
    this.file = file;
    this.clock = clock;
    this.lock = lock;
    this.readOnly = readOnly;
  }

  /**
   * Opens (creating if needed) the journal as its single owner: takes `<file>.lock`, migrates the
   * schema, and makes entries a crashed owner left running pending again.
   */
  static open(file: string, options: JournalOptions = {}): Journal {
    const path = resolve(file);
    try {
      // Only a directory we create gets 0700; an existing one (say /tmp) is not ours to change.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Created here so that it starts 0600; SQLite gives the -wal and -shm files the same mode.
      closeSync(openSync(path, 'a', 0o600));
    } catch (error) {
      throw new JournalError('JOURNAL_WRITE_FAILED', path, `cannot create: ${describeError(error)}`, {
        cause: error,
      });
    }
    const lock = acquireOwnerLock(path);
    let db: Database.Database | undefined;
    try {
      db = connect(path, false, options);
      // WAL: readers (`signet failures`) never block the writer. NORMAL: a commit survives a process
      // crash; the writes a power loss must not undo either (accept, dead-letter, requeue) switch
      // to FULL, which fsyncs the WAL at their commit (`durably`).
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, path);
      const journal = new Journal(db, path, options.clock ?? Date.now, lock);
      journal.recover();
      return journal;
    } catch (error) {
      db?.close();
      lock.release();
      throw openError(error, path);
    }
  }

  /**
   * Opens an existing journal for a CLI command that changes dead letters (`signet replay --local`
   * requeues them) while the owner runs: no lock, no recovery. SQLite serialises the writes; the
   * owner's worker finds requeued entries at its next look (it polls).
   */
  static openShared(file: string, options: JournalOptions = {}): Journal {
    const path = resolve(file);
    let db: Database.Database | undefined;
    try {
      db = connect(path, false, options);
      if (schemaVersion(db, path) === 0) {
        throw new JournalError('JOURNAL_UNREADABLE', path, 'is not a Signet journal (no schema)');
      }
      db.pragma('synchronous = FULL');
      return new Journal(db, path, options.clock ?? Date.now, undefined, false);
    } catch (error) {
      db?.close();
      throw openError(error, path);
    }
  }

  /**
   * Opens an existing journal read-only, without the lock, for CLI commands that inspect it while
   * the service runs. Only the queries work; writes throw `JOURNAL_WRITE_FAILED`.
   */
  static openReadOnly(file: string, options: JournalOptions = {}): Journal {
    const path = resolve(file);
    let db: Database.Database | undefined;
    try {
      db = connect(path, true, options);
      if (schemaVersion(db, path) === 0) {
        throw new JournalError('JOURNAL_UNREADABLE', path, 'is not a Signet journal (no schema)');
      }
      return new Journal(db, path, options.clock ?? Date.now);
    } catch (error) {
      db?.close();
      throw openError(error, path);
    }
  }

  /**
   * Records pushes in one transaction, each as a pending entry due now, except that a push identical
   * (registry, repository, digest, tag) to one already pending or running returns that entry's id.
   */
  accept(events: readonly PushEvent[], receivedAt: number = this.clock()): AcceptedPush[] {
    return this.durably('accept', () =>
      this.db
        .transaction(() =>
          events.map((event): AcceptedPush => {
            const image: [string, string, string, string] = [
              event.registry,
              event.repository,
              event.digest,
              event.tag ?? '',
            ];
            const existing = this.sql<typeof image, { id: string }>(
              'SELECT id FROM entries WHERE registry = ? AND repository = ? AND digest = ? AND tag = ?',
            ).get(...image);
            if (existing !== undefined) return { id: existing.id, duplicate: true };
            const id = randomUUID();
            this.sql(
              `INSERT INTO entries (id, registry, repository, digest, tag, event, state, attempts,
                   first_seen_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
            ).run(id, ...image, encodeEvent(event), receivedAt, receivedAt);
            return { id, duplicate: false };
          }),
        )
        .immediate(),
    );
  }

  /** Marks up to `limit` due pending entries, oldest first, as running and returns them. */
  claim(limit: number, now: number = this.clock()): JournalEntry[] {
    if (limit <= 0) return [];
    return this.write('claim', () =>
      this.db
        .transaction(() => {
          const rows = this.sql<[number, number], EntryRow>(
            `SELECT ${ENTRY_COLUMNS} FROM entries WHERE state = 'pending' AND next_attempt_at <= ?
                 ORDER BY first_seen_at, rowid LIMIT ?`,
          ).all(now, limit);
          const markRunning = this.sql("UPDATE entries SET state = 'running', waiting = 0 WHERE id = ?");
          for (const row of rows) markRunning.run(row.id);
          return rows.map((row) => toEntry(row, this.file));
        })
        .immediate(),
    );
  }

  /** Deletes an entry whose push is signed; done entries are not kept. */
  complete(id: string): void {
    this.write('complete', () => this.sql('DELETE FROM entries WHERE id = ?').run(id));
  }

  /** Puts an entry back to pending after a transient failure, due at `nextAttemptAt`. */
  retry(id: string, failure: JournalFailure, nextAttemptAt: number): void {
    this.write('retry', () =>
      this.sql(
        `UPDATE entries SET state = 'pending', waiting = 0, attempts = attempts + 1, next_attempt_at = ?,
             last_error_code = ?, last_error_message = ? WHERE id = ?`,
      ).run(nextAttemptAt, failure.code, failure.message, id),
    );
  }

  /**
   * Puts an entry back to pending to wait for its scan result, due at `until` (when the wait ends)
   * or as soon as `recordScans` brings the result. A wait is not an attempt: `attempts` is kept.
   */
  wait(id: string, until: number, reason: JournalFailure): void {
    this.write('wait', () =>
      this.sql(
        `UPDATE entries SET state = 'pending', waiting = 1, next_attempt_at = ?,
             last_error_code = ?, last_error_message = ? WHERE id = ?`,
      ).run(until, reason.code, reason.message, id),
    );
  }

  /**
   * Keeps each scan result (the latest per image) and makes the pushes waiting for it due now, in
   * one durable transaction: the scanner was told its event arrived. Returns, per scan, the ids of
   * the entries it woke. Results older than 30 days are forgotten here too.
   */
  recordScans(scans: readonly ScanRecord[], receivedAt: number = this.clock()): string[][] {
    return this.durably('recordScans', () =>
      this.db
        .transaction(() => {
          this.sql('DELETE FROM scan_results WHERE received_at < ?').run(receivedAt - SCAN_RETENTION_MS);
          return scans.map((scan) => {
            const image: [string, string, string] = [scan.registry, scan.repository, scan.digest];
            this.sql(
              `INSERT INTO scan_results (registry, repository, digest, result, received_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (registry, repository, digest) DO UPDATE SET result = excluded.result,
                   received_at = excluded.received_at`,
            ).run(...image, encodeScan(scan.result), receivedAt);
            const waiting = this.sql<typeof image, { id: string }>(
              `SELECT id FROM entries WHERE registry = ? AND repository = ? AND digest = ?
                 AND waiting = 1 AND state = 'pending'`,
            ).all(...image);
            const due = this.sql(
              'UPDATE entries SET next_attempt_at = ? WHERE id = ? AND next_attempt_at > ?',
            );
            for (const { id } of waiting) due.run(receivedAt, id, receivedAt);
            return waiting.map(({ id }) => id);
          });
        })
        .immediate(),
    );
  }

  /** The latest scan result kept for an image, if any. */
  scanResult(registry: string, repository: string, digest: string): ScanResult | undefined {
    return this.read('scanResult', () => {
      const row = this.sql<[string, string, string], { result: string }>(
        'SELECT result FROM scan_results WHERE registry = ? AND repository = ? AND digest = ?',
      ).get(registry, repository, digest);
      return row === undefined ? undefined : decodeScan(row.result);
    });
  }

  /** How many pending entries wait for their scan result. */
  waiting(): number {
    return this.read('waiting', () => {
      const row = this.sql<[], { n: number }>(
        "SELECT count(*) AS n FROM entries WHERE waiting = 1 AND state = 'pending'",
      ).get();
      return row?.n ?? 0;
    });
  }

  /** Moves an entry to the dead letters; the failed attempt counts in `attempts`. */
  deadLetter(id: string, failure: JournalFailure & { readonly permanent: boolean }): void {
    this.durably('deadLetter', () =>
      this.db
        .transaction(() => {
          const moved = this.sql(
            `INSERT INTO dead_letters (id, registry, repository, digest, tag, event, attempts,
                 first_seen_at, failed_at, code, message, permanent)
               SELECT id, registry, repository, digest, tag, event, attempts + 1, first_seen_at, ?, ?, ?, ?
                 FROM entries WHERE id = ?`,
          ).run(this.clock(), failure.code, failure.message, failure.permanent ? 1 : 0, id);
          if (moved.changes > 0) this.sql('DELETE FROM entries WHERE id = ?').run(id);
        })
        .immediate(),
    );
  }

  /**
   * Makes entries a crashed owner left running pending again, due now, counting the interrupted
   * attempt. `open` calls it; returns how many entries it recovered.
   */
  recover(): number {
    return this.write(
      'recover',
      () =>
        this.sql(
          `UPDATE entries SET state = 'pending', attempts = attempts + 1, next_attempt_at = ?,
               last_error_code = ?, last_error_message = ? WHERE state = 'running'`,
        ).run(this.clock(), INTERRUPTED.code, INTERRUPTED.message).changes,
    );
  }

  /** How many entries are pending and running, and how many dead letters are kept. */
  depth(): JournalDepth {
    return this.read('depth', () => {
      const counts = this.sql<[], { pending: number | null; running: number | null }>(
        `SELECT sum(state = 'pending') AS pending, sum(state = 'running') AS running FROM entries`,
      ).get();
      const dead = this.sql<[], { n: number }>('SELECT count(*) AS n FROM dead_letters').get();
      return { pending: counts?.pending ?? 0, running: counts?.running ?? 0, deadLetters: dead?.n ?? 0 };
    });
  }

  /** Dead letters, most recent failure first; one by `id`, or at most `limit`. */
  deadLetters(options: { id?: string; limit?: number } = {}): DeadLetter[] {
    return this.read('deadLetters', () => {
      // SQLite reads a negative LIMIT as no limit.
      const limit = options.limit ?? -1;
      const rows =
        options.id === undefined
          ? this.sql<[number], DeadLetterRow>(
              `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY failed_at DESC, rowid DESC LIMIT ?`,
            ).all(limit)
          : this.sql<[string, number], DeadLetterRow>(
              `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ? LIMIT ?`,
            ).all(options.id, limit);
      return rows.map((row) => toDeadLetter(row, this.file));
    });
  }

  /**
   * Moves dead letters (all of them when `ids` is undefined) back to pending, due now, with attempts
   * reset, keeping their ids. A dead letter whose image is already pending again (pushed anew) is
   * simply dropped, the waiting entry covering it. Returns, for each dead letter that left, the id
   * of the entry that now carries it (its own, or the waiting entry's).
   */
  requeue(ids?: readonly string[]): RequeuedLetter[] {
    return this.durably('requeue', () =>
      this.db
        .transaction(() => {
          const now = this.clock();
          const candidates =
            ids === undefined
              ? this.sql<[], { id: string }>('SELECT id FROM dead_letters ORDER BY rowid').all()
              : ids.map((id) => ({ id }));
          const requeued: RequeuedLetter[] = [];
          for (const { id } of candidates) {
            const inserted = this.sql(
              `INSERT OR IGNORE INTO entries (id, registry, repository, digest, tag, event, state,
                   attempts, first_seen_at, next_attempt_at, last_error_code, last_error_message)
                 SELECT id, registry, repository, digest, tag, event, 'pending', 0, first_seen_at, ?,
                   code, message FROM dead_letters WHERE id = ?`,
            ).run(now, id);
            // Not inserted: the same image waits under another entry, which now carries this letter.
            const carrier =
              inserted.changes > 0
                ? { id }
                : this.sql<[string], { id: string }>(
                    `SELECT e.id FROM entries e JOIN dead_letters d ON e.registry = d.registry
                       AND e.repository = d.repository AND e.digest = d.digest AND e.tag = d.tag
                     WHERE d.id = ?`,
                  ).get(id);
            const removed = this.sql('DELETE FROM dead_letters WHERE id = ?').run(id);
            if (removed.changes > 0) requeued.push({ id, entry: carrier?.id ?? id });
          }
          return requeued;
        })
        .immediate(),
    );
  }

  /** Deletes one dead letter (an operator gave up on it); false when there was none by that id. */
  removeDeadLetter(id: string): boolean {
    return this.write(
      'removeDeadLetter',
      () => this.sql('DELETE FROM dead_letters WHERE id = ?').run(id).changes > 0,
    );
  }

  /** When the earliest pending entry is due (epoch ms), or undefined when nothing is pending. */
  nextDueAt(): number | undefined {
    return this.read('nextDueAt', () => {
      const due = this.sql<[], { due: number | null }>(
        "SELECT min(next_attempt_at) AS due FROM entries WHERE state = 'pending'",
      ).get();
      return due?.due ?? undefined;
    });
  }

  /** True for the connection that holds the owner lock (`open`), until it is closed. */
  get owner(): boolean {
    return this.lock !== undefined && !this.closed;
  }

  /** Closes the database and releases the lock; calling it again does nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } finally {
      this.lock?.release();
    }
  }

  // Statements are prepared once per connection: preparing costs more than running one.
  private sql<P extends unknown[] = unknown[], R = unknown>(text: string): Database.Statement<P, R> {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement as Database.Statement<P, R>;
  }

  /**
   * A write that must survive a power loss, not only a crash: the accepted push the sender was told
   * about, a dead letter, a requeue. A lost claim or completion only costs an idempotent re-sign,
   * so those commit with NORMAL (no fsync each).
   */
  private durably<T>(operation: string, body: () => T): T {
    if (this.readOnly) return this.write(operation, body);
    return this.write(operation, () => {
      this.db.pragma('synchronous = FULL');
      try {
        return body();
      } finally {
        this.db.pragma('synchronous = NORMAL');
      }
    });
  }

  private write<T>(operation: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof JournalError) throw error;
      throw new JournalError('JOURNAL_WRITE_FAILED', this.file, `${operation}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }

  private read<T>(operation: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof JournalError) throw error;
      throw new JournalError('JOURNAL_UNREADABLE', this.file, `${operation}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}

function connect(path: string, readonly: boolean, options: JournalOptions): Database.Database {
  const db = new Database(path, { readonly, fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
  return db;
}

function openError(error: unknown, path: string): JournalError {
  if (error instanceof JournalError) return error;
  return new JournalError('JOURNAL_UNREADABLE', path, `cannot open: ${describeError(error)}`, {
    cause: error,
  });
}
