/**
 * The volume model: what the engine answers in (Volume, Snapshot, their conditions and the
 * requests that make them) and how an LV with loam's tags becomes one. Everything here is
 * read from one LV and its volume group's report; nothing runs LVM.
 */
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import type { Located } from "./lvm-state.js";
import type { ContentSource, VolumeMetadata } from "./metadata.js";
import { metadataOf } from "./metadata.js";
import type { VolumeParameters } from "./parameters.js";
import type { CapacityRange } from "./size.js";

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
  return volume;
}

/** What ControllerGetVolume says about a volume: activation, raid sync, thin pool usage. */
function conditionOf(lv: LogicalVolume, report: VolumeGroupReport, metadata: VolumeMetadata): VolumeCondition {
  const name = `${lv.vgName}/${lv.name}`;
  if (metadata.populating)
    return {
      abnormal: true,
      message: `being populated from its source (or a copy was interrupted; CreateVolume resumes it)`,
    };
  if (lv.healthStatus !== "") return { abnormal: true, message: `logical volume ${name} health: ${lv.healthStatus}` };
  if (metadata.formatting)
    return {
      abnormal: true,
      message: `being formatted (or a format was interrupted; the next NodeStageVolume formats it again)`,
    };
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
    const pool = report.lvs.find((candidate) => candidate.name === lv.poolLv);
    return {
      abnormal: false,
      message: `thin volume is active; pool ${lv.vgName}/${lv.poolLv} data ${pool?.dataPercent ?? "?"}%, metadata ${pool?.metadataPercent ?? "?"}%`,
    };
  }
  return healthy();
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
