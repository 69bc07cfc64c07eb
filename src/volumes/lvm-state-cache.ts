/**
 * `LvmStateCache`: the engine's last read of its volume groups (an `LvmState`, see
 * lvm-state.ts), kept current through loam's own changes, and the decision of when LVM must
 * be read again because anything else may have changed the metadata.
 *
 * A fullreport costs a process start and a scan of every device (half a second and more),
 * and used to run before every operation. Now:
 *  - Before trusting the cached state, the metadata area headers of the VG's physical volumes are
 *    read (src/lvm/metadata-area.ts, about a millisecond). Any commit by anyone — an operator's
 *    lvremove, another tool, vgextend — changes them, and LVM is read again.
 *  - loam's own changes are applied to the cached state by the operation that made them (a new LV,
 *    a removed one, a new size or tag), and the stamp is taken again after them.
 *  - What the stamp cannot see is kernel state: activation (callers check the device node)
 *    and thin pool usage (callers ask device-mapper, see Lvm.thinPoolUsage). A cached state is also
 *    never older than MAX_AGE_MS.
 *  - Free extents per volume group stay exact through loam's own changes; free space per
 *    physical volume does not (LVM picks the PVs), so layouts that depend on it (striped,
 *    raid1) ask for an exact state, which reads again after a thick allocation.
 * The stamp is taken before the report, so a change that lands while the report runs makes
 * the stamp differ next time rather than being missed.
 */
import type { Lvm } from "../lvm/lvm.js";
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { volumeGroupStamp } from "../lvm/metadata-area.js";
import { LvmState } from "./lvm-state.js";

/**
 * What a caller relies on: names, tags and sizes; plus free extents; plus per-PV free space.
 * "named" is a lookup that does not wait for loam's own commands under way: for a caller that
 * checks what it found against the kernel (the device node, the mount table) and whose answer
 * does not depend on the change such a command makes (a publish reading a volume's IO limits
 * while the stage's mark removal runs).
 */
export type Need = "named" | "lookup" | "capacity" | "exact";

/**
 * A change loam made with one LVM command. `extents`: how many of the VG's extents it
 * allocated (negative when it freed some); undefined when not known here.
 */
export type Change =
  | { kind: "created"; lv: LogicalVolume; extents: number | undefined }
  | { kind: "removed"; name: string; extents: number | undefined }
  | { kind: "updated"; name: string; patch: Partial<LogicalVolume>; extents?: number | undefined };

export interface LvmStateCacheOptions {
  /** Upper bound on the age of a cached state, for kernel state the stamp cannot see. */
  maxAgeMs?: number;
  /** The metadata stamp of a set of devices; tests may substitute one. */
  stamp?: (devices: readonly string[]) => Promise<string>;
}

export const MAX_AGE_MS = 30_000;

/** How many of loam's own commands in flight a caller waits for before it reads LVM instead. */
const MAX_FLIGHT_WAITS = 3;

interface Current {
  reports: VolumeGroupReport[];
  /** null: cannot be checked (unreadable PVs, or changed while reading): read again next time. */
  stamp: string | null;
  /** The stamp apply() is taking of its own change: callers meanwhile wait for it rather than read LVM. */
  stamping?: Promise<string | null>;
  readAt: number;
  exact: boolean;
}

export class LvmStateCache {
  private current: Current | undefined;
  private reading: Promise<VolumeGroupReport[]> | undefined;
  /** loam's own metadata-changing LVM commands under way (see own()), as promises that settle with them. */
  private readonly flights = new Set<Promise<void>>();
  /** Bumped by every change loam makes, so a report that raced one is not trusted. */
  private generation = 0;
  private readonly maxAgeMs: number;
  private readonly stamp: (devices: readonly string[]) => Promise<string>;

  constructor(
    private readonly lvm: Lvm,
    private readonly volumeGroups: readonly string[],
    options: LvmStateCacheOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? MAX_AGE_MS;
    this.stamp = options.stamp ?? volumeGroupStamp;
  }

  /** The state, read again unless the metadata is provably unchanged since it was taken. */
  async get(need: Need): Promise<LvmState> {
    for (let waits = 0; ; waits++) {
      const current = this.current;
      if (
        !current ||
        (current.stamp === null && current.stamping === undefined) ||
        performance.now() - current.readAt >= this.maxAgeMs ||
        (need === "exact" && !current.exact)
      ) {
        break;
      }
      // Under a storm of creates a caller often arrives while apply() stamps its change; reading
      // LVM then cost a fullreport that contended with the next lvcreate for the VG lock.
      const taken = current.stamp ?? (current.stamping ? await current.stamping : null);
      if (taken === null) break;
      const now = await this.stampOf(current.reports);
      if (now !== null && now === taken && this.current === current) {
        return new LvmState(current.reports, false, current.exact);
      }
      // A command of loam's own that has committed but not returned changes the stamp too (LVM
      // commits before it activates and zeroes a new LV: most of an lvcreate). Its change is
      // applied when it returns: wait for that instead of a fullreport that would queue for the
      // VG lock between two creates. Bounded: a steady stream of changes still gets a read.
      if (now === null || waits >= MAX_FLIGHT_WAITS || this.flights.size === 0) break;
      // The state as loam's own changes left it, before the running command's: all "named" needs.
      if (need === "named" && this.current === current) return new LvmState(current.reports, false, current.exact);
      await Promise.all(this.flights);
      // The command's caller applies its change in the continuation of the command's promise:
      // let it run (up to apply's stamp, which the next round waits for) before looking again.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return new LvmState(await this.read(), true, true);
  }

  /**
   * Runs one of loam's own LVM commands that change the metadata (its caller then applies the
   * change, or invalidates the state when it failed). While it runs, `get` waits for it rather
   * than reading LVM. The command never waits on anything of the cache's, so waiting on it
   * cannot deadlock.
   */
  async own<T>(command: () => Promise<T>): Promise<T> {
    const run = command();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.flights.add(settled);
    try {
      return await run;
    } finally {
      this.flights.delete(settled);
    }
  }

  /**
   * Reads LVM now; concurrent callers share one report. So it takes no caller's signal: one
   * caller giving up must not fail the others (the runner's deadline still holds).
   */
  read(): Promise<VolumeGroupReport[]> {
    this.reading ??= this.readOnce().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** Forgets the cached state: after a failed change, whose effect on the metadata is unknown. */
  invalidate(): void {
    this.generation++;
    this.current = undefined;
  }

  /** Applies a change loam just made, then stamps the metadata it left. */
  async apply(volumeGroup: string, change: Change): Promise<void> {
    this.generation++;
    const current = this.current;
    if (!current) return;
    const index = current.reports.findIndex((r) => r.vg.name === volumeGroup);
    if (index < 0 || change.extents === undefined) {
      // Where the change lands or what it costs is not known here: the next caller reads.
      this.current = undefined;
      return;
    }
    const report = current.reports[index];
    const lvs =
      change.kind === "created"
        ? [...report.lvs.filter((lv) => lv.name !== change.lv.name), change.lv]
        : change.kind === "removed"
          ? report.lvs.filter((lv) => lv.name !== change.name)
          : report.lvs.map((lv) => (lv.name === change.name ? { ...lv, ...change.patch } : lv));
    const extents = change.extents;
    const lvCount = report.vg.lvCount + (change.kind === "created" ? 1 : change.kind === "removed" ? -1 : 0);
    const vg = {
      ...report.vg,
      lvCount,
      freeExtentCount: report.vg.freeExtentCount - extents,
      freeBytes: report.vg.freeBytes - extents * report.vg.extentSizeBytes,
    };
    const reports = current.reports.map((r, i) => (i === index ? { ...r, vg, lvs } : r));
    const next: Current = { reports, stamp: null, readAt: current.readAt, exact: current.exact && extents === 0 };
    this.current = next;
    next.stamping = this.stampOf(reports);
    next.stamp = await next.stamping;
  }

  private async readOnce(): Promise<VolumeGroupReport[]> {
    const generation = this.generation;
    const known = this.current?.reports;
    const before = known ? await this.stampOf(known) : null;
    const startedAt = performance.now();
    const reports = await this.lvm.reportAll(this.volumeGroups);
    let stamp: string | null = null;
    if (generation === this.generation) {
      // The first read (or a new PV) has no earlier stamp of the same devices: stamp now.
      stamp = before !== null && sameDevices(known ?? [], reports) ? before : await this.stampOf(reports);
    }
    if (generation === this.generation) this.current = { reports, stamp, readAt: startedAt, exact: true };
    return reports;
  }

  private async stampOf(reports: readonly VolumeGroupReport[]): Promise<string | null> {
    const devices = devicesOf(reports);
    if (devices === null) return null;
    try {
      return await this.stamp(devices);
    } catch {
      // Unreadable or missing PV: fall back to reading LVM every time.
      return null;
    }
  }
}

/** The PVs' device paths, or null when one is missing (LVM shows "[unknown]"). */
function devicesOf(reports: readonly VolumeGroupReport[]): string[] | null {
  const devices = reports.flatMap((r) => r.pvs.map((pv) => pv.name));
  if (devices.length === 0 || devices.some((d) => !d.startsWith("/dev/"))) return null;
  return [...new Set(devices)].sort();
}

function sameDevices(a: readonly VolumeGroupReport[], b: readonly VolumeGroupReport[]): boolean {
  return JSON.stringify(devicesOf(a)) === JSON.stringify(devicesOf(b));
}
