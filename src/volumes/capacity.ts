/**
 * Capacity arithmetic per device class and layout, from the figures of one LVM report.
 * The same functions answer GetCapacity and decide whether CreateVolume fits, so what the
 * scheduler is told and what creation accepts can never disagree. docs/capacity.md writes
 * these formulas out with a worked example; keep the two in step.
 */
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import type { DeviceClass, VolumeLayout } from "./device-classes.js";

export interface ClassCapacity {
  /** The largest single volume of this layout that fits now (what CreateVolume accepts). */
  availableBytes: number;
  maximumVolumeBytes: number;
  /** The smallest size a volume of this layout gets (one extent, or one extent per stripe). */
  minimumVolumeBytes: number;
  /** Why the figure is what it is, for error messages. */
  explanation: string;
}

/** The pool's state as the thin formulas need it. */
export interface ThinPoolState {
  pool: LogicalVolume;
  /** Σ virtual sizes of every thin LV in the pool: volumes, snapshots and LVs loam did not make. */
  virtualBytes: number;
  dataPercent: number;
  metadataPercent: number;
}

export function thinPoolState(report: VolumeGroupReport, poolName: string): ThinPoolState | undefined {
  const pool = report.lvs.find((lv) => lv.name === poolName && lv.segType === "thin-pool");
  if (!pool) return undefined;
  const virtualBytes = report.lvs
    .filter((lv) => lv.segType === "thin" && lv.poolLv === poolName)
    .reduce((sum, lv) => sum + lv.sizeBytes, 0);
  return { pool, virtualBytes, dataPercent: pool.dataPercent ?? 0, metadataPercent: pool.metadataPercent ?? 0 };
}

/** A sentence naming the pool and its usage when it is above a threshold, else undefined. */
export function thinPoolOverThreshold(state: ThinPoolState, deviceClass: DeviceClass): string | undefined {
  const name = `${state.pool.vgName}/${state.pool.name}`;
  if (state.dataPercent > deviceClass.dataThresholdPercent) {
    return `thin pool ${name} data usage is ${state.dataPercent}% (above the threshold of ${deviceClass.dataThresholdPercent}% for device class "${deviceClass.name}"); new thin volumes are refused until the pool is extended or data is freed`;
  }
  if (state.metadataPercent > deviceClass.metadataThresholdPercent) {
    return `thin pool ${name} metadata usage is ${state.metadataPercent}% (above the threshold of ${deviceClass.metadataThresholdPercent}% for device class "${deviceClass.name}"); new thin volumes are refused until the pool metadata is extended`;
  }
  return undefined;
}

const floorTo = (bytes: number, unit: number): number => Math.max(0, Math.floor(bytes / unit) * unit);

/**
 * Thin: min(pool × ratio − Σ virtual, pool − used − spare), each rounded down to extents;
 * 0 when the pool is past a usage threshold. `used` is data_percent of the pool rounded up
 * to whole extents, so the figure never promises space the pool does not have.
 */
export function thinCapacity(state: ThinPoolState, deviceClass: DeviceClass, extentBytes: number): ClassCapacity {
  const poolBytes = state.pool.sizeBytes;
  const overcommitLimit = floorTo(poolBytes * deviceClass.overprovisionRatio, extentBytes);
  const usedBytes = Math.ceil((poolBytes * state.dataPercent) / 100 / extentBytes) * extentBytes;
  const byRatio = overcommitLimit - state.virtualBytes;
  const byData = poolBytes - usedBytes - deviceClass.spareBytes;
  const over = thinPoolOverThreshold(state, deviceClass);
  const available = over ? 0 : floorTo(Math.min(byRatio, byData), extentBytes);
  return {
    availableBytes: available,
    maximumVolumeBytes: available,
    minimumVolumeBytes: extentBytes,
    explanation:
      over ??
      `thin pool ${state.pool.vgName}/${state.pool.name}: pool ${poolBytes} × ratio ${deviceClass.overprovisionRatio} − virtual ${state.virtualBytes} = ${byRatio} bytes; ` +
        `pool ${poolBytes} − used ${usedBytes} − spare ${deviceClass.spareBytes} = ${byData} bytes`,
  };
}

/**
 * Thick: the VG's free extents less the spare, shaped by the layout.
 *  linear:  A = free − spare
 *  striped: n × (n-th largest PV free), and at most A rounded down to n extents
 *  raid1:   c copies, each a data image plus one metadata extent on its own PV:
 *           min(c-th largest PV free − 1, ⌊A / c⌋ − 1)
 * `growing`: the room to grow an existing LV of this layout by, rather than to make one. The
 * same arithmetic, except that a raid1 LV's metadata extents already exist: each copy grows
 * by min(c-th largest PV free, ⌊A / c⌋).
 */
export function thickCapacity(report: VolumeGroupReport, layout: VolumeLayout, growing = false): ClassCapacity {
  const extent = report.vg.extentSizeBytes;
  const spareExtents = Math.ceil(layout.deviceClass.spareBytes / extent);
  const usable = Math.max(0, report.vg.freeExtentCount - spareExtents);
  const pvFree = report.pvs.map((pv) => Math.floor(pv.freeBytes / extent)).sort((a, b) => b - a);
  let extents: number;
  let minimum = 1;
  let how: string;
  if (layout.kind === "raid1") {
    const copies = layout.mirrors + 1;
    const metadata = growing ? 0 : 1;
    const perLeg = (pvFree[copies - 1] ?? 0) - metadata;
    const byTotal = Math.floor(usable / copies) - metadata;
    extents = Math.max(0, Math.min(perLeg, byTotal));
    how = growing
      ? `raid1 with ${copies} copies, each growing by ${extents} extents on its own physical volume`
      : `raid1 with ${copies} copies, each ${extents} data extents + 1 metadata extent on its own physical volume`;
  } else if (layout.kind === "striped") {
    const n = layout.stripes;
    const perStripe = pvFree[n - 1] ?? 0;
    extents = Math.max(0, Math.min(n * perStripe, Math.floor(usable / n) * n));
    minimum = n;
    how = `${n} stripes of ${extents / n} extents`;
  } else {
    extents = usable;
    how = "linear";
  }
  const bytes = extents * extent;
  return {
    availableBytes: bytes,
    maximumVolumeBytes: bytes,
    minimumVolumeBytes: minimum * extent,
    explanation: `volume group ${report.vg.name}: ${report.vg.freeExtentCount} free extents of ${extent} bytes, ${spareExtents} kept spare by device class "${layout.deviceClass.name}"; ${how}`,
  };
}
