/**
 * Clones and restores: finding the content source, the size a copy gets, and populating the
 * new LV — a thin snapshot in the source's pool when it can be one, a block copy otherwise —
 * under a populating mark (a tag) that is cleared only when the content is complete, so a
 * crash in between is resumed by the next CreateVolume, never trusted.
 */
import type { LogicalVolume } from "../lvm/report.js";
import { isValidLvName } from "../lvm/names.js";
import type { EngineContext } from "./context.js";
import type { VolumeLayout } from "./device-classes.js";
import { VolumeError, failedPrecondition, lvmFailure, notFound, outOfRange, unavailable } from "./errors.js";
import type { Located, LvmState } from "./lvm-state.js";
import { type ContentSource, type VolumeMetadata, POPULATING_TAG, metadataOf } from "./metadata.js";
import { type CapacityRange, MiB, roundUp, sizeForRange } from "./size.js";
import type { CallOptions } from "./volume.js";

/** A block copy runs at least this fast on any disk loam is meant for; the deadline follows from it. */
const SLOWEST_COPY_BYTES_PER_SECOND = 20 * MiB;
const MIN_COPY_TIMEOUT_MS = 120_000;

/** A content source found on this node: its LV, its metadata and how the request named it. */
export interface Source extends Located {
  metadata: VolumeMetadata;
  reference: ContentSource;
}

/** The snapshot or volume a request names as its content; NOT_FOUND or UNAVAILABLE (still populating) otherwise. */
export async function resolveSource(
  context: EngineContext,
  state: LvmState,
  reference: ContentSource,
  options: CallOptions,
): Promise<Source> {
  const found = isValidLvName(reference.id) ? (await context.lookup(reference.id, options, state)).found : undefined;
  const metadata = found ? metadataOf(found.lv) : undefined;
  if (!found || !metadata || metadata.kind !== reference.kind) {
    throw notFound(`${reference.kind} ${reference.id} (volume_content_source) does not exist on this node`);
  }
  if (metadata.populating) {
    throw unavailable(
      `source volume ${reference.id} is still being populated; clone it once its CreateVolume has returned`,
    );
  }
  return { ...found, metadata, reference };
}

/** True when the new volume can be a thin snapshot of the source: both in the class's pool. */
export function sharesPool(layout: VolumeLayout, source: LogicalVolume): boolean {
  const deviceClass = layout.deviceClass;
  return (
    layout.kind === "thin" &&
    source.segType === "thin" &&
    source.vgName === deviceClass.volumeGroup &&
    source.poolLv === deviceClass.thinPool
  );
}

/**
 * FAILED_PRECONDITION when a block copy of the source would be torn. dd reads a volume block
 * by block; one that is open (mounted, or held by a process) may be written meanwhile, and
 * its copy would mix blocks from different moments (and a filesystem's unflushed state). A
 * snapshot is read-only and a thin snapshot of a source in the class's pool is atomic: both
 * are consistent however the source is used. The caller holds the source's lock, which the
 * Node service stages it under, so loam does not mount it between this check and the copy.
 */
export async function refuseTornCopy(
  context: EngineContext,
  source: Source,
  layout: VolumeLayout,
  options: CallOptions,
): Promise<void> {
  if (source.reference.kind !== "volume" || sharesPool(layout, source.lv)) return;
  const { lv } = await context.withLiveActivation(source);
  // An inactive LV has no device to hold open; populate activates it only for the copy.
  if (!lv.active || !(await context.isOpenNow(lv, options))) return;
  const deviceClass = layout.deviceClass;
  const atomic =
    lv.segType === "thin"
      ? `clone it in a thin device class on its own pool (${lv.vgName}/${lv.poolLv}), where a clone is an atomic thin snapshot`
      : "keep volumes that must be cloned while in use in a thin device class, whose clones and snapshots are atomic thin snapshots";
  throw failedPrecondition(
    `source volume ${lv.name} is in use (open: mounted or held by a process) on this node, and a clone into ` +
      `device class "${deviceClass.name}" copies its blocks while they may change, which would be a torn copy. ` +
      `For a consistent copy, stop the pods that use it (unpublish and unstage it) and clone it again, or ${atomic}`,
  );
}

/**
 * The size of a clone or restore: at least the source's size. No range means exactly the
 * source's size; a limit below the source is OUT_OF_RANGE (a copy cannot shrink).
 */
export function sizeWithSource(
  range: CapacityRange | undefined,
  extent: number,
  sourceBytes: number | undefined,
): number {
  if (sourceBytes === undefined) return sizeForRange(range, extent);
  const source = roundUp(sourceBytes, extent);
  const required = range?.requiredBytes ?? 0n;
  const limit = range?.limitBytes ?? 0n;
  if (limit > 0n && limit < BigInt(sourceBytes)) {
    throw outOfRange(
      `capacity_range.limit_bytes (${limit}) is smaller than the source's ${sourceBytes} bytes; a clone or restore is at least as large as its source`,
    );
  }
  if (required === 0n) return source;
  const size = Math.max(sizeForRange(range, extent), source);
  if (limit > 0n && BigInt(size) > limit) {
    throw outOfRange(
      `the source's ${sourceBytes} bytes, rounded to ${size}, do not fit under capacity_range.limit_bytes (${limit})`,
    );
  }
  return size;
}

/**
 * Completes a clone's content, then clears its populating mark. Thin snapshots of the
 * source only need growing; anything else is a block copy. The copy is not tied to the
 * caller's deadline: a caller that gives up and retries waits on the lock for it instead of
 * restarting it, so large copies finish.
 */
export async function populate(
  context: EngineContext,
  target: LogicalVolume,
  layout: VolumeLayout,
  size: number,
  source: Source | undefined,
  options: CallOptions,
): Promise<void> {
  if (!source)
    throw new VolumeError("internal", `volume ${target.name} is marked as being populated but names no source`);
  const { lvm } = context;
  const vg = target.vgName;
  try {
    if (sharesPool(layout, source.lv) && target.segType === "thin") {
      if (size > target.sizeBytes) await lvm.extendLv(vg, target.name, size, options);
    } else {
      const wasActive = source.lv.active;
      if (!wasActive) await lvm.activateLv(source.lv.vgName, source.lv.name);
      try {
        await lvm.copyLv(
          { vg: source.lv.vgName, name: source.lv.name },
          { vg, name: target.name },
          { timeoutMs: Math.max(MIN_COPY_TIMEOUT_MS, (source.lv.sizeBytes / SLOWEST_COPY_BYTES_PER_SECOND) * 1000) },
        );
      } finally {
        if (!wasActive) await lvm.deactivateLv(source.lv.vgName, source.lv.name).catch(() => undefined);
      }
    }
    await lvm.removeTags(vg, target.name, [POPULATING_TAG]);
  } catch (error) {
    throw lvmFailure(error, `populating ${target.name} from ${source.reference.kind} ${source.reference.id}`);
  }
}
