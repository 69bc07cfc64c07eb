/**
 * mount and umount as argument vectors, and the mount table read back from the kernel.
 * A bind mount always comes up with the source's per-mount flags; becoming read-only
 * takes a second, remount step, which this module never skips.
 *
 * Neither command is given a request path to walk again. The target (and a bind's source)
 * is opened exactly as checked (paths.ts openExact) and passed to the child as fd 3 (4),
 * which mounts onto /proc/self/fd/3 with --no-canonicalize, so mount(2) gets the very object
 * opened. The new mount is then looked up in mountinfo: it must sit on that object, at the
 * path asked for, with the expected device; otherwise it is unmounted again and the call
 * refused. umount gets the parent directory as fd 3 and the name inside it, after the mount
 * on top there was confirmed to be at the path asked for.
 */
import { type FileHandle, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { HostCommandError, PathChangedError } from "./errors.js";
import { type MountEntry, majorMinorOf, mountAt, readMountInfo } from "./mountinfo.js";
import { childFd, mountIdOf, openExact, openInside, whereIs, withParent } from "./paths.js";
import { runChecked } from "./run.js";

export interface MountOptions extends RunOptions {
  readonly?: boolean;
}

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

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
    const found = await stat(device).catch(() => undefined);
    const expected = found?.isBlockDevice() ? majorMinorOf(found.rdev) : undefined;
    await this.mountOnto(
      target,
      (onto) => ["mount", "--no-canonicalize", "-t", fsType, "-o", all.join(","), device, onto],
      [],
      options,
      expected,
    );
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
    const from = await openExact(source);
    let made: MountEntry;
    try {
      const sourceId = await mountIdOf(from.fd);
      const expected = (await this.mounts()).find((entry) => entry.id === sourceId)?.majorMinor;
      made = await this.mountOnto(
        target,
        (onto) => ["mount", "--no-canonicalize", "--bind", childFd(1), onto],
        [from.fd],
        options,
        expected,
      );
    } finally {
      await from.close();
    }
    if (!options.readonly && perMountFlags.length === 0) return;
    const remount = ["remount", "bind", options.readonly ? "ro" : "rw", ...perMountFlags].join(",");
    try {
      // The bind's own root, reached through the target path and confirmed to be that mount.
      const top = await openExact(target);
      try {
        if ((await mountIdOf(top.fd)) !== made.id) {
          throw new PathChangedError(target, `${target} changed after it was bind-mounted; the bind was undone`);
        }
        await runChecked(this.runner, ["mount", "--no-canonicalize", "-o", remount, childFd(0)], {
          ...options,
          fds: [top.fd],
        });
      } finally {
        await top.close();
      }
    } catch (error) {
      await this.unmountExact(made.mountPoint, made.id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Unmounts everything stacked at target, one layer at a time, until nothing is mounted on
   * the object there. The parent directory is held open exactly for the whole loop, so every
   * umount acts inside the directory that was checked, even if it is moved meanwhile. A mount
   * that disappears between the look and the umount is fine; a target whose parent does not
   * exist has nothing mounted.
   */
  async unmountAll(target: string, options: RunOptions = {}): Promise<number> {
    try {
      return await withParent(target, async (parent, name) => {
        let removed = 0;
        for (;;) {
          let unmounted: boolean;
          try {
            unmounted = await this.unmountInside(parent, name, undefined, options);
          } catch (error) {
            if (error instanceof HostCommandError && (await this.mountedInside(parent, name)) === undefined) break;
            throw error;
          }
          if (!unmounted) break;
          removed += 1;
          if (removed > 64) throw new Error(`${target} still has mounts after 64 unmounts`);
        }
        return removed;
      });
    } catch (error) {
      if (errno(error) === "ENOENT") return 0;
      throw error;
    }
  }

  /**
   * Unmounts mount `expectId` if it is the one on top at `path`, inside the parent held open
   * exactly (unmountInside); false, with nothing done, when it is not there or the parent
   * does not exist.
   */
  async unmountExact(path: string, expectId: number, options: RunOptions = {}): Promise<boolean> {
    try {
      return await withParent(path, (parent, name) => this.unmountInside(parent, name, expectId, options));
    } catch (error) {
      if (errno(error) === "ENOENT") return false;
      throw error;
    }
  }

  /**
   * The id of the mount on top at `name` inside an open directory, or undefined when nothing
   * is mounted there (or there is no such entry).
   */
  private async mountedInside(parent: FileHandle, name: string): Promise<number | undefined> {
    // Where the checked directory is now: it may have been moved since it was opened.
    const path = join(await whereIs(parent.fd), name);
    let id: number;
    try {
      const top = await openInside(parent, name, path);
      try {
        id = await mountIdOf(top.fd);
      } finally {
        await top.close();
      }
    } catch (error) {
      if (errno(error) === "ENOENT") return undefined;
      throw error;
    }
    const entry = (await this.mounts()).find((mount) => mount.id === id);
    return entry?.mountPoint === path ? id : undefined;
  }

  /**
   * Unmounts the mount on top at `name` inside an open directory (only mount `expectId` when
   * given): umount gets the directory as fd 3 and the name inside it, which is a mount point
   * (one cannot be renamed away) when the look just before found one there. Resolves false
   * when nothing is mounted there.
   */
  private async unmountInside(
    parent: FileHandle,
    name: string,
    expectId?: number,
    options: RunOptions = {},
  ): Promise<boolean> {
    const id = await this.mountedInside(parent, name);
    if (id === undefined || (expectId !== undefined && id !== expectId)) return false;
    await runChecked(this.runner, ["umount", "--no-canonicalize", `${childFd(0)}/${name}`], {
      ...options,
      fds: [parent.fd],
    });
    return true;
  }

  /**
   * Runs a mount command onto the object at target (given to it as fd 3), then finds the new
   * mount on that object in mountinfo. Unless it is at target with the expected device (when
   * one is known), it is unmounted and the call rejected.
   */
  private async mountOnto(
    target: string,
    argv: (onto: string) => string[],
    fds: readonly number[],
    options: RunOptions,
    expected: string | undefined,
  ): Promise<MountEntry> {
    const onto = await openExact(target);
    try {
      const under = await mountIdOf(onto.fd);
      await runChecked(this.runner, argv(childFd(0)), { ...options, fds: [onto.fd, ...fds] });
      const at = await whereIs(onto.fd);
      const made = (await this.mounts()).findLast((entry) => entry.parentId === under && entry.mountPoint === at);
      if (!made) throw new Error(`mount exited 0 but the kernel lists no new mount at ${at}`);
      if (at !== target) {
        await this.unmountExact(at, made.id).catch(() => undefined);
        throw new PathChangedError(
          target,
          `${target} changed while it was being mounted (the directory is now at ${at}): a directory on the way was moved or replaced by a symlink; the mount was undone`,
        );
      }
      if (expected !== undefined && made.majorMinor !== expected) {
        await this.unmountExact(at, made.id).catch(() => undefined);
        throw new Error(`the mount made at ${target} is of ${made.majorMinor}, not ${expected}; it was undone`);
      }
      return made;
    } finally {
      await onto.close();
    }
  }
}
