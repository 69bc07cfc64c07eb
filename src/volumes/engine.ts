/**
 * The volume engine of one node: create, find, list, delete, grow and snapshot volumes in
 * the node's device classes, and report capacity per class. It speaks in domain terms
 * (names, byte sizes, VolumeError) and is shared by the CSI services and the standalone CLI.
 *
 * A volume id is its LV name, derived from the CSI name, and is unique across every volume
 * group the classes use: each operation reads all of them with one `lvm fullreport`, so ids
 * made before device classes existed keep working and no id has to say where it lives.
 */
import { stat } from "node:fs/promises";
import type { Lvm } from "../lvm/lvm.js";
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { isValidLvName, lvNameFor, snapshotLvNameFor } from "../lvm/names.js";
import {
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  VolumeGroupNotFoundError,
} from "../lvm/errors.js";
import { CommandError } from "../exec/index.js";
import type { ThinPoolUsage } from "../lvm/lvm.js";
import { KeyedLocks } from "./locks.js";
import { type Change, type LvmStateCacheOptions, type Need, LvmStateCache } from "./lvm-state-cache.js";
import type { Located, LvmState } from "./lvm-state.js";
import { type CapacityRange, MiB, roundUp, sizeForRange } from "./size.js";
import { PARAMETER_KEYS, type VolumeParameters, fingerprint } from "./parameters.js";
import {
  type ContentSource,
  type VolumeMetadata,
  POPULATING_TAG,
  claimFor,
  metadataOf,
  snapshotTagsFor,
  tagsFor,
} from "./metadata.js";
import { type DeviceClass, DeviceClasses, type VolumeLayout, singleThickClass } from "./device-classes.js";
import { type ClassCapacity, thickCapacity, thinCapacity, thinPoolOverThreshold, thinPoolState } from "./capacity.js";
import {
  VolumeError,
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  outOfRange,
  resourceExhausted,
  unavailable,
} from "./errors.js";

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

export interface EngineOptions extends LvmStateCacheOptions {
  /**
   * Whether a block device node exists at the path: how activation is read from the kernel.
   * Default: stat. Tests over an LVM stand-in, which has no device nodes, substitute one.
   */
  isBlockDevice?: (path: string) => Promise<boolean>;
}

export interface CapacityOptions extends CallOptions {
  /** The StorageClass parameters asked about; the default class when absent. */
  parameters?: VolumeParameters;
}

/** A block copy runs at least this fast on any disk loam is meant for; the deadline follows from it. */
const SLOWEST_COPY_BYTES_PER_SECOND = 20 * MiB;
const MIN_COPY_TIMEOUT_MS = 120_000;

interface Source extends Located {
  metadata: VolumeMetadata;
  reference: ContentSource;
}

export class VolumeEngine {
  private readonly locks = new KeyedLocks();
  private readonly cache: LvmStateCache;
  private readonly listed = new WeakMap<readonly VolumeGroupReport[], readonly Volume[]>();
  private readonly isBlockDevice: (path: string) => Promise<boolean>;
  readonly classes: DeviceClasses;

  /** `classes` may be a bare volume group name: one default thick class on it. */
  constructor(
    private readonly lvm: Lvm,
    classes: string | readonly DeviceClass[] | DeviceClasses,
    options: EngineOptions = {},
  ) {
    this.classes =
      typeof classes === "string"
        ? new DeviceClasses([singleThickClass(classes)])
        : classes instanceof DeviceClasses
          ? classes
          : new DeviceClasses(classes);
    const { isBlockDevice, ...cacheOptions } = options;
    this.isBlockDevice = isBlockDevice ?? blockDeviceAt;
    this.cache = new LvmStateCache(lvm, this.classes.volumeGroups, cacheOptions);
  }

  /** The default class's volume group. */
  get volumeGroup(): string {
    return this.classes.defaultClass.volumeGroup;
  }

  /** Creates the volume, or returns the one an earlier call with the same name made. */
  async createVolume(request: CreateVolumeRequest, options: CallOptions = {}): Promise<Volume> {
    const id = lvNameFor(request.name);
    const keys = [`name:${request.name}`, `id:${id}`];
    if (request.contentSource) keys.push(`id:${request.contentSource.id}`);
    return this.locks.withKeys(keys, () => this.createLocked(request, id, options));
  }

  private async createLocked(request: CreateVolumeRequest, id: string, options: CallOptions, retried = false): Promise<Volume> {
    const deviceClass = this.classes.select(request.parameters);
    const usage = this.poolUsageNow(deviceClass, options);
    const first = await this.readState(options, "capacity");
    const layout = this.classes.layout(request.parameters, first.vg(deviceClass.volumeGroup).pvs.length);
    const state = await this.forLayout(first, layout, options, usage);
    const report = state.vg(deviceClass.volumeGroup);
    checkStripeSize(layout, report.vg.extentSizeBytes);
    // LVM rounds a striped LV up to whole extents on every stripe; round the same way so the size we answer is the size made.
    const extent = report.vg.extentSizeBytes * (layout.kind === "striped" ? layout.stripes : 1);

    const existing = state.find(id);
    if (existing && !metadataOf(existing.lv)?.populating) return this.adopt(existing, request, extent);

    const source = request.contentSource ? await this.resolveSource(state, request.contentSource, options) : undefined;
    const size = sizeWithSource(request.range, extent, source?.lv.sizeBytes);
    if (existing) {
      // An earlier attempt made the LV and stopped before its content was complete.
      const volume = this.adopt(existing, request, extent, size);
      await this.populate(existing.lv, layout, size, source, options);
      this.cache.invalidate();
      return { ...volume, sizeBytes: Math.max(volume.sizeBytes, size), ready: true, condition: healthy() };
    }

    this.checkRoom(state, layout, size);
    // A thin snapshot of the source's own size is complete when lvcreate returns; anything
    // else is marked until its content is, so a crash in between is resumed, not trusted.
    const instant = source !== undefined && sharesPool(layout, source.lv) && size === source.lv.sizeBytes;
    const tags = tagsFor(request.name, request.parameters, {
      deviceClass: deviceClass.name,
      ...(request.contentSource ? { source: request.contentSource, populating: !instant } : {}),
    });
    const vg = deviceClass.volumeGroup;
    try {
      if (source && sharesPool(layout, source.lv)) {
        await this.lvm.createThinSnapshot({ vg, origin: source.lv.name, name: id, tags, writable: true }, options);
        const lv = madeLv(vg, id, source.lv.sizeBytes, tags, "thin", { poolLv: source.lv.poolLv, origin: source.lv.name });
        await this.changed(vg, { kind: "created", lv, extents: 0 });
      } else {
        await this.lvm.createLv(
          {
            vg: deviceClass.volumeGroup,
            name: id,
            sizeBytes: size,
            tags,
            ...(layout.kind === "thin" ? { thinPool: deviceClass.thinPool } : { stripes: layout.stripes, mirrors: layout.mirrors }),
            ...(layout.stripeSizeBytes !== undefined ? { stripeSizeBytes: layout.stripeSizeBytes } : {}),
          },
          options,
        );
        const lv = madeLv(vg, id, size, tags, layout.kind, {
          poolLv: layout.kind === "thin" ? (deviceClass.thinPool ?? "") : "",
          stripes: layout.stripes,
        });
        await this.changed(vg, { kind: "created", lv, extents: extentsOf(lv, report.vg.extentSizeBytes) });
      }
    } catch (error) {
      this.cache.invalidate();
      if (error instanceof LogicalVolumeExistsError && !retried && !state.fresh) {
        // Made behind the cache's back (or by a run of loam that crashed): look again and adopt it.
        return this.createLocked(request, id, options, true);
      }
      if (error instanceof InsufficientSpaceError) {
        throw resourceExhausted(
          `not enough space in device class "${deviceClass.name}" (volume group ${deviceClass.volumeGroup}): requested ${size} bytes (${error.message.trim()})`,
        );
      }
      throw translate(error, `creating ${id}`);
    }
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
      condition: healthy(),
    };
    if (request.contentSource) created.contentSource = request.contentSource;
    if (source && !instant) {
      const made = { ...source.lv, name: id, vgName: deviceClass.volumeGroup, sizeBytes: source.lv.sizeBytes, active: true };
      await this.populate(made, layout, size, source, options);
      this.cache.invalidate();
    }
    return created;
  }

  /** Deletes the volume; a volume that does not exist (or is not loam's) is already deleted. */
  async deleteVolume(id: string, options: CallOptions = {}): Promise<void> {
    if (!isValidLvName(id)) return;
    await this.locks.withKeys([`id:${id}`], async () => {
      const { found } = await this.lookup(id, options);
      // Snapshots are not volumes: DeleteVolume with a snapshot's id must leave it alone.
      if (!found || metadataOf(found.lv)?.kind !== "volume") return;
      await this.remove(found, "volume", options);
    });
  }

  /**
   * Grows the volume to the size the range asks for (extent-rounded, never above the limit).
   * A volume already at least that large is left alone: expansion never shrinks. Thin volumes
   * grow only within their class's overcommit ratio and usage thresholds.
   */
  async expandVolume(id: string, range: CapacityRange, options: CallOptions = {}): Promise<Volume> {
    return this.locks.withKeys([`id:${id}`], async () => {
      const { state, found: located } = await this.lookup(id, options);
      let found = located;
      if (found?.lv.segType === "thin") {
        found = (await this.withPoolUsage(state, found.lv.vgName, found.lv.poolLv, options)).find(id);
      }
      const volume = found ? this.toVolume(found) : undefined;
      if (!found || !volume) throw notFound(`volume ${id} does not exist on this node`);
      const { lv, report } = found;
      const size = sizeForRange(range, report.vg.extentSizeBytes);
      if (size <= lv.sizeBytes) return volume;
      const growth = size - lv.sizeBytes;
      if (lv.segType === "thin") {
        const deviceClass = this.classOfThin(lv);
        const poolState = thinPoolState(report, lv.poolLv);
        if (deviceClass && poolState) {
          const over = thinPoolOverThreshold(poolState, deviceClass);
          if (over) throw resourceExhausted(`cannot grow ${id}: ${over}`);
          const room = thinCapacity(poolState, deviceClass, report.vg.extentSizeBytes);
          if (growth > room.availableBytes) {
            throw resourceExhausted(`cannot grow ${id} by ${growth} bytes: ${room.availableBytes} bytes available (${room.explanation})`);
          }
        }
      } else if (growth > report.vg.freeBytes) {
        throw resourceExhausted(
          `not enough space in volume group ${lv.vgName} to grow ${id}: needs ${growth} more bytes, free ${report.vg.freeBytes} bytes`,
        );
      }
      try {
        await this.lvm.extendLv(lv.vgName, id, size, options);
        // LVM may round a striped or raid LV's growth beyond what was asked: those are read again.
        const extents = lv.segType === "thin" ? 0 : lv.segType === "linear" ? growth / report.vg.extentSizeBytes : undefined;
        await this.changed(lv.vgName, { kind: "updated", name: id, patch: { sizeBytes: size }, extents });
      } catch (error) {
        this.cache.invalidate();
        if (error instanceof InsufficientSpaceError) {
          throw resourceExhausted(`not enough space in volume group ${lv.vgName} to grow ${id} to ${size} bytes`);
        }
        throw translate(error, `growing ${id}`);
      }
      return { ...volume, sizeBytes: size };
    });
  }

  /**
   * Activates the volume's LV if it is not active: after a reboot, and for clones and
   * restores made as thin snapshots (which LVM may skip on activation). The node side calls
   * this before it stages a volume.
   */
  async ensureActive(id: string, options: CallOptions = {}): Promise<Volume> {
    const volume = await this.getVolume(id, options);
    if (!volume) throw notFound(`volume ${id} does not exist on this node`);
    if (!volume.ready) {
      throw unavailable(`volume ${id} is still being populated from its source; try again when CreateVolume has returned`);
    }
    // getVolume took activation from the device node, not from the cached state (kernel state).
    if (volume.active) return volume;
    try {
      await this.lvm.activateLv(volume.volumeGroup, id, options);
    } catch (error) {
      this.cache.invalidate();
      throw translate(error, `activating ${id}`);
    }
    await this.changed(volume.volumeGroup, { kind: "updated", name: id, patch: { active: true }, extents: 0 });
    return { ...volume, active: true, condition: healthy() };
  }

  /** The volume with this id, or undefined. */
  async getVolume(id: string, options: CallOptions = {}): Promise<Volume | undefined> {
    if (!isValidLvName(id)) return undefined;
    const { found } = await this.lookup(id, options);
    return found ? this.toVolume(await this.withLiveActivation(found)) : undefined;
  }

  /** The volume and LVM's health words for it, or undefined. */
  async volumeHealth(id: string, options: CallOptions = {}): Promise<VolumeHealth | undefined> {
    if (!isValidLvName(id)) return undefined;
    const { found: cached } = await this.lookup(id, options);
    const found = cached ? await this.withLiveActivation(cached) : undefined;
    const volume = found ? this.toVolume(found) : undefined;
    if (!found || !volume) return undefined;
    return { volume, healthStatus: found.lv.healthStatus, syncPercent: found.lv.copyPercent };
  }

  /** Every loam volume on the node, sorted by id so pagination is stable. */
  async listVolumes(options: CallOptions = {}): Promise<readonly Volume[]> {
    const state = await this.readState(options);
    // ListVolumes pages through one list: build it once per version of the state.
    const known = this.listed.get(state.reports);
    if (known) return known;
    const volumes = state
      .all()
      .map((located) => this.toVolume(located))
      .filter((v): v is Volume => v !== undefined)
      .sort(byId);
    this.listed.set(state.reports, volumes);
    return volumes;
  }

  /**
   * What one more volume of the requested class and layout can get. A thin class whose pool
   * is missing has nothing to offer (0), rather than failing the whole capacity report.
   */
  async capacity(options: CapacityOptions = {}): Promise<Capacity> {
    const parameters = options.parameters ?? { shaping: {}, metadata: {} };
    const deviceClass = this.classes.select(parameters);
    const first = await this.readState(options, "capacity");
    const layout = this.classes.layout(parameters, first.vg(deviceClass.volumeGroup).pvs.length);
    const state = await this.forLayout(first, layout, options);
    const report = state.vg(deviceClass.volumeGroup);
    checkStripeSize(layout, report.vg.extentSizeBytes);
    if (layout.kind === "thin" && !thinPoolState(report, deviceClass.thinPool ?? "")) {
      return { availableBytes: 0, maximumVolumeBytes: 0, minimumVolumeBytes: report.vg.extentSizeBytes };
    }
    const capacity = this.capacityOf(state, layout);
    return {
      availableBytes: capacity.availableBytes,
      maximumVolumeBytes: capacity.maximumVolumeBytes,
      minimumVolumeBytes: capacity.minimumVolumeBytes,
    };
  }

  /** Throws UNAVAILABLE unless every volume group of the classes can be read. */
  async probe(options: CallOptions = {}): Promise<void> {
    await this.readState(options);
  }

  /**
   * A thin snapshot of a thin volume: read-only, skipped on activation, ready at once.
   * The same name and source return the same snapshot; the same name with another source is
   * ALREADY_EXISTS. Thick volumes cannot be snapshotted (FAILED_PRECONDITION says why).
   */
  async createSnapshot(request: CreateSnapshotRequest, options: CallOptions = {}): Promise<Snapshot> {
    const id = snapshotLvNameFor(request.name);
    return this.locks.withKeys([`snapshot-name:${request.name}`, `id:${id}`, `id:${request.sourceVolumeId}`], async () => {
      let state = await this.readState(options);
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
        return toSnapshot(existing, metadata);
      }
      let source: Located | undefined;
      if (isValidLvName(request.sourceVolumeId)) {
        ({ state, found: source } = await this.lookup(request.sourceVolumeId, options, state));
        if (source?.lv.segType === "thin") {
          source = (await this.withPoolUsage(state, source.lv.vgName, source.lv.poolLv, options)).find(request.sourceVolumeId);
        }
      }
      const sourceMetadata = source ? metadataOf(source.lv) : undefined;
      if (!source || sourceMetadata?.kind !== "volume") {
        throw notFound(`source volume ${request.sourceVolumeId} does not exist on this node`);
      }
      if (sourceMetadata.populating) {
        throw unavailable(`source volume ${request.sourceVolumeId} is still being populated; snapshot it once CreateVolume has returned`);
      }
      const { lv, report } = source;
      if (lv.segType !== "thin") {
        throw failedPrecondition(
          `volume ${lv.name} is a thick ${lv.segType} volume (device class "${sourceMetadata.deviceClass ?? this.classes.defaultClass.name}"); ` +
            "snapshots need a thin device class. Use a StorageClass with a thin device class, or clone the volume (CreateVolume with a volume source) for a full copy",
        );
      }
      const deviceClass = this.classOfThin(lv);
      const poolState = thinPoolState(report, lv.poolLv);
      if (deviceClass && poolState) {
        const over = thinPoolOverThreshold(poolState, deviceClass);
        if (over) throw resourceExhausted(`cannot snapshot ${lv.name}: ${over}`);
        // A snapshot may come to hold every block of its source: it counts against the ratio.
        const budget = Math.floor((poolState.pool.sizeBytes * deviceClass.overprovisionRatio) / report.vg.extentSizeBytes) * report.vg.extentSizeBytes;
        if (poolState.virtualBytes + lv.sizeBytes > budget) {
          throw resourceExhausted(
            `cannot snapshot ${lv.name}: thin pool ${lv.vgName}/${lv.poolLv} would hold ${poolState.virtualBytes + lv.sizeBytes} virtual bytes, ` +
              `above pool ${poolState.pool.sizeBytes} × ratio ${deviceClass.overprovisionRatio} = ${budget} bytes of device class "${deviceClass.name}"`,
          );
        }
      }
      const createdAt = new Date();
      const tags = snapshotTagsFor(request.name, lv.name, createdAt, deviceClass?.name ?? sourceMetadata.deviceClass);
      try {
        await this.lvm.createThinSnapshot({ vg: lv.vgName, origin: lv.name, name: id, tags, writable: false }, options);
      } catch (error) {
        this.cache.invalidate();
        throw translate(error, `snapshotting ${lv.name}`);
      }
      const made = madeLv(lv.vgName, id, lv.sizeBytes, tags, "thin", { poolLv: lv.poolLv, origin: lv.name, active: false });
      await this.changed(lv.vgName, { kind: "created", lv: made, extents: 0 });
      return {
        id,
        name: request.name,
        sourceVolumeId: lv.name,
        volumeGroup: lv.vgName,
        sizeBytes: lv.sizeBytes,
        createdAt,
        readyToUse: true,
      };
    });
  }

  /**
   * Deletes a snapshot. Thin snapshots are independent thin LVs, so volumes restored from it
   * and its source volume are not affected. An id that is not a loam snapshot is already gone.
   */
  async deleteSnapshot(id: string, options: CallOptions = {}): Promise<void> {
    if (!isValidLvName(id)) return;
    await this.locks.withKeys([`id:${id}`], async () => {
      const { found } = await this.lookup(id, options);
      if (!found || metadataOf(found.lv)?.kind !== "snapshot") return;
      await this.remove(found, "snapshot", options);
    });
  }

  async getSnapshot(id: string, options: CallOptions = {}): Promise<Snapshot | undefined> {
    if (!isValidLvName(id)) return undefined;
    const { found } = await this.lookup(id, options);
    const metadata = found ? metadataOf(found.lv) : undefined;
    return found && metadata?.kind === "snapshot" ? toSnapshot(found, metadata) : undefined;
  }

  /** Every loam snapshot on the node, sorted by id. */
  async listSnapshots(options: CallOptions = {}): Promise<Snapshot[]> {
    const state = await this.readState(options);
    const snapshots: Snapshot[] = [];
    for (const located of state.all()) {
      const metadata = metadataOf(located.lv);
      if (metadata?.kind === "snapshot") snapshots.push(toSnapshot(located, metadata));
    }
    return snapshots.sort(byId);
  }

  private async remove({ lv, report }: Located, what: "volume" | "snapshot", options: CallOptions): Promise<void> {
    try {
      await this.lvm.removeLv(lv.vgName, lv.name, options);
      const extents = extentsOf(lv, report.vg.extentSizeBytes);
      await this.changed(lv.vgName, { kind: "removed", name: lv.name, extents: extents === undefined ? undefined : -extents });
    } catch (error) {
      this.cache.invalidate();
      if (error instanceof LogicalVolumeNotFoundError) return;
      if (error instanceof LogicalVolumeInUseError) {
        throw failedPrecondition(
          what === "volume"
            ? `volume ${lv.name} is in use (mounted or open) on this node; unpublish it first`
            : `snapshot ${lv.name} is open (a restore is copying from it); try again when that CreateVolume has returned`,
        );
      }
      throw translate(error, `deleting ${lv.name}`);
    }
  }

  private async resolveSource(state: LvmState, reference: ContentSource, options: CallOptions): Promise<Source> {
    const found = isValidLvName(reference.id) ? (await this.lookup(reference.id, options, state)).found : undefined;
    const metadata = found ? metadataOf(found.lv) : undefined;
    if (!found || !metadata || metadata.kind !== reference.kind) {
      throw notFound(`${reference.kind} ${reference.id} (volume_content_source) does not exist on this node`);
    }
    if (metadata.populating) {
      throw unavailable(`source volume ${reference.id} is still being populated; clone it once its CreateVolume has returned`);
    }
    return { ...found, metadata, reference };
  }

  /**
   * Completes a clone's content, then clears its populating mark. Thin snapshots of the
   * source only need growing; anything else is a block copy. The copy is not tied to the
   * caller's deadline: a caller that gives up and retries waits on the lock for it instead of
   * restarting it, so large copies finish.
   */
  private async populate(target: LogicalVolume, layout: VolumeLayout, size: number, source: Source | undefined, options: CallOptions): Promise<void> {
    if (!source) throw new VolumeError("internal", `volume ${target.name} is marked as being populated but names no source`);
    const vg = target.vgName;
    try {
      if (sharesPool(layout, source.lv) && target.segType === "thin") {
        if (size > target.sizeBytes) await this.lvm.extendLv(vg, target.name, size, options);
      } else {
        const wasActive = source.lv.active;
        if (!wasActive) await this.lvm.activateLv(source.lv.vgName, source.lv.name);
        try {
          await this.lvm.copyLv(
            { vg: source.lv.vgName, name: source.lv.name },
            { vg, name: target.name },
            { timeoutMs: Math.max(MIN_COPY_TIMEOUT_MS, (source.lv.sizeBytes / SLOWEST_COPY_BYTES_PER_SECOND) * 1000) },
          );
        } finally {
          if (!wasActive) await this.lvm.deactivateLv(source.lv.vgName, source.lv.name).catch(() => undefined);
        }
      }
      await this.lvm.removeTags(vg, target.name, [POPULATING_TAG]);
    } catch (error) {
      throw translate(error, `populating ${target.name} from ${source.reference.kind} ${source.reference.id}`);
    }
  }

  private checkRoom(state: LvmState, layout: VolumeLayout, size: number): void {
    const capacity = this.capacityOf(state, layout);
    if (size <= capacity.availableBytes) return;
    const deviceClass = layout.deviceClass;
    if (layout.kind === "thin") {
      const poolState = thinPoolState(state.vg(deviceClass.volumeGroup), deviceClass.thinPool ?? "");
      const over = poolState ? thinPoolOverThreshold(poolState, deviceClass) : undefined;
      if (over) throw resourceExhausted(`${over}; requested ${size} bytes`);
    }
    throw resourceExhausted(
      `not enough space in volume group ${deviceClass.volumeGroup} for device class "${deviceClass.name}": ` +
        `requested ${size} bytes, free ${capacity.availableBytes} bytes for a ${layout.kind} volume (${capacity.explanation})`,
    );
  }

  private capacityOf(state: LvmState, layout: VolumeLayout): ClassCapacity {
    const deviceClass = layout.deviceClass;
    const report = state.vg(deviceClass.volumeGroup);
    if (layout.kind !== "thin") return thickCapacity(report, layout);
    const poolState = thinPoolState(report, deviceClass.thinPool ?? "");
    if (!poolState) {
      throw failedPrecondition(
        `thin pool ${deviceClass.volumeGroup}/${deviceClass.thinPool ?? "?"} of device class "${deviceClass.name}" does not exist; ` +
          "create it (lvcreate --type thin-pool) or correct the node configuration",
      );
    }
    return thinCapacity(poolState, deviceClass, report.vg.extentSizeBytes);
  }

  /** The configured class a thin LV belongs to: the one whose pool holds it. */
  private classOfThin(lv: LogicalVolume): DeviceClass | undefined {
    const tagged = metadataOf(lv)?.deviceClass;
    const byTag = tagged === undefined ? undefined : this.classes.byName(tagged);
    if (byTag?.type === "thin" && byTag.volumeGroup === lv.vgName && byTag.thinPool === lv.poolLv) return byTag;
    return this.classes.all.find((c) => c.type === "thin" && c.volumeGroup === lv.vgName && c.thinPool === lv.poolLv);
  }

  /**
   * An existing LV for this name: the same request gets the same volume; anything that
   * differs in shape, source or size is ALREADY_EXISTS. `populatingSize` is the size an
   * unfinished clone is about to be given.
   */
  private adopt(found: Located, request: CreateVolumeRequest, extent: number, populatingSize?: number): Volume {
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
    const asked = request.contentSource ? `${request.contentSource.kind} ${request.contentSource.id}` : "no content source";
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
    const volume = this.toVolume(found);
    if (!volume) throw new VolumeError("internal", `volume ${lv.name} lost its metadata`);
    return volume;
  }

  private toVolume({ lv, report }: Located): Volume | undefined {
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
      deviceClass: metadata.deviceClass ?? this.classes.defaultClass.name,
      layout: lv.segType,
      ready: !metadata.populating,
      condition: conditionOf(lv, report, metadata),
    };
    if (metadata.source) volume.contentSource = metadata.source;
    return volume;
  }

  /**
   * The LV with this name, reading LVM again when the state (`known`, or the current one) does
   * not have it: a miss must be real. Returns the state the answer came from.
   */
  private async lookup(id: string, options: CallOptions, known?: LvmState): Promise<{ state: LvmState; found: Located | undefined }> {
    let state = known ?? (await this.readState(options));
    let found = state.find(id);
    if (!found && !state.fresh) {
      this.cache.invalidate();
      state = await this.readState(options);
      found = state.find(id);
    }
    return { state, found };
  }

  /**
   * The state as a decision about this layout needs it: per-PV free space for striped and
   * raid1, and a thin pool's usage read from device-mapper now (it changes with every write).
   */
  private async forLayout(
    state: LvmState,
    layout: VolumeLayout,
    options: CallOptions,
    usage?: Promise<ThinPoolUsage>,
  ): Promise<LvmState> {
    let current = state;
    if ((layout.kind === "striped" || layout.kind === "raid1") && !current.exact) current = await this.readState(options, "exact");
    const deviceClass = layout.deviceClass;
    if (layout.kind === "thin" && deviceClass.thinPool !== undefined) {
      current = await this.withPoolUsage(current, deviceClass.volumeGroup, deviceClass.thinPool, options, usage);
    }
    return current;
  }

  /**
   * A thin class's pool usage, read from device-mapper starting now: a create needs it after
   * the cache's own check, and the two waits overlap instead of adding up.
   */
  private poolUsageNow(deviceClass: DeviceClass, options: CallOptions): Promise<ThinPoolUsage> | undefined {
    if (deviceClass.type !== "thin" || deviceClass.thinPool === undefined) return undefined;
    const usage = this.lvm.thinPoolUsage(deviceClass.volumeGroup, deviceClass.thinPool, options);
    // Handled where it is awaited; this keeps a call that stops earlier from leaving it unhandled.
    usage.catch(() => undefined);
    return usage;
  }

  /** `usage`, when given, is a read already under way (poolUsageNow). */
  private async withPoolUsage(
    state: LvmState,
    vg: string,
    pool: string,
    options: CallOptions,
    usage?: Promise<ThinPoolUsage>,
  ): Promise<LvmState> {
    if (state.fresh) return state;
    try {
      return state.withPoolUsage(vg, pool, await (usage ?? this.lvm.thinPoolUsage(vg, pool, options)));
    } catch {
      // An inactive pool (or no dmsetup): LVM's report knows what it knows.
      this.cache.invalidate();
      return this.readState(options, "exact");
    }
  }

  /** Tells the cache about a change just made; a failure to apply it only costs a later read. */
  private async changed(vg: string, change: Change): Promise<void> {
    await this.cache.apply(vg, change).catch(() => this.cache.invalidate());
  }

  /** The LV with its activation as the kernel has it now (the cache only knows what LVM said when it was read). */
  private async withLiveActivation(found: Located): Promise<Located> {
    const active = await this.isBlockDevice(found.lv.devicePath || devicePath(found.lv.vgName, found.lv.name));
    return active === found.lv.active ? found : { ...found, lv: { ...found.lv, active } };
  }

  private async readState(options: CallOptions, need: Need = "lookup"): Promise<LvmState> {
    const vgs = this.classes.volumeGroups;
    try {
      return await untilAborted(this.cache.get(need), options.signal);
    } catch (error) {
      if (error instanceof VolumeGroupNotFoundError) {
        throw unavailable(`volume group(s) ${vgs.join(", ")} cannot be read: ${error.message.trim()}`, error);
      }
      throw translate(error, `reading volume group(s) ${vgs.join(", ")}`);
    }
  }
}

const healthy = (): VolumeCondition => ({ abnormal: false, message: "logical volume is active" });

/** What ControllerGetVolume says about a volume: activation, raid sync, thin pool usage. */
function conditionOf(lv: LogicalVolume, report: VolumeGroupReport, metadata: VolumeMetadata): VolumeCondition {
  const name = `${lv.vgName}/${lv.name}`;
  if (metadata.populating) return { abnormal: true, message: `being populated from its source (or a copy was interrupted; CreateVolume resumes it)` };
  if (lv.healthStatus !== "") return { abnormal: true, message: `logical volume ${name} health: ${lv.healthStatus}` };
  if (!lv.active) return { abnormal: true, message: `logical volume ${name} is not active` };
  if (lv.segType.startsWith("raid")) {
    const sync = lv.copyPercent ?? 0;
    return {
      abnormal: false,
      message: sync >= 100 ? `${lv.segType} volume is active; copies in sync` : `${lv.segType} volume is active and usable; copies ${sync}% in sync`,
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

function toSnapshot({ lv }: Located, metadata: VolumeMetadata): Snapshot {
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

/** True when the new volume can be a thin snapshot of the source: both in the class's pool. */
function sharesPool(layout: VolumeLayout, source: LogicalVolume): boolean {
  const deviceClass = layout.deviceClass;
  return layout.kind === "thin" && source.segType === "thin" && source.vgName === deviceClass.volumeGroup && source.poolLv === deviceClass.thinPool;
}

/**
 * The size of a clone or restore: at least the source's size. No range means exactly the
 * source's size; a limit below the source is OUT_OF_RANGE (a copy cannot shrink).
 */
function sizeWithSource(range: CapacityRange | undefined, extent: number, sourceBytes: number | undefined): number {
  if (sourceBytes === undefined) return sizeForRange(range, extent);
  const source = roundUp(sourceBytes, extent);
  const required = range?.requiredBytes ?? 0n;
  const limit = range?.limitBytes ?? 0n;
  if (limit > 0n && limit < BigInt(sourceBytes)) {
    throw outOfRange(`capacity_range.limit_bytes (${limit}) is smaller than the source's ${sourceBytes} bytes; a clone or restore is at least as large as its source`);
  }
  if (required === 0n) return source;
  const size = Math.max(sizeForRange(range, extent), source);
  if (limit > 0n && BigInt(size) > limit) {
    throw outOfRange(`the source's ${sourceBytes} bytes, rounded to ${size}, do not fit under capacity_range.limit_bytes (${limit})`);
  }
  return size;
}

function checkStripeSize(layout: VolumeLayout, extentBytes: number): void {
  if (layout.stripeSizeBytes !== undefined && layout.stripeSizeBytes > extentBytes) {
    throw invalidArgument(
      `parameters["${PARAMETER_KEYS.stripeSize}"] (${layout.stripeSizeBytes} bytes, or the default of device class "${layout.deviceClass.name}") ` +
        `is larger than the extent size ${extentBytes} of volume group ${layout.deviceClass.volumeGroup}; allowed: 4096 to ${extentBytes}, a power of two`,
    );
  }
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function devicePath(vg: string, lv: string): string {
  return `/dev/${vg}/${lv}`;
}

/** Turns an LVM failure (or an LVM command that could not start, timed out or was cancelled) into a domain error that keeps LVM's own words. */
function translate(error: unknown, doing: string): VolumeError {
  if (error instanceof VolumeError) return error;
  if (error instanceof CommandError) {
    return new VolumeError("internal", `${doing} failed: ${error.message.trim()}`, { cause: error });
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new VolumeError("aborted", `${doing} was cancelled`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${String(error)}`, { cause: error });
}

/** The LV loam just made, as the cache records it until LVM is next read. */
function madeLv(vg: string, name: string, sizeBytes: number, tags: readonly string[], segType: string, extra: Partial<LogicalVolume> = {}): LogicalVolume {
  return {
    name,
    vgName: vg,
    uuid: "",
    sizeBytes,
    attr: "",
    active: true,
    segType,
    stripes: 1,
    stripeSizeBytes: 0,
    segmentCount: 1,
    poolLv: "",
    origin: "",
    dataPercent: null,
    metadataPercent: null,
    tags: [...tags],
    devicePath: devicePath(vg, name),
    healthStatus: "",
    copyPercent: segType.startsWith("raid") ? 0 : null,
    roles: ["public"],
    internal: false,
    ...extra,
  };
}

/** Extents of the VG an LV holds: 0 for thin LVs (the pool holds them); undefined where raid metadata or layers make it uncertain. */
function extentsOf(lv: LogicalVolume, extentBytes: number): number | undefined {
  if (lv.segType === "thin") return 0;
  if (lv.segType !== "linear" && lv.segType !== "striped") return undefined;
  const extents = lv.sizeBytes / extentBytes;
  return Number.isInteger(extents) ? extents : undefined;
}

async function blockDeviceAt(path: string): Promise<boolean> {
  const node = await stat(path).catch(() => undefined);
  return node?.isBlockDevice() ?? false;
}

/**
 * The promise, or an AbortError as soon as the caller's signal fires. The cache's reads are
 * shared, so a caller who gives up stops waiting rather than killing a report others wait for.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  const aborted = (): DOMException => new DOMException("the call was cancelled", "AbortError");
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
