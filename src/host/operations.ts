/**
 * This machine's devices, filesystems and mounts as one object: what the node side of the
 * domain asks of the host (src/volumes/node-host.ts's NodeHost, matched structurally: the
 * host layer does not import the domain). Commands run through the given runner, in loam's
 * own mount namespace.
 */
import { type Stats, statSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { fromMemoryFs } from "./memory-fs.js";
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { type DeviceContent, type FirstLook, firstLook, probeDevice } from "./blkid.js";
import {
  type FilesystemType,
  type FilesystemUsage,
  type MakeFilesystemOptions,
  filesystemUsage,
  growFilesystem,
  makeFilesystem,
  wipeSignatures,
} from "./filesystem.js";
import { type MountOptions, Mounter } from "./mount.js";
import {
  type LuksFormatSettings,
  type MappingStatus,
  isLuks,
  luksClose,
  luksFormat,
  luksOpen,
  luksResize,
  mappingStatus,
} from "./crypt.js";
import { type MountEntry, majorMinorOf } from "./mountinfo.js";
import { makeDirectoryExact, makeFileExact, openExact, removeExact } from "./paths.js";

/** What a path is. `device` is the "major:minor" a block device node points at. */
export type PathInfo = { type: "block-device"; device: string } | { type: "directory" } | { type: "other" };

export class HostOperations {
  private readonly mounter: Mounter;

  constructor(private readonly runner: CommandRunner) {
    this.mounter = new Mounter(runner);
  }

  mounts(): Promise<MountEntry[]> {
    return this.mounter.mounts();
  }

  /**
   * What is at a path. A device node under /dev is reached as LVM and udev name it (through
   * their symlinks); any other path is a request's, resolved and confined, and is looked at
   * exactly (openExact: PathChangedError when it changed since it was checked).
   */
  async stat(path: string): Promise<PathInfo> {
    let found: Stats;
    if (path.startsWith("/dev/")) found = await fromMemoryFs(() => statSync(path));
    else {
      const handle = await openExact(path);
      try {
        found = await handle.stat();
      } finally {
        await handle.close();
      }
    }
    if (found.isBlockDevice()) return { type: "block-device", device: majorMinorOf(found.rdev) };
    return found.isDirectory() ? { type: "directory" } : { type: "other" };
  }

  realpath(path: string): Promise<string> {
    return realpath(path);
  }

  makeDirectory(path: string): Promise<void> {
    return makeDirectoryExact(path);
  }

  makeFile(path: string): Promise<void> {
    return makeFileExact(path);
  }

  removeDirectory(path: string): Promise<boolean> {
    return removeExact(path, "directory");
  }

  async removeFile(path: string): Promise<void> {
    await removeExact(path, "file");
  }

  firstLook(device: string): Promise<FirstLook> {
    return firstLook(device);
  }

  probe(device: string, options: RunOptions = {}, look?: FirstLook): Promise<DeviceContent> {
    return probeDevice(this.runner, device, options, look);
  }

  makeFilesystem(device: string, fsType: FilesystemType, options: MakeFilesystemOptions = {}): Promise<void> {
    return makeFilesystem(this.runner, device, fsType, options);
  }

  wipeSignatures(device: string, options: RunOptions = {}): Promise<void> {
    return wipeSignatures(this.runner, device, options);
  }

  growFilesystem(
    target: { fsType: string; device: string; mountPoint: string },
    options: RunOptions = {},
  ): Promise<void> {
    return growFilesystem(this.runner, target, options);
  }

  filesystemUsage(path: string): Promise<FilesystemUsage> {
    return filesystemUsage(path);
  }

  mountFilesystem(
    device: string,
    target: string,
    fsType: string,
    flags: readonly string[],
    options: MountOptions = {},
  ): Promise<void> {
    return this.mounter.mountFilesystem(device, target, fsType, flags, options);
  }

  bindMount(
    source: string,
    target: string,
    perMountFlags: readonly string[],
    options: MountOptions = {},
  ): Promise<void> {
    return this.mounter.bindMount(source, target, perMountFlags, options);
  }

  /** Unmounts the mount on top at target if it is mount `mountId`; false (nothing done) when it is not there. */
  unmount(target: string, mountId: number, options: RunOptions = {}): Promise<boolean> {
    return this.mounter.unmountExact(target, mountId, options);
  }

  isLuks(device: string, options: RunOptions = {}): Promise<boolean> {
    return isLuks(this.runner, device, options);
  }

  luksFormat(
    device: string,
    passphrase: Uint8Array,
    settings: LuksFormatSettings,
    options: RunOptions = {},
  ): Promise<void> {
    return luksFormat(this.runner, device, passphrase, settings, options);
  }

  luksOpen(device: string, name: string, passphrase: Uint8Array, options: RunOptions = {}): Promise<void> {
    return luksOpen(this.runner, device, name, passphrase, options);
  }

  luksClose(name: string, options: RunOptions = {}): Promise<boolean> {
    return luksClose(this.runner, name, options);
  }

  luksResize(name: string, passphrase: Uint8Array | undefined, options: RunOptions = {}): Promise<void> {
    return luksResize(this.runner, name, passphrase, options);
  }

  mappingStatus(name: string, options: RunOptions = {}): Promise<MappingStatus> {
    return mappingStatus(this.runner, name, options);
  }
}
