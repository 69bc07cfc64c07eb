/**
 * What one node process knows of its volumes' format-in-progress marks (metadata.ts,
 * FORMATTING_TAG; docs/node.md, "An interrupted format"), and the removals it has under way.
 *
 * A stage that formatted a volume starts the mark's removal when mkfs finished and mounts
 * without waiting for it; NodePublishVolume calls `settle`, which answers only once the mark
 * is off, before the workload can write. Under a storm the removals wait for the lvcreates
 * queued before them (tag-removals.ts) and the mounts no longer wait with them.
 */
import type { Volume } from "./volume.js";
import { type FormatMark, type HostCallOptions, type NodeEngine, hostStep } from "./node-host.js";

export class FormatMarks {
  /** Volumes this process knows carry no mark (found without it, or it took it off). */
  private readonly unmarked = new Set<string>();
  /** Removals started by a stage and not yet confirmed. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(
    private readonly engine: NodeEngine,
    private readonly volumeOf: (id: string, options: HostCallOptions) => Promise<Volume>,
  ) {}

  /**
   * The marks a stage of `volume` uses: `now` removes the mark before it answers (a raw block
   * volume, written through as soon as it is published); `afterMount` starts the removal and
   * returns at once (a filesystem, mounted next; publish settles it).
   */
  forStage(
    volume: Pick<Volume, "id" | "formatting">,
    options: HostCallOptions,
  ): { now: FormatMark; afterMount: FormatMark } {
    const { id } = volume;
    if (!volume.formatting && !this.removing.has(id)) this.unmarked.add(id);
    const now: FormatMark = {
      marked: volume.formatting,
      add: () => {
        this.unmarked.delete(id);
        return this.engine.markFormatting(id, options);
      },
      // Not the caller's signal: once mkfs finished, clearing the mark saves the retry a format.
      clear: async () => {
        await this.engine.clearFormatting(id);
        this.unmarked.add(id);
      },
    };
    const afterMount: FormatMark = {
      ...now,
      clear: () => {
        this.removeLater(id);
        return Promise.resolve();
      },
    };
    return { now, afterMount };
  }

  /**
   * A staged volume still marked: its format finished (loam mounts only after mkfs) and the
   * removal did not; started again unless one is under way.
   */
  staged(volume: Pick<Volume, "id" | "formatting">): void {
    if (volume.formatting && !this.removing.has(volume.id)) this.removeLater(volume.id);
  }

  /**
   * Resolves once the volume carries no mark: waits for the removal its stage started (and
   * runs it again if that failed), or, when this process does not know (restarted since the
   * stage), reads the volume and removes a mark it still carries.
   */
  async settle(id: string, options: HostCallOptions): Promise<void> {
    const pending = this.removing.get(id);
    if (pending) {
      try {
        await pending;
        return;
      } catch {
        if (this.removing.get(id) === pending) this.removing.delete(id);
      }
    } else if (this.unmarked.has(id)) {
      return;
    } else if (!(await this.volumeOf(id, options)).formatting) {
      this.unmarked.add(id);
      return;
    }
    await hostStep(`unmarking volume ${id}`, () => this.engine.clearFormatting(id));
    this.unmarked.add(id);
  }

  /** Waits for a removal under way, whatever its outcome (unstage: the volume's tags are then final). */
  async quiet(id: string): Promise<void> {
    await this.removing.get(id)?.catch(() => undefined);
  }

  /**
   * Takes the mark off in the background. Whatever happens to the removal, the volume holds
   * only a filesystem no workload was given until `settle` confirms it: a restarted loam that
   * finds the mark formats again.
   */
  private removeLater(id: string): void {
    this.unmarked.delete(id);
    const removal = this.engine.clearFormatting(id).then(() => {
      if (this.removing.get(id) !== removal) return;
      this.removing.delete(id);
      this.unmarked.add(id);
    });
    // Observed by settle and quiet; a failure here is retried by settle.
    removal.catch(() => undefined);
    this.removing.set(id, removal);
  }
}
