/**
 * The life of an existing volume, without locks (engine.ts holds them): find, list, activate,
 * grow and delete. Creation is create.ts; snapshots are snapshots.ts.
 */
import { isValidLvName } from "../lvm/names.js";
import { thinCapacity, thinPoolOverThreshold, thinPoolState } from "./capacity.js";
import { type EngineContext, extentsOf } from "./context.js";
import { lvAlreadyGone, lvmFailure, notFound, resourceExhausted, unavailable } from "./errors.js";
import type { Located } from "./lvm-state.js";
import { metadataOf } from "./metadata.js";
import { type CapacityRange, sizeForRange } from "./size.js";
import { type CallOptions, type Volume, type VolumeHealth, byId, healthy } from "./volume.js";

/** Deletes the volume; a volume that does not exist (or is not loam's) is already deleted. */
export async function deleteVolume(context: EngineContext, id: string, options: CallOptions): Promise<void> {
  const { found } = await context.lookup(id, options);
  // Snapshots are not volumes: DeleteVolume with a snapshot's id must leave it alone.
  if (!found || metadataOf(found.lv)?.kind !== "volume") return;
  await removeLv(context, found, "volume", options);
}

/**
 * Grows the volume to the size the range asks for (extent-rounded, never above the limit).
 * A volume already at least that large is left alone: expansion never shrinks. Thin volumes
 * grow only within their class's overcommit ratio and usage thresholds.
 */
export async function expandVolume(
  context: EngineContext,
  id: string,
  range: CapacityRange,
  options: CallOptions,
): Promise<Volume> {
  const { state, found: located } = await context.lookup(id, options);
  let found = located;
  if (found?.lv.segType === "thin") {
    found = (await context.withPoolUsage(state, found.lv.vgName, found.lv.poolLv, options)).find(id);
  }
  const volume = found ? context.volumeOf(found) : undefined;
  if (!found || !volume) throw notFound(`volume ${id} does not exist on this node`);
  const { lv, report } = found;
  const size = sizeForRange(range, report.vg.extentSizeBytes);
  if (size <= lv.sizeBytes) return volume;
  const growth = size - lv.sizeBytes;
  if (lv.segType === "thin") {
    const deviceClass = context.classOfThin(lv);
    const poolState = thinPoolState(report, lv.poolLv);
    if (deviceClass && poolState) {
      const over = thinPoolOverThreshold(poolState, deviceClass);
      if (over) throw resourceExhausted(`cannot grow ${id}: ${over}`);
      const room = thinCapacity(poolState, deviceClass, report.vg.extentSizeBytes);
      if (growth > room.availableBytes) {
        throw resourceExhausted(
          `cannot grow ${id} by ${growth} bytes: ${room.availableBytes} bytes available (${room.explanation})`,
        );
      }
    }
  } else if (growth > report.vg.freeBytes) {
    throw resourceExhausted(
      `not enough space in volume group ${lv.vgName} to grow ${id}: needs ${growth} more bytes, free ${report.vg.freeBytes} bytes`,
    );
  }
  try {
    await context.lvm.extendLv(lv.vgName, id, size, options);
    // LVM may round a striped or raid LV's growth beyond what was asked: those are read again.
    const extents =
      lv.segType === "thin" ? 0 : lv.segType === "linear" ? growth / report.vg.extentSizeBytes : undefined;
    await context.changed(lv.vgName, { kind: "updated", name: id, patch: { sizeBytes: size }, extents });
  } catch (error) {
    context.invalidate();
    throw lvmFailure(error, `growing ${id}`, {
      noSpace: () => `not enough space in volume group ${lv.vgName} to grow ${id} to ${size} bytes`,
    });
  }
  return { ...volume, sizeBytes: size };
}

/**
 * Activates the volume's LV if it is not active: after a reboot, and for clones and
 * restores made as thin snapshots (which LVM may skip on activation). The node side calls
 * this before it stages a volume.
 */
export async function ensureActive(context: EngineContext, id: string, options: CallOptions): Promise<Volume> {
  const volume = await getVolume(context, id, options);
  if (!volume) throw notFound(`volume ${id} does not exist on this node`);
  if (!volume.ready) {
    throw unavailable(
      `volume ${id} is still being populated from its source; try again when CreateVolume has returned`,
    );
  }
  // getVolume took activation from the device node, not from the cached state (kernel state).
  if (volume.active) return volume;
  try {
    await context.lvm.activateLv(volume.volumeGroup, id, options);
  } catch (error) {
    context.invalidate();
    throw lvmFailure(error, `activating ${id}`);
  }
  await context.changed(volume.volumeGroup, { kind: "updated", name: id, patch: { active: true }, extents: 0 });
  return { ...volume, active: true, condition: healthy() };
}

/** The volume with this id, or undefined. */
export async function getVolume(context: EngineContext, id: string, options: CallOptions): Promise<Volume | undefined> {
  if (!isValidLvName(id)) return undefined;
  const { found } = await context.lookup(id, options);
  return found ? context.volumeOf(await context.withLiveActivation(found)) : undefined;
}

/** The volume and LVM's health words for it, or undefined. */
export async function volumeHealth(
  context: EngineContext,
  id: string,
  options: CallOptions,
): Promise<VolumeHealth | undefined> {
  if (!isValidLvName(id)) return undefined;
  const { found: cached } = await context.lookup(id, options);
  const found = cached ? await context.withLiveActivation(cached) : undefined;
  const volume = found ? context.volumeOf(found) : undefined;
  if (!found || !volume) return undefined;
  return { volume, healthStatus: found.lv.healthStatus, syncPercent: found.lv.copyPercent };
}

/** Every loam volume on the node, sorted by id so pagination is stable. */
export async function listVolumes(context: EngineContext, options: CallOptions): Promise<readonly Volume[]> {
  const state = await context.readState(options);
  // ListVolumes pages through one list: build it once per version of the state.
  const known = context.listed.get(state.reports);
  if (known) return known;
  const volumes = state
    .all()
    .map((located) => context.volumeOf(located))
    .filter((v): v is Volume => v !== undefined)
    .sort(byId);
  context.listed.set(state.reports, volumes);
  return volumes;
}

/** Removes a volume's or a snapshot's LV; one LVM no longer has is already removed. */
export async function removeLv(
  context: EngineContext,
  { lv, report }: Located,
  what: "volume" | "snapshot",
  options: CallOptions,
): Promise<void> {
  try {
    await context.lvm.removeLv(lv.vgName, lv.name, options);
    const extents = extentsOf(lv, report.vg.extentSizeBytes);
    await context.changed(lv.vgName, {
      kind: "removed",
      name: lv.name,
      extents: extents === undefined ? undefined : -extents,
    });
  } catch (error) {
    context.invalidate();
    if (lvAlreadyGone(error)) return;
    throw lvmFailure(error, `deleting ${lv.name}`, {
      inUse: () =>
        what === "volume"
          ? `volume ${lv.name} is in use (mounted or open) on this node; unpublish it first`
          : `snapshot ${lv.name} is open (a restore is copying from it); try again when that CreateVolume has returned`,
    });
  }
}
