/**
 * The volume engine of one node: create, find, list, delete volumes and report capacity
 * on the node's volume group. It speaks in domain terms (names, byte sizes, VolumeError)
 * and is shared by the CSI services and the standalone CLI.
 */
import type { Lvm } from "../lvm/lvm.js";
import type { LogicalVolume, VolumeGroupReport } from "../lvm/report.js";
import { lvNameFor, isValidLvName } from "../lvm/names.js";
import {
  InsufficientSpaceError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LvmError,
  VolumeGroupNotFoundError,
} from "../lvm/errors.js";
import { KeyedLocks } from "./locks.js";
import { type CapacityRange, sizeForRange } from "./size.js";
import { type VolumeParameters, fingerprint } from "./parameters.js";
import { claimFor, metadataOf, tagsFor } from "./metadata.js";
import { VolumeError, alreadyExists, failedPrecondition, notFound, resourceExhausted, unavailable } from "./errors.js";

export interface Volume {
  /** The CSI volume id: the LV name, derived from the CSI name. */
  id: string;
  name: string;
  volumeGroup: string;
  sizeBytes: number;
  devicePath: string;
  active: boolean;
  claim: Record<string, string>;
}

export interface CreateVolumeRequest {
  name: string;
  range: CapacityRange | undefined;
  parameters: VolumeParameters;
}

export interface Capacity {
  availableBytes: number;
  maximumVolumeBytes: number;
  minimumVolumeBytes: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export class VolumeEngine {
  private readonly locks = new KeyedLocks();

  constructor(
    private readonly lvm: Lvm,
    readonly volumeGroup: string,
  ) {}

  /** Creates the volume, or returns the one an earlier call with the same name made. */
  async createVolume(request: CreateVolumeRequest, options: CallOptions = {}): Promise<Volume> {
    const id = lvNameFor(request.name);
    return this.locks.withKeys([`name:${request.name}`, `id:${id}`], async () => {
      const report = await this.report(options);
      const size = sizeForRange(request.range, report.vg.extentSizeBytes);
      const existing = report.lvs.find((lv) => lv.name === id);
      if (existing) return this.adopt(existing, request, size);
      if (size > report.vg.freeBytes) {
        throw resourceExhausted(
          `not enough space in volume group ${this.volumeGroup}: requested ${size} bytes, free ${report.vg.freeBytes} bytes`,
        );
      }
      try {
        await this.lvm.createLv(
          { vg: this.volumeGroup, name: id, sizeBytes: size, tags: tagsFor(request.name, request.parameters) },
          options,
        );
      } catch (error) {
        if (error instanceof InsufficientSpaceError) {
          throw resourceExhausted(
            `not enough space in volume group ${this.volumeGroup}: requested ${size} bytes (${error.message.trim()})`,
          );
        }
        throw translate(error, `creating ${id}`);
      }
      return {
        id,
        name: request.name,
        volumeGroup: this.volumeGroup,
        sizeBytes: size,
        devicePath: devicePath(this.volumeGroup, id),
        active: true,
        claim: claimFor(request.parameters),
      };
    });
  }

  /** Deletes the volume; a volume that does not exist (or is not loam's) is already deleted. */
  async deleteVolume(id: string, options: CallOptions = {}): Promise<void> {
    if (!isValidLvName(id)) return;
    await this.locks.withKeys([`id:${id}`], async () => {
      const report = await this.report(options);
      const lv = report.lvs.find((candidate) => candidate.name === id);
      if (!lv || !metadataOf(lv)) return;
      try {
        await this.lvm.removeLv(this.volumeGroup, id, options);
      } catch (error) {
        if (error instanceof LogicalVolumeNotFoundError) return;
        if (error instanceof LogicalVolumeInUseError) {
          throw failedPrecondition(`volume ${id} is in use (mounted or open) on this node; unpublish it first`);
        }
        throw translate(error, `deleting ${id}`);
      }
    });
  }

  /**
   * Grows the volume to the size the range asks for (extent-rounded, never above the limit).
   * A volume already at least that large is left alone: expansion never shrinks.
   */
  async expandVolume(id: string, range: CapacityRange, options: CallOptions = {}): Promise<Volume> {
    return this.locks.withKeys([`id:${id}`], async () => {
      const report = await this.report(options);
      const lv = report.lvs.find((candidate) => candidate.name === id);
      const volume = lv ? this.toVolume(lv) : undefined;
      if (!lv || !volume) throw notFound(`volume ${id} does not exist on this node`);
      const size = sizeForRange(range, report.vg.extentSizeBytes);
      if (size <= lv.sizeBytes) return volume;
      if (size - lv.sizeBytes > report.vg.freeBytes) {
        throw resourceExhausted(
          `not enough space in volume group ${this.volumeGroup} to grow ${id}: needs ${size - lv.sizeBytes} more bytes, free ${report.vg.freeBytes} bytes`,
        );
      }
      try {
        await this.lvm.extendLv(this.volumeGroup, id, size, options);
      } catch (error) {
        if (error instanceof InsufficientSpaceError) {
          throw resourceExhausted(`not enough space in volume group ${this.volumeGroup} to grow ${id} to ${size} bytes`);
        }
        throw translate(error, `growing ${id}`);
      }
      return { ...volume, sizeBytes: size };
    });
  }

  /** Activates the volume's LV if it is not active (after a reboot, or a restored snapshot). */
  async ensureActive(id: string, options: CallOptions = {}): Promise<Volume> {
    const volume = await this.getVolume(id, options);
    if (!volume) throw notFound(`volume ${id} does not exist on this node`);
    if (volume.active) return volume;
    try {
      await this.lvm.activateLv(this.volumeGroup, id, options);
    } catch (error) {
      throw translate(error, `activating ${id}`);
    }
    return { ...volume, active: true };
  }

  /** The volume with this id, or undefined. */
  async getVolume(id: string, options: CallOptions = {}): Promise<Volume | undefined> {
    if (!isValidLvName(id)) return undefined;
    const report = await this.report(options);
    const lv = report.lvs.find((candidate) => candidate.name === id);
    return lv ? this.toVolume(lv) : undefined;
  }

  /** Every loam volume on the node, sorted by id so pagination is stable. */
  async listVolumes(options: CallOptions = {}): Promise<Volume[]> {
    const report = await this.report(options);
    return report.lvs
      .map((lv) => this.toVolume(lv))
      .filter((v): v is Volume => v !== undefined)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async capacity(options: CallOptions = {}): Promise<Capacity> {
    const { vg } = await this.report(options);
    return {
      availableBytes: vg.freeBytes,
      maximumVolumeBytes: vg.freeBytes,
      minimumVolumeBytes: vg.extentSizeBytes,
    };
  }

  /** Throws UNAVAILABLE unless the volume group can be read. */
  async probe(options: CallOptions = {}): Promise<void> {
    await this.report(options);
  }

  private adopt(lv: LogicalVolume, request: CreateVolumeRequest, size: number): Volume {
    const metadata = metadataOf(lv);
    if (!metadata || metadata.name !== request.name) {
      throw failedPrecondition(
        `logical volume ${this.volumeGroup}/${lv.name} exists but was not created by loam for "${request.name}"; refusing to touch it`,
      );
    }
    const wanted = fingerprint(request.parameters);
    if (metadata.parameters !== wanted) {
      throw alreadyExists(
        `volume "${request.name}" exists with parameters ${metadata.parameters}; this request asks for ${wanted}`,
      );
    }
    const required = Number(request.range?.requiredBytes ?? 0n);
    const limit = Number(request.range?.limitBytes ?? 0n);
    if (lv.sizeBytes < required || (limit > 0 && lv.sizeBytes > limit)) {
      throw alreadyExists(
        `volume "${request.name}" exists with ${lv.sizeBytes} bytes, outside this request's range ` +
          `[required_bytes=${required}, limit_bytes=${limit || "unset"}] (the computed size would be ${size})`,
      );
    }
    const volume = this.toVolume(lv);
    if (!volume) throw new VolumeError("internal", `volume ${lv.name} lost its metadata`);
    return volume;
  }

  private toVolume(lv: LogicalVolume): Volume | undefined {
    const metadata = metadataOf(lv);
    if (!metadata) return undefined;
    return {
      id: lv.name,
      name: metadata.name,
      volumeGroup: lv.vgName,
      sizeBytes: lv.sizeBytes,
      devicePath: devicePath(lv.vgName, lv.name),
      active: lv.active,
      claim: metadata.claim,
    };
  }

  private async report(options: CallOptions): Promise<VolumeGroupReport> {
    try {
      return await this.lvm.report(this.volumeGroup, options);
    } catch (error) {
      if (error instanceof VolumeGroupNotFoundError) {
        throw unavailable(`volume group ${this.volumeGroup} cannot be read: ${error.message.trim()}`, error);
      }
      throw translate(error, `reading volume group ${this.volumeGroup}`);
    }
  }
}

export function devicePath(vg: string, lv: string): string {
  return `/dev/${vg}/${lv}`;
}

/** Turns an LVM failure into a domain error that keeps LVM's own words. */
function translate(error: unknown, doing: string): VolumeError {
  if (error instanceof VolumeError) return error;
  if (error instanceof LvmError) {
    return new VolumeError("internal", `${doing} failed: ${error.message.trim()}`, { cause: error });
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new VolumeError("aborted", `${doing} was cancelled`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${String(error)}`, { cause: error });
}
