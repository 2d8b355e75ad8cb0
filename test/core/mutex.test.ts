import { KeyedMutex } from '../../lib/core/mutex';

/** A promise settled from outside. */
function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const KEY = 'ghcr.io/org/app@sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7';
const OTHER = 'ghcr.io/org/app@sha256:778645862e8bba7ad64eabc8f6b51158e47124c12864ed42d7baf744b6329542';

describe('KeyedMutex', () => {
  describe('with work on one key', () => {
    it('runs it one at a time, in arrival order', async () => {
      const mutex = new KeyedMutex();
      const log: string[] = [];
      const gates = [deferred(), deferred(), deferred()];
      const runs = gates.map((gate, i) =>
        mutex.run(KEY, async () => {
          log.push(`start ${i}`);
          await gate.promise;
          log.push(`end ${i}`);
          return i;
        }),
      );

      await settle();
      expect(log).toEqual(['start 0']);
      gates[2]?.resolve();
      gates[1]?.resolve();
      await settle();
      expect(log).toEqual(['start 0']);
      gates[0]?.resolve();

      await expect(Promise.all(runs)).resolves.toEqual([0, 1, 2]);
      expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
    });

    it('never lets two holders overlap', async () => {
      const mutex = new KeyedMutex();
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 20 }, () =>
          mutex.run(KEY, async () => {
            inside++;
            most = Math.max(most, inside);
            await settle();
            inside--;
          }),
        ),
      );
      expect(most).toBe(1);
    });

    it('serializes a read-modify-write', async () => {
      const mutex = new KeyedMutex();
      let layers: string[] = [];
      await Promise.all(
        ['a', 'b', 'c', 'd'].map((layer) =>
          mutex.run(KEY, async () => {
            const read = [...layers];
            await settle();
            layers = [...read, layer];
          }),
        ),
      );
      expect(layers).toEqual(['a', 'b', 'c', 'd']);
    });
  });

  describe('with work on different keys', () => {
    it('runs them in parallel', async () => {
      const mutex = new KeyedMutex();
      const log: string[] = [];
      const gate = deferred();
      const first = mutex.run(KEY, async () => {
        log.push('start key');
        await gate.promise;
      });
      const second = mutex.run(OTHER, async () => {
        log.push('start other');
        await gate.promise;
      });
      await settle();
      expect(log).toEqual(['start key', 'start other']);
      expect(mutex.size).toBe(2);
      gate.resolve();
      await Promise.all([first, second]);
    });
  });

  describe('cleanup', () => {
    it('holds no key once all work is done', async () => {
      const mutex = new KeyedMutex();
      expect(mutex.size).toBe(0);
      const gate = deferred();
      const runs = [
        mutex.run(KEY, () => gate.promise),
        mutex.run(KEY, async () => undefined),
        mutex.run(OTHER, async () => undefined),
      ];
      await settle();
      expect(mutex.size).toBe(1);
      gate.resolve();
      await Promise.all(runs);
      expect(mutex.size).toBe(0);
    });

    it('holds the key while work is queued behind the holder', async () => {
      const mutex = new KeyedMutex();
      const first = deferred();
      const second = deferred();
      const runs = [mutex.run(KEY, () => first.promise), mutex.run(KEY, () => second.promise)];
      first.resolve();
      await settle();
      expect(mutex.size).toBe(1);
      second.resolve();
      await Promise.all(runs);
      expect(mutex.size).toBe(0);
    });
  });

  describe('when the work fails', () => {
    it('rejects with its error and releases the lock for the next holder', async () => {
      const mutex = new KeyedMutex();
      const boom = new Error('boom');
      const failing = mutex.run(KEY, async () => {
        await settle();
        throw boom;
      });
      const next = mutex.run(KEY, async () => 'next ran');
      await expect(failing).rejects.toBe(boom);
      await expect(next).resolves.toBe('next ran');
      expect(mutex.size).toBe(0);
    });

    it('releases the lock when the work throws synchronously', async () => {
      const mutex = new KeyedMutex();
      const boom = new Error('sync');
      const failing = mutex.run(KEY, () => {
        throw boom;
      });
      await expect(failing).rejects.toBe(boom);
      await expect(mutex.run(KEY, async () => 42)).resolves.toBe(42);
      expect(mutex.size).toBe(0);
    });

    it('lets the queue continue after a failure in the middle', async () => {
      const mutex = new KeyedMutex();
      const log: number[] = [];
      const results = await Promise.allSettled([
        mutex.run(KEY, async () => void log.push(1)),
        mutex.run(KEY, async () => {
          log.push(2);
          throw new Error('second');
        }),
        mutex.run(KEY, async () => void log.push(3)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(log).toEqual([1, 2, 3]);
      expect(mutex.size).toBe(0);
    });
  });
});
