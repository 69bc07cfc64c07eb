/**
 * A staged volume into a pod, the node's rules: a filesystem volume is bind-mounted from its
 * staging path with the pod's per-mount flags (read-only takes a remount the host never
 * skips); a block volume's device node is bound onto a file, never read-only, because the
 * kernel does not stop writes through such a bind. Unpublish removes what publish made and
 * leaves any files it did not make in place. A SINGLE_NODE_SINGLE_WRITER volume is published
 * at one target path at a time, as the kernel's mount table shows it. Paths arrive resolved
 * and confined; the caller holds the per-volume lock.
 */
import { type VolumeUse, perMountFlags } from "./capabilities.js";
import { alreadyExists, failedPrecondition, invalidArgument } from "./errors.js";
import { isReadOnly, mountAt } from "../host/mountinfo.js";
import {
  type HostCallOptions,
  type HostMount,
  type NodeHost,
  checkFlagsMatch,
  deviceNumber,
  hostFailure,
  hostStep,
} from "./node-host.js";
import type { VolumeStaging } from "./staging.js";

export interface PublishRequest {
  id: string;
  /** The staging and target paths, resolved and confined. */
  staging: string;
  target: string;
  use: VolumeUse;
  /** As publishReadonly settled it. */
  readonly: boolean;
}

/**
 * Whether a publish is read-only (the request says so, or the access mode is reader-only);
 * INVALID_ARGUMENT for a read-only raw block volume. Checked before the volume's lock is taken.
 */
export function publishReadonly(use: VolumeUse, requested: boolean): boolean {
  const readonly = requested || use.mode === "single-node-reader-only";
  if (use.access.kind === "block" && readonly) {
    throw invalidArgument(
      "readonly publish of a raw block volume is refused: the kernel does not stop writes through a read-only bind mount of a device node",
    );
  }
  return readonly;
}

export class VolumePublishing {
  private readonly host: NodeHost;

  constructor(private readonly staging: VolumeStaging) {
    this.host = staging.host;
  }

  async publish(request: PublishRequest, options: HostCallOptions): Promise<void> {
    const { id, staging, target, use, readonly } = request;
    const { host } = this;
    const flags = use.access.kind === "mount" ? perMountFlags(use.access.mountFlags) : [];
    const [volume, mounts] = await Promise.all([this.staging.stagedDevice(id, options), host.mounts()]);
    const device = await deviceNumber(host, volume);
    const existing = mountAt(mounts, target);
    if (use.access.kind === "block") {
      // Written through before a stage took the mark off, it would be formatted over at a later stage.
      if (volume.neverStaged) {
        throw failedPrecondition(`volume ${id} has not been staged on this node; call NodeStageVolume first`);
      }
      if (existing) {
        const held = await host.stat(target).catch(() => undefined);
        if (held?.type === "block-device" && held.device === device) return;
        throw alreadyExists(
          `target_path ${target} already has something else mounted (${existing.source}), not volume ${id}`,
        );
      }
      await this.refuseSecondWorkload(request, () => this.blockPublishes(mounts, device, target));
      const node = await hostStep(`resolving ${volume.devicePath}`, () => host.realpath(volume.devicePath));
      await hostStep(`creating ${target}`, () => this.createFile(target));
      await this.bindOrClean(node, target, [], false, options, `binding ${node} onto ${target}`);
      return;
    }
    const staged = mountAt(mounts, staging);
    if (!staged || staged.majorMinor !== device) {
      throw failedPrecondition(
        `volume ${id} is not staged at staging_target_path ${staging}; call NodeStageVolume first`,
      );
    }
    if (existing) {
      if (existing.majorMinor !== device) {
        throw alreadyExists(
          `target_path ${target} already has ${existing.source} (${existing.fsType}) mounted, not volume ${id}`,
        );
      }
      if (isReadOnly(existing) !== readonly) {
        throw alreadyExists(
          `volume ${id} is already published at ${target} ${isReadOnly(existing) ? "read-only" : "read-write"}; this request asks for ${readonly ? "read-only" : "read-write"}`,
        );
      }
      checkFlagsMatch(existing, flags, `volume ${id} is already published at ${target}`);
      await this.staging.marks.settle(id, options);
      return;
    }
    await this.refuseSecondWorkload(request, () =>
      mounts.filter((m) => m.majorMinor === device && m.mountPoint !== staging && m.mountPoint !== target),
    );
    await hostStep(`creating ${target}`, () => host.makeDirectory(target));
    await this.bindOrClean(staging, target, flags, readonly, options, `binding ${staging} onto ${target}`);
    // Bound first (no wait on LVM), answered only once the mark is off: the workload starts after this answer.
    await this.staging.marks.settle(id, options);
  }

  /**
   * SINGLE_NODE_SINGLE_WRITER (Kubernetes' ReadWriteOncePod) is one workload: a publish at a
   * second target path while the volume is published elsewhere is FAILED_PRECONDITION, read-only
   * or not (the CSI spec's NodePublishVolume table for modes that are not MULTI_NODE: another
   * target_path is FAILED_PRECONDITION). `elsewhere` reads the other publishes from the mount
   * table (only for this mode), so a restart of loam forgets nothing.
   */
  private async refuseSecondWorkload(
    request: PublishRequest,
    elsewhere: () => readonly HostMount[] | Promise<readonly HostMount[]>,
  ): Promise<void> {
    const { id, target, use } = request;
    if (use.mode !== "single-node-single-writer") return;
    const published = await elsewhere();
    if (published.length === 0) return;
    const paths = published.map((m) => m.mountPoint).join(", ");
    throw failedPrecondition(
      `volume ${id} has access mode SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod: one workload at a time) and is ` +
        `already published at ${paths}; it cannot also be published at ${target}. Stop the workload that uses it ` +
        "(NodeUnpublishVolume there) first, or use SINGLE_NODE_MULTI_WRITER (ReadWriteOnce) for several workloads on this node",
    );
  }

  /**
   * Where the block volume's device node is bound other than `target`: the mounts of a device
   * filesystem whose mount point stats as this device (mountinfo names the filesystem that
   * holds the node, not the device the node stands for).
   */
  private async blockPublishes(mounts: readonly HostMount[], device: string, target: string): Promise<HostMount[]> {
    const candidates = mounts.filter(
      (m) => m.mountPoint !== target && (m.fsType === "devtmpfs" || m.fsType === "tmpfs"),
    );
    const found = await Promise.all(
      candidates.map(async (m) => {
        const held = await this.host.stat(m.mountPoint).catch(() => undefined);
        return held?.type === "block-device" && held.device === device ? m : undefined;
      }),
    );
    return found.filter((m): m is HostMount => m !== undefined);
  }

  /** Unmounts the volume from target (only it: see VolumeStaging.unmountVolume), then removes what publish made. */
  async unpublish(id: string, target: string, options: HostCallOptions): Promise<void> {
    await this.staging.unmountVolume(id, target, "target_path", options);
    await hostStep(`removing ${target}`, () => this.removeTarget(target));
  }

  private async bindOrClean(
    source: string,
    target: string,
    flags: readonly string[],
    readonly: boolean,
    options: HostCallOptions,
    doing: string,
  ): Promise<void> {
    try {
      await this.host.bindMount(source, target, flags, { readonly, signal: options.signal });
    } catch (error) {
      // Leave no empty target behind for a failed publish; unpublish would find nothing to do.
      if (!mountAt(await this.host.mounts(), target)) await this.removeTarget(target).catch(() => undefined);
      throw hostFailure(error, doing);
    }
  }

  /** The empty file a block device is bound onto; an existing file is reused. */
  private async createFile(path: string): Promise<void> {
    const found = await this.host.stat(path).catch(() => undefined);
    if (found?.type === "directory")
      throw failedPrecondition(`target_path ${path} is a directory; a block volume is published onto a file`);
    if (!found) await this.host.makeFile(path);
  }

  /** Removes what publish created at target: an empty directory or the (unmounted) device file. */
  private async removeTarget(target: string): Promise<void> {
    const found = await this.host.stat(target).catch(() => undefined);
    if (!found) return;
    if (found.type === "directory") {
      if (!(await this.host.removeDirectory(target))) {
        throw failedPrecondition(`target_path ${target} is not mounted but holds files; loam leaves them in place`);
      }
    } else {
      await this.host.removeFile(target);
    }
  }
}
