/**
 * Per-key waiting locks. Two calls for the same volume (by name or by id) wait for
 * each other instead of failing with ABORTED: the second one then sees the first's
 * result, which is what makes retried CreateVolume and DeleteVolume calls idempotent.
 */
export class KeyedLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs fn while holding every key. Keys are taken in sorted order so two callers asking for overlapping sets cannot deadlock. */
  async withKeys<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const key of unique) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** Number of keys currently held or waited on; used by tests to check nothing leaks. */
  get size(): number {
    return this.tails.size;
  }

  private async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      // Only the last waiter in the chain removes the entry, so the map does not grow.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
