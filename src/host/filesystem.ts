/**
 * Making, growing and measuring filesystems. mkfs runs only on a device found empty; mkfs.xfs
 * is never given -f, so it adds its own refusal on top of that.
 */
import { statfs } from "node:fs/promises";
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { type DeviceContent, firstLook, probeDevice } from "./blkid.js";
import { HostCommandError } from "./errors.js";
import { runChecked } from "./run.js";

export type FilesystemType = "xfs" | "ext4";

export async function makeFilesystem(
  runner: CommandRunner,
  device: string,
  fsType: FilesystemType,
  options: RunOptions = {},
): Promise<void> {
  // No discard: a new LV has nothing worth discarding and on thin pools it is slow.
  const argv = fsType === "xfs" ? ["mkfs.xfs", "-q", "-K", device] : ["mkfs.ext4", "-q", "-E", "nodiscard", device];
  await runChecked(runner, argv, options);
}

/** What makeFilesystemIfEmpty did: made the filesystem, or found this and wrote nothing. */
export type Prepared = { kind: "formatted" } | Exclude<DeviceContent, { kind: "empty" }>;

/**
 * Makes `fsType` on a device that holds nothing; otherwise says what the device holds and
 * leaves it untouched.
 *
 * A new thick LV on extents a deleted volume used is zero in its first 4 KiB (lvcreate's
 * doing) but not at its edges, so emptiness needs a signature probe. For xfs that probe is
 * mkfs.xfs's own: without -f it runs libblkid's full probe (superblocks and partition tables,
 * as `blkid -p` does) before writing and refuses whatever it finds; only then is blkid asked
 * what is there. That saves a process start per new volume. mke2fs's refusal depends on a
 * terminal, so ext4 always asks blkid first.
 */
export async function makeFilesystemIfEmpty(
  runner: CommandRunner,
  device: string,
  fsType: FilesystemType,
  options: RunOptions = {},
): Promise<Prepared> {
  const look = await firstLook(device);
  if (look === "zero-head" && fsType === "xfs") {
    try {
      await makeFilesystem(runner, device, fsType, options);
      return { kind: "formatted" };
    } catch (error) {
      if (!(error instanceof HostCommandError)) throw error;
      const content = await probeDevice(runner, device, options, look);
      // blkid finds nothing either: mkfs failed for a reason of its own (too small, I/O).
      if (content.kind === "empty") throw error;
      return content;
    }
  }
  const content = await probeDevice(runner, device, options, look);
  if (content.kind !== "empty") return content;
  await makeFilesystem(runner, device, fsType, options);
  return { kind: "formatted" };
}

/**
 * Grows a mounted filesystem to fill its device. xfs grows through its mount point,
 * ext4 through the device while mounted. Both are no-ops when there is nothing to grow.
 */
export async function growFilesystem(
  runner: CommandRunner,
  target: { fsType: string; device: string; mountPoint: string },
  options: RunOptions = {},
): Promise<void> {
  switch (target.fsType) {
    case "xfs":
      await runChecked(runner, ["xfs_growfs", "-d", target.mountPoint], options);
      return;
    case "ext4":
    case "ext3":
    case "ext2":
      await runChecked(runner, ["resize2fs", target.device], options);
      return;
    default:
      throw new Error(`cannot grow a ${target.fsType} filesystem`);
  }
}

export interface FilesystemUsage {
  totalBytes: bigint;
  usedBytes: bigint;
  availableBytes: bigint;
  totalInodes: bigint;
  usedInodes: bigint;
  freeInodes: bigint;
}

export async function filesystemUsage(path: string): Promise<FilesystemUsage> {
  const s = await statfs(path, { bigint: true });
  return {
    totalBytes: s.blocks * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    availableBytes: s.bavail * s.bsize,
    totalInodes: s.files,
    usedInodes: s.files - s.ffree,
    freeInodes: s.ffree,
  };
}
