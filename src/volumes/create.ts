/**
 * CreateVolume, without its per-name locks (engine.ts holds them): pick the class and layout,
 * adopt the LV an earlier call made for the same name (or refuse one that differs), check the
 * room, make the LV — a thin snapshot of the source when it shares the pool — and populate
 * a clone or restore (population.ts). The room check and the lvcreate run under the class's
 * allocation lock (EngineContext.allocating) on a state read inside it, so concurrent
 * creates of different names cannot over-commit a pool or eat a class's spare; a block copy
 * runs after the lock is released.
 */
import { checkAllocatable, checkRoom, checkStripeSize } from "./class-capacity.js";
import { type EngineContext, allocationDomain, extentsOf, madeLv } from "./context.js";
import { VolumeError, alreadyExists, failedPrecondition, lvAlreadyExists, lvmFailure } from "./errors.js";
import type { Located } from "./lvm-state.js";
import { claimFor, metadataOf, tagsFor } from "./metadata.js";
import { fingerprint } from "./parameters.js";
import { populate, refuseTornCopy, resolveSource, sharesPool, sizeWithSource } from "./population.js";
import { sizeForRange } from "./size.js";
import {
  type CallOptions,
  type CreateVolumeRequest,
  type Volume,
  devicePath,
  healthy,
  withFormatMark,
} from "./volume.js";

/** Creates the volume `id` (the LV name for `request.name`), or returns the one an earlier call made. */
export async function createVolume(
  context: EngineContext,
  request: CreateVolumeRequest,
  id: string,
  options: CallOptions,
  retried = false,
): Promise<Volume> {
  const { classes, lvm } = context;
  const deviceClass = classes.select(request.parameters);
  const usage = context.poolUsageNow(deviceClass, options);
  const state = await context.readState(options, "capacity");
  const layout = classes.layout(request.parameters, state.vg(deviceClass.volumeGroup).pvs.length);
  const report = state.vg(deviceClass.volumeGroup);
  checkStripeSize(layout, report.vg.extentSizeBytes);
  // LVM rounds a striped LV up to whole extents on every stripe; round the same way so the size we answer is the size made.
  const extent = report.vg.extentSizeBytes * (layout.kind === "striped" ? layout.stripes : 1);

  const existing = state.find(id);
  if (existing && !metadataOf(existing.lv)?.populating) return adopt(context, existing, request, extent);
  checkAllocatable(
    report,
    `cannot create volume "${request.name}" in device class "${deviceClass.name}"`,
    "resource-exhausted",
  );

  const source = request.contentSource
    ? await resolveSource(context, state, request.contentSource, options)
    : undefined;
  const size = sizeWithSource(request.range, extent, source?.lv.sizeBytes);
  if (source) await refuseTornCopy(context, source, layout, options);
  if (existing) {
    // An earlier attempt made the LV and stopped before its content was complete.
    const volume = adopt(context, existing, request, extent, size);
    await populate(context, existing.lv, layout, size, source, options);
    context.invalidate();
    return { ...volume, sizeBytes: Math.max(volume.sizeBytes, size), ready: true, condition: healthy() };
  }

  // A thin snapshot of the source's own size is complete when lvcreate returns; anything
  // else is marked until its content is, so a crash in between is resumed, not trusted.
  const snapshotOfSource = source !== undefined && sharesPool(layout, source.lv);
  const instant = snapshotOfSource && size === source.lv.sizeBytes;
  const tags = tagsFor(request.name, id, request.parameters, {
    deviceClass: deviceClass.name,
    ...(request.contentSource ? { source: request.contentSource, populating: !instant } : { unformatted: true }),
  });
  const vg = deviceClass.volumeGroup;
  const thinPool = layout.kind === "thin" ? deviceClass.thinPool : undefined;
  const made = await context.allocating(allocationDomain(vg, thinPool), async () => {
    // Read again under the lock: what the room is now, after every create that held it before.
    const now = await context.forLayout(await context.readState(options, "capacity"), layout, options, usage);
    checkRoom(now, layout, size);
    const extentBytes = now.vg(vg).vg.extentSizeBytes;
    try {
      if (source && snapshotOfSource) {
        await lvm.createThinSnapshot({ vg, origin: source.lv.name, name: id, tags, writable: true }, options);
        const lv = madeLv(vg, id, source.lv.sizeBytes, tags, "thin", {
          poolLv: source.lv.poolLv,
          origin: source.lv.name,
        });
        await context.changed(vg, { kind: "created", lv, extents: 0 });
        // Growing the snapshot to the size asked for spends the pool's budget too: before the lock goes.
        if (!instant) {
          await populate(context, lv, layout, size, source, options);
          context.invalidate();
        }
      } else {
        await lvm.createLv(
          {
            vg,
            name: id,
            sizeBytes: size,
            tags,
            ...(thinPool !== undefined ? { thinPool } : { stripes: layout.stripes, mirrors: layout.mirrors }),
            ...(layout.stripeSizeBytes !== undefined ? { stripeSizeBytes: layout.stripeSizeBytes } : {}),
          },
          options,
        );
        const lv = madeLv(vg, id, size, tags, layout.kind, { poolLv: thinPool ?? "", stripes: layout.stripes });
        await context.changed(vg, { kind: "created", lv, extents: extentsOf(lv, extentBytes) });
      }
      return true;
    } catch (error) {
      context.invalidate();
      // Made behind the cache's back (or by a run of loam that crashed): look again, out of the lock, and adopt it.
      if (lvAlreadyExists(error) && !retried && !state.fresh) return false;
      throw lvmFailure(error, `creating ${id}`, {
        missingPvs: "resource-exhausted",
        noSpace: (lvmSays) =>
          `not enough space in device class "${deviceClass.name}" (volume group ${vg}): requested ${size} bytes (${lvmSays})`,
      });
    }
  });
  if (!made) return createVolume(context, request, id, options, true);
  const created: Volume = {
    id,
    name: request.name,
    volumeGroup: deviceClass.volumeGroup,
    sizeBytes: size,
    devicePath: devicePath(deviceClass.volumeGroup, id),
    active: true,
    claim: claimFor(request.parameters),
    deviceClass: deviceClass.name,
    layout: layout.kind,
    ready: true,
    formatting: !request.contentSource,
    condition: withFormatMark(healthy(), !request.contentSource),
  };
  if (request.contentSource) created.contentSource = request.contentSource;
  if (source && !snapshotOfSource) {
    // A block copy: no allocation left, so out of the lock.
    const target = {
      ...source.lv,
      name: id,
      vgName: deviceClass.volumeGroup,
      sizeBytes: source.lv.sizeBytes,
      active: true,
    };
    await populate(context, target, layout, size, source, options);
    context.invalidate();
  }
  return created;
}

/**
 * An existing LV for this name: the same request gets the same volume; anything that
 * differs in shape, source or size is ALREADY_EXISTS. `populatingSize` is the size an
 * unfinished clone is about to be given.
 */
function adopt(
  context: EngineContext,
  found: Located,
  request: CreateVolumeRequest,
  extent: number,
  populatingSize?: number,
): Volume {
  const { lv } = found;
  const metadata = metadataOf(lv);
  if (!metadata || metadata.kind !== "volume" || metadata.name !== request.name) {
    throw failedPrecondition(
      `logical volume ${lv.vgName}/${lv.name} exists but was not created by loam for "${request.name}"; refusing to touch it`,
    );
  }
  const wanted = fingerprint(request.parameters);
  if (metadata.parameters !== wanted) {
    throw alreadyExists(
      `volume "${request.name}" exists with parameters ${metadata.parameters}; this request asks for ${wanted}`,
    );
  }
  const had = metadata.source ? `${metadata.source.kind} ${metadata.source.id}` : "no content source";
  const asked = request.contentSource
    ? `${request.contentSource.kind} ${request.contentSource.id}`
    : "no content source";
  if (had !== asked) throw alreadyExists(`volume "${request.name}" exists with ${had}; this request asks for ${asked}`);
  const size = Math.max(lv.sizeBytes, populatingSize ?? 0);
  const required = Number(request.range?.requiredBytes ?? 0n);
  const limit = Number(request.range?.limitBytes ?? 0n);
  if (size < required || (limit > 0 && size > limit)) {
    const computed = populatingSize ?? (request.contentSource ? undefined : sizeForRange(request.range, extent));
    throw alreadyExists(
      `volume "${request.name}" exists with ${size} bytes, outside this request's range ` +
        `[required_bytes=${required}, limit_bytes=${limit || "unset"}]${computed === undefined ? "" : ` (the computed size would be ${computed})`}`,
    );
  }
  const volume = context.volumeOf(found);
  if (!volume) throw new VolumeError("internal", `volume ${lv.name} lost its metadata`);
  return volume;
}
