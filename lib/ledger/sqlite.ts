/**
 * The local ledger: tables of its own in the journal's SQLite file (one file to back up, one
 * place for the service's state), on a connection of its own. The journal's owner lock still
 * decides who writes: only the process that owns the journal opens the ledger for writing
 * (`open` takes the owning `Journal`); CLI commands read it without a lock (`openReadOnly`), WAL
 * letting them read while the service writes.
 *
 * The journal counts its migrations in `PRAGMA user_version`; the ledger counts its own in
 * `ledger_schema`, so neither can mistake the other's tables for its own version.
 *
 * Each record is kept whole as JSON, with the columns queries select on beside it. Commits use
 * `synchronous = NORMAL` (WAL): a commit survives a crash of the process; a power loss may take
 * the last second of records, which the journal's pushes and the registry's signatures outlive.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeError } from '../core/errors';
import type { Journal } from '../journal';
import { LedgerError } from './errors';
import { matchesDecision, matchesSignature } from './records';
import {
  daysMs,
  placementKey,
  type AdmittedImage,
  type DecisionRecord,
  type Finding,
  type Ledger,
  type LedgerBatch,
  type LedgerQuery,
  type SignatureRecord,
} from './types';

const V1 = `
CREATE TABLE ledger_signatures (
  id TEXT PRIMARY KEY,
  signed_at INTEGER NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  witness TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX ledger_signatures_digest ON ledger_signatures (digest, signed_at);
CREATE INDEX ledger_signatures_repository ON ledger_signatures (repository, signed_at);
CREATE INDEX ledger_signatures_witness ON ledger_signatures (witness, signed_at);
CREATE INDEX ledger_signatures_time ON ledger_signatures (signed_at);
CREATE TABLE ledger_decisions (
  id TEXT PRIMARY KEY,
  decided_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX ledger_decisions_time ON ledger_decisions (decided_at);
CREATE TABLE ledger_decision_images (
  decision_id TEXT NOT NULL,
  decided_at INTEGER NOT NULL,
  repository TEXT,
  digest TEXT
);
CREATE INDEX ledger_decision_images_digest ON ledger_decision_images (digest, decided_at);
CREATE INDEX ledger_decision_images_repository ON ledger_decision_images (repository, decided_at);
CREATE INDEX ledger_decision_images_decision ON ledger_decision_images (decision_id);
CREATE TABLE ledger_admitted (
  key TEXT PRIMARY KEY,
  last_admitted_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX ledger_admitted_time ON ledger_admitted (last_admitted_at);
CREATE TABLE ledger_findings (
  id TEXT PRIMARY KEY,
  last_found_at INTEGER NOT NULL,
  resolved_at INTEGER,
  record TEXT NOT NULL
);
`;

const MIGRATIONS: readonly string[] = [V1];

/** The ledger schema version this code writes and understands. */
export const LEDGER_SCHEMA_VERSION = MIGRATIONS.length;

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/** How the SQLite ledger keeps records. */
export interface SqliteLedgerOptions {
  /** Decisions and resolved findings older than this many days are deleted by `prune`. */
  readonly retentionDays: number;
  readonly busyTimeoutMs?: number;
}

/** The ledger in the journal's SQLite file. */
export class SqliteLedger implements Ledger {
  readonly file: string;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(
    private readonly db: Database.Database | undefined,
    file: string,
    private readonly retentionMs: number,
  ) {
    this.file = file;
  }

  /**
   * Opens the ledger for writing in the file of `journal`, which must be the journal's owner
   * (`Journal.open`): the process that owns the journal is the one that records. Creates the
   * tables the file lacks.
   */
  static open(journal: Journal, options: SqliteLedgerOptions): SqliteLedger {
    const file = journal.file;
    if (!journal.owner) {
      throw new LedgerError(
        'LEDGER_WRITE_FAILED',
        file,
        "the ledger is written only by the journal's owner (Journal.open)",
      );
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { fileMustExist: true });
      db.pragma(`busy_timeout = ${busyTimeout(options)}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, file);
      return new SqliteLedger(db, file, daysMs(options.retentionDays));
    } catch (error) {
      db?.close();
      throw openError(error, file);
    }
  }

  /**
   * Opens the ledger of `file` read-only, without any lock, while the service may be writing.
   * A file that does not exist yet, or holds no ledger tables yet, reads as an empty ledger.
   */
  static openReadOnly(file: string, options: Partial<SqliteLedgerOptions> = {}): SqliteLedger {
    const path = resolve(file);
    const retentionMs = daysMs(options.retentionDays ?? 0);
    if (!existsSync(path)) return new SqliteLedger(undefined, path, retentionMs);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma(`busy_timeout = ${busyTimeout(options)}`);
      const version = schemaVersion(db, path);
      if (version === 0) {
        db.close();
        return new SqliteLedger(undefined, path, retentionMs);
      }
      return new SqliteLedger(db, path, retentionMs);
    } catch (error) {
      db?.close();
      throw openError(error, path);
    }
  }

  write(batch: LedgerBatch): Promise<void> {
    return this.attempt('write', () => {
      const db = this.writable();
      db.transaction(() => {
        const signature = this.sql(
          `INSERT OR IGNORE INTO ledger_signatures (id, signed_at, repository, digest, witness, record)
             VALUES (?, ?, ?, ?, ?, ?)`,
        );
        for (const r of batch.signatures) {
          signature.run(
            r.id,
            r.signedAt,
            `${r.registry}/${r.repository}`,
            r.digest,
            r.witness,
            JSON.stringify(r),
          );
        }
        const decision = this.sql(
          'INSERT OR IGNORE INTO ledger_decisions (id, decided_at, record) VALUES (?, ?, ?)',
        );
        const image = this.sql(
          'INSERT INTO ledger_decision_images (decision_id, decided_at, repository, digest) VALUES (?, ?, ?, ?)',
        );
        for (const r of batch.decisions) {
          if (decision.run(r.id, r.decidedAt, JSON.stringify(r)).changes === 0) continue;
          // One index row per distinct image: a Pod of eight containers of one image is one lookup.
          const indexed = new Set<string>();
          for (const i of r.images) {
            const key = `${i.repository ?? ''}@${i.digest ?? ''}`;
            if (indexed.has(key)) continue;
            indexed.add(key);
            image.run(r.id, r.decidedAt, i.repository ?? null, i.digest ?? null);
          }
        }
        // The latest admission wins: its verdict and time are what re-verification starts from.
        const admitted = this.sql(
          `INSERT INTO ledger_admitted (key, last_admitted_at, record) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET last_admitted_at = excluded.last_admitted_at, record = excluded.record
             WHERE excluded.last_admitted_at >= ledger_admitted.last_admitted_at`,
        );
        for (const a of batch.admitted) admitted.run(placementKey(a), a.lastAdmittedAt, JSON.stringify(a));
      })();
    });
  }

  signatures(query: LedgerQuery): Promise<SignatureRecord[]> {
    return this.attempt('signatures', () => {
      const [where, params] = signatureSelection(query);
      return this.collect<SignatureRecord>(
        `SELECT record FROM ledger_signatures WHERE ${where} ORDER BY signed_at DESC, rowid DESC`,
        params,
        (r) => matchesSignature(r, query),
        query.limit,
      );
    });
  }

  decisions(query: LedgerQuery): Promise<DecisionRecord[]> {
    return this.attempt('decisions', () => {
      // Decisions have no witness: nothing to read (rather than every row, to keep none).
      if (query.witness !== undefined) return [];
      const [where, params] = decisionSelection(query);
      return this.collect<DecisionRecord>(
        `SELECT record FROM ledger_decisions d WHERE ${where} ORDER BY d.decided_at DESC, d.rowid DESC`,
        params,
        (r) => matchesDecision(r, query),
        query.limit,
      );
    });
  }

  admitted(since: number): Promise<AdmittedImage[]> {
    return this.attempt('admitted', () =>
      this.collect<AdmittedImage>(
        'SELECT record FROM ledger_admitted WHERE last_admitted_at >= ? ORDER BY last_admitted_at DESC',
        [since],
        () => true,
        undefined,
      ),
    );
  }

  findings(options: { readonly includeResolved?: boolean } = {}): Promise<Finding[]> {
    return this.attempt('findings', () =>
      this.collect<Finding>(
        `SELECT record FROM ledger_findings ${options.includeResolved === true ? '' : 'WHERE resolved_at IS NULL'}
           ORDER BY last_found_at DESC`,
        [],
        () => true,
        undefined,
      ),
    );
  }

  saveFindings(findings: readonly Finding[]): Promise<void> {
    return this.attempt('saveFindings', () => {
      const db = this.writable();
      db.transaction(() => {
        const save = this.sql(
          'INSERT OR REPLACE INTO ledger_findings (id, last_found_at, resolved_at, record) VALUES (?, ?, ?, ?)',
        );
        for (const f of findings) save.run(f.id, f.lastFoundAt, f.resolvedAt ?? null, JSON.stringify(f));
      })();
    });
  }

  prune(now: number): Promise<void> {
    return this.attempt('prune', () => {
      const db = this.writable();
      const cutoff = now - this.retentionMs;
      db.transaction(() => {
        this.sql('DELETE FROM ledger_decision_images WHERE decided_at < ?').run(cutoff);
        this.sql('DELETE FROM ledger_decisions WHERE decided_at < ?').run(cutoff);
        this.sql('DELETE FROM ledger_admitted WHERE last_admitted_at < ?').run(cutoff);
        this.sql('DELETE FROM ledger_findings WHERE resolved_at IS NOT NULL AND resolved_at < ?').run(cutoff);
      })();
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db?.close();
    }
    return Promise.resolve();
  }

  /** Rows of `text`, decoded, kept when `keep` says so, until `limit` are kept. */
  private collect<T>(
    text: string,
    params: readonly unknown[],
    keep: (record: T) => boolean,
    limit: number | undefined,
  ): T[] {
    if (this.db === undefined) return [];
    const found: T[] = [];
    for (const row of this.sql<unknown[], { record: string }>(text).iterate(...params)) {
      const record = JSON.parse(row.record) as T;
      if (!keep(record)) continue;
      found.push(record);
      if (limit !== undefined && found.length >= limit) break;
    }
    return found;
  }

  private writable(): Database.Database {
    if (this.db === undefined || this.db.readonly) {
      throw new LedgerError('LEDGER_WRITE_FAILED', this.file, 'opened read-only');
    }
    return this.db;
  }

  // Statements are prepared once per connection: preparing costs more than running one.
  private sql<P extends unknown[] = unknown[], R = unknown>(text: string): Database.Statement<P, R> {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = (this.db as Database.Database).prepare(text);
      this.statements.set(text, statement);
    }
    return statement as Database.Statement<P, R>;
  }

  /** Runs synchronous SQLite work as a promise, its failures as LedgerErrors. */
  private attempt<T>(operation: string, body: () => T): Promise<T> {
    try {
      return Promise.resolve(body());
    } catch (error) {
      if (error instanceof LedgerError) return Promise.reject(error);
      const code = operation === 'write' || operation === 'saveFindings' || operation === 'prune';
      return Promise.reject(
        new LedgerError(
          code ? 'LEDGER_WRITE_FAILED' : 'LEDGER_UNREADABLE',
          this.file,
          `${operation}: ${describeError(error)}`,
          { cause: error },
        ),
      );
    }
  }
}

/** The most selective index for a signature query, and the time range. */
function signatureSelection(query: LedgerQuery): [string, unknown[]] {
  const [clauses, params] = timeRange('signed_at', query);
  if (query.digest !== undefined)
    return [['digest = ?', ...clauses].join(' AND '), [query.digest, ...params]];
  if (query.repository !== undefined)
    return [['repository = ?', ...clauses].join(' AND '), [query.repository, ...params]];
  if (query.witness !== undefined)
    return [['witness = ?', ...clauses].join(' AND '), [query.witness, ...params]];
  return [clauses.length > 0 ? clauses.join(' AND ') : '1', params];
}

/** The most selective index for a decision query, and the time range. */
function decisionSelection(query: LedgerQuery): [string, unknown[]] {
  const [clauses, params] = timeRange('d.decided_at', query);
  const through = (column: string, value: string): [string, unknown[]] => [
    [`d.id IN (SELECT decision_id FROM ledger_decision_images WHERE ${column} = ?)`, ...clauses].join(
      ' AND ',
    ),
    [value, ...params],
  ];
  if (query.digest !== undefined) return through('digest', query.digest);
  if (query.repository !== undefined) return through('repository', query.repository);
  return [clauses.length > 0 ? clauses.join(' AND ') : '1', params];
}

function timeRange(column: string, query: LedgerQuery): [string[], unknown[]] {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (query.since !== undefined) {
    clauses.push(`${column} >= ?`);
    params.push(query.since);
  }
  if (query.until !== undefined) {
    clauses.push(`${column} < ?`);
    params.push(query.until);
  }
  return [clauses, params];
}

function busyTimeout(options: Partial<SqliteLedgerOptions>): number {
  return Math.max(0, Math.floor(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS));
}

/** The ledger schema version in `db`; 0 when it has no ledger tables. */
function schemaVersion(db: Database.Database, file: string): number {
  const table = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ledger_schema'")
    .get() as { name: string } | undefined;
  if (table === undefined) return 0;
  const row = db.prepare('SELECT max(version) AS version FROM ledger_schema').get() as
    { version: number | null } | undefined;
  const version = row?.version ?? 0;
  if (version > LEDGER_SCHEMA_VERSION) {
    throw new LedgerError(
      'LEDGER_VERSION',
      file,
      `has ledger schema version ${version}; this Signet knows versions up to ${LEDGER_SCHEMA_VERSION}`,
    );
  }
  return version;
}

/** Applies the migrations the file lacks, all in one transaction. */
function migrate(db: Database.Database, file: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER NOT NULL)');
    const version = schemaVersion(db, file);
    for (const sql of MIGRATIONS.slice(version)) db.exec(sql);
    if (version < LEDGER_SCHEMA_VERSION) {
      db.exec('DELETE FROM ledger_schema');
      db.prepare('INSERT INTO ledger_schema (version) VALUES (?)').run(LEDGER_SCHEMA_VERSION);
    }
  }).immediate();
}

function openError(error: unknown, file: string): LedgerError {
  if (error instanceof LedgerError) return error;
  return new LedgerError('LEDGER_UNREADABLE', file, `cannot open: ${describeError(error)}`, { cause: error });
}
