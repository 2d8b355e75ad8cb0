import { SingleFlight, TtlLruCache } from '../../lib/verification/cache';

describe('TtlLruCache', () => {
  it('expires entries after the TTL', () => {
    let now = 0;
    const cache = new TtlLruCache<string>(1000, 10, () => now);
    cache.set('a', 'A');
    now = 999;
    expect(cache.get('a')).toBe('A');
    now = 1000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry beyond the bound', () => {
    const cache = new TtlLruCache<string>(60_000, 2);
    cache.set('a', 'A');
    cache.set('b', 'B');
    cache.get('a');
    cache.set('c', 'C');
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe('A');
    expect(cache.get('c')).toBe('C');
  });

  it('stores nothing with a TTL of 0', () => {
    const cache = new TtlLruCache<string>(0, 10);
    cache.set('a', 'A');
    expect(cache.get('a')).toBeUndefined();
  });
});

describe('SingleFlight', () => {
  it('shares work in flight and forgets it when settled', async () => {
    const flight = new SingleFlight<number>();
    let runs = 0;
    const work = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
      return runs;
    };
    const [a, b] = await Promise.all([flight.run('k', work), flight.run('k', work)]);
    expect([a, b, runs]).toEqual([1, 1, 1]);
    expect(flight.size).toBe(0);
    await flight.run('k', work);
    expect(runs).toBe(2);
  });

  it('forgets failures, even synchronous ones', async () => {
    const flight = new SingleFlight<number>();
    await expect(
      flight.run('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(flight.size).toBe(0);
    await expect(flight.run('k', async () => 7)).resolves.toBe(7);
  });
});
