/**
 * CSI Node: the life of a volume on this node. Stage makes the filesystem (only on an
 * empty device) and mounts it once per node; publish bind-mounts that into each pod;
 * expand grows the LV and then the filesystem online; stats and condition come from
 * statfs, the mount table and LVM. Every path from a request is resolved and checked to
 * lie under kubelet's directory before anything touches it, and every RPC is idempotent:
 * each one looks at the kernel's mount table first and only does what is still missing.
 */
import { mkdir, realpath, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import type { Stats } from "node:fs";
import {
  type Node,
  NodeServiceCapability_RPC_Type as Rpc,
  type VolumeCapability,
  VolumeUsage_Unit as Unit,
} from "../gen/csi/v1/csi_pb.js";
import type { CommandRunner } from "../exec/index.js";
import { LvmError } from "../lvm/errors.js";
import type { Volume, VolumeEngine } from "../volumes/engine.js";
import { KeyedLocks } from "../volumes/locks.js";
import { VolumeError, alreadyExists, failedPrecondition, invalidArgument, notFound } from "../volumes/errors.js";
import { type VolumeUse, PER_MOUNT_FLAGS, perMountFlags, printable } from "../volumes/capabilities.js";
import { HostCommandError, UnsafePathError } from "../host/errors.js";
import { filesystemUsage, growFilesystem, makeFilesystemIfEmpty } from "../host/filesystem.js";
import { type MountEntry, isReadOnly, majorMinorOf, mountAt } from "../host/mountinfo.js";
import { Mounter } from "../host/mount.js";
import { resolveUnder } from "../host/paths.js";
import type { CallContext, ServiceHandlers } from "./service.js";
import { type NodeTopology, required, topologyOf, volumeUse } from "./validate.js";

type NodeMethods = (typeof Node)["method"];

export interface NodeOptions {
  node: NodeTopology;
  maxVolumesPerNode: number;
  engine: VolumeEngine;
  /** kubelet's directory: every staging and target path must resolve to a path below it. */
  kubeletDir: string;
  /** Runs mount, mkfs, blkid and the grow tools in our own mount namespace. */
  hostRunner: CommandRunner;
}

const CAPABILITIES = [
  Rpc.STAGE_UNSTAGE_VOLUME,
  Rpc.EXPAND_VOLUME,
  Rpc.GET_VOLUME_STATS,
  Rpc.VOLUME_CONDITION,
  Rpc.SINGLE_NODE_MULTI_WRITER,
];

/** Flags that mountinfo shows by name when set, so a republish can be compared with them. */
const VISIBLE_PER_MOUNT_FLAGS = PER_MOUNT_FLAGS.filter((flag) => flag !== "strictatime");

export function nodeService(options: NodeOptions): ServiceHandlers<NodeMethods> {
  const { engine, kubeletDir, hostRunner: runner } = options;
  const mounter = new Mounter(runner);
  const locks = new KeyedLocks();
  const withVolume = <T>(id: string, fn: () => Promise<T>): Promise<T> => locks.withKeys([`volume:${id}`], fn);

  const checkedPath = async (path: string, field: string): Promise<string> => {
    try {
      return await resolveUnder(kubeletDir, path);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        throw invalidArgument(`${field} "${printable(path, 200)}" is refused: ${error.message}; it must lie under ${kubeletDir}`);
      }
      throw error;
    }
  };

  /** The volume, active, or NOT_FOUND. */
  const activeVolume = async (id: string, context: CallContext): Promise<Volume> => {
    const volume = await host(`activating volume ${id}`, () => engine.ensureActive(id, { signal: context.signal }));
    devices.set(id, { devicePath: volume.devicePath, id });
    return volume;
  };
  /**
   * Device paths of volumes staged by this process. Publish runs once per pod, and an LVM
   * report costs more than the bind mount itself; the device number is still checked
   * against the staged mount, and a path that no longer resolves falls back to LVM.
   */
  const devices = new Map<string, Pick<Volume, "id" | "devicePath">>();
  const stagedDevice = async (id: string, context: CallContext): Promise<Pick<Volume, "id" | "devicePath">> => {
    const known = devices.get(id);
    if (known && (await stat(known.devicePath).catch(() => undefined))?.isBlockDevice()) return known;
    return activeVolume(id, context);
  };

  return {
    nodeGetInfo: () =>
      Promise.resolve({
        nodeId: options.node.nodeId,
        maxVolumesPerNode: BigInt(options.maxVolumesPerNode),
        accessibleTopology: topologyOf(options.node)[0],
      }),

    nodeGetCapabilities: () =>
      Promise.resolve({ capabilities: CAPABILITIES.map((type) => ({ type: { case: "rpc", value: { type } } })) }),

    nodeStageVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.stagingTargetPath, "staging_target_path");
      const capability = required(request.volumeCapability, "volume_capability");
      const use = nodeUse(capability, "volume_capability");
      const staging = await checkedPath(path, "staging_target_path");
      return withVolume(id, async () => {
        // The mount table is read alongside the lookup: each is a wait on the kernel or LVM.
        const [volume, existing] = await Promise.all([activeVolume(id, context), mounter.mountAt(staging)]);
        // Block volumes have nothing to mount here: publish binds the device node itself.
        if (use.access.kind === "block") return {};
        const access = use.access;
        const device = await deviceNumber(volume);
        const asked = explicitFsType(capability);
        if (existing) {
          if (existing.majorMinor !== device) {
            throw alreadyExists(`staging_target_path ${staging} already has ${existing.source} (${existing.fsType}) mounted, not volume ${id}`);
          }
          if (asked && existing.fsType !== asked) {
            throw alreadyExists(`volume ${id} is staged at ${staging} as ${existing.fsType}; this request asks for ${asked}`);
          }
          checkFlagsMatch(existing, access.mountFlags, `volume ${id} is staged at ${staging}`);
          return {};
        }
        await host(`creating ${staging}`, () => mkdir(staging, { recursive: true, mode: 0o750 }));
        const content = await host(`making ${access.fsType} on volume ${id} if it is empty`, () =>
          makeFilesystemIfEmpty(runner, volume.devicePath, access.fsType, { signal: context.signal }),
        );
        let fsType: string;
        switch (content.kind) {
          case "formatted":
            fsType = access.fsType;
            break;
          case "filesystem":
            if (asked && content.fsType !== asked) {
              throw failedPrecondition(
                `volume ${id} already holds a ${content.fsType} filesystem but ${asked} was asked for; loam never reformats existing data`,
              );
            }
            fsType = content.fsType;
            break;
          case "other":
            throw failedPrecondition(
              `volume ${id} holds ${content.description}, not a filesystem; loam never formats over existing data`,
            );
        }
        // A clone or restore of an xfs volume carries its source's filesystem UUID; xfs refuses
        // to mount two filesystems with one UUID unless told not to check.
        const flags = fsType === "xfs" && !access.mountFlags.includes("nouuid") ? [...access.mountFlags, "nouuid"] : access.mountFlags;
        const readonly = use.mode === "single-node-reader-only";
        await host(`mounting volume ${id} at ${staging}`, () =>
          mounter.mountFilesystem(volume.devicePath, staging, fsType, flags, { readonly, signal: context.signal }),
        );
        if (content.kind === "filesystem" && !readonly) {
          // A volume restored into a larger LV (or grown while unstaged) gets a filesystem as large as its device.
          await host(`growing the filesystem of volume ${id}`, () =>
            growFilesystem(runner, { fsType, device: volume.devicePath, mountPoint: staging }, { signal: context.signal }),
          );
        }
        return {};
      });
    },

    nodeUnstageVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.stagingTargetPath, "staging_target_path");
      const staging = await checkedPath(path, "staging_target_path");
      return withVolume(id, async () => {
        // kubelet made the staging directory and removes it; we only take the mount away.
        await host(`unmounting ${staging}`, () => mounter.unmountAll(staging, { signal: context.signal }));
        devices.delete(id);
        return {};
      });
    },

    nodePublishVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const stagingPath = required(request.stagingTargetPath, "staging_target_path");
      const targetPath = required(request.targetPath, "target_path");
      const capability = required(request.volumeCapability, "volume_capability");
      const use = nodeUse(capability, "volume_capability");
      const [staging, target] = await bothChecked(
        checkedPath(stagingPath, "staging_target_path"),
        checkedPath(targetPath, "target_path"),
      );
      const readonly = request.readonly || use.mode === "single-node-reader-only";
      if (use.access.kind === "block" && readonly) {
        throw invalidArgument(
          "readonly publish of a raw block volume is refused: the kernel does not stop writes through a read-only bind mount of a device node",
        );
      }
      const flags = use.access.kind === "mount" ? perMountFlags(use.access.mountFlags) : [];
      return withVolume(id, async () => {
        const [volume, mounts] = await Promise.all([stagedDevice(id, context), mounter.mounts()]);
        const device = await deviceNumber(volume);
        const existing = mountAt(mounts, target);
        if (use.access.kind === "block") {
          if (existing) {
            const held = await stat(target).catch(() => undefined);
            if (held?.isBlockDevice() && majorMinorOf(held.rdev) === device) return {};
            throw alreadyExists(`target_path ${target} already has something else mounted (${existing.source}), not volume ${id}`);
          }
          const node = await host(`resolving ${volume.devicePath}`, () => realpath(volume.devicePath));
          await host(`creating ${target}`, () => createFile(target));
          await bindOrClean(mounter, node, target, [], false, context, `binding ${node} onto ${target}`);
          return {};
        }
        const staged = mountAt(mounts, staging);
        if (!staged || staged.majorMinor !== device) {
          throw failedPrecondition(`volume ${id} is not staged at staging_target_path ${staging}; call NodeStageVolume first`);
        }
        if (existing) {
          if (existing.majorMinor !== device) {
            throw alreadyExists(`target_path ${target} already has ${existing.source} (${existing.fsType}) mounted, not volume ${id}`);
          }
          if (isReadOnly(existing) !== readonly) {
            throw alreadyExists(
              `volume ${id} is already published at ${target} ${isReadOnly(existing) ? "read-only" : "read-write"}; this request asks for ${readonly ? "read-only" : "read-write"}`,
            );
          }
          checkFlagsMatch(existing, flags, `volume ${id} is already published at ${target}`);
          return {};
        }
        await host(`creating ${target}`, () => mkdir(target, { recursive: true, mode: 0o750 }));
        await bindOrClean(mounter, staging, target, flags, readonly, context, `binding ${staging} onto ${target}`);
        return {};
      });
    },

    nodeUnpublishVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.targetPath, "target_path");
      const target = await checkedPath(path, "target_path");
      return withVolume(id, async () => {
        await host(`unmounting ${target}`, () => mounter.unmountAll(target, { signal: context.signal }));
        await host(`removing ${target}`, () => removeTarget(target));
        return {};
      });
    },

    nodeExpandVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.volumePath, "volume_path");
      const use = request.volumeCapability ? nodeUse(request.volumeCapability, "volume_capability") : undefined;
      const volumePath = await checkedPath(path, "volume_path");
      const range = request.capacityRange;
      return withVolume(id, async () => {
        let volume = await activeVolume(id, context);
        const found = await stat(volumePath).catch(() => undefined);
        if (!found) throw notFound(`volume_path ${volumePath} does not exist`);
        const block = use ? use.access.kind === "block" : found.isBlockDevice();
        const device = await deviceNumber(volume);
        let mount: MountEntry | undefined;
        if (!block) {
          mount = await mounter.mountAt(volumePath);
          if (!mount || mount.majorMinor !== device) {
            throw failedPrecondition(`volume ${id} is not mounted at volume_path ${volumePath}, so its filesystem cannot be grown`);
          }
        } else if (found.isBlockDevice() && majorMinorOf(found.rdev) !== device) {
          throw failedPrecondition(`volume_path ${volumePath} is the device node of another volume, not of ${id}`);
        }
        if (range && (range.requiredBytes > 0n || range.limitBytes > 0n)) {
          volume = await engine.expandVolume(
            id,
            { requiredBytes: range.requiredBytes, limitBytes: range.limitBytes },
            { signal: context.signal },
          );
        }
        if (mount) {
          const fs = mount;
          await host(`growing the ${fs.fsType} filesystem of volume ${id}`, () =>
            growFilesystem(runner, { fsType: fs.fsType, device: volume.devicePath, mountPoint: volumePath }, { signal: context.signal }),
          );
        }
        return { capacityBytes: BigInt(volume.sizeBytes) };
      });
    },

    nodeGetVolumeStats: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.volumePath, "volume_path");
      const volumePath = await checkedPath(path, "volume_path");
      const found = await stat(volumePath).catch(() => undefined);
      if (!found) throw notFound(`volume_path ${volumePath} does not exist`);
      const volume = await engine.getVolume(id, { signal: context.signal });
      const problems: string[] = [];
      if (!volume) problems.push(`logical volume ${id} does not exist on this node`);
      else if (volume.condition.abnormal) problems.push(volume.condition.message);
      const device = volume ? await deviceNumber(volume).catch(() => undefined) : undefined;
      const usage: Array<{ unit: Unit; total: bigint; used: bigint; available: bigint }> = [];
      if (found.isBlockDevice()) {
        if (device && majorMinorOf(found.rdev) !== device) problems.push(`${volumePath} is not the device node of volume ${id}`);
        if (volume) usage.push({ unit: Unit.BYTES, total: BigInt(volume.sizeBytes), used: 0n, available: 0n });
      } else {
        const mount = await mounter.mountAt(volumePath);
        if (!mount) problems.push(`nothing is mounted at ${volumePath}`);
        else if (device && mount.majorMinor !== device) problems.push(`${volumePath} holds ${mount.source}, not volume ${id}`);
        else {
          const fs = await host(`reading filesystem usage of ${volumePath}`, () => filesystemUsage(volumePath));
          usage.push(
            { unit: Unit.BYTES, total: fs.totalBytes, used: fs.usedBytes, available: fs.availableBytes },
            { unit: Unit.INODES, total: fs.totalInodes, used: fs.usedInodes, available: fs.freeInodes },
          );
          if (!isReadOnly(mount) && mount.superOptions.includes("ro")) {
            // ext4's errors=remount-ro turns the filesystem read-only under a read-write mount.
            problems.push(`the filesystem at ${volumePath} went read-only (a filesystem error forced it)`);
          }
        }
      }
      return {
        usage,
        volumeCondition: { abnormal: problems.length > 0, message: problems.length > 0 ? problems.join("; ") : "volume is healthy" },
      };
    },
  };
}

/** Converts the capability; VOLUME_MOUNT_GROUP is not offered, so a group id cannot be honoured. */
function nodeUse(capability: VolumeCapability, field: string): VolumeUse {
  const use = volumeUse(capability, field);
  if (use.access.kind === "mount" && use.access.mountGroup !== "") {
    throw invalidArgument(`${field}.mount.volume_mount_group is not supported: loam does not offer VOLUME_MOUNT_GROUP`);
  }
  return use;
}

/** The fs_type the request named, or undefined when it left the choice to us. */
function explicitFsType(capability: VolumeCapability): string | undefined {
  return capability.accessType.case === "mount" && capability.accessType.value.fsType !== ""
    ? capability.accessType.value.fsType
    : undefined;
}

function checkFlagsMatch(mount: MountEntry, flags: readonly string[], where: string): void {
  const missing = flags.filter((flag) => VISIBLE_PER_MOUNT_FLAGS.includes(flag) && !mount.mountOptions.includes(flag));
  if (missing.length > 0) {
    throw alreadyExists(`${where} with mount options ${mount.mountOptions.join(",")}; this request also asks for ${missing.join(",")}`);
  }
}

/** Both paths checked at once; when both are refused, the first one's error is the one reported. */
async function bothChecked(first: Promise<string>, second: Promise<string>): Promise<[string, string]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}

/** "major:minor" of the volume's device node. */
async function deviceNumber(volume: Pick<Volume, "id" | "devicePath">): Promise<string> {
  let found: Stats;
  try {
    found = await stat(volume.devicePath);
  } catch (error) {
    throw failedPrecondition(`device ${volume.devicePath} of volume ${volume.id} is missing: ${(error as Error).message}`);
  }
  if (!found.isBlockDevice()) throw failedPrecondition(`${volume.devicePath} is not a block device`);
  return majorMinorOf(found.rdev);
}

async function bindOrClean(
  mounter: Mounter,
  source: string,
  target: string,
  flags: readonly string[],
  readonly: boolean,
  context: CallContext,
  doing: string,
): Promise<void> {
  try {
    await mounter.bindMount(source, target, flags, { readonly, signal: context.signal });
  } catch (error) {
    // Leave no empty target behind for a failed publish; unpublish would find nothing to do.
    if (!(await mounter.mountAt(target))) await removeTarget(target).catch(() => undefined);
    throw translate(error, doing);
  }
}

/** The empty file a block device is bound onto; an existing file is reused. */
async function createFile(path: string): Promise<void> {
  const found = await stat(path).catch(() => undefined);
  if (found?.isDirectory()) throw failedPrecondition(`target_path ${path} is a directory; a block volume is published onto a file`);
  if (!found) await writeFile(path, "", { flag: "wx", mode: 0o640 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
}

/** Removes what publish created at target: an empty directory or the (unmounted) device file. */
async function removeTarget(target: string): Promise<void> {
  const found = await stat(target).catch(() => undefined);
  if (!found) return;
  if (found.isDirectory()) {
    await rmdir(target).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return;
      if (error.code === "ENOTEMPTY") {
        throw failedPrecondition(`target_path ${target} is not mounted but holds files; loam leaves them in place`);
      }
      throw error;
    });
  } else {
    await unlink(target).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
}

/** Runs one host step; a failure becomes a VolumeError that says what was being done. */
async function host<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw translate(error, doing);
  }
}

function translate(error: unknown, doing: string): VolumeError | LvmError {
  if (error instanceof VolumeError || error instanceof LvmError) return error;
  if (error instanceof HostCommandError) {
    if (/must be larger than/.test(error.stderr)) {
      return failedPrecondition(`${doing} failed: ${error.stderr.trim()} (ask for a larger volume or fs_type ext4)`);
    }
    return new VolumeError("internal", `${doing} failed: ${error.message}`, { cause: error });
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new VolumeError("aborted", `${doing} was cancelled`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
