import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { JournalError } from '../../lib/journal/errors';
import { Journal } from '../../lib/journal/store';
import { tempDir } from './helpers';

const ROOT = resolve(__dirname, '..', '..');
const CHILD = join(__dirname, 'crash-child.ts');

/** Starts crash-child.ts and resolves with the ids it claimed once it printed "accepted". */
function startChild(
  file: string,
  accepts: number,
  claims: number,
): Promise<{ child: ChildProcess; claimed: string[] }> {
  const child = spawn(
    process.execPath,
    ['-r', '@swc-node/register', CHILD, file, String(accepts), String(claims)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolvePromise, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = /^accepted ?(.*)\n/m.exec(stdout);
      if (line) resolvePromise({ child, claimed: line[1] ? line[1].split(',') : [] });
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`child exited early (${code ?? signal}): ${stderr}`)),
    );
  });
}

/** SIGKILLs the child and waits until it is reaped, so that its pid is dead. */
function kill(child: ChildProcess): Promise<NodeJS.Signals | null> {
  return new Promise((resolvePromise) => {
    child.once('exit', (_code, signal) => resolvePromise(signal));
    child.kill('SIGKILL');
  });
}

describe('when the journal owner is killed with SIGKILL', () => {
  const N = 50;
  let cleanup: () => Promise<void>;
  let file: string;

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    file = join(temp.dir, 'journal.db');
  });

  afterEach(() => cleanup());

  describe('after accepting pushes', () => {
    it('keeps every accepted push, pending, for the next owner', async () => {
      const { child } = await startChild(file, N, 0);

      // While it lives, the child owns the journal; a reader still sees its work.
      expect(() => Journal.open(file)).toThrowWithCode(JournalError, 'JOURNAL_LOCKED');
      const reader = Journal.openReadOnly(file);
      expect(reader.depth()).toEqual({ pending: N, running: 0, deadLetters: 0 });
      reader.close();

      expect(await kill(child)).toBe('SIGKILL');
      expect(readFileSync(`${file}.lock`, 'utf8').trim()).toBe(String(child.pid));

      const journal = Journal.open(file);
      try {
        expect(journal.depth()).toEqual({ pending: N, running: 0, deadLetters: 0 });
        expect(journal.claim(N + 1)).toHaveLength(N);
      } finally {
        journal.close();
      }
    });
  });

  describe('while entries were claimed (running)', () => {
    it('makes them pending again', async () => {
      const { child, claimed } = await startChild(file, N, 10);
      expect(claimed).toHaveLength(10);

      await kill(child);

      const journal = Journal.open(file);
      try {
        expect(journal.depth()).toEqual({ pending: N, running: 0, deadLetters: 0 });
        const entries = journal.claim(N);
        const recovered = entries.filter((entry) => claimed.includes(entry.id));
        expect(recovered).toHaveLength(10);
        for (const entry of recovered) {
          expect(entry).toMatchObject({ attempts: 1, lastError: { code: 'INTERRUPTED' } });
        }
      } finally {
        journal.close();
      }
    });
  });
});
