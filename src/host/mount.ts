/**
 * mount and umount as argument vectors, and the mount table read back from the kernel.
 * A bind mount always comes up with the source's per-mount flags; becoming read-only
 * takes a second, remount step, which this module never skips.
 */
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { HostCommandError } from "./errors.js";
import { type MountEntry, mountAt, readMountInfo } from "./mountinfo.js";
import { runChecked } from "./run.js";

export interface MountOptions extends RunOptions {
  readonly?: boolean;
}

export class Mounter {
  constructor(
    private readonly runner: CommandRunner,
    private readonly mountInfoPath = "/proc/self/mountinfo",
  ) {}

  mounts(): Promise<MountEntry[]> {
    return readMountInfo(this.mountInfoPath);
  }

  /** The mount on top at this (resolved) path, if any. */
  async mountAt(path: string): Promise<MountEntry | undefined> {
    return mountAt(await this.mounts(), path);
  }

  /** Mounts a filesystem; `flags` must already have passed the allow-list. */
  async mountFilesystem(
    device: string,
    target: string,
    fsType: string,
    flags: readonly string[],
    options: MountOptions = {},
  ): Promise<void> {
    const all = [options.readonly ? "ro" : "rw", ...flags];
    await runChecked(this.runner, ["mount", "-t", fsType, "-o", all.join(","), device, target], options);
  }

  /**
   * Bind-mounts source (a directory or a device node) onto target. With readonly, or with
   * per-mount flags, the bind is remounted with them; if that fails the bind is undone so
   * no writable mount is left where a read-only one was asked for.
   */
  async bindMount(
    source: string,
    target: string,
    perMountFlags: readonly string[],
    options: MountOptions = {},
  ): Promise<void> {
    await runChecked(this.runner, ["mount", "--bind", source, target], options);
    if (!options.readonly && perMountFlags.length === 0) return;
    const remount = ["remount", "bind", options.readonly ? "ro" : "rw", ...perMountFlags].join(",");
    try {
      await runChecked(this.runner, ["mount", "-o", remount, target], options);
    } catch (error) {
      await this.runner.run(["umount", target]).catch(() => undefined);
      throw error;
    }
  }

  async unmount(target: string, options: RunOptions = {}): Promise<void> {
    await runChecked(this.runner, ["umount", target], options);
  }

  /**
   * Unmounts everything stacked at target, one layer at a time, until the kernel lists
   * nothing there. A mount that disappears between the look and the umount is fine.
   */
  async unmountAll(target: string, options: RunOptions = {}): Promise<number> {
    let removed = 0;
    while (await this.mountAt(target)) {
      try {
        await this.unmount(target, options);
      } catch (error) {
        if (error instanceof HostCommandError && !(await this.mountAt(target))) break;
        throw error;
      }
      removed += 1;
      if (removed > 64) throw new Error(`${target} still has mounts after 64 unmounts`);
    }
    return removed;
  }
}
