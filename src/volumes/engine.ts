/**
 * The volume engine of one node: create, find, list, delete, grow and snapshot volumes in
 * the node's device classes, and report capacity per class. It speaks in domain terms
 * (names, byte sizes, VolumeError) and is shared by the CSI services and the standalone CLI.
 *
 * A volume id is its LV name, derived from the CSI name, and is unique across every volume
 * group the classes use: each operation reads all of them with one `lvm fullreport`, so ids
 * made before device classes existed keep working and no id has to say where it lives.
 *
 * This class is the facade and the one place that takes the per-name and per-id locks (the
 * allocation lock per thin pool or volume group, held only from a room check to LVM's
 * commit, is EngineContext.allocating, taken inside create.ts, volumes.ts and snapshots.ts); the work is done
 * by one module per concern, all over one EngineContext (context.ts: the Lvm facade, the
 * classes, the LVM state): volumes.ts, create.ts, population.ts (clones and restores),
 * snapshots.ts and class-capacity.ts; volume.ts is the model they answer in.
 */
import type { Lvm } from "../lvm/lvm.js";
import { isValidLvName, lvNameFor, snapshotLvNameFor } from "../lvm/names.js";
import { invalidArgument } from "./errors.js";
import { capacity } from "./class-capacity.js";
import { EngineContext, type EngineOptions } from "./context.js";
import { createVolume } from "./create.js";
import { type DeviceClass, DeviceClasses, singleThickClass } from "./device-classes.js";
import { KeyedLocks } from "./locks.js";
import type { CapacityRange } from "./size.js";
import { createSnapshot, deleteSnapshot, getSnapshot, listSnapshots } from "./snapshots.js";
import type * as model from "./volume.js";
import {
  deleteVolume,
  ensureActive,
  expandVolume,
  getVolume,
  listVolumes,
  setFormatting,
  volumeHealth,
  type VolumeRead,
} from "./volumes.js";

import { setShaping } from "./modify.js";

export type { EngineOptions } from "./context.js";
export { devicePath } from "./volume.js";
export type { VolumeRead } from "./volumes.js";
export type {
  CallOptions,
  Capacity,
  CapacityOptions,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  Snapshot,
  Volume,
  VolumeCondition,
  VolumeHealth,
} from "./volume.js";

export class VolumeEngine {
  private readonly locks = new KeyedLocks();
  private readonly context: EngineContext;
  readonly classes: DeviceClasses;

  /** `classes` may be a bare volume group name: one default thick class on it. */
  constructor(lvm: Lvm, classes: string | readonly DeviceClass[] | DeviceClasses, options: EngineOptions = {}) {
    this.classes =
      typeof classes === "string"
        ? new DeviceClasses([singleThickClass(classes)])
        : classes instanceof DeviceClasses
          ? classes
          : new DeviceClasses(classes);
    this.context = new EngineContext(lvm, this.classes, options);
  }

  /** The default class's volume group. */
  get volumeGroup(): string {
    return this.classes.defaultClass.volumeGroup;
  }

  /** Creates the volume, or returns the one an earlier call with the same name made. */
  async createVolume(request: model.CreateVolumeRequest, options: model.CallOptions = {}): Promise<model.Volume> {
    const id = request.id ?? lvNameFor(request.name);
    if (!isValidLvName(id)) throw invalidArgument(`volume id "${id}" is not a valid LV name`);
    const keys = [`name:${request.name}`, `id:${id}`];
    if (request.contentSource) keys.push(`id:${request.contentSource.id}`);
    return this.locks.withKeys(keys, () => createVolume(this.context, request, id, options));
  }

  /** Deletes the volume; a volume that does not exist (or is not loam's) is already deleted. */
  async deleteVolume(id: string, options: model.CallOptions = {}): Promise<void> {
    if (!isValidLvName(id)) return;
    await this.locks.withKeys([`id:${id}`], () => deleteVolume(this.context, id, options));
  }

  /** Grows the volume to the size the range asks for; never shrinks (see volumes.ts). */
  async expandVolume(id: string, range: CapacityRange, options: model.CallOptions = {}): Promise<model.Volume> {
    return this.locks.withKeys([`id:${id}`], () => expandVolume(this.context, id, range, options));
  }

  /** Records new shaping parameters on the volume; false when it already had them (ControllerModifyVolume's IO limits; modify.ts). */
  async setShaping(
    id: string,
    shaping: Readonly<Record<string, string>>,
    options: model.CallOptions = {},
  ): Promise<boolean> {
    return this.locks.withKeys([`id:${id}`], () => setShaping(this.context, id, shaping, options));
  }

  /**
   * Runs fn holding the volume's lock, the one its DeleteVolume, expansion, snapshots and
   * clones take: the Node service stages, publishes, unpublishes, unstages and expands under
   * it, so a DeleteVolume waits for a NodeStageVolume of the same volume (and then finds the
   * LV open, FAILED_PRECONDITION) instead of racing it. Engine calls fn makes for the same
   * volume do not wait for it again (locks.ts).
   */
  async withVolumeLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withKeys([`id:${id}`], fn);
  }

  /** Activates the volume's LV if it is not active; the node side calls this before it stages a volume. */
  async ensureActive(id: string, options: model.CallOptions = {}): Promise<model.Volume> {
    return ensureActive(this.context, id, options);
  }

  /**
   * Marks the volume as being formatted: the node calls this right before it writes a
   * filesystem (or any other format) on a device it found empty. See metadata.ts, FORMATTING_TAG.
   */
  async markFormatting(id: string, options: model.CallOptions = {}): Promise<void> {
    await this.locks.withKeys([`id:${id}`], () => setFormatting(this.context, id, true, options));
  }

  /** Removes the format-in-progress mark once the format finished. */
  async clearFormatting(id: string, options: model.CallOptions = {}): Promise<void> {
    await this.locks.withKeys([`id:${id}`], () => setFormatting(this.context, id, false, options));
  }

  /**
   * The volume with this id, or undefined; `current: false` for callers that do not look at
   * its condition (no read of its thin pool's state).
   */
  async getVolume(
    id: string,
    options: model.CallOptions = {},
    read: VolumeRead = {},
  ): Promise<model.Volume | undefined> {
    return getVolume(this.context, id, options, read);
  }

  /** The volume and LVM's health words for it, or undefined. */
  async volumeHealth(id: string, options: model.CallOptions = {}): Promise<model.VolumeHealth | undefined> {
    return volumeHealth(this.context, id, options);
  }

  /** Every loam volume on the node, sorted by id so pagination is stable. */
  async listVolumes(options: model.CallOptions = {}): Promise<readonly model.Volume[]> {
    return listVolumes(this.context, options);
  }

  /** What one more volume of the requested class and layout can get. */
  async capacity(options: model.CapacityOptions = {}): Promise<model.Capacity> {
    return capacity(this.context, options);
  }

  /** Throws UNAVAILABLE unless every volume group of the classes can be read. */
  async probe(options: model.CallOptions = {}): Promise<void> {
    await this.context.readState(options);
  }

  /** A thin snapshot of a thin volume; the same name and source return the same snapshot. */
  async createSnapshot(request: model.CreateSnapshotRequest, options: model.CallOptions = {}): Promise<model.Snapshot> {
    const id = snapshotLvNameFor(request.name);
    const keys = [`snapshot-name:${request.name}`, `id:${id}`, `id:${request.sourceVolumeId}`];
    return this.locks.withKeys(keys, () => createSnapshot(this.context, request, id, options));
  }

  /** Deletes a snapshot; an id that is not a loam snapshot is already gone. */
  async deleteSnapshot(id: string, options: model.CallOptions = {}): Promise<void> {
    if (!isValidLvName(id)) return;
    await this.locks.withKeys([`id:${id}`], () => deleteSnapshot(this.context, id, options));
  }

  async getSnapshot(id: string, options: model.CallOptions = {}): Promise<model.Snapshot | undefined> {
    return getSnapshot(this.context, id, options);
  }

  /** Every loam snapshot on the node, sorted by id. */
  async listSnapshots(options: model.CallOptions = {}): Promise<model.Snapshot[]> {
    return listSnapshots(this.context, options);
  }
}
