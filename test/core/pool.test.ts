import { mapBounded } from '../../lib/core/pool';

describe('mapBounded', () => {
  it('keeps the item order and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const results = await mapBounded([5, 1, 4, 2, 3], 2, async (n, i) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, n));
      running--;
      return `${i}:${n}`;
    });
    expect(results).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3']);
    expect(most).toBe(2);
  });

  it('starts nothing more once the signal aborts, and lets the items in flight finish', async () => {
    const abort = new AbortController();
    const started: number[] = [];
    const results = await mapBounded(
      [0, 1, 2, 3, 4, 5],
      2,
      async (n) => {
        started.push(n);
        if (n === 1) abort.abort();
        await Promise.resolve();
        return n;
      },
      abort.signal,
    );
    expect(started).toEqual([0, 1]);
    expect(results.slice(0, 2)).toEqual([0, 1]);
    expect(2 in results).toBe(false);
  });

  it('answers an empty list with an empty list', async () => {
    expect(await mapBounded([], 4, () => Promise.resolve(1))).toEqual([]);
  });
});
