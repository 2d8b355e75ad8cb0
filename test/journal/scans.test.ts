/**
 * The journal's scan waits (schema version 2): pushes waiting for their scan result, the scan
 * results kept per image, the wake-up a result brings, and a version-1 journal (written before
 * scans existed) opened and migrated with its pending pushes intact.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ScanResult } from '../../lib/events/types';
import { SCHEMA_VERSION } from '../../lib/journal';
import { decodeScan } from '../../lib/journal/schema';
import { Journal } from '../../lib/journal/store';
import { fakeClock, type FakeClock, pushEvent, tempDir } from './helpers';

const CLEAN: ScanResult = {
  $case: 'complete',
  scanner: 'harbor',
  counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 1, LOW: 2 },
  fixable: 0,
};

describe('Journal scan waits', () => {
  let cleanup: () => Promise<void>;
  let file: string;
  let clock: FakeClock;
  let journal: Journal;

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    file = join(temp.dir, 'journal.db');
    clock = fakeClock();
    journal = Journal.open(file, { clock: clock.now });
  });

  afterEach(async () => {
    journal.close();
    await cleanup();
  });

  const scanOf = (n: number, result: ScanResult = CLEAN) => {
    const { registry, repository, digest } = pushEvent(n);
    return { registry, repository, digest, result };
  };

  describe('when an attempt waits for the scan', () => {
    it('is pending again, due when the wait ends, without counting an attempt', () => {
      journal.accept([pushEvent(1)]);
      const [entry] = journal.claim(1);
      journal.wait(entry?.id ?? '', clock.now() + 60_000, { code: 'SCAN_PENDING', message: 'waiting' });

      expect(journal.waiting()).toBe(1);
      expect(journal.depth()).toEqual({ pending: 1, running: 0, deadLetters: 0 });
      expect(journal.claim(1)).toEqual([]);
      clock.advance(60_000);
      const [again] = journal.claim(1);
      expect(again).toMatchObject({ id: entry?.id, attempts: 0, lastError: { code: 'SCAN_PENDING' } });
      // Claimed: it is running again, no longer waiting.
      expect(journal.waiting()).toBe(0);
    });

    it('is due at once when its scan result arrives, and the result is kept for the attempt', () => {
      const [accepted] = journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.wait(accepted?.id ?? '', clock.now() + 3_600_000, { code: 'SCAN_PENDING', message: 'waiting' });
      clock.advance(5_000);

      expect(journal.recordScans([scanOf(1), scanOf(2)])).toEqual([[accepted?.id], []]);
      expect(journal.nextDueAt()).toBe(clock.now());
      expect(journal.claim(1)[0]?.id).toBe(accepted?.id);
      const { registry, repository, digest } = pushEvent(1);
      expect(journal.scanResult(registry, repository, digest)).toEqual(CLEAN);
    });

    it('wakes only pushes that wait: a pending push keeps its own due time', () => {
      journal.accept([pushEvent(1)]);
      const [entry] = journal.claim(1);
      journal.retry(entry?.id ?? '', { code: 'UNAVAILABLE', message: '503' }, clock.now() + 9_000);

      expect(journal.recordScans([scanOf(1)])).toEqual([[]]);
      expect(journal.nextDueAt()).toBe(clock.now() + 9_000);
    });
  });

  describe('scan results', () => {
    it('keeps the latest result per image', () => {
      const failed: ScanResult = { $case: 'failed', scanner: 'harbor', detail: 'Harbor scan status Error' };
      journal.recordScans([scanOf(1, failed)]);
      journal.recordScans([scanOf(1, CLEAN)]);
      const { registry, repository, digest } = pushEvent(1);
      expect(journal.scanResult(registry, repository, digest)).toEqual(CLEAN);
      expect(journal.scanResult(registry, 'team-b/app', digest)).toBeUndefined();
    });

    it('forgets results after 30 days', () => {
      journal.recordScans([scanOf(1)]);
      clock.advance(31 * 24 * 3600 * 1000);
      journal.recordScans([scanOf(2)]);
      const { registry, repository, digest } = pushEvent(1);
      expect(journal.scanResult(registry, repository, digest)).toBeUndefined();
    });

    it('survives a restart', () => {
      journal.recordScans([scanOf(1)]);
      journal.close();
      journal = Journal.open(file, { clock: clock.now });
      const { registry, repository, digest } = pushEvent(1);
      expect(journal.scanResult(registry, repository, digest)).toEqual(CLEAN);
    });

    it.each(['not json', '{"$case":"complete"}', '{"$case":"failed"}', 'null'])(
      'reads a stored result it cannot understand (%s) as absent',
      (json) => {
        expect(decodeScan(json)).toBeUndefined();
      },
    );
  });

  it('keeps the pusher of a journaled push', () => {
    journal.accept([pushEvent(1, { pushedBy: 'ci-bot' })]);
    expect(journal.claim(1)[0]?.event.pushedBy).toBe('ci-bot');
  });
});

describe('a version-1 journal (before scan waits)', () => {
  // The version-1 schema, as Signet 0.1 wrote it: no `waiting` column, no scan results.
  const V1 = `
CREATE TABLE entries (
  id TEXT PRIMARY KEY, registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
  tag TEXT NOT NULL, event TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running')),
  attempts INTEGER NOT NULL, first_seen_at INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL,
  last_error_code TEXT, last_error_message TEXT
);
CREATE UNIQUE INDEX entries_image ON entries (registry, repository, digest, tag);
CREATE INDEX entries_due ON entries (state, next_attempt_at);
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY, registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
  tag TEXT NOT NULL, event TEXT NOT NULL, attempts INTEGER NOT NULL, first_seen_at INTEGER NOT NULL,
  failed_at INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
  permanent INTEGER NOT NULL CHECK (permanent IN (0, 1))
);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at);
`;

  it('is migrated on open: its pending push is claimed and signed as before', async () => {
    const { dir, cleanup } = await tempDir();
    const file = join(dir, 'journal.db');
    const raw = new Database(file);
    raw.exec(V1);
    raw.pragma('user_version = 1');
    const event = pushEvent(7, { tag: 'v1' });
    raw
      .prepare(
        `INSERT INTO entries (id, registry, repository, digest, tag, event, state, attempts, first_seen_at,
           next_attempt_at) VALUES ('old', ?, ?, ?, 'v1', ?, 'pending', 2, 1000, 1000)`,
      )
      .run(event.registry, event.repository, event.digest, JSON.stringify(event));
    raw.close();
    try {
      const journal = Journal.open(file);
      try {
        expect(journal.claim(1)).toEqual([
          expect.objectContaining({ id: 'old', attempts: 2, event, firstSeenAt: 1000 }),
        ]);
        expect(journal.waiting()).toBe(0);
      } finally {
        journal.close();
      }
      const check = new Database(file, { readonly: true });
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      check.close();
    } finally {
      await cleanup();
    }
  });
});
