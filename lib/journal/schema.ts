/**
 * The journal's tables, their migrations, and the conversion between rows and journal types.
 * `PRAGMA user_version` counts the migrations applied; a new schema is a new entry at the end of
 * MIGRATIONS, never an edit of an old one.
 */
import type Database from 'better-sqlite3';
import type { PushEvent, PushEventSource, ScanResult } from '../events/types';
import { JournalError } from './errors';
import type { DeadLetter, JournalEntry } from './types';

// `entries` holds only pending and running work (done entries are deleted), so the unique index
// on the image is the de-duplication of identical pushes. `tag` is '' for a push by digest:
// SQLite treats NULLs as distinct in a unique index.
const V1 = `
CREATE TABLE entries (
  id TEXT PRIMARY KEY,
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT NOT NULL,
  event TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running')),
  attempts INTEGER NOT NULL,
  first_seen_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error_code TEXT,
  last_error_message TEXT
);
CREATE UNIQUE INDEX entries_image ON entries (registry, repository, digest, tag);
CREATE INDEX entries_due ON entries (state, next_attempt_at);
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT NOT NULL,
  event TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  first_seen_at INTEGER NOT NULL,
  failed_at INTEGER NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  permanent INTEGER NOT NULL CHECK (permanent IN (0, 1))
);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at);
`;

// V2: pushes waiting for their scan result stay pending entries, marked `waiting` and due when
// the wait ends (a scan result makes them due at once); the latest scan result of each image is
// kept in `scan_results`, so that a push accepted after its scan finds it.
const V2 = `
ALTER TABLE entries ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0 CHECK (waiting IN (0, 1));
CREATE TABLE scan_results (
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  result TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (registry, repository, digest)
);
CREATE INDEX scan_results_received ON scan_results (received_at);
`;

const MIGRATIONS: readonly string[] = [V1, V2];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Reads `user_version`, refusing a journal from a newer Signet (JournalError `JOURNAL_VERSION`). */
export function schemaVersion(db: Database.Database, file: string): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new JournalError(
      'JOURNAL_VERSION',
      file,
      `has schema version ${version}; this Signet knows versions up to ${SCHEMA_VERSION}`,
    );
  }
  return version;
}

/** Applies the migrations the database lacks, all in one transaction. */
export function migrate(db: Database.Database, file: string): void {
  const apply = db.transaction(() => {
    // Read inside the write transaction so that the version cannot change under us.
    const version = schemaVersion(db, file);
    for (const sql of MIGRATIONS.slice(version)) db.exec(sql);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  apply.immediate();
}

/** An `entries` row as SQLite returns it. */
export interface EntryRow {
  readonly id: string;
  readonly event: string;
  readonly attempts: number;
  readonly first_seen_at: number;
  readonly last_error_code: string | null;
  readonly last_error_message: string | null;
}

/** A `dead_letters` row as SQLite returns it. */
export interface DeadLetterRow {
  readonly id: string;
  readonly event: string;
  readonly attempts: number;
  readonly first_seen_at: number;
  readonly failed_at: number;
  readonly code: string;
  readonly message: string;
  readonly permanent: number;
}

/** The event as stored: only PushEvent's own fields, so a richer object passed in is not persisted. */
export function encodeEvent(event: PushEvent): string {
  const { registry, repository, digest, tag, mediaType, artifactType, source, id, pushedBy } = event;
  return JSON.stringify({ registry, repository, digest, tag, mediaType, artifactType, source, id, pushedBy });
}

/** Parses a stored event, restoring the optional fields that JSON dropped as `undefined`. */
export function decodeEvent(json: string, file: string, id: string): PushEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new JournalError('JOURNAL_UNREADABLE', file, `entry ${id} holds an event that is not JSON`, {
      cause: error,
    });
  }
  const fields = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const required = (name: string): string => {
    const value = fields[name];
    if (typeof value === 'string') return value;
    throw new JournalError('JOURNAL_UNREADABLE', file, `entry ${id} holds an event without ${name}`);
  };
  const optional = (name: string): string | undefined => {
    const value = fields[name];
    return typeof value === 'string' ? value : undefined;
  };
  const pushedBy = optional('pushedBy');
  return {
    registry: required('registry'),
    repository: required('repository'),
    digest: required('digest'),
    tag: optional('tag'),
    mediaType: optional('mediaType'),
    artifactType: optional('artifactType'),
    source: required('source') as PushEventSource,
    id: optional('id'),
    ...(pushedBy !== undefined ? { pushedBy } : {}),
  };
}

/** A scan result as stored (JSON of the `ScanResult`). */
export const encodeScan = (result: ScanResult): string => JSON.stringify(result);

/** A stored scan result; one this code cannot read is treated as absent (the push waits for the next). */
export function decodeScan(json: string): ScanResult | undefined {
  try {
    const value = JSON.parse(json) as Partial<ScanResult> | null;
    if (value?.$case === 'complete' && typeof value.counts === 'object') return value as ScanResult;
    if (value?.$case === 'failed' && typeof value.detail === 'string') return value as ScanResult;
  } catch {
    // fall through
  }
  return undefined;
}

/** A JournalEntry from its row. */
export function toEntry(row: EntryRow, file: string): JournalEntry {
  return {
    id: row.id,
    event: decodeEvent(row.event, file, row.id),
    attempts: row.attempts,
    firstSeenAt: row.first_seen_at,
    lastError:
      row.last_error_code === null
        ? undefined
        : { code: row.last_error_code, message: row.last_error_message ?? '' },
  };
}

/** A DeadLetter from its row. */
export function toDeadLetter(row: DeadLetterRow, file: string): DeadLetter {
  return {
    id: row.id,
    event: decodeEvent(row.event, file, row.id),
    attempts: row.attempts,
    firstSeenAt: row.first_seen_at,
    failedAt: row.failed_at,
    code: row.code,
    message: row.message,
    permanent: row.permanent === 1,
  };
}
