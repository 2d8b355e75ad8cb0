/**
 * The SQLite ledger, in a journal's file: the shared behaviour (behaviour.ts), and what only the
 * local store does: who may write, reading while the service writes, and schema versions.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Journal } from '../../lib/journal';
import { LedgerError } from '../../lib/ledger/errors';
import { SqliteLedger } from '../../lib/ledger/sqlite';
import { RETENTION_DAYS, decision, describeLedgerBehaviour, digestOf, signature } from './behaviour';

let dir: string;
const journals: Journal[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-ledger-'));
});
afterEach(async () => {
  for (const journal of journals.splice(0)) journal.close();
  await rm(dir, { recursive: true, force: true });
});

function ownedJournal(file = join(dir, 'journal.db')): Journal {
  const journal = Journal.open(file);
  journals.push(journal);
  return journal;
}

describe('SqliteLedger', () => {
  describe('as a ledger store', () => {
    describeLedgerBehaviour(() => {
      const ledger = SqliteLedger.open(ownedJournal(), { retentionDays: RETENTION_DAYS });
      return Promise.resolve({ ledger, expire: (now) => ledger.prune(now) });
    });
  });

  describe('when the journal is not opened as its owner', () => {
    it('refuses to open the ledger for writing', () => {
      const file = join(dir, 'journal.db');
      ownedJournal(file);
      const reader = Journal.openReadOnly(file);
      journals.push(reader);
      expect(() => SqliteLedger.open(reader, { retentionDays: 1 })).toThrowWithCode(
        LedgerError,
        'LEDGER_WRITE_FAILED',
      );
    });
  });

  describe('when the CLI reads it read-only', () => {
    it('reads a file that does not exist, or has no ledger yet, as an empty ledger', async () => {
      const missing = SqliteLedger.openReadOnly(join(dir, 'missing.db'));
      expect(await missing.signatures({})).toEqual([]);
      expect(await missing.findings()).toEqual([]);
      await missing.close();

      const file = join(dir, 'journal.db');
      ownedJournal(file);
      const empty = SqliteLedger.openReadOnly(file);
      expect(await empty.decisions({})).toEqual([]);
      await empty.close();
    });

    it('sees what the service wrote, and cannot write', async () => {
      const file = join(dir, 'journal.db');
      const writer = SqliteLedger.open(ownedJournal(file), { retentionDays: 1 });
      await writer.write({ signatures: [signature()], decisions: [decision()], admitted: [] });

      const reader = SqliteLedger.openReadOnly(file);
      expect(await reader.signatures({ digest: digestOf(1) })).toEqual([signature()]);
      await expect(
        reader.write({ signatures: [signature({ id: 'x' })], decisions: [], admitted: [] }),
      ).toThrowWithCode(LedgerError, 'LEDGER_WRITE_FAILED');
      await expect(reader.prune(Date.now())).toThrowWithCode(LedgerError, 'LEDGER_WRITE_FAILED');
      await reader.close();
      await writer.close();
    });
  });

  describe('when a newer Signet wrote the ledger', () => {
    it('refuses it with LEDGER_VERSION', async () => {
      const file = join(dir, 'journal.db');
      const writer = SqliteLedger.open(ownedJournal(file), { retentionDays: 1 });
      await writer.close();
      const db = new Database(file);
      db.prepare('UPDATE ledger_schema SET version = 99').run();
      db.close();
      expect(() => SqliteLedger.openReadOnly(file)).toThrowWithCode(LedgerError, 'LEDGER_VERSION');
    });
  });

  describe('when opened again', () => {
    it('keeps its records and does not migrate twice', async () => {
      const file = join(dir, 'journal.db');
      const first = SqliteLedger.open(ownedJournal(file), { retentionDays: 1 });
      await first.write({ signatures: [signature()], decisions: [], admitted: [] });
      await first.close();
      const second = SqliteLedger.open(journals[0] as Journal, { retentionDays: 1 });
      expect(await second.signatures({})).toHaveLength(1);
      await second.close();
    });
  });

  describe('when closed', () => {
    it('rejects reads with a LedgerError, and closing twice is harmless', async () => {
      const ledger = SqliteLedger.open(ownedJournal(), { retentionDays: 1 });
      await ledger.close();
      await ledger.close();
      await expect(ledger.signatures({})).toThrowWithCode(LedgerError, 'LEDGER_UNREADABLE');
    });
  });
});
