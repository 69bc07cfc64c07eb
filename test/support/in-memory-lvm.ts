/**
 * InMemoryLvmStandIn: a stand-in for the LVM facade (src/lvm/lvm.ts) that keeps volume groups
 * in memory, for fast tests of the engine and the CSI services. It is not LVM: the VM suite
 * stays the truth for real LVM. What it keeps honest:
 *  - Shapes: volume groups start as the VolumeGroupReport objects the real parser makes from
 *    captured `lvm fullreport` output (test/fixtures/lvm/), and every report it answers has
 *    that shape, with LVM's attr letters, roles, segment types and hidden sub-LVs.
 *  - Allocation: sizes round up to extents (and to whole stripes), thick LVs take extents
 *    from physical volumes (striped: one area per PV; raid1: data plus one metadata extent
 *    per copy, each copy on its own PV), thin LVs take none and count as virtual size in
 *    their pool, removal gives extents back. Free space per VG and per PV moves.
 *  - Failures: the same typed errors the facade throws, built by the real classifier
 *    (classifyLvmFailure) from the sentences LVM prints in the captured failure fixtures, and
 *    the same InvalidLvmArgumentError checks on names, tags and sizes.
 * For tests it records every call, can fail or pause before a call, simulates writes (thin
 * pool usage, content that clones and restores carry) and answers whether a device node is
 * there (VolumeEngine's isBlockDevice option) and the metadata stamp (the LVM state cache's stamp option).
 * It is longer than ~400 lines on purpose: one model of a volume group (extents, sub-LVs,
 * pools, attr letters) that every facade method changes, kept whole so no rule drifts apart.
 */
import { readFileSync } from "node:fs";
import {
  type CreateLvSpec,
  InvalidLvmArgumentError,
  Lvm,
  type ThinPoolSpec,
  type ThinSnapshotSpec,
} from "../../src/lvm/lvm.js";
import { type ThinPoolStatus, type ThinPoolUsage, dmName, lvmPercent } from "../../src/lvm/thin-pool-status.js";
import { CommandCancelledError } from "../../src/exec/errors.js";
import { type LvmFailure, classifyLvmFailure } from "../../src/lvm/errors.js";
import {
  type LogicalVolume,
  type PhysicalVolume,
  type VolumeGroup,
  type VolumeGroupReport,
  parseFullReport,
} from "../../src/lvm/report.js";
import { isValidVgName } from "../../src/lvm/names.js";
import { logicalVolume } from "./lvm-objects.js";

type RunOptions = Parameters<Lvm["report"]>[1];

export type LvmMethod =
  | "report"
  | "reportAll"
  | "thinPoolUsage"
  | "thinPoolStatuses"
  | "createLv"
  | "createThinSnapshot"
  | "createThinPool"
  | "copyLv"
  | "removeLv"
  | "extendLv"
  | "activateLv"
  | "deactivateLv"
  | "addTags"
  | "removeTags";

/** One call to the facade, as the caller made it. */
export interface LvmCall {
  method: LvmMethod;
  args: readonly unknown[];
}

/** Runs before a call takes effect; throwing fails the call (nothing changes), awaiting delays it. */
export type CallHook = (call: LvmCall) => void | Promise<void>;

const fixtures = new URL("../../../test/fixtures/lvm/", import.meta.url);

/** The volume groups of a captured `lvm fullreport` fixture, parsed by the real parser. */
export function fixtureReports(name: string): VolumeGroupReport[] {
  const captured = JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), "utf8")) as { stdout: string };
  return parseFullReport(captured.stdout);
}

/** A failure as the facade reports it: LVM's sentences (one per line) through the real classifier. */
export function lvmFailure(argv: readonly string[], lines: readonly string[], exitCode = 5): LvmFailure {
  const stderr = lines.map((line) => `  ${line}\n`).join("");
  return classifyLvmFailure(argv, { stdout: "", stderr, exitCode });
}

interface ThinPoolState {
  metadataBytes: number;
  /** Set by setThinPoolUsage; otherwise data usage follows the bytes written to the pool's LVs. */
  dataPercent?: number;
  metadataPercent?: number;
  /** Set by setThinPoolUsage; otherwise "out_of_data" when data usage is 100%, else "". */
  healthStatus?: ThinPoolHealth;
  needsCheck?: boolean;
}

/** What LVM's lv_health_status says of a thin pool ("" healthy); device-mapper's status words follow from it. */
export type ThinPoolHealth = "" | "out_of_data" | "metadata_read_only" | "failed";

/** A pool's state beyond its usage, for setThinPoolUsage. */
export interface ThinPoolCondition {
  healthStatus?: ThinPoolHealth;
  needsCheck?: boolean;
}

interface LvState {
  lv: LogicalVolume;
  /** Extents held per PV name. Seeded LVs: unknown (their extents go back to PVs in order). */
  extents: Map<string, number> | undefined;
  seededExtents: number;
  activationSkip: boolean;
  open: boolean;
  /** What the blocks hold, for tests: set by write(), carried by dd and thin snapshots. */
  content: string;
  /** Thin LVs: bytes this LV itself allocated in its pool. */
  writtenBytes: number;
  pool?: ThinPoolState;
}

interface VgState {
  vg: VolumeGroup;
  pvs: PhysicalVolume[];
  lvs: LvState[];
  /** Extents of [lvol0_pmspare] (LVM keeps one spare as large as the largest pool metadata). */
  pmspare: { extents: Map<string, number>; count: number } | undefined;
  /** Names of the PVs LVM can no longer find (losePv): reported as "[unknown]", and every change to the VG is refused. */
  lost: Set<string>;
}

const SECTOR = 512;
/** A new pool's metadata use as device-mapper reported it in the captured fixture (113-114 of 1024 blocks). */
const NEW_POOL_METADATA_PERCENT = lvmPercent(114, 1024);

/**
 * The runner under the real facade: each overridden method first lets the real method check
 * its arguments and build its command line (same InvalidLvmArgumentError, same argv), which
 * this runner captures instead of running; the stand-in then applies the effect itself.
 */
class CapturingRunner {
  argv: readonly string[] | undefined;
  reply: (argv: readonly string[]) => string = () => "";

  run(argv: readonly string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    this.argv = argv;
    return Promise.resolve({ stdout: this.reply(argv), stderr: "", exitCode: 0 });
  }
}

export class InMemoryLvmStandIn extends Lvm {
  /** Every call made, in order (failed and paused ones too). */
  readonly calls: LvmCall[] = [];
  private readonly vgs = new Map<string, VgState>();
  private readonly hooks: CallHook[] = [];
  /** Bumped by every change, like the PVs' metadata area headers: the LVM state cache's stamp. */
  private generation = 0;
  private uuids = 0;

  private readonly capture: CapturingRunner;

  constructor(reports: readonly VolumeGroupReport[] = fixtureReports("fullreport-empty-vg")) {
    const runner = new CapturingRunner();
    super(runner as unknown as ConstructorParameters<typeof Lvm>[0]);
    this.capture = runner;
    runner.reply = (argv) => (argv[0] === "dmsetup" ? this.dmsetupStatus() : "");
    for (const report of reports) this.seed(report);
  }

  /** Adds a volume group as a report shows it (a copy; later changes do not touch the report). */
  seed(report: VolumeGroupReport): this {
    const copy = structuredClone(report);
    const extent = copy.vg.extentSizeBytes;
    this.vgs.set(copy.vg.name, {
      vg: copy.vg,
      pvs: copy.pvs,
      lvs: copy.lvs.map((lv) => ({
        lv,
        extents: undefined,
        seededExtents: lv.segType === "thin" || lv.internal ? 0 : Math.ceil(lv.sizeBytes / extent),
        activationSkip: lv.attr.charAt(9) === "k",
        open: lv.attr.charAt(5) === "o",
        content: "",
        writtenBytes: 0,
        ...(lv.segType === "thin-pool" ? { pool: { metadataBytes: extent } } : {}),
      })),
      pmspare: undefined,
      lost: new Set(copy.pvs.filter((pv) => pv.missing).map((pv) => pv.name)),
    });
    this.generation++;
    return this;
  }

  // ---- test controls -------------------------------------------------------------------

  /** Runs `hook` before every call from now on (see failNext and pauseBefore for the usual ones). */
  beforeEach(hook: CallHook): () => void {
    this.hooks.push(hook);
    return () => {
      const index = this.hooks.indexOf(hook);
      if (index >= 0) this.hooks.splice(index, 1);
    };
  }

  /** The next `times` calls of `method` fail with `error` before they change anything. */
  failNext(method: LvmMethod, error: Error | ((call: LvmCall) => Error), times = 1): void {
    let left = times;
    const remove = this.beforeEach((call) => {
      if (call.method !== method || left <= 0) return;
      left--;
      if (left === 0) remove();
      throw typeof error === "function" ? error(call) : error;
    });
  }

  /**
   * Holds the next call of `method` before it takes effect: `reached` resolves when it
   * arrives, `release()` lets it go on (or `fail(error)` fails it).
   */
  pauseBefore(method: LvmMethod): { reached: Promise<LvmCall>; release: () => void; fail: (error: Error) => void } {
    let arrived!: (call: LvmCall) => void;
    const reached = new Promise<LvmCall>((resolve) => (arrived = resolve));
    let release!: () => void;
    let fail!: (error: Error) => void;
    const gate = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    let used = false;
    const remove = this.beforeEach(async (call) => {
      if (call.method !== method || used) return;
      used = true;
      remove();
      arrived(call);
      await gate;
    });
    return { reached, release, fail };
  }

  /** The calls of one method, or every call's method name when none is given. */
  callsOf(method: LvmMethod): LvmCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** Methods called so far, in order (reads included). */
  methods(): LvmMethod[] {
    return this.calls.map((call) => call.method);
  }

  /** Makes the LV's next removal or deactivation fail as LVM does for an open LV (mounted, held). */
  setOpen(vg: string, name: string, open = true): void {
    this.state(vg, name).open = open;
  }

  /** Simulates writing to an LV: what it holds, and (thin) how much of its pool it takes. */
  write(vg: string, name: string, content: string, bytes = 0): void {
    const target = this.state(vg, name);
    target.content = content;
    if (target.lv.segType === "thin") target.writtenBytes = Math.min(target.lv.sizeBytes, target.writtenBytes + bytes);
    this.generation++;
  }

  contentOf(vg: string, name: string): string {
    return this.state(vg, name).content;
  }

  /**
   * Loses a PV as LVM sees a disk whose label was wiped or that went away: the next report
   * names it "[unknown]" with pv_missing, the LVs with extents on it are "partial", and LVM
   * refuses every allocation in the VG with its own sentences (lvremove still works).
   * Returns the PV's uuid.
   */
  losePv(vg: string, pvName: string): string {
    const group = this.vgs.get(vg);
    const pv = group?.pvs.find((candidate) => candidate.name === pvName);
    if (!group || !pv) throw new Error(`InMemoryLvmStandIn: no PV ${pvName} in ${vg}`);
    group.lost.add(pvName);
    this.generation++;
    return pv.uuid;
  }

  /**
   * Overrides a pool's usage figures and health (as device-mapper and the report would show
   * them). Like real writes, this changes no LVM metadata: a cached report does not see it.
   */
  setThinPoolUsage(vg: string, pool: string, usage: Partial<ThinPoolUsage> & ThinPoolCondition): void {
    const state = this.state(vg, pool).pool;
    if (!state) throw new Error(`${vg}/${pool} is not a thin pool`);
    if (usage.dataPercent !== undefined) state.dataPercent = usage.dataPercent;
    if (usage.metadataPercent !== undefined) state.metadataPercent = usage.metadataPercent;
    if (usage.healthStatus !== undefined) state.healthStatus = usage.healthStatus;
    if (usage.needsCheck !== undefined) state.needsCheck = usage.needsCheck;
  }

  /** The LV as the next report would show it, or undefined. */
  lv(vg: string, name: string): LogicalVolume | undefined {
    return this.snapshotOf(vg)?.lvs.find((lv) => lv.name === name);
  }

  /** The VG as the next report would show it (a copy). */
  snapshotOf(vg: string): VolumeGroupReport | undefined {
    const state = this.vgs.get(vg);
    return state ? this.render(state) : undefined;
  }

  /** VolumeEngine's isBlockDevice: a device node exists for an active public LV (/dev/<vg>/<lv>). */
  readonly isBlockDevice = (path: string): Promise<boolean> => {
    const match = /^\/dev\/([^/]+)\/([^/]+)$/.exec(path);
    const found = match ? this.vgs.get(match[1])?.lvs.find((l) => l.lv.name === match[2] && !l.lv.internal) : undefined;
    return Promise.resolve(found !== undefined && found.lv.active);
  };

  /** The LVM state cache's metadata stamp: changes with every commit, like the PVs' metadata area headers. */
  readonly stamp = (devices: readonly string[]): Promise<string> => {
    const known = new Set([...this.vgs.values()].flatMap((vg) => vg.pvs.map((pv) => pv.name)));
    const missing = devices.find((device) => !known.has(device));
    if (missing) return Promise.reject(new Error(`${missing}: no such physical volume in the stand-in`));
    return Promise.resolve(`generation-${this.generation}`);
  };

  // ---- the facade ----------------------------------------------------------------------

  override async report(vg: string, options?: RunOptions): Promise<VolumeGroupReport> {
    checkVg(vg);
    await this.enter("report", [vg], options);
    return this.render(this.vgOrFail(["lvm", "fullreport", vg], vg));
  }

  override async reportAll(vgs: readonly string[], options?: RunOptions): Promise<VolumeGroupReport[]> {
    const unique = [...new Set(vgs)];
    if (unique.length === 0) return [];
    unique.forEach(checkVg);
    await this.enter("reportAll", [vgs], options);
    return unique.map((vg) => this.render(this.vgOrFail(["lvm", "fullreport", ...unique], vg)));
  }

  /** The real method reads the `dmsetup status` lines this stand-in writes for its active pools. */
  override async thinPoolUsage(vg: string, pool: string, options?: RunOptions): Promise<ThinPoolUsage> {
    await this.enter("thinPoolUsage", [vg, pool], options);
    return super.thinPoolUsage(vg, pool);
  }

  /** The real method reads the same `dmsetup status` lines. */
  override async thinPoolStatuses(
    pools: readonly { vg: string; pool: string }[],
    options?: RunOptions,
  ): Promise<Map<string, ThinPoolStatus>> {
    await this.enter("thinPoolStatuses", [pools], options);
    return super.thinPoolStatuses(pools);
  }

  override async createLv(spec: CreateLvSpec, options?: RunOptions): Promise<void> {
    await this.enter("createLv", [spec], options);
    const argv = await this.commandOf(() => super.createLv(spec));
    const vg = this.changeableOrFail(argv, spec.vg);
    this.refuseExisting(argv, vg, spec.name);
    const extent = vg.vg.extentSizeBytes;
    const size = sectorAligned(spec.sizeBytes);
    const base = { name: spec.name, tags: [...spec.tags] };
    const stripes = spec.stripes ?? 1;
    const mirrors = spec.mirrors ?? 0;

    if (spec.thinPool !== undefined) {
      const pool = vg.lvs.find((l) => l.lv.name === spec.thinPool && l.pool);
      // When --thinpool names no pool: the stand-in's paraphrase of LVM.
      if (!pool) throw lvmFailure(argv, [`Thin pool ${spec.vg}/${spec.thinPool} not found.`]);
      this.add(
        vg,
        newLv(vg, base, { sizeBytes: roundUp(size, extent), segType: "thin", poolLv: spec.thinPool }),
        undefined,
      );
      return;
    }
    if (mirrors > 0) {
      if (stripes > 1) throw new Error("InMemoryLvmStandIn: raid10 is not modelled (loam never asks for it)");
      const data = Math.ceil(size / extent);
      const extents = this.allocateLegs(argv, vg, spec.name, mirrors + 1, data + 1);
      this.add(
        vg,
        newLv(vg, base, { sizeBytes: data * extent, segType: "raid1", stripes: mirrors + 1, copyPercent: 100 }),
        extents,
      );
      return;
    }
    if (stripes > 1) {
      const perStripe = Math.ceil(size / extent / stripes);
      const extents = this.allocateLegs(argv, vg, spec.name, stripes, perStripe);
      const stripeSizeBytes = spec.stripeSizeBytes ?? 64 * 1024;
      this.add(
        vg,
        newLv(vg, base, { sizeBytes: perStripe * stripes * extent, segType: "striped", stripes, stripeSizeBytes }),
        extents,
      );
      return;
    }
    const count = Math.ceil(size / extent);
    const extents = this.allocateLinear(argv, vg, count, () => [
      `Volume group "${spec.vg}" has insufficient free space (${vg.vg.freeExtentCount} extents): ${count} required.`,
    ]);
    this.add(vg, newLv(vg, base, { sizeBytes: count * extent, segType: "linear" }), extents);
  }

  override async createThinSnapshot(spec: ThinSnapshotSpec, options?: RunOptions): Promise<void> {
    await this.enter("createThinSnapshot", [spec], options);
    const argv = await this.commandOf(() => super.createThinSnapshot(spec));
    const vg = this.changeableOrFail(argv, spec.vg);
    const origin = this.lvOrFail(argv, vg, spec.origin, "find");
    this.refuseExisting(argv, vg, spec.name);
    if (origin.lv.segType !== "thin") {
      // A snapshot without --size of a thick LV: LVM asks for a size (its command-line check, exit 3).
      throw lvmFailure(argv, ["Please specify either size or extents with snapshots."], 3);
    }
    const lv = newLv(
      vg,
      { name: spec.name, tags: [...spec.tags] },
      {
        sizeBytes: origin.lv.sizeBytes,
        segType: "thin",
        poolLv: origin.lv.poolLv,
        origin: origin.lv.name,
        active: spec.writable,
      },
    );
    const made = this.add(vg, lv, undefined);
    made.activationSkip = !spec.writable;
    made.content = origin.content;
  }

  override async createThinPool(spec: ThinPoolSpec, options?: RunOptions): Promise<void> {
    await this.enter("createThinPool", [spec], options);
    const argv = await this.commandOf(() => super.createThinPool(spec));
    const vg = this.changeableOrFail(argv, spec.vg);
    this.refuseExisting(argv, vg, spec.name);
    const extent = vg.vg.extentSizeBytes;
    const dataExtents = Math.ceil(sectorAligned(spec.sizeBytes) / extent);
    // LVM's default metadata size is at least 2 MiB, and whole extents.
    const metadataExtents = Math.ceil(Math.max(spec.metadataSizeBytes ?? 0, 2 * 1024 * 1024) / extent);
    const spare = Math.max(0, metadataExtents - (vg.pmspare?.count ?? 0));
    const total = dataExtents + metadataExtents + spare;
    const extents = this.allocateLinear(argv, vg, total, () => [
      `Volume group "${spec.vg}" has insufficient free space (${vg.vg.freeExtentCount} extents): ${total} required.`,
    ]);
    if (spare > 0)
      vg.pmspare = {
        extents: mergeExtents(vg.pmspare?.extents, takeFrom(extents, spare)),
        count: (vg.pmspare?.count ?? 0) + spare,
      };
    const pool = this.add(
      vg,
      newLv(vg, { name: spec.name, tags: [] }, { sizeBytes: dataExtents * extent, segType: "thin-pool" }),
      extents,
    );
    pool.pool = { metadataBytes: metadataExtents * extent };
  }

  override async copyLv(
    from: { vg: string; name: string },
    to: { vg: string; name: string },
    options?: RunOptions,
  ): Promise<void> {
    await this.enter("copyLv", [from, to], options);
    const argv = await this.commandOf(() => super.copyLv(from, to));
    const device = (ref: { vg: string; name: string }): LvState => {
      const found = this.vgs.get(ref.vg)?.lvs.find((l) => l.lv.name === ref.name && !l.lv.internal);
      if (!found?.lv.active)
        throw lvmFailure(argv, [`dd: failed to open '/dev/${ref.vg}/${ref.name}': No such file or directory`], 1);
      return found;
    };
    const input = device(from);
    const output = device(to);
    if (output.lv.sizeBytes < input.lv.sizeBytes) {
      throw lvmFailure(argv, [`dd: error writing '/dev/${to.vg}/${to.name}': No space left on device`], 1);
    }
    output.content = input.content;
    // dd without conv=sparse writes every block: a thin target takes the source's full size.
    if (output.lv.segType === "thin") output.writtenBytes = Math.max(output.writtenBytes, input.lv.sizeBytes);
    this.generation++;
  }

  override async removeLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.enter("removeLv", [vg, name], options);
    const argv = await this.commandOf(() => super.removeLv(vg, name));
    const group = this.vgOrFail(argv, vg);
    const found = this.lvOrFail(argv, group, name, "find");
    if (found.open) throw lvmFailure(argv, [`Logical volume ${vg}/${name} contains a filesystem in use.`]);
    if (found.pool && group.lvs.some((l) => l.lv.poolLv === name)) {
      throw new Error(
        "InMemoryLvmStandIn: removing a thin pool that holds thin volumes is not modelled (loam never does it)",
      );
    }
    group.lvs = group.lvs.filter((l) => l !== found);
    this.release(group, found);
    for (const l of group.lvs) if (l.lv.origin === name) l.lv = { ...l.lv, origin: "" };
    this.generation++;
  }

  override async extendLv(vg: string, name: string, sizeBytes: number, options?: RunOptions): Promise<void> {
    await this.enter("extendLv", [vg, name, sizeBytes], options);
    const argv = await this.commandOf(() => super.extendLv(vg, name, sizeBytes));
    const group = this.changeableOrFail(argv, vg);
    const found = this.lvOrFail(argv, group, name, "extend");
    const extent = group.vg.extentSizeBytes;
    const current = found.lv.sizeBytes / extent;
    let wanted = Math.ceil(sectorAligned(sizeBytes) / extent);
    if (found.lv.segType === "striped") wanted = Math.ceil(wanted / found.lv.stripes) * found.lv.stripes;
    // "matches existing size": the facade's success.
    if (wanted === current) return;
    if (wanted < current)
      throw lvmFailure(argv, [`New size given (${wanted} extents) not larger than existing size (${current} extents)`]);
    const growth = wanted - current;
    let more: Map<string, number> | undefined;
    if (found.lv.segType === "striped")
      more = this.allocateLegs(argv, group, name, found.lv.stripes, growth / found.lv.stripes);
    else if (found.lv.segType === "raid1") more = this.allocateLegs(argv, group, name, found.lv.stripes, growth);
    else if (found.lv.segType !== "thin") {
      more = this.allocateLinear(argv, group, growth, () => [
        `Insufficient free space: ${growth} extents needed, but only ${group.vg.freeExtentCount} available`,
      ]);
    }
    if (more) found.extents = found.extents ? mergeExtents(found.extents, more) : undefined;
    if (more && !found.extents) found.seededExtents += growth * (found.lv.segType === "raid1" ? found.lv.stripes : 1);
    found.lv = { ...found.lv, sizeBytes: wanted * extent };
    this.generation++;
  }

  override async activateLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.enter("activateLv", [vg, name], options);
    const argv = await this.commandOf(() => super.activateLv(vg, name));
    const found = this.lvOrFail(argv, this.vgOrFail(argv, vg), name, "find");
    found.lv = { ...found.lv, active: true };
  }

  override async deactivateLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.enter("deactivateLv", [vg, name], options);
    const argv = await this.commandOf(() => super.deactivateLv(vg, name));
    const found = this.lvOrFail(argv, this.vgOrFail(argv, vg), name, "find");
    if (found.open) throw lvmFailure(argv, [`Logical volume ${vg}/${name} in use.`]);
    found.lv = { ...found.lv, active: false };
  }

  override async addTags(vg: string, name: string, tags: readonly string[], options?: RunOptions): Promise<void> {
    await this.enter("addTags", [vg, name, tags], options);
    const argv = await this.commandOf(() => super.addTags(vg, name, tags));
    if (argv.length === 0) return;
    this.retag(argv, vg, name, (had) => [...had, ...tags.filter((t) => !had.includes(t))]);
  }

  override async removeTags(
    vg: string,
    names: string | readonly string[],
    tags: readonly string[],
    options?: RunOptions,
  ): Promise<void> {
    await this.enter("removeTags", [vg, names, tags], options);
    const argv = await this.commandOf(() => super.removeTags(vg, names, tags));
    if (argv.length === 0) return;
    // As LVM: every LV it can change is changed, then the command fails for any it could not.
    let failure: Error | undefined;
    for (const name of typeof names === "string" ? [names] : names) {
      try {
        this.retag(argv, vg, name, (had) => had.filter((t) => !tags.includes(t)));
      } catch (error) {
        failure ??= error as Error;
      }
    }
    if (failure) throw failure;
  }

  // ---- the model -----------------------------------------------------------------------

  private retag(argv: readonly string[], vg: string, name: string, change: (had: string[]) => string[]): void {
    const found = this.lvOrFail(argv, this.vgOrFail(argv, vg), name, "find");
    found.lv = { ...found.lv, tags: change(found.lv.tags) };
    this.generation++;
  }

  /**
   * The real facade method with the capturing runner: its argument checks throw as they
   * would, and the command line it would run comes back ([] when it runs none).
   */
  private async commandOf(run: () => Promise<unknown>): Promise<readonly string[]> {
    this.capture.argv = undefined;
    // The real methods reach the runner synchronously, before their first await.
    const done = run();
    const argv = this.capture.argv ?? [];
    await done;
    return argv;
  }

  /** `dmsetup status --target thin-pool` for the active pools, as device-mapper names and prints them. */
  private dmsetupStatus(): string {
    const lines: string[] = [];
    for (const vg of this.vgs.values()) {
      for (const state of vg.lvs) {
        if (!state.pool || !state.lv.active) continue;
        const used = vg.lvs.some((l) => l.lv.poolLv === state.lv.name && l.lv.active);
        const name = dmName(vg.vg.name, state.lv.name, used ? "tpool" : undefined);
        const usage = this.poolUsage(vg, state);
        const health = this.poolHealth(vg, state);
        // Blocks as ten-thousandths, so the real parser's lvmPercent gives back the same two decimals.
        const blocks = (percent: number): string => `${Math.round(percent * 100)}/10000`;
        const mode = health === "out_of_data" ? "out_of_data_space" : health === "metadata_read_only" ? "ro" : "rw";
        const check = state.pool.needsCheck ? "needs_check" : "-";
        lines.push(
          health === "failed"
            ? `${name}: 0 ${state.lv.sizeBytes / SECTOR} thin-pool Fail`
            : `${name}: 0 ${state.lv.sizeBytes / SECTOR} thin-pool 1 ${blocks(usage.metadataPercent)} ${blocks(usage.dataPercent)} - ${mode} discard_passdown queue_if_no_space ${check} 256`,
        );
      }
    }
    return lines.length === 0 ? "No devices found\n" : `${lines.join("\n")}\n`;
  }

  /** Records the call, runs the hooks, and lets other work interleave as a real command would. */
  private async enter(method: LvmMethod, args: readonly unknown[], options: RunOptions): Promise<void> {
    const call: LvmCall = { method, args: structuredClone(args) };
    this.calls.push(call);
    const argv = [method];
    if (options?.signal?.aborted) throw new CommandCancelledError(argv, "", options.signal.reason);
    for (const hook of [...this.hooks]) await hook(call);
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (options?.signal?.aborted) throw new CommandCancelledError(argv, "", options.signal.reason);
  }

  private state(vg: string, name: string): LvState {
    const found = this.vgs.get(vg)?.lvs.find((l) => l.lv.name === name);
    if (!found) throw new Error(`InMemoryLvmStandIn: no LV ${vg}/${name}`);
    return found;
  }

  private vgOrFail(argv: readonly string[], name: string): VgState {
    const vg = this.vgs.get(name);
    if (!vg) throw lvmFailure(argv, [`Volume group "${name}" not found`, `Cannot process volume group ${name}`]);
    return vg;
  }

  /** The VG, or LVM's refusal to change a VG with a missing PV (its warning lines and its error, as LVM 2.03 prints them). */
  private changeableOrFail(argv: readonly string[], name: string): VgState {
    const vg = this.vgOrFail(argv, name);
    const lost = vg.pvs.filter((pv) => vg.lost.has(pv.name));
    if (lost.length === 0) return vg;
    throw lvmFailure(argv, [
      ...lost.map((pv) => `WARNING: VG ${name} is missing PV ${pv.uuid} (last written to ${pv.name}).`),
      `Cannot change VG ${name} while PVs are missing.`,
      "See vgreduce --removemissing and vgextend --restoremissing.",
      `Cannot process volume group ${name}`,
    ]);
  }

  private lvOrFail(argv: readonly string[], vg: VgState, name: string, how: "find" | "extend"): LvState {
    const found = vg.lvs.find((l) => l.lv.name === name && !l.lv.internal);
    if (found) return found;
    throw lvmFailure(
      argv,
      how === "extend"
        ? [`Logical volume ${name} not found in volume group ${vg.vg.name}.`]
        : [`Failed to find logical volume "${vg.vg.name}/${name}"`],
    );
  }

  private refuseExisting(argv: readonly string[], vg: VgState, name: string): void {
    if (vg.lvs.some((l) => l.lv.name === name)) {
      throw lvmFailure(argv, [`Logical Volume "${name}" already exists in volume group "${vg.vg.name}"`]);
    }
  }

  private add(vg: VgState, lv: LogicalVolume, extents: Map<string, number> | undefined): LvState {
    const state: LvState = {
      lv,
      extents,
      seededExtents: 0,
      activationSkip: false,
      open: false,
      content: "",
      writtenBytes: 0,
    };
    lv.uuid = this.nextUuid();
    vg.lvs.push(state);
    this.generation++;
    return state;
  }

  /** Linear allocation: PVs in order, as many extents from each as it has free. */
  private allocateLinear(
    argv: readonly string[],
    vg: VgState,
    count: number,
    insufficient: () => string[],
  ): Map<string, number> {
    if (count > vg.vg.freeExtentCount) throw lvmFailure(argv, insufficient());
    const extent = vg.vg.extentSizeBytes;
    const taken = new Map<string, number>();
    let left = count;
    for (const pv of vg.pvs) {
      const take = Math.min(left, Math.floor(pv.freeBytes / extent));
      if (take > 0) taken.set(pv.name, take);
      left -= take;
      if (left === 0) break;
    }
    this.take(vg, taken);
    return taken;
  }

  /** Stripes or raid1 copies: `legs` areas of `perLeg` extents, each on its own PV (those with most room). */
  private allocateLegs(
    argv: readonly string[],
    vg: VgState,
    name: string,
    legs: number,
    perLeg: number,
  ): Map<string, number> {
    if (legs > vg.pvs.length) {
      throw lvmFailure(argv, [
        `Number of stripes (${legs}) must not exceed number of physical volumes (${vg.pvs.length})`,
      ]);
    }
    const total = legs * perLeg;
    if (total > vg.vg.freeExtentCount) {
      throw lvmFailure(argv, [
        `Volume group "${vg.vg.name}" has insufficient free space (${vg.vg.freeExtentCount} extents): ${total} required.`,
      ]);
    }
    const extent = vg.vg.extentSizeBytes;
    const chosen = [...vg.pvs].sort((a, b) => b.freeBytes - a.freeBytes).slice(0, legs);
    const short = chosen.reduce((sum, pv) => sum + Math.max(0, perLeg - Math.floor(pv.freeBytes / extent)), 0);
    if (short > 0)
      throw lvmFailure(argv, [
        `Insufficient suitable allocatable extents for logical volume ${name}: ${short} more required`,
      ]);
    const taken = new Map(chosen.map((pv) => [pv.name, perLeg]));
    this.take(vg, taken);
    return taken;
  }

  private take(vg: VgState, extents: Map<string, number>): void {
    this.adjust(vg, extents, -1);
  }

  private release(vg: VgState, lv: LvState): void {
    if (lv.extents) {
      this.adjust(vg, lv.extents, +1);
      return;
    }
    // A seeded LV: where its extents lie is not in the report; give them back to PVs in order.
    const extent = vg.vg.extentSizeBytes;
    let left = lv.seededExtents;
    const back = new Map<string, number>();
    for (const pv of vg.pvs) {
      const used = Math.floor((pv.sizeBytes - pv.freeBytes) / extent);
      const give = Math.min(left, used);
      if (give > 0) back.set(pv.name, give);
      left -= give;
    }
    this.adjust(vg, back, +1);
  }

  private adjust(vg: VgState, extents: Map<string, number>, sign: 1 | -1): void {
    const extent = vg.vg.extentSizeBytes;
    let total = 0;
    vg.pvs = vg.pvs.map((pv) => {
      const n = extents.get(pv.name) ?? 0;
      total += n;
      return n === 0 ? pv : { ...pv, freeBytes: pv.freeBytes + sign * n * extent };
    });
    const freeExtentCount = vg.vg.freeExtentCount + sign * total;
    vg.vg = { ...vg.vg, freeExtentCount, freeBytes: freeExtentCount * extent };
  }

  private poolUsage(vg: VgState, pool: LvState): ThinPoolUsage {
    const state = pool.pool as ThinPoolState;
    const written = vg.lvs.filter((l) => l.lv.poolLv === pool.lv.name).reduce((sum, l) => sum + l.writtenBytes, 0);
    return {
      dataPercent: state.dataPercent ?? lvmPercent(Math.min(written, pool.lv.sizeBytes), pool.lv.sizeBytes),
      metadataPercent: state.metadataPercent ?? NEW_POOL_METADATA_PERCENT,
    };
  }

  private poolHealth(vg: VgState, pool: LvState): ThinPoolHealth {
    const explicit = (pool.pool as ThinPoolState).healthStatus;
    return explicit ?? (this.poolUsage(vg, pool).dataPercent >= 100 ? "out_of_data" : "");
  }

  /** The VG as `lvm fullreport` would show it now, as fresh objects. */
  private render(vg: VgState): VolumeGroupReport {
    const lvs: LogicalVolume[] = [];
    const visible = vg.lvs.filter((l) => !l.lv.internal);
    const uuidOf = new Map(vg.pvs.map((pv) => [pv.name, pv.uuid]));
    for (const state of vg.lvs) {
      const lv = { ...state.lv, tags: [...state.lv.tags] };
      const on = [...(state.extents ?? [])].filter(([, n]) => n > 0).map(([pv]) => pv);
      lv.pvUuids = on.map((pv) => uuidOf.get(pv) ?? pv);
      // LVM's "partial": an LV with extents on a PV it cannot find.
      const partial = on.some((pv) => vg.lost.has(pv));
      if (partial) lv.healthStatus = "partial";
      if (!lv.internal) {
        const isOrigin = vg.lvs.some((l) => l.lv.origin === lv.name);
        lv.attr = attrOf(state, isOrigin, partial);
        lv.roles = rolesOf(lv, isOrigin);
        // As the parser reads it: a thin pool's roles say private.
        lv.internal = lv.roles.includes("private");
        if (state.pool) {
          const usage = this.poolUsage(vg, state);
          lv.active = state.lv.active || vg.lvs.some((l) => l.lv.poolLv === lv.name && l.lv.active);
          lv.dataPercent = usage.dataPercent;
          lv.metadataPercent = usage.metadataPercent;
          lv.healthStatus = lv.active ? this.poolHealth(vg, state) : "";
        } else if (lv.segType === "thin") {
          lv.dataPercent = lvmPercent(state.writtenBytes, lv.sizeBytes);
        }
      }
      lvs.push(lv, ...hiddenOf(vg, state));
    }
    if (vg.pmspare)
      lvs.push(
        hiddenLv(vg, "[lvol0_pmspare]", vg.pmspare.count * vg.vg.extentSizeBytes, "linear", [
          "private",
          "pool",
          "spare",
        ]),
      );
    return {
      vg: { ...vg.vg, tags: [...vg.vg.tags], lvCount: visible.length },
      pvs: vg.pvs.map((pv) => (vg.lost.has(pv.name) ? { ...pv, name: "[unknown]", missing: true } : { ...pv })),
      lvs,
    };
  }

  private nextUuid(): string {
    const n = String(++this.uuids).padStart(32, "0");
    return `${n.slice(0, 6)}-${n.slice(6, 10)}-${n.slice(10, 14)}-${n.slice(14, 18)}-${n.slice(18, 22)}-${n.slice(22, 26)}-${n.slice(26)}`;
  }
}

function newLv(
  vg: VgState,
  base: { name: string; tags: string[] },
  shape: Partial<LogicalVolume> & { sizeBytes: number; segType: string },
): LogicalVolume {
  return logicalVolume({
    name: base.name,
    vgName: vg.vg.name,
    uuid: "",
    attr: "",
    tags: base.tags,
    devicePath: shape.segType === "thin-pool" ? "" : `/dev/${vg.vg.name}/${base.name}`,
    ...shape,
  });
}

/** lv_attr as LVM prints it: type, permissions, allocation, minor, state, open, target, zero, health, skip. */
function attrOf(state: LvState, isOrigin: boolean, partial: boolean): string {
  const lv = state.lv;
  const type =
    lv.segType === "thin"
      ? "V"
      : lv.segType === "thin-pool"
        ? "t"
        : lv.segType === "raid1"
          ? "r"
          : isOrigin
            ? "o"
            : "-";
  const target = lv.segType === "thin" || lv.segType === "thin-pool" ? "t" : lv.segType === "raid1" ? "r" : "-";
  const zero = target === "t" ? "z" : "-";
  return `${type}wi-${lv.active ? "a" : "-"}${state.open ? "o" : "-"}${target}${zero}${partial ? "p" : "-"}${state.activationSkip ? "k" : "-"}`;
}

function rolesOf(lv: LogicalVolume, isOrigin: boolean): string[] {
  if (lv.segType === "thin-pool") return ["private", "thin", "pool"];
  const roles = ["public"];
  if (isOrigin) roles.push("origin", "thinorigin");
  if (lv.origin !== "") roles.push("snapshot", "thinsnapshot");
  return roles;
}

function hiddenLv(vg: VgState, name: string, sizeBytes: number, segType: string, roles: string[]): LogicalVolume {
  return {
    ...newLv(vg, { name, tags: [] }, { sizeBytes, segType }),
    devicePath: "",
    attr: "ewi-------",
    roles,
    internal: true,
  };
}

/** The sub-LVs LVM shows with -a: a pool's data and metadata, a raid1 LV's images and their metadata. */
function hiddenOf(vg: VgState, state: LvState): LogicalVolume[] {
  const { lv } = state;
  const extent = vg.vg.extentSizeBytes;
  if (state.pool) {
    return [
      hiddenLv(vg, `[${lv.name}_tdata]`, lv.sizeBytes, "linear", ["private", "thin", "pool", "data"]),
      hiddenLv(vg, `[${lv.name}_tmeta]`, state.pool.metadataBytes, "linear", ["private", "thin", "pool", "metadata"]),
    ];
  }
  if (lv.segType === "raid1") {
    return Array.from({ length: lv.stripes }, (_, i) => [
      hiddenLv(vg, `[${lv.name}_rimage_${i}]`, lv.sizeBytes, "linear", ["private", "raid", "image"]),
      hiddenLv(vg, `[${lv.name}_rmeta_${i}]`, extent, "linear", ["private", "raid", "metadata"]),
    ]).flat();
  }
  return [];
}

function takeFrom(extents: Map<string, number>, count: number): Map<string, number> {
  const taken = new Map<string, number>();
  let left = count;
  for (const [pv, n] of [...extents].reverse()) {
    const take = Math.min(n, left);
    if (take === 0) continue;
    taken.set(pv, take);
    extents.set(pv, n - take);
    left -= take;
  }
  return taken;
}

function mergeExtents(a: Map<string, number> | undefined, b: Map<string, number>): Map<string, number> {
  const merged = new Map(a ?? []);
  for (const [pv, n] of b) merged.set(pv, (merged.get(pv) ?? 0) + n);
  return merged;
}

const roundUp = (bytes: number, unit: number): number => Math.ceil(bytes / unit) * unit;

/** Reports take the facade's own check of a VG name (the real method is not run for reads). */
function checkVg(vg: string): void {
  if (!isValidVgName(vg))
    throw new InvalidLvmArgumentError(`${JSON.stringify(vg.slice(0, 80))} is not a valid volume group name`);
}

/** Sizes are checked by the real method first; this is only its rounding to sectors. */
const sectorAligned = (bytes: number): number => roundUp(bytes, SECTOR);
