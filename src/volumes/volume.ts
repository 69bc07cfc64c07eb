/**
 * The volume model: what the engine answers in (Volume, Snapshot, their conditions and the
 * requests that make them) and how an LV with loam's tags becomes one. Everything here is
 * read from one LV and its volume group's report; nothing runs LVM.
 */
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import type { Located } from "./lvm-state.js";
import type { ContentSource, VolumeMetadata } from "./metadata.js";
import { metadataOf } from "./metadata.js";
import { missingUnder, pvLabel, repairAdvice } from "./missing-pvs.js";
import type { VolumeParameters } from "./parameters.js";
import type { CapacityRange } from "./size.js";
import { type EncryptionSpec, encryptionOfFingerprint } from "./encryption.js";
import { type IoLimitSpec, ioLimitSpecOf, shapingOfFingerprint } from "./io-limits.js";

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

export interface Volume {
  /** The CSI volume id: the LV name, derived from the CSI name. */
  id: string;
  name: string;
  volumeGroup: string;
  sizeBytes: number;
  devicePath: string;
  active: boolean;
  claim: Record<string, string>;
  /** The device class it was made in; volumes older than device classes belong to the default one. */
  deviceClass: string;
  /** LVM's segment type: linear, striped, raid1 or thin. */
  layout: string;
  /** The snapshot or volume its first blocks came from. */
  contentSource?: ContentSource;
  /** False while a clone's content is still being copied in: not to be staged yet. */
  ready: boolean;
  /**
   * True while it carries the format-in-progress mark: the node started formatting it and has
   * not finished (or crashed first), so what it holds is loam's partial work, formatted again
   * by the next NodeStageVolume.
   */
  formatting: boolean;
  /** LUKS2 options when its StorageClass asked for encryption (read from its parameter tag). */
  encryption?: EncryptionSpec;
  /** IO limits when its StorageClass or a ControllerModifyVolume set them (read from its parameter tag). */
  ioLimits?: IoLimitSpec;
  /** For ControllerGetVolume: raid sync state, thin pool usage, activation. */
  condition: VolumeCondition;
}

/** A volume with LVM's own words on its health, for NodeGetVolumeStats. */
export interface VolumeHealth {
  volume: Volume;
  /** lv_health_status: "" when healthy, else e.g. "partial", "refresh needed", "mismatches exist". */
  healthStatus: string;
  /** raid copies in sync, 0-100; null for LVs without copies. */
  syncPercent: number | null;
}

export interface Snapshot {
  id: string;
  name: string;
  sourceVolumeId: string;
  volumeGroup: string;
  sizeBytes: number;
  createdAt: Date;
  readyToUse: boolean;
}

export interface CreateVolumeRequest {
  name: string;
  /**
   * The LV name to use instead of lvNameFor(name): cluster mode's controller chooses it when a
   * name's earlier volume was deleted by tombstone (src/cluster/tombstones.ts).
   */
  id?: string;
  range: CapacityRange | undefined;
  parameters: VolumeParameters;
  /** Clone a volume or restore a snapshot into the new volume. */
  contentSource?: ContentSource;
}

export interface CreateSnapshotRequest {
  name: string;
  sourceVolumeId: string;
}

export interface Capacity {
  availableBytes: number;
  maximumVolumeBytes: number;
  minimumVolumeBytes: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface CapacityOptions extends CallOptions {
  /** The StorageClass parameters asked about; the default class when absent. */
  parameters?: VolumeParameters;
}

export function devicePath(vg: string, lv: string): string {
  return `/dev/${vg}/${lv}`;
}

export const healthy = (): VolumeCondition => ({ abnormal: false, message: "logical volume is active" });

/**
 * The volume an LV holds, or undefined when it is not a loam volume (a snapshot, or no
 * loam tags). Untagged device classes are the default class's (`defaultClass`).
 */
export function volumeOf({ lv, report }: Located, defaultClass: string): Volume | undefined {
  const metadata = metadataOf(lv);
  if (!metadata || metadata.kind !== "volume") return undefined;
  const volume: Volume = {
    id: lv.name,
    name: metadata.name,
    volumeGroup: lv.vgName,
    sizeBytes: lv.sizeBytes,
    devicePath: devicePath(lv.vgName, lv.name),
    active: lv.active,
    claim: metadata.claim,
    deviceClass: metadata.deviceClass ?? defaultClass,
    layout: lv.segType,
    ready: !metadata.populating,
    formatting: metadata.formatting,
    condition: conditionOf(lv, report, metadata),
  };
  if (metadata.source) volume.contentSource = metadata.source;
  const encryption = encryptionOfFingerprint(metadata.parameters);
  if (encryption) volume.encryption = encryption;
  const ioLimits = ioLimitSpecOf(shapingOfFingerprint(metadata.parameters));
  if (ioLimits) volume.ioLimits = ioLimits;
  return volume;
}

/**
 * What ControllerGetVolume, ListVolumes and NodeGetVolumeStats say about a volume: extents on
 * a missing PV, activation, raid sync, thin pool usage.
 */
function conditionOf(lv: LogicalVolume, report: VolumeGroupReport, metadata: VolumeMetadata): VolumeCondition {
  const name = `${lv.vgName}/${lv.name}`;
  const lost = missingUnder(report, lv);
  if (lost.length > 0) {
    return {
      abnormal: true,
      message:
        `logical volume ${name} has extents on ${lost.map(pvLabel).join(", ")}, which LVM cannot find: ` +
        `its blocks there cannot be read or written, and LVM will not activate it again until volume group ${lv.vgName} is repaired; ` +
        repairAdvice(lv.vgName),
    };
  }
  if (metadata.populating)
    return {
      abnormal: true,
      message: `being populated from its source (or a copy was interrupted; CreateVolume resumes it)`,
    };
  if (lv.healthStatus !== "") return { abnormal: true, message: `logical volume ${name} health: ${lv.healthStatus}` };
  return withFormatMark(layoutCondition(lv, report, name), metadata.formatting);
}

/**
 * A condition that says so when the volume carries the format-in-progress mark. Not abnormal:
 * a new volume carries it until its first stage, and an interrupted format is redone then.
 */
export function withFormatMark(condition: VolumeCondition, formatting: boolean): VolumeCondition {
  if (!formatting || condition.abnormal) return condition;
  return {
    abnormal: false,
    message: `${condition.message}; not formatted yet (new, or a format did not finish): the next NodeStageVolume formats it`,
  };
}

/** What LVM and device-mapper say of the LV itself: active, its copies' sync, its thin pool. */
function layoutCondition(lv: LogicalVolume, report: VolumeGroupReport, name: string): VolumeCondition {
  if (!lv.active) return { abnormal: true, message: `logical volume ${name} is not active` };
  if (lv.segType.startsWith("raid")) {
    const sync = lv.copyPercent ?? 0;
    return {
      abnormal: false,
      message:
        sync >= 100
          ? `${lv.segType} volume is active; copies in sync`
          : `${lv.segType} volume is active and usable; copies ${sync}% in sync`,
    };
  }
  if (lv.segType === "thin") {
    const pool = report.lvs.find((candidate) => candidate.name === lv.poolLv && candidate.segType === "thin-pool");
    const problem = pool ? thinPoolProblem(pool) : undefined;
    if (problem) return { abnormal: true, message: problem };
    return {
      abnormal: false,
      message: `thin volume is active; pool ${lv.vgName}/${lv.poolLv} data ${pool?.dataPercent ?? "?"}%, metadata ${pool?.metadataPercent ?? "?"}%`,
    };
  }
  return healthy();
}

/**
 * What is wrong with a thin pool and what the operator can do, or undefined when nothing is:
 * LVM's lv_health_status words ("failed", "out_of_data", "metadata_read_only"), device-mapper's
 * needs_check, and usage at 100%. The one place a pool's state becomes words; the volume
 * conditions, the metrics and `loam status` use it.
 */
export function thinPoolProblem(pool: LogicalVolume): string | undefined {
  const name = `${pool.vgName}/${pool.name}`;
  const data = pool.dataPercent;
  const metadata = pool.metadataPercent;
  const usage = `data ${data ?? "?"}%, metadata ${metadata ?? "?"}%`;
  const repair = `deactivate the pool's volumes and run lvconvert --repair ${name}`;
  if (pool.healthStatus === "failed")
    return `thin pool ${name} has failed (device-mapper reports Fail): reads and writes of its volumes fail; ${repair}`;
  if (pool.healthStatus === "metadata_read_only" || (metadata !== null && metadata >= 100)) {
    if (metadata !== null && metadata >= 100)
      return `thin pool ${name} is out of metadata space (${usage}) and read-only: writes fail; grow its metadata with lvextend --poolmetadatasize +SIZE ${name}${pool.checkNeeded ? `, then ${repair}` : ""}`;
    return `thin pool ${name} metadata is read-only (${usage}; device-mapper switched it after a metadata error): writes fail; ${repair}`;
  }
  if (pool.healthStatus === "out_of_data" || (data !== null && data >= 100)) {
    const writes =
      pool.whenFull === "queue"
        ? "writes that need new blocks wait up to 60 s, then fail"
        : "writes that need new blocks fail";
    return `thin pool ${name} is out of data space (${usage}): ${writes}; extend the pool (lvextend -L +SIZE ${name}, after vgextend ${pool.vgName} NEW_PV if the volume group has no free space) or free blocks in it (delete snapshots or volumes, fstrim filesystems)`;
  }
  if (pool.checkNeeded) return `thin pool ${name} metadata needs checking (needs_check; ${usage}): ${repair}`;
  if (pool.healthStatus !== "") return `thin pool ${name} health: ${pool.healthStatus} (${usage})`;
  return undefined;
}

export function snapshotOf({ lv }: Located, metadata: VolumeMetadata): Snapshot {
  return {
    id: lv.name,
    name: metadata.name,
    sourceVolumeId: metadata.source?.id ?? lv.origin,
    volumeGroup: lv.vgName,
    sizeBytes: lv.sizeBytes,
    createdAt: metadata.createdAt ?? new Date(0),
    readyToUse: true,
  };
}

/** Orders volumes and snapshots by id, so pagination is stable. */
export const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
