/**
 * The life of an existing volume, without locks (engine.ts holds them): find, list, activate,
 * grow and delete. Creation is create.ts; snapshots are snapshots.ts.
 */
import { isValidLvName } from "../lvm/names.js";
import { checkAllocatable, checkGrowth } from "./class-capacity.js";
import { type EngineContext, allocationDomain, extentsOf } from "./context.js";
import { lvAlreadyGone, lvmFailure, notFound, unavailable } from "./errors.js";
import type { Located, LvmState } from "./lvm-state.js";
import { FORMATTING_TAG, metadataOf } from "./metadata.js";
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
 * A volume already at least that large is left alone: expansion never shrinks. The growth
 * must fit as creation's would (class-capacity.ts checkGrowth: a thin class's overcommit
 * ratio and usage thresholds; a thick class's spare, stripes and raid1 copies), checked on a
 * state read under the allocation lock of the pool or volume group so concurrent
 * expansions and creates cannot together spend more than there is.
 */
export async function expandVolume(
  context: EngineContext,
  id: string,
  range: CapacityRange,
  options: CallOptions,
): Promise<Volume> {
  const { found: located } = await context.lookup(id, options);
  if (!located || !context.volumeOf(located)) throw notFound(`volume ${id} does not exist on this node`);
  const thinPool = located.lv.segType === "thin" ? located.lv.poolLv : undefined;
  return context.allocating(allocationDomain(located.lv.vgName, thinPool), async () => {
    // Read again under the lock, as the layout needs it (per-PV free space, the pool's usage now).
    const { state: read, found: current } = await context.lookup(id, options);
    const layout = current ? context.layoutOfLv(current.lv) : undefined;
    const state = layout ? await context.forLayout(read, layout, options) : read;
    const found = state.find(id);
    const volume = found ? context.volumeOf(found) : undefined;
    if (!found || !volume) throw notFound(`volume ${id} does not exist on this node`);
    const { lv, report } = found;
    const size = sizeForRange(range, report.vg.extentSizeBytes);
    if (size <= lv.sizeBytes) return volume;
    const growth = size - lv.sizeBytes;
    checkAllocatable(report, `cannot grow ${id}`, "failed-precondition");
    if (layout) checkGrowth(state, layout, id, growth);
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
  });
}

/**
 * Activates the volume's LV if it is not active: after a reboot, and for clones and
 * restores made as thin snapshots (which LVM may skip on activation). The node side calls
 * this before it stages a volume.
 */
export async function ensureActive(context: EngineContext, id: string, options: CallOptions): Promise<Volume> {
  const volume = await getVolume(context, id, options, { current: false });
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

/**
 * Adds (`on`) or removes the format-in-progress mark (metadata.ts, FORMATTING_TAG) on the
 * volume's LV. Both are idempotent in LVM: adding a tag the LV has, or removing one it lacks,
 * succeeds and changes nothing.
 */
export async function setFormatting(
  context: EngineContext,
  id: string,
  on: boolean,
  options: CallOptions,
): Promise<void> {
  const { found } = await context.lookup(id, options);
  if (!found || metadataOf(found.lv)?.kind !== "volume") throw notFound(`volume ${id} does not exist on this node`);
  const { lv } = found;
  try {
    if (on) await context.lvm.addTags(lv.vgName, id, [FORMATTING_TAG], options);
    // Without the caller's signal (a batch serves other callers too; the stage passes none either).
    else {
      const domain = allocationDomain(lv.vgName, lv.segType === "thin" ? lv.poolLv : undefined);
      await context.tagRemovals.remove(domain, lv.vgName, id, FORMATTING_TAG);
    }
  } catch (error) {
    context.invalidate();
    throw lvmFailure(error, `${on ? "marking" : "unmarking"} ${id} as being formatted`);
  }
  const others = lv.tags.filter((tag) => tag !== FORMATTING_TAG);
  const tags = on ? [...others, FORMATTING_TAG] : others;
  await context.changed(lv.vgName, { kind: "updated", name: id, patch: { tags }, extents: 0 });
}

/**
 * The volume with this id, or undefined. Its condition comes from its thin pool as
 * device-mapper reports it now (context.withCurrentPools); `current: false` skips that read
 * for callers that do not look at the condition.
 */
export async function getVolume(
  context: EngineContext,
  id: string,
  options: CallOptions,
  { current = true, need = "lookup" }: VolumeRead = {},
): Promise<Volume | undefined> {
  return (await locateVolume(context, id, options, current, need))?.volume;
}

/**
 * How a single volume is read. `current: false` skips device-mapper's pool status (the
 * condition); `need: "named"` does not wait for loam's own LVM commands under way
 * (lvm-state-cache.ts, Need).
 */
export interface VolumeRead {
  current?: boolean;
  need?: "named" | "lookup";
}

/** The volume and LVM's health words for it, or undefined. */
export async function volumeHealth(
  context: EngineContext,
  id: string,
  options: CallOptions,
): Promise<VolumeHealth | undefined> {
  const located = await locateVolume(context, id, options, true);
  if (!located) return undefined;
  const { volume, found } = located;
  return { volume, healthStatus: found.lv.healthStatus, syncPercent: found.lv.copyPercent };
}

async function locateVolume(
  context: EngineContext,
  id: string,
  options: CallOptions,
  current: boolean,
  need: "named" | "lookup" = "lookup",
): Promise<{ volume: Volume; found: Located } | undefined> {
  if (!isValidLvName(id)) return undefined;
  const { state, found: cached } = await context.lookup(id, options, undefined, need);
  if (!cached) return undefined;
  let found: Located | undefined = cached;
  if (current && cached.lv.segType === "thin")
    found = (await context.withCurrentPools(state, [cached.lv], options)).find(id);
  if (!found) return undefined;
  found = await context.withLiveActivation(found);
  const volume = context.volumeOf(found);
  return volume ? { volume, found } : undefined;
}

/**
 * Every loam volume on the node, sorted by id so pagination is stable; conditions from the
 * thin pools as device-mapper reports them now, as for getVolume.
 */
export async function listVolumes(context: EngineContext, options: CallOptions): Promise<readonly Volume[]> {
  const cached = await context.readState(options);
  const state = await context.withCurrentPools(
    cached,
    cached.all().map(({ lv }) => lv),
    options,
  );
  // ListVolumes pages through one list: build it once per version of the state and its pools
  // (the cached state's, unless device-mapper could not be asked and LVM was read again).
  const base = state.fresh && !cached.fresh ? state.reports : cached.reports;
  const key = poolsKey(state);
  const known = context.listed.get(base);
  if (known?.pools === key) return known.volumes;
  const volumes = state
    .all()
    .map((located) => context.volumeOf(located))
    .filter((v): v is Volume => v !== undefined)
    .sort(byId);
  context.listed.set(base, { pools: key, volumes });
  return volumes;
}

/** What the conditions of thin volumes depend on besides their own LV: their pools' state. */
function poolsKey(state: LvmState): string {
  return JSON.stringify(
    state.reports.flatMap((r) =>
      r.lvs
        .filter((lv) => lv.segType === "thin-pool")
        .map((lv) => [
          lv.vgName,
          lv.name,
          lv.healthStatus,
          lv.dataPercent,
          lv.metadataPercent,
          lv.checkNeeded ?? null,
          lv.whenFull ?? null,
        ]),
    ),
  );
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
