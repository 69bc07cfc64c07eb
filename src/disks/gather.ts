/**
 * Reads the facts `planDisks` decides over from the running host: the inventory, LVM's PVs,
 * the managed VG's report (or its metadata backup when LVM does not know it), the wipe record,
 * the mounts, and the aggregate's filesystem and mount unit.
 */
import { readFile } from "node:fs/promises";
import type { CommandRunner } from "../exec/index.js";
import { Lvm } from "../lvm/lvm.js";
import { VolumeGroupNotFoundError } from "../lvm/errors.js";
import { parseMountInfo } from "../host/mountinfo.js";
import { type DisksConfig, onHost } from "./config.js";
import { type HostFiles, liveFiles } from "./files.js";
import { blkidProbe, readInventory } from "./inventory.js";
import { parseLvmBackup, readPvs } from "./lvm-state.js";
import { type DiskFacts, mountUnitName } from "./plan.js";

export interface GatherOptions {
  /** Runs LVM and the disk tools (with the host's LVM command prefix). */
  runner: CommandRunner;
  files?: HostFiles;
  /** The mount table to read (default /proc/1/mountinfo: the host's when loam shares its PID namespace). */
  mountInfo?: string;
}

export const wipeRecordPath = (config: DisksConfig): string => onHost(config, `${config.stateDir}/disks-wiped.json`);

export async function readWipeRecord(config: DisksConfig): Promise<string[]> {
  try {
    const parsed = JSON.parse(await readFile(wipeRecordPath(config), "utf8")) as { wiped?: { id?: unknown }[] };
    return (parsed.wiped ?? []).map((w) => String(w.id));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    // An unreadable record must not read as "never wiped".
    throw new Error(`cannot read the wipe record ${wipeRecordPath(config)}: ${(error as Error).message}`);
  }
}

export async function gatherFacts(config: DisksConfig, options: GatherOptions): Promise<DiskFacts> {
  const files = options.files ?? liveFiles;
  const probe = blkidProbe(options.runner);
  const mountInfo = options.mountInfo ?? "/proc/1/mountinfo";
  const devices = await readInventory({ files, probe, mountInfo, udev: onHost(config, "/run/udev/data") });
  const pvs = await readPvs(options.runner);
  const lvm = new Lvm(options.runner);
  const facts: DiskFacts = {
    devices,
    pvs,
    wiped: await readWipeRecord(config),
    mountPoints: parseMountInfo((await files.read(mountInfo)) ?? "").map((m) => m.mountPoint),
  };
  try {
    facts.report = await lvm.report(config.volumeGroup);
  } catch (error) {
    if (!(error instanceof VolumeGroupNotFoundError)) throw error;
    const text = await files.read(onHost(config, `${config.lvmBackupDir}/${config.volumeGroup}`));
    const backup = text === undefined ? undefined : parseLvmBackup(text);
    if (backup) facts.backup = backup;
  }
  const { aggregate } = config;
  if (aggregate) {
    if (facts.report?.lvs.some((lv) => lv.name === aggregate.name)) {
      const found = await probe(`/dev/${config.volumeGroup}/${aggregate.name}`);
      facts.aggregateContent = found?.get("TYPE") ?? "";
    }
    const unit = await files.read(onHost(config, `${config.systemdDir}/${mountUnitName(aggregate.mountPoint)}`));
    if (unit !== undefined) facts.unitText = unit;
  }
  return facts;
}
