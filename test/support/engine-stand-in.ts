/**
 * InMemoryEngineStandIn: a stand-in of a node's VolumeEngine for cluster-mode tests and the
 * placement benchmark, where a hundred simulated nodes must run in one process. It keeps
 * volumes and snapshots in maps and each device class's bytes as a plain budget, rounds sizes
 * to a 4 MiB extent like LVM, and refuses (RESOURCE_EXHAUSTED) a volume that does not fit —
 * so an agent told to make more than its node has fails visibly, and `overcommitted` counts it.
 * It is not LVM: the VM suite runs the agents over the real engine.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { AgentEngine } from "../../src/cluster/agent.js";
import { lvNameFor, snapshotLvNameFor } from "../../src/lvm/names.js";
import { invalidArgument, notFound, resourceExhausted } from "../../src/volumes/errors.js";
import { PARAMETER_KEYS, type VolumeParameters } from "../../src/volumes/parameters.js";
import { MiB, roundUp, sizeForRange, type CapacityRange } from "../../src/volumes/size.js";
import type { Capacity, CapacityOptions, Snapshot, Volume } from "../../src/volumes/volume.js";
import type { ContentSource } from "../../src/volumes/metadata.js";

export const STAND_IN_EXTENT = 4 * MiB;

export interface StandInClass {
  name: string;
  type: "thick" | "thin";
  default: boolean;
  /** Bytes the class can give out in all. */
  totalBytes: number;
}

export class InMemoryEngineStandIn implements AgentEngine {
  readonly classes: { all: StandInClass[]; defaultClass: StandInClass };
  readonly volumes = new Map<string, Volume>();
  readonly snapshots = new Map<string, Snapshot & { deviceClass: string }>();
  /** Creations refused because the class was full: the controller promised what the node did not have. */
  overcommitted = 0;
  /** Calls of each method, for tests that check what the agent asked. */
  readonly calls: string[] = [];

  constructor(
    classes: StandInClass[],
    /** Simulated time each change takes (LVM's lvcreate is 0.35–1 s in the VM, ~50 ms natively). */
    private readonly delayMs = 0,
  ) {
    const defaultClass = classes.find((c) => c.default) ?? classes[0];
    this.classes = { all: classes, defaultClass };
  }

  usedBytes(deviceClass: string): number {
    let used = 0;
    for (const v of this.volumes.values()) if (v.deviceClass === deviceClass) used += v.sizeBytes;
    for (const s of this.snapshots.values()) if (s.deviceClass === deviceClass) used += s.sizeBytes;
    return used;
  }

  private classOf(parameters: VolumeParameters): StandInClass {
    const name = parameters.shaping[PARAMETER_KEYS.deviceClass];
    const found = name === undefined ? this.classes.defaultClass : this.classes.all.find((c) => c.name === name);
    if (!found) throw invalidArgument(`device class "${name}" is not offered by this stand-in node`);
    return found;
  }

  async createVolume(request: {
    name: string;
    id?: string;
    range: CapacityRange | undefined;
    parameters: VolumeParameters;
    contentSource?: ContentSource;
  }): Promise<Volume> {
    this.calls.push(`create ${request.name}`);
    const id = request.id ?? lvNameFor(request.name);
    const existing = this.volumes.get(id);
    if (existing) return existing;
    const deviceClass = this.classOf(request.parameters);
    if (request.contentSource) {
      const found =
        request.contentSource.kind === "volume"
          ? this.volumes.get(request.contentSource.id)
          : this.snapshots.get(request.contentSource.id);
      if (!found) throw notFound(`content source ${request.contentSource.id} is not on this node`);
    }
    const size = sizeForRange(request.range, STAND_IN_EXTENT);
    await sleep(this.delayMs);
    const free = deviceClass.totalBytes - this.usedBytes(deviceClass.name);
    if (size > free) {
      this.overcommitted++;
      throw resourceExhausted(`stand-in class "${deviceClass.name}": requested ${size} bytes, free ${free} bytes`);
    }
    const volume: Volume = {
      id,
      name: request.name,
      volumeGroup: "standin",
      sizeBytes: size,
      devicePath: `/dev/standin/${id}`,
      active: true,
      claim: {},
      deviceClass: deviceClass.name,
      layout: deviceClass.type === "thin" ? "thin" : "linear",
      ...(request.contentSource ? { contentSource: request.contentSource } : {}),
      ready: true,
      formatting: false,
      condition: { abnormal: false, message: "stand-in volume" },
    };
    this.volumes.set(id, volume);
    return volume;
  }

  async deleteVolume(id: string): Promise<void> {
    this.calls.push(`delete ${id}`);
    await sleep(this.delayMs);
    this.volumes.delete(id);
  }

  async expandVolume(id: string, range: CapacityRange): Promise<Volume> {
    this.calls.push(`expand ${id}`);
    const volume = this.volumes.get(id);
    if (!volume) throw notFound(`volume ${id} is not on this stand-in node`);
    const size = roundUp(Number(range.requiredBytes), STAND_IN_EXTENT);
    if (size <= volume.sizeBytes) return volume;
    const deviceClass = this.classes.all.find((c) => c.name === volume.deviceClass)!;
    const free = deviceClass.totalBytes - this.usedBytes(deviceClass.name);
    if (size - volume.sizeBytes > free) {
      this.overcommitted++;
      throw resourceExhausted(`stand-in class "${deviceClass.name}": growth ${size - volume.sizeBytes}, free ${free}`);
    }
    await sleep(this.delayMs);
    const grown = { ...volume, sizeBytes: size };
    this.volumes.set(id, grown);
    return grown;
  }

  getVolume(id: string): Promise<Volume | undefined> {
    return Promise.resolve(this.volumes.get(id));
  }

  /** Every volume, sorted by id, as VolumeEngine.listVolumes (garbage collection lists them). */
  listVolumes(): Promise<Volume[]> {
    return Promise.resolve([...this.volumes.values()].sort((a, b) => a.id.localeCompare(b.id)));
  }

  listSnapshots(): Promise<Snapshot[]> {
    return Promise.resolve([...this.snapshots.values()].sort((a, b) => a.id.localeCompare(b.id)));
  }

  capacity(options: CapacityOptions = {}): Promise<Capacity> {
    const deviceClass = this.classOf(options.parameters ?? { shaping: {}, metadata: {} });
    const free = Math.max(0, deviceClass.totalBytes - this.usedBytes(deviceClass.name));
    const available = Math.floor(free / STAND_IN_EXTENT) * STAND_IN_EXTENT;
    return Promise.resolve({
      availableBytes: available,
      maximumVolumeBytes: available,
      minimumVolumeBytes: STAND_IN_EXTENT,
    });
  }

  async createSnapshot(request: { name: string; sourceVolumeId: string }): Promise<Snapshot> {
    this.calls.push(`snapshot ${request.name}`);
    const id = snapshotLvNameFor(request.name);
    const existing = this.snapshots.get(id);
    if (existing) return existing;
    const source = this.volumes.get(request.sourceVolumeId);
    if (!source) throw notFound(`source volume ${request.sourceVolumeId} is not on this stand-in node`);
    await sleep(this.delayMs);
    const snapshot = {
      id,
      name: request.name,
      sourceVolumeId: source.id,
      volumeGroup: "standin",
      sizeBytes: source.sizeBytes,
      createdAt: new Date(),
      readyToUse: true,
      deviceClass: source.deviceClass,
    };
    this.snapshots.set(id, snapshot);
    return snapshot;
  }

  async deleteSnapshot(id: string): Promise<void> {
    this.calls.push(`delete-snapshot ${id}`);
    await sleep(this.delayMs);
    this.snapshots.delete(id);
  }
}
