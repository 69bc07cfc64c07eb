/**
 * `LvmState`: what LVM holds right now — one read of every volume group of the device
 * classes (a `lvm fullreport` each), with lookups by LV name. It is the one name loam uses
 * for that idea; `LvmStateCache` (lvm-state-cache.ts) decides when LVM has to be read again,
 * and metrics' `LvmStateSampler` shares a read between the gauges of one scrape.
 *
 * "State" rather than "view" or "inventory": it is LVM's state as read, not a second copy
 * loam owns, and `fresh`/`exact` say how far it may be trusted.
 */
import type { ThinPoolStatus, ThinPoolUsage } from "../lvm/thin-pool-status.js";
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { VolumeError } from "./errors.js";

/** An LV and the report of the volume group that holds it. */
export interface Located {
  lv: LogicalVolume;
  report: VolumeGroupReport;
}

export class LvmState {
  constructor(
    readonly reports: readonly VolumeGroupReport[],
    /** Read from LVM by this call: a name missing here is really missing. */
    readonly fresh: boolean,
    /** Per-PV free space is LVM's own figure, not one loam's changes made stale. */
    readonly exact: boolean,
  ) {}

  /** The same state with a thin pool's usage as device-mapper reports it now. */
  withPoolUsage(vg: string, pool: string, usage: ThinPoolUsage): LvmState {
    const reports = this.reports.map((report) =>
      report.vg.name !== vg
        ? report
        : {
            ...report,
            lvs: report.lvs.map((lv) => (lv.name === pool && lv.segType === "thin-pool" ? { ...lv, ...usage } : lv)),
          },
    );
    return new LvmState(reports, this.fresh, this.exact);
  }

  /**
   * The same state with these thin pools ("vg/pool" → status) as device-mapper reports them
   * now: usage, health, needs_check and when-full in place of what the report said.
   */
  withPoolStatuses(statuses: ReadonlyMap<string, ThinPoolStatus>): LvmState {
    if (statuses.size === 0) return this;
    const reports = this.reports.map((report) => ({
      ...report,
      lvs: report.lvs.map((lv) => {
        const status = lv.segType === "thin-pool" ? statuses.get(`${lv.vgName}/${lv.name}`) : undefined;
        return status ? { ...lv, ...status } : lv;
      }),
    }));
    return new LvmState(reports, this.fresh, this.exact);
  }

  /** The thin pools the thin LVs among these use, each once. */
  static poolsOf(lvs: readonly { vgName: string; segType: string; poolLv: string }[]): { vg: string; pool: string }[] {
    const keys = new Set(
      lvs.filter((lv) => lv.segType === "thin" && lv.poolLv).map((lv) => `${lv.vgName}/${lv.poolLv}`),
    );
    return [...keys].map((key) => {
      const [vg, pool] = key.split("/");
      return { vg, pool };
    });
  }

  vg(name: string): VolumeGroupReport {
    const report = this.reports.find((r) => r.vg.name === name);
    if (!report) throw new VolumeError("internal", `volume group ${name} is missing from the report`);
    return report;
  }

  find(name: string): Located | undefined {
    for (const report of this.reports) {
      const lv = report.lvs.find((candidate) => candidate.name === name && !candidate.internal);
      if (lv) return { lv, report };
    }
    return undefined;
  }

  all(): Located[] {
    return this.reports.flatMap((report) => report.lvs.filter((lv) => !lv.internal).map((lv) => ({ lv, report })));
  }
}
