/**
 * Capacity per device class, as the engine answers it: GetCapacity's figures, CreateVolume's
 * "does it fit" and ControllerExpandVolume's "can it grow", all from capacity.ts's arithmetic
 * on one LVM state so the scheduler is never told something creation then refuses, and a
 * volume grows by what its layout really allocates (raid1 copies, stripes, the class's spare)
 * exactly as it was made. The checks run under the engine's allocation lock for the pool or
 * volume group (EngineContext.allocating), so two calls cannot both spend the same room.
 */
import { type ClassCapacity, thickCapacity, thinCapacity, thinPoolOverThreshold, thinPoolState } from "./capacity.js";
import type { EngineContext } from "./context.js";
import type { DeviceClass, VolumeLayout } from "./device-classes.js";
import { failedPrecondition, invalidArgument, resourceExhausted } from "./errors.js";
import type { VolumeGroupReport } from "../lvm/report.js";
import type { Located, LvmState } from "./lvm-state.js";
import { cannotAllocate } from "./missing-pvs.js";
import { PARAMETER_KEYS } from "./parameters.js";
import type { Capacity, CapacityOptions } from "./volume.js";

/**
 * What one more volume of the requested class and layout can get. A thin class whose pool
 * is missing has nothing to offer (0), rather than failing the whole capacity report.
 */
export async function capacity(context: EngineContext, options: CapacityOptions): Promise<Capacity> {
  const parameters = options.parameters ?? { shaping: {}, metadata: {} };
  const deviceClass = context.classes.select(parameters);
  const first = await context.readState(options, "capacity");
  const layout = context.classes.layout(parameters, first.vg(deviceClass.volumeGroup).pvs.length);
  const state = await context.forLayout(first, layout, options);
  const report = state.vg(deviceClass.volumeGroup);
  checkStripeSize(layout, report.vg.extentSizeBytes);
  if (cannotAllocate(report) || (layout.kind === "thin" && !thinPoolState(report, deviceClass.thinPool ?? ""))) {
    return { availableBytes: 0, maximumVolumeBytes: 0, minimumVolumeBytes: report.vg.extentSizeBytes };
  }
  const room = capacityOf(state, layout);
  return {
    availableBytes: room.availableBytes,
    maximumVolumeBytes: room.maximumVolumeBytes,
    minimumVolumeBytes: room.minimumVolumeBytes,
  };
}

/** Throws RESOURCE_EXHAUSTED, with the figures, unless a volume of `size` bytes fits. */
export function checkRoom(state: LvmState, layout: VolumeLayout, size: number): void {
  const room = capacityOf(state, layout);
  if (size <= room.availableBytes) return;
  const deviceClass = layout.deviceClass;
  if (layout.kind === "thin") {
    const poolState = thinPoolState(state.vg(deviceClass.volumeGroup), deviceClass.thinPool ?? "");
    const over = poolState ? thinPoolOverThreshold(poolState, deviceClass) : undefined;
    if (over) throw resourceExhausted(`${over}; requested ${size} bytes`);
  }
  throw resourceExhausted(
    `not enough space in volume group ${deviceClass.volumeGroup} for device class "${deviceClass.name}": ` +
      `requested ${size} bytes, free ${room.availableBytes} bytes for a ${layout.kind} volume (${room.explanation})`,
  );
}

/**
 * Throws RESOURCE_EXHAUSTED unless the volume `id`, of this layout, can grow by `growth`
 * bytes: the same formulas as creation (thickCapacity's `growing` form for raid1).
 */
export function checkGrowth(state: LvmState, layout: VolumeLayout, id: string, growth: number): void {
  const deviceClass = layout.deviceClass;
  if (layout.kind === "thin") {
    const poolState = thinPoolState(state.vg(deviceClass.volumeGroup), deviceClass.thinPool ?? "");
    const over = poolState ? thinPoolOverThreshold(poolState, deviceClass) : undefined;
    if (over) throw resourceExhausted(`cannot grow ${id}: ${over}`);
  }
  const room = capacityOf(state, layout, true);
  // LVM grows a striped LV by whole extents on every stripe.
  const unit = state.vg(deviceClass.volumeGroup).vg.extentSizeBytes * (layout.kind === "striped" ? layout.stripes : 1);
  const needed = Math.ceil(growth / unit) * unit;
  if (needed <= room.availableBytes) return;
  throw resourceExhausted(
    `cannot grow ${id} by ${needed} bytes: ${room.availableBytes} bytes available (${room.explanation})`,
  );
}

/**
 * Throws RESOURCE_EXHAUSTED unless a thin snapshot of `source` fits its class's pool: a
 * snapshot may come to hold every block of its source, so it counts against the ratio.
 */
export function checkSnapshotRoom(state: LvmState, source: Located, deviceClass: DeviceClass): void {
  const { lv } = source;
  const report = state.vg(lv.vgName);
  const poolState = thinPoolState(report, lv.poolLv);
  if (!poolState) return;
  const over = thinPoolOverThreshold(poolState, deviceClass);
  if (over) throw resourceExhausted(`cannot snapshot ${lv.name}: ${over}`);
  const budget =
    Math.floor((poolState.pool.sizeBytes * deviceClass.overprovisionRatio) / report.vg.extentSizeBytes) *
    report.vg.extentSizeBytes;
  if (poolState.virtualBytes + lv.sizeBytes > budget) {
    throw resourceExhausted(
      `cannot snapshot ${lv.name}: thin pool ${lv.vgName}/${lv.poolLv} would hold ${poolState.virtualBytes + lv.sizeBytes} virtual bytes, ` +
        `above pool ${poolState.pool.sizeBytes} × ratio ${deviceClass.overprovisionRatio} = ${budget} bytes of device class "${deviceClass.name}"`,
    );
  }
}

/**
 * Throws unless LVM can allocate in the VG: with a PV missing it refuses every change
 * ("Cannot change VG ... while PVs are missing"), so loam answers before running the command,
 * naming the PV, the volumes on it and the fix. The code is the operation's:
 *  - CreateVolume: RESOURCE_EXHAUSTED. The CSI spec gives it for "unable to provision in
 *    accessible_topology" (the caller fixes what prevents it, then retries with backoff), and
 *    external-provisioner treats it as the one non-final error after which a claim with a
 *    selected node (WaitForFirstConsumer) is rescheduled: the scheduler, which GetCapacity
 *    already told 0, picks another node rather than retrying this one forever.
 *  - CreateSnapshot and expansion: FAILED_PRECONDITION. The volume lives in this VG, so no
 *    other place can serve the call and nothing but the operator's repair helps (gRPC: "the
 *    system is not in a state required for the operation"); external-snapshotter and
 *    external-resizer retry with backoff, and the call succeeds once the VG is repaired.
 * lvmFailure (errors.ts) gives the same code when the PV is lost between this check and LVM.
 */
export function checkAllocatable(
  report: VolumeGroupReport,
  doing: string,
  kind: "resource-exhausted" | "failed-precondition",
): void {
  const why = cannotAllocate(report);
  if (why === undefined) return;
  const message = `${doing}: ${why}`;
  throw kind === "resource-exhausted" ? resourceExhausted(message) : failedPrecondition(message);
}

/** A stripe size from the parameters (or the class) must fit in one extent of the VG. */
export function checkStripeSize(layout: VolumeLayout, extentBytes: number): void {
  if (layout.stripeSizeBytes !== undefined && layout.stripeSizeBytes > extentBytes) {
    throw invalidArgument(
      `parameters["${PARAMETER_KEYS.stripeSize}"] (${layout.stripeSizeBytes} bytes, or the default of device class "${layout.deviceClass.name}") ` +
        `is larger than the extent size ${extentBytes} of volume group ${layout.deviceClass.volumeGroup}; allowed: 4096 to ${extentBytes}, a power of two`,
    );
  }
}

function capacityOf(state: LvmState, layout: VolumeLayout, growing = false): ClassCapacity {
  const deviceClass = layout.deviceClass;
  const report = state.vg(deviceClass.volumeGroup);
  if (layout.kind !== "thin") return thickCapacity(report, layout, growing);
  const poolState = thinPoolState(report, deviceClass.thinPool ?? "");
  if (!poolState) {
    throw failedPrecondition(
      `thin pool ${deviceClass.volumeGroup}/${deviceClass.thinPool ?? "?"} of device class "${deviceClass.name}" does not exist; ` +
        "create it (lvcreate --type thin-pool) or correct the node configuration",
    );
  }
  return thinCapacity(poolState, deviceClass, report.vg.extentSizeBytes);
}
