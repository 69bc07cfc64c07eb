/**
 * Per-key waiting locks. Two calls for the same volume (by name or by id) wait for
 * each other instead of failing with ABORTED: the second one then sees the first's
 * result, which is what makes retried CreateVolume and DeleteVolume calls idempotent.
 *
 * A call made while its caller already holds a key does not wait for that key again: the
 * node's expansion holds the volume's lock and grows the LV through the engine, which takes
 * the same lock. What is held follows the async call chain (AsyncLocalStorage) and stops
 * counting the moment the holder releases it, so work a holder left running cannot use it.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** Keys one withKeys call holds, inside whatever its caller held. */
interface Holding {
  keys: ReadonlySet<string>;
  outer: Holding | undefined;
  live: boolean;
}

export class KeyedLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly holding = new AsyncLocalStorage<Holding>();

  /** Runs fn while holding every key. Keys are taken in sorted order so two callers asking for overlapping sets cannot deadlock. */
  async withKeys<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const outer = this.holding.getStore();
    const unique = [...new Set(keys)].filter((key) => !held(outer, key)).sort();
    const mine: Holding = { keys: new Set(unique), outer, live: true };
    const releases: Array<() => void> = [];
    try {
      for (const key of unique) releases.push(await this.acquire(key));
      return await this.holding.run(mine, fn);
    } finally {
      mine.live = false;
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

/** Whether this call chain holds the key now (a released holding no longer counts). */
function held(holding: Holding | undefined, key: string): boolean {
  for (let h = holding; h; h = h.outer) if (h.live && h.keys.has(key)) return true;
  return false;
}
