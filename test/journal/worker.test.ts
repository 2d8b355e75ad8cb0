import { join } from 'node:path';
import { jsonLogger } from '../../lib/core/logger';
import { Journal } from '../../lib/journal/store';
import type { JournalEntry } from '../../lib/journal/types';
import { type AttemptResult, JournalWorker, type JournalWorkerOptions } from '../../lib/journal/worker';
import { fakeClock, type FakeClock, pushEvent, tempDir } from './helpers';

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
};

const DONE: AttemptResult = { $case: 'done' };

describe('JournalWorker', () => {
  let cleanup: () => Promise<void>;
  let file: string;
  let clock: FakeClock;
  let journal: Journal;
  let worker: JournalWorker | undefined;
  let logs: Record<string, unknown>[];

  const startWorker = (options: JournalWorkerOptions): JournalWorker => {
    worker = new JournalWorker(journal, {
      clock: clock.now,
      logger: jsonLogger('debug', (line) => logs.push(JSON.parse(line) as Record<string, unknown>)),
      ...options,
    });
    worker.start();
    return worker;
  };

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    file = join(temp.dir, 'journal.db');
    clock = fakeClock();
    journal = Journal.open(file, { clock: clock.now });
    logs = [];
  });

  afterEach(async () => {
    await worker?.stop(0);
    worker = undefined;
    journal.close();
    await cleanup();
  });

  describe('when every attempt succeeds', () => {
    it('drains pending work from before it started and work it is notified of', async () => {
      const seen: string[] = [];
      journal.accept([pushEvent(1), pushEvent(2)]);
      const running = startWorker({ process: async (entry) => (seen.push(entry.event.digest), DONE) });
      await running.whenIdle();

      journal.accept([pushEvent(3)]);
      running.notify();
      await running.whenIdle();

      expect(seen).toEqual([1, 2, 3].map((n) => pushEvent(n).digest));
      expect(journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
    });
  });

  describe('with more work than concurrency', () => {
    it('never runs more attempts at once than the bound', async () => {
      let active = 0;
      let most = 0;
      journal.accept(Array.from({ length: 20 }, (_, n) => pushEvent(n)));
      const running = startWorker({
        concurrency: 3,
        process: async () => {
          most = Math.max(most, ++active);
          await new Promise((resolve) => setTimeout(resolve, 2));
          active--;
          return DONE;
        },
      });

      await running.whenIdle();

      expect(most).toBe(3);
      expect(journal.depth().pending).toBe(0);
    });
  });

  describe('when attempts keep failing transiently', () => {
    it('retries with exponential backoff, then dead-letters after maxAttempts', async () => {
      const delays: number[] = [];
      const retry = journal.retry.bind(journal);
      jest.spyOn(journal, 'retry').mockImplementation((id, failure, nextAttemptAt) => {
        delays.push(nextAttemptAt - clock.now());
        retry(id, failure, nextAttemptAt);
      });
      let calls = 0;
      const [accepted] = journal.accept([pushEvent(1, { tag: 'v1' })]);
      const running = startWorker({
        maxAttempts: 4,
        backoff: { baseMs: 100, maxMs: 250 },
        random: () => 0.5,
        process: async () => (calls++, { $case: 'retry', code: 'UNAVAILABLE', message: 'registry down' }),
      });

      for (let round = 1; round <= 4; round++) {
        await running.whenIdle();
        // Not due before the backoff has passed.
        expect(calls).toBe(round);
        clock.advance(1_000);
        running.notify();
      }
      await running.whenIdle();

      // Half (the jitter) of 100, 200, then 400 capped at 250.
      expect(delays).toEqual([50, 100, 125]);
      expect(calls).toBe(4);
      expect(journal.deadLetters()).toEqual([
        expect.objectContaining({ id: accepted!.id, attempts: 4, code: 'UNAVAILABLE', permanent: false }),
      ]);
      expect(logs).toContainEqual(
        expect.objectContaining({
          level: 'error',
          entryId: accepted!.id,
          image: `127.0.0.1:5000/team-a/app:v1@${pushEvent(1).digest}`,
          code: 'UNAVAILABLE',
        }),
      );
    });
  });

  describe('when an attempt fails permanently', () => {
    it('dead-letters the entry at once', async () => {
      const attempt = jest.fn(async (): Promise<AttemptResult> => ({
        $case: 'failed',
        code: 'DENIED',
        message: 'no rights',
      }));
      journal.accept([pushEvent(1)]);

      await startWorker({ process: attempt }).whenIdle();

      expect(attempt).toHaveBeenCalledTimes(1);
      expect(journal.deadLetters()).toEqual([
        expect.objectContaining({ attempts: 1, code: 'DENIED', permanent: true }),
      ]);
    });
  });

  describe('when process throws', () => {
    it('counts it as a transient INTERNAL failure and keeps going', async () => {
      const unhandled = jest.fn();
      process.on('unhandledRejection', unhandled);
      const retry = jest.spyOn(journal, 'retry');
      let calls = 0;
      journal.accept([pushEvent(1), pushEvent(2)]);
      try {
        await startWorker({
          random: () => 0,
          process: (entry: JournalEntry) => {
            calls++;
            if (entry.attempts > 0) return Promise.resolve(DONE);
            if (entry.event.digest === pushEvent(1).digest) throw new Error('synchronous bug');
            return Promise.reject(new Error('asynchronous bug'));
          },
        }).whenIdle();
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('unhandledRejection', unhandled);
      }

      expect(retry).toHaveBeenCalledTimes(2);
      expect(retry).toHaveBeenCalledWith(
        expect.any(String),
        expect.objectContaining({ code: 'INTERNAL' }),
        clock.now(),
      );
      expect(calls).toBe(4);
      expect(journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
      expect(unhandled).not.toHaveBeenCalled();
    });
  });

  describe('when an entry was interrupted by crashes until no attempt is left', () => {
    it('dead-letters it without running it again', async () => {
      journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.close();
      journal = Journal.open(file, { clock: clock.now });
      const attempt = jest.fn(async () => DONE);

      await startWorker({ maxAttempts: 1, process: attempt }).whenIdle();

      expect(attempt).not.toHaveBeenCalled();
      expect(journal.deadLetters()).toEqual([
        expect.objectContaining({ code: 'INTERRUPTED', permanent: false }),
      ]);
    });
  });

  describe('stop', () => {
    it('stops claiming and waits for attempts in flight', async () => {
      const gate = deferred<AttemptResult>();
      let calls = 0;
      journal.accept([pushEvent(1)]);
      const running = startWorker({ process: () => (calls++, gate.promise) });
      await until(() => calls === 1);

      let stopped = false;
      const stopping = running.stop(5_000).then(() => (stopped = true));
      journal.accept([pushEvent(2)]);
      running.notify();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(stopped).toBe(false);

      gate.resolve(DONE);
      await stopping;

      expect(calls).toBe(1);
      expect(journal.depth()).toEqual({ pending: 1, running: 0, deadLetters: 0 });
    });

    it('gives up after the grace period, leaving the attempt to recovery', async () => {
      let calls = 0;
      journal.accept([pushEvent(1)]);
      const running = startWorker({ process: () => (calls++, new Promise<AttemptResult>(() => undefined)) });
      await until(() => calls === 1);

      await running.stop(5);

      expect(journal.depth()).toEqual({ pending: 0, running: 1, deadLetters: 0 });
      expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', running: 1 }));
    });
  });

  describe('when the journal cannot record an outcome', () => {
    it('logs and survives', async () => {
      journal.accept([pushEvent(1)]);
      const running = startWorker({
        backoff: { baseMs: 1, maxMs: 1 },
        process: async () => (journal.close(), DONE),
      });

      await until(() => logs.some((log) => log['message'] === 'journal worker cannot record an attempt'));
      await until(() =>
        logs.some((log) => log['message'] === 'journal worker cannot read the journal; trying again'),
      );
      await running.stop(0);
    });
  });

  describe('whenIdle', () => {
    it('resolves at once when nothing is due', async () => {
      const [accepted] = journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.retry(accepted!.id, { code: 'UNAVAILABLE', message: 'down' }, clock.now() + 60_000);

      await expect(startWorker({ process: async () => DONE }).whenIdle()).resolves.toBeUndefined();
    });
  });
});
