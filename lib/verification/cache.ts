/**
 * The two memories verification keeps between requests: a bounded, expiring cache of positive
 * results (LRU by Map insertion order), and single-flight for work already under way.
 */

/** A size-bounded cache whose entries expire `ttlMs` after they were stored. */
export class TtlLruCache<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly expiresAt: number }>();

  /**
   * @param ttlMs how long an entry lives; 0 disables the cache (nothing is stored).
   * @param maxEntries the bound; the least recently used entry goes first.
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Re-insert: Map iteration order is insertion order, so the oldest-used entry stays first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0 || this.maxEntries <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Runs one piece of work per key at a time: callers asking for a key whose work is in flight get
 * the same promise. The key is forgotten as soon as the work settles, so failures are not kept.
 */
export class SingleFlight<V> {
  private readonly inFlight = new Map<string, Promise<V>>();

  run(key: string, work: () => Promise<V>): Promise<V> {
    const existing = this.inFlight.get(key);
    if (existing !== undefined) return existing;
    // `work` starts on the next microtask, after the promise is registered, so even work that
    // fails synchronously is forgotten properly.
    const promise: Promise<V> = Promise.resolve()
      .then(work)
      .finally(() => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
      });
    this.inFlight.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.inFlight.size;
  }
}
