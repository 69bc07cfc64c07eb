/**
 * Removes a tag from LVs of one volume group in as few `lvchange` runs as it can (a group
 * commit): the first removal runs at once; one asked while another runs for the same VG and
 * tag waits for it, then goes with every other that arrived meanwhile in one lvchange naming
 * them all.
 *
 * Why: each lvchange is a process, a scan and a VG metadata commit under the VG lock. When
 * many pods start on a node at once, every first stage removes its volume's format-in-progress
 * mark; one lvchange each doubled the LVM work of the lvcreates themselves, and each volume's
 * mount waited its turn in that queue (issue 20, the storm).
 *
 * A batch LVM refuses (an LV deleted meanwhile, say) is run again one LV at a time, so each
 * caller gets its own LV's outcome and one missing LV fails nobody else.
 */
export type RemoveTag = (vg: string, names: readonly string[], tag: string) => Promise<void>;

interface Waiting {
  name: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class TagRemovals {
  /** Per VG and tag: the removals waiting for the next lvchange. */
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly running = new Set<string>();

  constructor(private readonly removeTag: RemoveTag) {}

  remove(vg: string, name: string, tag: string): Promise<void> {
    const key = `${vg}\u0000${tag}`;
    return new Promise<void>((resolve, reject) => {
      const queue = this.waiting.get(key) ?? [];
      queue.push({ name, resolve, reject });
      this.waiting.set(key, queue);
      if (!this.running.has(key)) void this.drain(key, vg, tag);
    });
  }

  private async drain(key: string, vg: string, tag: string): Promise<void> {
    this.running.add(key);
    try {
      for (let batch = this.waiting.get(key); batch?.length; batch = this.waiting.get(key)) {
        this.waiting.delete(key);
        await this.run(vg, tag, batch);
      }
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
