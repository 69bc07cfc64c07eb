/**
 * Snapshots, without their per-name locks (engine.ts holds them): thin snapshots of thin
 * volumes, read-only, skipped on activation and ready at once; counted against their pool's
 * overcommit ratio, checked and made under the pool's allocation lock (EngineContext.allocating).
 */
import { isValidLvName } from "../lvm/names.js";
import { checkAllocatable, checkSnapshotRoom } from "./class-capacity.js";
import { type EngineContext, allocationDomain, madeLv } from "./context.js";
import { alreadyExists, failedPrecondition, lvmFailure, notFound, unavailable } from "./errors.js";
import type { Located } from "./lvm-state.js";
import { metadataOf, snapshotTagsFor } from "./metadata.js";
import { type CallOptions, type CreateSnapshotRequest, type Snapshot, byId, snapshotOf } from "./volume.js";
import { removeLv } from "./volumes.js";

/**
 * Makes snapshot `id` (the LV name for `request.name`). The same name and source return the
 * same snapshot; the same name with another source is ALREADY_EXISTS. Thick volumes cannot
 * be snapshotted (FAILED_PRECONDITION says why).
 */
export async function createSnapshot(
  context: EngineContext,
  request: CreateSnapshotRequest,
  id: string,
  options: CallOptions,
): Promise<Snapshot> {
  const state = await context.readState(options);
  const existing = state.find(id);
  if (existing) {
    const metadata = metadataOf(existing.lv);
    if (!metadata || metadata.kind !== "snapshot" || metadata.name !== request.name) {
      throw failedPrecondition(
        `logical volume ${existing.lv.vgName}/${id} exists but was not created by loam for snapshot "${request.name}"; refusing to touch it`,
      );
    }
    if (metadata.source?.id !== request.sourceVolumeId) {
      throw alreadyExists(
        `snapshot "${request.name}" exists with source volume ${metadata.source?.id ?? "(unknown)"}; this request names ${request.sourceVolumeId}`,
      );
    }
    return snapshotOf(existing, metadata);
  }
  let source: Located | undefined;
  if (isValidLvName(request.sourceVolumeId)) {
    ({ found: source } = await context.lookup(request.sourceVolumeId, options, state));
  }
  const sourceMetadata = source ? metadataOf(source.lv) : undefined;
  if (!source || sourceMetadata?.kind !== "volume") {
    throw notFound(`source volume ${request.sourceVolumeId} does not exist on this node`);
  }
  if (sourceMetadata.populating) {
    throw unavailable(
      `source volume ${request.sourceVolumeId} is still being populated; snapshot it once CreateVolume has returned`,
    );
  }
  const { lv } = source;
  if (lv.segType !== "thin") {
    throw failedPrecondition(
      `volume ${lv.name} is a thick ${lv.segType} volume (device class "${sourceMetadata.deviceClass ?? context.classes.defaultClass.name}"); ` +
        "snapshots need a thin device class. Use a StorageClass with a thin device class, or clone the volume (CreateVolume with a volume source) for a full copy",
    );
  }
  checkAllocatable(source.report, `cannot snapshot ${lv.name}`, "failed-precondition");
  const deviceClass = context.classOfThin(lv);
  const createdAt = new Date();
  const tags = snapshotTagsFor(request.name, id, lv.name, createdAt, deviceClass?.name ?? sourceMetadata.deviceClass);
  await context.allocating(allocationDomain(lv.vgName, lv.poolLv), async () => {
    if (deviceClass) {
      // Read again under the pool's lock: the budget as every snapshot and create before this one left it.
      const now = await context.withPoolUsage(await context.readState(options), lv.vgName, lv.poolLv, options);
      checkSnapshotRoom(now, source, deviceClass);
    }
    try {
      await context.lvm.createThinSnapshot(
        { vg: lv.vgName, origin: lv.name, name: id, tags, writable: false },
        options,
      );
    } catch (error) {
      context.invalidate();
      throw lvmFailure(error, `snapshotting ${lv.name}`);
    }
    const made = madeLv(lv.vgName, id, lv.sizeBytes, tags, "thin", {
      poolLv: lv.poolLv,
      origin: lv.name,
      active: false,
    });
    await context.changed(lv.vgName, { kind: "created", lv: made, extents: 0 });
  });
  return {
    id,
    name: request.name,
    sourceVolumeId: lv.name,
    volumeGroup: lv.vgName,
    sizeBytes: lv.sizeBytes,
    createdAt,
    readyToUse: true,
  };
}

/**
 * Deletes a snapshot. Thin snapshots are independent thin LVs, so volumes restored from it
 * and its source volume are not affected. An id that is not a loam snapshot is already gone.
 */
export async function deleteSnapshot(context: EngineContext, id: string, options: CallOptions): Promise<void> {
  const { found } = await context.lookup(id, options);
  if (!found || metadataOf(found.lv)?.kind !== "snapshot") return;
  await removeLv(context, found, "snapshot", options);
}

export async function getSnapshot(
  context: EngineContext,
  id: string,
  options: CallOptions,
): Promise<Snapshot | undefined> {
  if (!isValidLvName(id)) return undefined;
  const { found } = await context.lookup(id, options);
  const metadata = found ? metadataOf(found.lv) : undefined;
  return found && metadata?.kind === "snapshot" ? snapshotOf(found, metadata) : undefined;
}

/** Every loam snapshot on the node, sorted by id. */
export async function listSnapshots(context: EngineContext, options: CallOptions): Promise<Snapshot[]> {
  const state = await context.readState(options);
  const snapshots: Snapshot[] = [];
  for (const located of state.all()) {
    const metadata = metadataOf(located.lv);
    if (metadata?.kind === "snapshot") snapshots.push(snapshotOf(located, metadata));
  }
  return snapshots.sort(byId);
}
