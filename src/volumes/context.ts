/**
 * What every operation of the engine works with: the Lvm facade, the node's device classes
 * and the LVM state, read as a decision needs it (a miss read again, per-PV free space exact
 * for striped and raid1, a thin pool's usage from device-mapper now) and told about each
 * change loam makes. The per-concern modules (volumes.ts, create.ts, snapshots.ts,
 * population.ts, class-capacity.ts) take one `EngineContext`; engine.ts owns it and the locks.
 */
import { stat } from "node:fs/promises";
import type { Lvm } from "../lvm/lvm.js";
import type { ThinPoolUsage } from "../lvm/thin-pool-status.js";
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { type DeviceClass, type DeviceClasses, type VolumeLayout, singleThickClass } from "./device-classes.js";
import { lvmFailure } from "./errors.js";
import { KeyedLocks } from "./locks.js";
import { TagRemovals } from "./tag-removals.js";
import { type Change, type LvmStateCacheOptions, type Need, LvmStateCache } from "./lvm-state-cache.js";
import { type Located, LvmState } from "./lvm-state.js";
import { metadataOf } from "./metadata.js";
import { type CallOptions, type Volume, devicePath, volumeOf } from "./volume.js";

export interface EngineOptions extends LvmStateCacheOptions {
  /**
   * Whether a block device node exists at the path: how activation is read from the kernel.
   * Default: stat. Tests over an LVM stand-in, which has no device nodes, substitute one.
   */
  isBlockDevice?: (path: string) => Promise<boolean>;
}

export class EngineContext {
  private readonly cache: LvmStateCache;
  private readonly isBlockDevice: (path: string) => Promise<boolean>;
  /** One lock per allocation domain (a thin pool, a volume group's extents): see allocating(). */
  private readonly allocations = new KeyedLocks();
  /** Format-in-progress marks coming off, many volumes' in one lvchange when they come together (tag-removals.ts). */
  readonly tagRemovals: TagRemovals;
  /** ListVolumes pages through one list: built once per version of the state and of its pools' state. */
  readonly listed = new WeakMap<readonly VolumeGroupReport[], { pools: string; volumes: readonly Volume[] }>();

  /** LVM, its metadata-changing commands known to the state cache while they run (see trackedLvm). */
  readonly lvm: Lvm;

  constructor(
    lvm: Lvm,
    readonly classes: DeviceClasses,
    options: EngineOptions = {},
  ) {
    const { isBlockDevice, ...cacheOptions } = options;
    this.isBlockDevice = isBlockDevice ?? blockDeviceAt;
    this.cache = new LvmStateCache(lvm, classes.volumeGroups, cacheOptions);
    this.lvm = trackedLvm(lvm, this.cache);
    this.tagRemovals = new TagRemovals(
      (vg, names, tag) => this.lvm.removeTags(vg, names, [tag]),
      (domain, fn) => this.allocating(domain, fn),
    );
  }

  /** The LVM state, as recent as `need` requires; UNAVAILABLE when a volume group cannot be read. */
  async readState(options: CallOptions, need: Need = "lookup"): Promise<LvmState> {
    const vgs = this.classes.volumeGroups;
    try {
      return await untilAborted(this.cache.get(need), options.signal);
    } catch (error) {
      throw lvmFailure(error, `reading volume group(s) ${vgs.join(", ")}`, {
        unreadable: (lvmSays) => `volume group(s) ${vgs.join(", ")} cannot be read: ${lvmSays}`,
      });
    }
  }

  /**
   * The LV with this name, reading LVM again when the state (`known`, or the current one) does
   * not have it: a miss must be real. Returns the state the answer came from.
   */
  async lookup(
    id: string,
    options: CallOptions,
    known?: LvmState,
    need: "named" | "lookup" = "lookup",
  ): Promise<{ state: LvmState; found: Located | undefined }> {
    let state = known ?? (await this.readState(options, need));
    let found = state.find(id);
    if (!found && !state.fresh) {
      this.cache.invalidate();
      state = await this.readState(options);
      found = state.find(id);
    }
    return { state, found };
  }

  /**
   * The state as a decision about this layout needs it: per-PV free space for striped and
   * raid1, and a thin pool's usage read from device-mapper now (it changes with every write).
   */
  async forLayout(
    state: LvmState,
    layout: VolumeLayout,
    options: CallOptions,
    usage?: Promise<ThinPoolUsage>,
  ): Promise<LvmState> {
    let current = state;
    if ((layout.kind === "striped" || layout.kind === "raid1") && !current.exact)
      current = await this.readState(options, "exact");
    const deviceClass = layout.deviceClass;
    if (layout.kind === "thin" && deviceClass.thinPool !== undefined) {
      current = await this.withPoolUsage(current, deviceClass.volumeGroup, deviceClass.thinPool, options, usage);
    }
    return current;
  }

  /**
   * A thin class's pool usage, read from device-mapper starting now: a create needs it after
   * the cache's own check, and the two waits overlap instead of adding up.
   */
  poolUsageNow(deviceClass: DeviceClass, options: CallOptions): Promise<ThinPoolUsage> | undefined {
    if (deviceClass.type !== "thin" || deviceClass.thinPool === undefined) return undefined;
    const usage = this.lvm.thinPoolUsage(deviceClass.volumeGroup, deviceClass.thinPool, options);
    // Handled where it is awaited; this keeps a call that stops earlier from leaving it unhandled.
    usage.catch(() => undefined);
    return usage;
  }

  /** `usage`, when given, is a read already under way (poolUsageNow). */
  async withPoolUsage(
    state: LvmState,
    vg: string,
    pool: string,
    options: CallOptions,
    usage?: Promise<ThinPoolUsage>,
  ): Promise<LvmState> {
    if (state.fresh) return state;
    try {
      return state.withPoolUsage(vg, pool, await (usage ?? this.lvm.thinPoolUsage(vg, pool, options)));
    } catch {
      // An inactive pool (or no dmsetup): LVM's report knows what it knows.
      this.cache.invalidate();
      return this.readState(options, "exact");
    }
  }

  /**
   * Runs `fn` — read the state, check the room, run the one LVM command that spends it, tell
   * the cache — alone among the calls that allocate in the same domain (see allocationDomain).
   * The per-name and per-id locks of engine.ts do not see two different volumes competing
   * for one pool's overcommit budget or one VG's spare; this does. Nothing slow belongs in
   * `fn`: no block copy, no filesystem work, only the check and LVM's commit.
   */
  allocating<T>(domain: string, fn: () => Promise<T>): Promise<T> {
    return this.allocations.withKeys([domain], fn);
  }

  /**
   * The layout an existing loam LV was made with, in the class it belongs to: a thin LV's
   * class is the one of its pool (undefined when no class uses that pool); a thick LV's is
   * the class its tag names, else the first thick class on its VG, else a plain thick class
   * on the VG with nothing spare.
   */
  layoutOfLv(lv: LogicalVolume): VolumeLayout | undefined {
    if (lv.segType === "thin") {
      const deviceClass = this.classOfThin(lv);
      return deviceClass ? { deviceClass, kind: "thin", stripes: 1, mirrors: 0 } : undefined;
    }
    const tagged = metadataOf(lv)?.deviceClass;
    const byTag = tagged === undefined ? undefined : this.classes.byName(tagged);
    const deviceClass =
      (byTag?.type === "thick" && byTag.volumeGroup === lv.vgName ? byTag : undefined) ??
      this.classes.all.find((c) => c.type === "thick" && c.volumeGroup === lv.vgName) ??
      singleThickClass(lv.vgName);
    if (lv.segType === "raid1") return { deviceClass, kind: "raid1", stripes: 1, mirrors: Math.max(1, lv.stripes - 1) };
    if (lv.segType === "striped" && lv.stripes > 1) {
      return { deviceClass, kind: "striped", stripes: lv.stripes, mirrors: 0 };
    }
    return { deviceClass, kind: "linear", stripes: 1, mirrors: 0 };
  }

  /**
   * The state with the thin pools that hold these LVs as device-mapper reports them now (one
   * `dmsetup status` for all): what a volume's condition is computed from. A pool fills up with
   * writes, and writes change no LVM metadata, so the cached report cannot see it; a condition
   * must never come from a report older than what it describes. When device-mapper cannot be
   * asked, LVM is read again. A pool missing from device-mapper is inactive: the report says that.
   */
  async withCurrentPools(state: LvmState, lvs: readonly LogicalVolume[], options: CallOptions): Promise<LvmState> {
    const pools = LvmState.poolsOf(lvs);
    if (pools.length === 0) return state;
    try {
      return state.withPoolStatuses(await this.lvm.thinPoolStatuses(pools, options));
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (state.fresh) return state;
      this.cache.invalidate();
      return this.readState(options);
    }
  }

  /** Tells the cache about a change just made; a failure to apply it only costs a later read. */
  async changed(vg: string, change: Change): Promise<void> {
    await this.cache.apply(vg, change).catch(() => this.cache.invalidate());
  }

  /** Forgets the cached state: after a failed change, whose effect on the metadata is unknown. */
  invalidate(): void {
    this.cache.invalidate();
  }

  /** The volume an LV holds, in this node's classes. */
  volumeOf(found: Located): Volume | undefined {
    return volumeOf(found, this.classes.defaultClass.name);
  }

  /** The LV with its activation as the kernel has it now (the cache only knows what LVM said when it was read). */
  async withLiveActivation(found: Located): Promise<Located> {
    const active = await this.isBlockDevice(found.lv.devicePath || devicePath(found.lv.vgName, found.lv.name));
    return active === found.lv.active ? found : { ...found, lv: { ...found.lv, active } };
  }

  /**
   * Whether the LV is open now (mounted, or held by a process): the 6th letter of its lv_attr
   * in a report read now. Opening a device changes no LVM metadata, so the cached state
   * cannot know it.
   */
  async isOpenNow(lv: LogicalVolume, options: CallOptions): Promise<boolean> {
    let report: VolumeGroupReport;
    try {
      report = await this.lvm.report(lv.vgName, options);
    } catch (error) {
      throw lvmFailure(error, `reading whether ${lv.vgName}/${lv.name} is open`);
    }
    return report.lvs.find((found) => found.name === lv.name)?.attr.charAt(5) === "o";
  }

  /** The configured class a thin LV belongs to: the one whose pool holds it. */
  classOfThin(lv: LogicalVolume): DeviceClass | undefined {
    const tagged = metadataOf(lv)?.deviceClass;
    const byTag = tagged === undefined ? undefined : this.classes.byName(tagged);
    if (byTag?.type === "thin" && byTag.volumeGroup === lv.vgName && byTag.thinPool === lv.poolLv) return byTag;
    return this.classes.all.find((c) => c.type === "thin" && c.volumeGroup === lv.vgName && c.thinPool === lv.poolLv);
  }
}

/**
 * Which allocation lock a new or growing LV takes: a thin LV's pool (its overcommit budget
 * and data, `thinPool` given), a thick LV's volume group (its free extents and the spare).
 */
export function allocationDomain(vg: string, thinPool?: string): string {
  return thinPool === undefined ? `volume-group:${vg}` : `thin-pool:${vg}/${thinPool}`;
}

/** The LV loam just made, as the cache records it until LVM is next read. */
export function madeLv(
  vg: string,
  name: string,
  sizeBytes: number,
  tags: readonly string[],
  segType: string,
  extra: Partial<LogicalVolume> = {},
): LogicalVolume {
  return {
    name,
    vgName: vg,
    uuid: "",
    sizeBytes,
    attr: "",
    active: true,
    segType,
    stripes: 1,
    stripeSizeBytes: 0,
    segmentCount: 1,
    poolLv: "",
    origin: "",
    dataPercent: null,
    metadataPercent: null,
    tags: [...tags],
    devicePath: devicePath(vg, name),
    healthStatus: "",
    copyPercent: segType.startsWith("raid") ? 0 : null,
    roles: ["public"],
    internal: false,
    pvUuids: [],
    ...extra,
  };
}

/** Extents of the VG an LV holds: 0 for thin LVs (the pool holds them); undefined where raid metadata or layers make it uncertain. */
export function extentsOf(lv: LogicalVolume, extentBytes: number): number | undefined {
  if (lv.segType === "thin") return 0;
  if (lv.segType !== "linear" && lv.segType !== "striped") return undefined;
  const extents = lv.sizeBytes / extentBytes;
  return Number.isInteger(extents) ? extents : undefined;
}

async function blockDeviceAt(path: string): Promise<boolean> {
  const node = await stat(path).catch(() => undefined);
  return node?.isBlockDevice() ?? false;
}

/**
 * The promise, or an AbortError as soon as the caller's signal fires. The cache's reads are
 * shared, so a caller who gives up stops waiting rather than killing a report others wait for.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  const aborted = (): DOMException => new DOMException("the call was cancelled", "AbortError");
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Lvm's commands that commit VG metadata (activation and copies do not). */
const CHANGES_METADATA: ReadonlySet<PropertyKey> = new Set<keyof Lvm>([
  "createLv",
  "createThinSnapshot",
  "createThinPool",
  "removeLv",
  "extendLv",
  "addTags",
  "removeTags",
]);

/**
 * `lvm` with each metadata-changing command run through the state cache's `own`: a caller
 * whose metadata stamp differs because one of them committed waits for its change to be
 * applied instead of reading LVM (lvm-state-cache.ts). Everything else passes through.
 */
function trackedLvm(lvm: Lvm, cache: LvmStateCache): Lvm {
  return new Proxy(lvm, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (!CHANGES_METADATA.has(key)) return method.bind(target);
      return (...args: unknown[]) => cache.own(() => method.apply(target, args));
    },
  });
}
