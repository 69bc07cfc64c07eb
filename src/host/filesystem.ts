/**
 * Making, growing and measuring filesystems, and wiping signatures. mkfs.xfs gets -f (and
 * mkfs.ext4 -F) only when the caller says `force`, otherwise it refuses a device with any
 * signature on it; whether a device is empty enough to format, or holds only loam's own
 * unfinished format, is the domain's decision (src/volumes/staging.ts).
 */
import type { BigIntStatsFs } from "node:fs";
import { statfs } from "node:fs/promises";
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { runChecked } from "./run.js";
import { childFd, openExact, procFd } from "./paths.js";

export type FilesystemType = "xfs" | "ext4";

export interface MakeFilesystemOptions extends RunOptions {
  /** Write over whatever signatures the device holds (mkfs.xfs -f, mkfs.ext4 -F). */
  force?: boolean;
}

export async function makeFilesystem(
  runner: CommandRunner,
  device: string,
  fsType: FilesystemType,
  options: MakeFilesystemOptions = {},
): Promise<void> {
  const { force = false, ...run } = options;
  // No discard: a new LV has nothing worth discarding and on thin pools it is slow.
  const argv =
    fsType === "xfs"
      ? ["mkfs.xfs", "-q", "-K", ...(force ? ["-f"] : []), device]
      : ["mkfs.ext4", "-q", "-E", "nodiscard", ...(force ? ["-F"] : []), device];
  await runChecked(runner, argv, run);
}

/** Erases every signature libblkid finds on the device (filesystems, RAID and LUKS headers, partition tables). */
export async function wipeSignatures(runner: CommandRunner, device: string, options: RunOptions = {}): Promise<void> {
  await runChecked(runner, ["wipefs", "-a", "-q", device], options);
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
    case "xfs": {
      // Through the mount point held open exactly, so a path changed since it was checked
      // cannot send the grow to another filesystem.
      const mountPoint = await openExact(target.mountPoint, { directory: true });
      try {
        await runChecked(runner, ["xfs_growfs", "-d", childFd(0)], { ...options, fds: [mountPoint.fd] });
      } finally {
        await mountPoint.close();
      }
      return;
    }
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

/** statfs of the filesystem at a path, looked at exactly (openExact). */
export async function filesystemUsage(path: string): Promise<FilesystemUsage> {
  const handle = await openExact(path, { directory: true });
  let s: BigIntStatsFs;
  try {
    s = await statfs(procFd(handle.fd), { bigint: true });
  } finally {
    await handle.close();
  }
  return {
    totalBytes: s.blocks * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    availableBytes: s.bavail * s.bsize,
    totalInodes: s.files,
    usedInodes: s.files - s.ffree,
    freeInodes: s.ffree,
  };
}
