import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JournalError } from '../../lib/journal/errors';
import { SCHEMA_VERSION } from '../../lib/journal/schema';
import { Journal } from '../../lib/journal/store';
import { pushEvent, tempDir } from './helpers';

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid;
}

describe('Journal.open', () => {
  let cleanup: () => Promise<void>;
  let dir: string;
  let file: string;
  const opened: Journal[] = [];
  const open = (path = file, options?: Parameters<typeof Journal.open>[1]): Journal => {
    const journal = Journal.open(path, options);
    opened.push(journal);
    return journal;
  };

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    dir = temp.dir;
    file = join(dir, 'state', 'journal.db');
  });

  afterEach(async () => {
    for (const journal of opened.splice(0)) journal.close();
    await cleanup();
  });

  describe('when nothing exists yet', () => {
    it('creates a private directory and file, in WAL mode, at the current schema', () => {
      open().accept([pushEvent(1)]);

      expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const raw = new Database(file, { readonly: true });
      try {
        expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
        expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      } finally {
        raw.close();
      }
    });
  });

  describe('when the journal is already open in this process', () => {
    it('refuses with JOURNAL_LOCKED, and opens again once closed', () => {
      const first = open();

      expect(() => open()).toThrowWithCode(JournalError, 'JOURNAL_LOCKED');
      first.close();
      expect(() => open()).not.toThrow();
    });
  });

  describe('when a lock file names a dead process', () => {
    it('takes the lock over', () => {
      open().close();
      writeFileSync(`${file}.lock`, `${deadPid()}\n`);

      open();

      expect(readFileSync(`${file}.lock`, 'utf8').trim()).toBe(String(process.pid));
    });
  });

  describe('when a lock file names our own pid but this process does not hold it', () => {
    it('takes it over (a container restarts its service under the same pid)', () => {
      open().close();
      writeFileSync(`${file}.lock`, `${process.pid}\n`);

      expect(() => open()).not.toThrow();
    });
  });

  describe('when a lock file names a live process', () => {
    it('refuses with JOURNAL_LOCKED', () => {
      open().close();
      // pid 1 (init) is always alive.
      writeFileSync(`${file}.lock`, '1\n');

      expect(() => open()).toThrowWithCode(JournalError, 'JOURNAL_LOCKED');
    });
  });

  describe('close', () => {
    it('removes the lock file and may be called twice', () => {
      const journal = open();

      journal.close();
      journal.close();

      expect(existsSync(`${file}.lock`)).toBe(false);
    });
  });

  describe('when the file is not a database', () => {
    it('refuses with JOURNAL_UNREADABLE and releases the lock', () => {
      open().close();
      writeFileSync(file, 'this is not SQLite '.repeat(100));

      expect(() => open()).toThrowWithCode(JournalError, 'JOURNAL_UNREADABLE');
      expect(existsSync(`${file}.lock`)).toBe(false);
    });
  });

  describe('when a newer Signet wrote the journal', () => {
    beforeEach(() => {
      open().close();
      const raw = new Database(file);
      raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      raw.close();
    });

    it('refuses with JOURNAL_VERSION', () => {
      expect(() => open()).toThrowWithCode(JournalError, 'JOURNAL_VERSION');
      expect(existsSync(`${file}.lock`)).toBe(false);
    });

    it('refuses a read-only open too', () => {
      expect(() => Journal.openReadOnly(file)).toThrowWithCode(JournalError, 'JOURNAL_VERSION');
    });
  });

  describe('when SQLite cannot write', () => {
    it('maps a held write lock to JOURNAL_WRITE_FAILED, keeping the cause', () => {
      const journal = open(file, { busyTimeoutMs: 10 });
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      try {
        let thrown: unknown;
        try {
          journal.accept([pushEvent(1)]);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(JournalError);
        expect(thrown).toMatchObject({ code: 'JOURNAL_WRITE_FAILED', cause: { code: 'SQLITE_BUSY' } });
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      expect(journal.accept([pushEvent(1)])[0]?.duplicate).toBe(false);
    });

    it('maps a closed connection to JOURNAL_WRITE_FAILED', () => {
      const journal = open();
      journal.close();

      expect(() => journal.accept([pushEvent(1)])).toThrowWithCode(JournalError, 'JOURNAL_WRITE_FAILED');
    });

    it('maps an uncreatable directory to JOURNAL_WRITE_FAILED', () => {
      writeFileSync(join(dir, 'a-file'), '');

      expect(() => open(join(dir, 'a-file', 'journal.db'))).toThrowWithCode(
        JournalError,
        'JOURNAL_WRITE_FAILED',
      );
    });
  });
});

describe('Journal.openReadOnly', () => {
  let cleanup: () => Promise<void>;
  let file: string;

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    file = join(temp.dir, 'journal.db');
  });

  afterEach(() => cleanup());

  describe('while the owner holds the journal open', () => {
    it('reads what the owner wrote, and refuses writes', () => {
      const owner = Journal.open(file);
      try {
        const [accepted] = owner.accept([pushEvent(1), pushEvent(2)]);
        owner.claim(1);
        owner.deadLetter(accepted!.id, { code: 'DENIED', message: 'no', permanent: true });

        const reader = Journal.openReadOnly(file);
        try {
          expect(reader.readOnly).toBe(true);
          expect(reader.depth()).toEqual({ pending: 1, running: 0, deadLetters: 1 });
          expect(reader.deadLetters().map((d) => d.id)).toEqual([accepted!.id]);
          expect(() => reader.requeue()).toThrowWithCode(JournalError, 'JOURNAL_WRITE_FAILED');
          expect(() => reader.accept([pushEvent(3)])).toThrowWithCode(JournalError, 'JOURNAL_WRITE_FAILED');
        } finally {
          reader.close();
        }
        // The reader took no lock, so closing it released nothing of the owner's.
        expect(existsSync(`${file}.lock`)).toBe(true);
      } finally {
        owner.close();
      }
    });
  });

  describe('after the owner closed the journal', () => {
    it('still reads it', () => {
      const owner = Journal.open(file);
      owner.accept([pushEvent(1)]);
      owner.close();

      const reader = Journal.openReadOnly(file);
      try {
        expect(reader.depth()).toEqual({ pending: 1, running: 0, deadLetters: 0 });
      } finally {
        reader.close();
      }
    });
  });

  describe('when there is no journal', () => {
    it('refuses with JOURNAL_UNREADABLE', () => {
      expect(() => Journal.openReadOnly(file)).toThrowWithCode(JournalError, 'JOURNAL_UNREADABLE');
    });
  });
});
