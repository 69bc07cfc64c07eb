/**
 * Removes a tag from LVs of one volume group in as few `lvchange` runs as it can (a group
 * commit). A removal runs in its allocation domain's turn (context.ts `allocating`: the lock
 * every lvcreate in that VG or thin pool holds), and when its turn comes it takes with it every
 * removal that arrived while it waited: one lvchange naming them all. With nothing else queued
 * the first removal runs at once, alone.
 *
 * Why: each lvchange is a process, a scan and a VG metadata commit under LVM's VG lock. When
 * many pods start on a node at once (issue 20, the storm), every first stage removes its
 * volume's format-in-progress mark; one lvchange each, interleaved with the lvcreates of the
 * volumes still being made, doubled the LVM work and put every mount behind it. In the domain's
 * queue the removals wait for the creates asked before them and then go together.
 *
 * A batch LVM refuses (an LV deleted meanwhile, say) is run again one LV at a time, so each
 * caller gets its own LV's outcome and one missing LV fails nobody else.
 */
export type RemoveTag = (vg: string, names: readonly string[], tag: string) => Promise<void>;
/** Runs `fn` in the domain's turn (EngineContext.allocating). */
export type InTurn = (domain: string, fn: () => Promise<void>) => Promise<void>;

interface Waiting {
  name: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class TagRemovals {
  /** Per domain, VG and tag: the removals waiting for the next lvchange. */
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly running = new Set<string>();

  constructor(
    private readonly removeTag: RemoveTag,
    private readonly inTurn: InTurn,
  ) {}

  /** `domain` is the LV's allocation domain (context.ts allocationDomain). */
  remove(domain: string, vg: string, name: string, tag: string): Promise<void> {
    const key = `${domain}\u0000${vg}\u0000${tag}`;
    return new Promise<void>((resolve, reject) => {
      const queue = this.waiting.get(key) ?? [];
      queue.push({ name, resolve, reject });
      this.waiting.set(key, queue);
      if (!this.running.has(key)) void this.drain(key, domain, vg, tag);
    });
  }

  private async drain(key: string, domain: string, vg: string, tag: string): Promise<void> {
    this.running.add(key);
    try {
      while (this.waiting.get(key)?.length) {
        // The batch is taken when the turn comes, not when it was asked for: all that waited go.
        await this.inTurn(domain, async () => {
          const batch = this.waiting.get(key) ?? [];
          this.waiting.delete(key);
          if (batch.length > 0) await this.run(vg, tag, batch);
        });
      }
    } catch (error) {
      // inTurn itself failed (it does not in loam): nobody waiting may hang.
      for (const w of this.waiting.get(key) ?? []) w.reject(error);
      this.waiting.delete(key);
    } finally {
      this.running.delete(key);
    }
  }

  private async run(vg: string, tag: string, batch: readonly Waiting[]): Promise<void> {
    const names = [...new Set(batch.map((w) => w.name))];
    try {
      await this.removeTag(vg, names, tag);
      for (const w of batch) w.resolve();
      return;
    } catch (error) {
      if (names.length === 1) {
        for (const w of batch) w.reject(error);
        return;
      }
    }
    for (const name of names) {
      const mine = batch.filter((w) => w.name === name);
      try {
        await this.removeTag(vg, [name], tag);
        for (const w of mine) w.resolve();
      } catch (error) {
        for (const w of mine) w.reject(error);
      }
    }
  }
}
