/**
 * The LVM state as metrics and `loam status` see it: `LvmStateSampler` reads every volume
 * group with one `lvm fullreport` each and shares the reading with every reader for a short
 * while: a Prometheus scrape asks a dozen gauges for their values, and a readiness probe may
 * come at the same moment, but LVM runs once. Unlike the engine's `LvmState`
 * (src/volumes/lvm-state.ts) each volume group is read on its own, so one unreadable group
 * does not hide the others' figures. `summarize` turns one group's report into the figures
 * loam exposes.
 */
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { metadataOf } from "../volumes/metadata.js";
import { type MissingPv, missingPvs } from "../volumes/missing-pvs.js";
import { thinPoolProblem, volumeOf } from "../volumes/volume.js";

export interface ReportSource {
  report(vg: string): Promise<VolumeGroupReport>;
}

export type VolumeGroupReading =
  { volumeGroup: string; ok: true; report: VolumeGroupReport } | { volumeGroup: string; ok: false; error: string };

export const DEFAULT_CACHE_MS = 2_000;

export class LvmStateSampler {
  private cached: { at: number; readings: Promise<VolumeGroupReading[]> } | undefined;

  constructor(
    private readonly source: ReportSource,
    readonly volumeGroups: readonly string[],
    private readonly cacheMs = DEFAULT_CACHE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The readings of every volume group; at most one report per group per cache period. */
  read(): Promise<VolumeGroupReading[]> {
    const at = this.now();
    // A reading still in flight is shared whatever its age, so slow LVM never stacks reports.
    if (this.cached && at - this.cached.at < this.cacheMs) return this.cached.readings;
    const readings = Promise.all(this.volumeGroups.map((vg) => this.readOne(vg)));
    this.cached = { at, readings };
    void readings.then(() => {
      // The period starts when the report is in, so a slow report is not repeated at once.
      if (this.cached?.readings === readings) this.cached = { at: this.now(), readings };
    });
    return readings;
  }

  private async readOne(volumeGroup: string): Promise<VolumeGroupReading> {
    try {
      return { volumeGroup, ok: true, report: await this.source.report(volumeGroup) };
    } catch (error) {
      const message = error instanceof Error ? error.message.trim() : String(error);
      return { volumeGroup, ok: false, error: message.split("\n")[0]?.slice(0, 300) ?? "unknown error" };
    }
  }
}

export interface ThinPoolSummary {
  name: string;
  sizeBytes: number;
  /** 0..1, null when LVM did not say (pool inactive). */
  dataUsage: number | null;
  metadataUsage: number | null;
  /** Sum of the virtual sizes of the thin LVs in the pool. */
  provisionedBytes: number;
  /** LVM's lv_health_status ("out_of_data", "metadata_read_only", "failed"), "full" at 100% use, "" when healthy. */
  health: string;
  /** What is wrong and what to do, as the volume conditions say it; "" when healthy. */
  problem: string;
}

export interface LoamLvSummary {
  id: string;
  /** The CSI name recorded in the LV's tags. */
  name: string;
  sizeBytes: number;
  segType: string;
  active: boolean;
  pool: string;
  origin: string;
  /** 0..1 for thin LVs, else null. */
  dataUsage: number | null;
  pvcNamespace: string;
  pvcName: string;
  deviceClass: string;
  /** Snapshots: the volume they were taken of. Volumes: the snapshot or volume they were cloned from. */
  source: string;
  /** Volumes: what ControllerGetVolume says when the condition is abnormal (extents on a missing PV, inactive, ...); "" when normal. */
  abnormal: string;
}

export interface VolumeGroupSummary {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  allocatedBytes: number;
  /** Room left in the smallest metadata area in use; every LV's description must fit there. */
  metadataFreeBytes?: number;
  pools: ThinPoolSummary[];
  volumes: LoamLvSummary[];
  snapshots: LoamLvSummary[];
  /** PVs LVM cannot find, each with the LVs that have extents on it. */
  missingPvs: MissingPv[];
}

/** The figures loam exposes about one volume group. */
export function summarize(report: VolumeGroupReport): VolumeGroupSummary {
  const pools: ThinPoolSummary[] = report.lvs
    .filter((lv) => lv.segType === "thin-pool")
    .map((lv) => ({
      name: lv.name,
      sizeBytes: lv.sizeBytes,
      dataUsage: ratio(lv.dataPercent),
      metadataUsage: ratio(lv.metadataPercent),
      provisionedBytes: report.lvs
        .filter((thin) => thin.poolLv === lv.name)
        .reduce((sum, thin) => sum + thin.sizeBytes, 0),
      ...poolHealth(lv),
    }));
  const volumes: LoamLvSummary[] = [];
  const snapshots: LoamLvSummary[] = [];
  for (const lv of report.lvs) {
    if (lv.internal) continue;
    const metadata = metadataOf(lv);
    if (!metadata) continue;
    const entry: LoamLvSummary = {
      id: lv.name,
      name: metadata.name,
      sizeBytes: lv.sizeBytes,
      segType: lv.segType,
      active: lv.active,
      pool: lv.poolLv,
      origin: lv.origin,
      dataUsage: lv.segType === "thin" ? ratio(lv.dataPercent) : null,
      pvcNamespace: metadata.claim.namespace ?? "",
      pvcName: metadata.claim.pvc ?? "",
      deviceClass: metadata.deviceClass ?? "",
      source: metadata.source ? `${metadata.source.kind}:${metadata.source.id}` : "",
      abnormal: "",
    };
    // The same condition ControllerGetVolume answers (volume.ts), not a second judgement.
    const condition = metadata.kind === "volume" ? volumeOf({ lv, report }, "")?.condition : undefined;
    if (condition?.abnormal) entry.abnormal = condition.message;
    (metadata.kind === "snapshot" ? snapshots : volumes).push(entry);
  }
  const byId = (a: LoamLvSummary, b: LoamLvSummary): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    name: report.vg.name,
    sizeBytes: report.vg.sizeBytes,
    freeBytes: report.vg.freeBytes,
    allocatedBytes: report.vg.sizeBytes - report.vg.freeBytes,
    ...(report.vg.metadataFreeBytes === undefined ? {} : { metadataFreeBytes: report.vg.metadataFreeBytes }),
    pools,
    volumes: volumes.sort(byId),
    snapshots: snapshots.sort(byId),
    missingPvs: missingPvs(report),
  };
}

function poolHealth(pool: LogicalVolume): { health: string; problem: string } {
  const problem = thinPoolProblem(pool) ?? "";
  return { health: pool.healthStatus || (problem ? "full" : ""), problem };
}

function ratio(percent: number | null): number | null {
  return percent === null ? null : percent / 100;
}
