/**
 * The LVM operations the domain needs, each one command. Every name and tag is checked
 * against LVM's own rules before it reaches an argument vector, so a request string can
 * never become an option or a second argument. One method per LVM change keeps every argv
 * loam can run in one file, beside the checks that guard it; what device-mapper's thin-pool
 * status says is parsed in thin-pool-status.ts.
 */
import type { CommandRunner, RunOptions } from "../exec/index.js";
import {
  classifyLvmFailure,
  ComponentActiveError,
  LogicalVolumeSizeUnchangedError,
  ThinPoolNotActiveError,
  VolumeGroupNotFoundError,
} from "./errors.js";
import { FULLREPORT_ARGS, parseFullReport, type VolumeGroupReport } from "./report.js";
import {
  parseThinPoolHealth,
  parseThinPoolStatus,
  poolTarget,
  thinPoolTargets,
  type ThinPoolStatus,
  type ThinPoolUsage,
} from "./thin-pool-status.js";
import { isValidLvName, isValidVgName } from "./names.js";
import { isValidTag } from "./tags.js";

export interface CreateLvSpec {
  vg: string;
  name: string;
  sizeBytes: number;
  tags: readonly string[];
  stripes?: number;
  stripeSizeBytes?: number;
  /** Extra copies: 1 makes a two-leg raid1. */
  mirrors?: number;
  /** Name of a thin pool in the same VG; sizeBytes is then the virtual size. */
  thinPool?: string;
}

export interface ThinSnapshotSpec {
  vg: string;
  /** The thin LV (volume or snapshot) to snapshot; the new LV shares its pool. */
  origin: string;
  name: string;
  tags: readonly string[];
  /**
   * false: a read-only point in time that LVM skips on activation (a CSI snapshot);
   * true: a writable, active volume that starts with the origin's blocks (a clone or restore).
   */
  writable: boolean;
}

export interface ThinPoolSpec {
  vg: string;
  name: string;
  sizeBytes: number;
  metadataSizeBytes?: number;
}

export interface LvmOptions {
  /**
   * An lvm.conf fragment passed as `--config` to every command, for hosts whose lvm.conf
   * cannot be changed (e.g. "devices{use_devicesfile=0}"). Operator configuration, never a request.
   */
  config?: string;
}

export class InvalidLvmArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidLvmArgumentError";
  }
}

const SECTOR = 512;
const MIN_STRIPE_SIZE = 4096;

export class Lvm {
  private readonly config: readonly string[];

  constructor(
    private readonly runner: CommandRunner,
    options: LvmOptions = {},
  ) {
    this.config = options.config ? ["--config", options.config] : [];
  }

  /** One `lvm fullreport` restricted to the VG. */
  async report(vg: string, options?: RunOptions): Promise<VolumeGroupReport> {
    checkVg(vg);
    const argv = ["lvm", "fullreport", ...this.config, ...FULLREPORT_ARGS, vg];
    const stdout = await this.exec(argv, options);
    const found = parseFullReport(stdout).find((entry) => entry.vg.name === vg);
    if (!found) throw new VolumeGroupNotFoundError(`volume group "${vg}" is not in the report`, argv, 0, "");
    return found;
  }

  /** One `lvm fullreport` covering several VGs (one LVM start-up, however many device classes). */
  async reportAll(vgs: readonly string[], options?: RunOptions): Promise<VolumeGroupReport[]> {
    const unique = [...new Set(vgs)];
    if (unique.length === 0) return [];
    unique.forEach(checkVg);
    const argv = ["lvm", "fullreport", ...this.config, ...FULLREPORT_ARGS, ...unique];
    const stdout = await this.exec(argv, options);
    const entries = parseFullReport(stdout);
    return unique.map((vg) => {
      const found = entries.find((entry) => entry.vg.name === vg);
      if (!found) throw new VolumeGroupNotFoundError(`volume group "${vg}" is not in the report`, argv, 0, "");
      return found;
    });
  }

  /**
   * A thin pool's data and metadata usage straight from device-mapper (`dmsetup status`), in
   * the percentages `lvs` would print. A tenth of the cost of a report, because nothing is
   * scanned. The pool must be active (poolTarget says which device-mapper name it has); an
   * inactive pool is a ThinPoolNotActiveError, without a failed command.
   */
  async thinPoolUsage(vg: string, pool: string, options?: RunOptions): Promise<ThinPoolUsage> {
    checkVg(vg);
    checkLv(pool);
    const argv = ["dmsetup", "status", "--target", "thin-pool"];
    const status = poolTarget(thinPoolTargets(await this.exec(argv, options)), vg, pool);
    if (status === undefined)
      throw new ThinPoolNotActiveError(`thin pool ${vg}/${pool} is not active in device-mapper`, argv, 0, "");
    return parseThinPoolStatus(status, `${vg}/${pool}`);
  }

  /**
   * The state of these thin pools as device-mapper reports it now, keyed "vg/pool": one
   * `dmsetup status` for all of them. A pool missing from the map is not active.
   */
  async thinPoolStatuses(
    pools: readonly { vg: string; pool: string }[],
    options?: RunOptions,
  ): Promise<Map<string, ThinPoolStatus>> {
    for (const { vg, pool } of pools) {
      checkVg(vg);
      checkLv(pool);
    }
    const statuses = new Map<string, ThinPoolStatus>();
    if (pools.length === 0) return statuses;
    const targets = thinPoolTargets(await this.exec(["dmsetup", "status", "--target", "thin-pool"], options));
    for (const { vg, pool } of pools) {
      const status = poolTarget(targets, vg, pool);
      if (status !== undefined) statuses.set(`${vg}/${pool}`, parseThinPoolHealth(status, `${vg}/${pool}`));
    }
    return statuses;
  }

  async createLv(spec: CreateLvSpec, options?: RunOptions): Promise<void> {
    checkVg(spec.vg);
    checkLv(spec.name);
    spec.tags.forEach(checkTag);
    const size = sectorAligned(spec.sizeBytes);
    const stripes = spec.stripes ?? 1;
    const mirrors = spec.mirrors ?? 0;
    checkCount("stripes", stripes, 1, 128);
    checkCount("mirrors", mirrors, 0, 9);

    const shape: string[] = [];
    if (spec.thinPool !== undefined) {
      checkLv(spec.thinPool);
      if (stripes > 1 || mirrors > 0 || spec.stripeSizeBytes !== undefined) {
        throw new InvalidLvmArgumentError(
          "a thin volume takes its layout from its pool; stripes and mirrors do not apply",
        );
      }
      // A thin LV reads zeros where nothing was written, so --zero (a pool property) is not
      // asked for; wiping signatures still clears a header in a reused pool chunk.
      shape.push("--type", "thin", "--virtualsize", `${size}b`, "--thinpool", spec.thinPool);
    } else {
      shape.push("--zero", "y", "--size", `${size}b`);
      if (mirrors > 0) {
        shape.push("--type", stripes > 1 ? "raid10" : "raid1", "--mirrors", String(mirrors));
      }
      if (stripes > 1) {
        if (mirrors === 0) shape.push("--type", "striped");
        shape.push("--stripes", String(stripes));
      }
      if (spec.stripeSizeBytes !== undefined) {
        if (stripes < 2) throw new InvalidLvmArgumentError("stripeSizeBytes needs at least 2 stripes");
        shape.push("--stripesize", `${stripeSizeKiB(spec.stripeSizeBytes)}k`);
      }
    }
    const argv = [
      "lvcreate",
      ...this.config,
      "--yes",
      "--wipesignatures",
      "y",
      ...shape,
      "--name",
      spec.name,
      ...spec.tags.flatMap((tag) => ["--addtag", tag]),
      spec.vg,
    ];
    await this.exec(argv, options);
  }

  /**
   * A thin snapshot of a thin LV. Without a size LVM makes a thin snapshot in the origin's
   * pool; the tags are written by the same command, so the LV is never seen without them.
   */
  async createThinSnapshot(spec: ThinSnapshotSpec, options?: RunOptions): Promise<void> {
    const origin = lvPath(spec.vg, spec.origin);
    checkLv(spec.name);
    spec.tags.forEach(checkTag);
    const activation = spec.writable
      ? ["--setactivationskip", "n", "--activate", "y"]
      : ["--setactivationskip", "y", "--activate", "n"];
    const argv = [
      "lvcreate",
      ...this.config,
      "--yes",
      "--snapshot",
      ...activation,
      "--name",
      spec.name,
      ...spec.tags.flatMap((tag) => ["--addtag", tag]),
      origin,
    ];
    await this.exec(argv, options);
  }

  /** A thin pool (operators usually make their own; tests and the standalone CLI use this). */
  async createThinPool(spec: ThinPoolSpec, options?: RunOptions): Promise<void> {
    checkVg(spec.vg);
    checkLv(spec.name);
    const metadata =
      spec.metadataSizeBytes === undefined ? [] : ["--poolmetadatasize", `${sectorAligned(spec.metadataSizeBytes)}b`];
    const argv = [
      "lvcreate",
      ...this.config,
      "--yes",
      "--type",
      "thin-pool",
      "--size",
      `${sectorAligned(spec.sizeBytes)}b`,
      ...metadata,
      "--name",
      spec.name,
      spec.vg,
    ];
    await this.exec(argv, options);
  }

  /**
   * Copies one LV's blocks onto another with dd, flushed to disk before it returns. Only
   * options every dd has (GNU and busybox alike): conv=sparse is GNU-only, so a copy into a
   * thin LV allocates the source's full size in the pool.
   */
  async copyLv(
    from: { vg: string; name: string },
    to: { vg: string; name: string },
    options?: RunOptions,
  ): Promise<void> {
    const source = `/dev/${lvPath(from.vg, from.name)}`;
    const target = `/dev/${lvPath(to.vg, to.name)}`;
    await this.exec(["dd", `if=${source}`, `of=${target}`, "bs=4M", "conv=fsync"], options);
  }

  async removeLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.exec(["lvremove", ...this.config, "--yes", lvPath(vg, name)], options);
  }

  /** Grows the LV to sizeBytes (rounded up to extents). Asking for the size it already has is a success. */
  async extendLv(vg: string, name: string, sizeBytes: number, options?: RunOptions): Promise<void> {
    const path = lvPath(vg, name);
    try {
      await this.exec(["lvextend", ...this.config, "--size", `${sectorAligned(sizeBytes)}b`, path], options);
    } catch (error) {
      if (error instanceof LogicalVolumeSizeUnchangedError) return;
      throw error;
    }
  }

  /**
   * Activates the LV. `--ignoreactivationskip` because thin snapshots are created with the
   * activation-skip flag, and a restored volume must still come up when it is staged.
   */
  async activateLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.exec(
      ["lvchange", ...this.config, "--activate", "y", "--ignoreactivationskip", lvPath(vg, name)],
      options,
    );
  }

  async deactivateLv(vg: string, name: string, options?: RunOptions): Promise<void> {
    await this.exec(["lvchange", ...this.config, "--activate", "n", lvPath(vg, name)], options);
  }

  async addTags(vg: string, name: string, tags: readonly string[], options?: RunOptions): Promise<void> {
    await this.changeTags("--addtag", vg, name, tags, options);
  }

  /**
   * Removes the tags from one LV, or from several of one VG in a single lvchange (one VG lock,
   * one process; LVM still commits each LV's change). LVM goes on past an LV it cannot change
   * and then fails the command, so a caller with several names learns only that one failed.
   */
  async removeTags(
    vg: string,
    names: string | readonly string[],
    tags: readonly string[],
    options?: RunOptions,
  ): Promise<void> {
    await this.changeTags("--deltag", vg, names, tags, options);
  }

  private async changeTags(
    flag: string,
    vg: string,
    names: string | readonly string[],
    tags: readonly string[],
    options?: RunOptions,
  ): Promise<void> {
    const paths = (typeof names === "string" ? [names] : names).map((name) => lvPath(vg, name));
    tags.forEach(checkTag);
    if (tags.length === 0 || paths.length === 0) return;
    await this.exec(["lvchange", ...this.config, ...tags.flatMap((tag) => [flag, tag]), ...paths], options);
  }

  /**
   * Runs one LVM command. A thin pool component left active on its own by a command killed
   * mid-activation blocks every later activation of the pool; when LVM names one as the
   * obstacle, that component (and only it) is deactivated and the command runs again, at most
   * twice (the metadata and the data component).
   */
  private async exec(argv: readonly string[], options?: RunOptions, repairs = 0): Promise<string> {
    const result = await this.runner.run(argv, options);
    if (result.exitCode === 0) return result.stdout;
    const failure = classifyLvmFailure(argv, result);
    if (!(failure instanceof ComponentActiveError) || repairs >= 2) throw failure;
    await this.exec(["lvchange", ...this.config, "--activate", "n", failure.component], options, 2);
    return this.exec(argv, options, repairs + 1);
  }
}

function lvPath(vg: string, name: string): string {
  checkVg(vg);
  checkLv(name);
  return `${vg}/${name}`;
}

/** A name from a request, quoted and cut for an error message (the request may have been anything). */
function quoted(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function checkVg(vg: string): void {
  if (!isValidVgName(vg)) throw new InvalidLvmArgumentError(`${quoted(vg)} is not a valid volume group name`);
}

function checkLv(name: string): void {
  if (!isValidLvName(name)) throw new InvalidLvmArgumentError(`${quoted(name)} is not a valid logical volume name`);
}

function checkTag(tag: string): void {
  if (!isValidTag(tag)) throw new InvalidLvmArgumentError(`${quoted(tag)} is not a valid LVM tag`);
}

function checkCount(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidLvmArgumentError(`${what} must be a whole number from ${min} to ${max}, got ${n}`);
  }
}

/** LVM refuses byte sizes that are not whole sectors; it rounds up to extents anyway, so rounding up to a sector changes nothing. */
function sectorAligned(sizeBytes: number): number {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new InvalidLvmArgumentError(`size must be a positive whole number of bytes, got ${sizeBytes}`);
  }
  return Math.ceil(sizeBytes / SECTOR) * SECTOR;
}

function stripeSizeKiB(bytes: number): number {
  const powerOfTwo = Number.isSafeInteger(bytes) && bytes > 0 && (bytes & (bytes - 1)) === 0;
  if (!powerOfTwo || bytes < MIN_STRIPE_SIZE || bytes > 2 ** 30) {
    throw new InvalidLvmArgumentError(`stripe size must be a power of two from 4 KiB to 1 GiB, got ${bytes} bytes`);
  }
  return bytes / 1024;
}
