/**
 * Paths from requests must stay inside kubelet's directory. The check (resolveUnder) runs on
 * the path with every symlink resolved, so a link planted under the directory cannot send a
 * mount elsewhere.
 *
 * What was checked is then what is used: a resolved path has no symlink in it, so every
 * later step opens it with O_PATH and O_NOFOLLOW and confirms through /proc/self/fd/N that
 * the object it holds is still at exactly that path (openExact). A directory on the way that
 * was moved or replaced by a symlink since the check shows up as another path there, and the
 * step is refused with PathChangedError. Whatever is done afterwards goes through the open
 * descriptor, not the path string: mkdir, rmdir and unlink in-process through
 * /proc/self/fd/<parent>/<name> (none of them follows a last-component symlink), mount and
 * umount by passing the descriptor to the child (src/host/mount.ts).
 */
import { readFileSync, readlinkSync } from "node:fs";
import { type FileHandle, lstat, mkdir, open, realpath, rmdir, unlink } from "node:fs/promises";
import { constants } from "node:fs";
import { basename, dirname, isAbsolute, join, sep } from "node:path";
import { PathChangedError, UnsafePathError } from "./errors.js";
import { fromMemoryFs } from "./memory-fs.js";

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

/**
 * Resolves `path` (which need not exist yet) and checks that it lies strictly below `root`.
 * Missing trailing components are kept as given; a component that exists as a dangling
 * symlink is refused, since mount or mkdir would follow it to wherever it points.
 */
export async function resolveUnder(root: string, path: string): Promise<string> {
  if (!isAbsolute(path)) throw new UnsafePathError(`"${path}" is not an absolute path`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new UnsafePathError("contains control characters");
  if (path.split("/").includes("..")) throw new UnsafePathError(`"${path}" contains a ".." segment`);

  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (error) {
    throw new UnsafePathError(`the kubelet directory ${root} cannot be resolved (${errno(error) ?? String(error)})`);
  }

  const missing: string[] = [];
  let existing = path;
  for (;;) {
    try {
      const resolved = await realpath(existing);
      const full = missing.length > 0 ? join(resolved, ...missing) : resolved;
      if (!full.startsWith(realRoot === sep ? sep : realRoot + sep) || full === realRoot) {
        throw new UnsafePathError(
          full === path
            ? `"${path}" is not under ${realRoot}`
            : `"${path}" resolves to ${full}, which is not under ${realRoot}`,
        );
      }
      return full;
    } catch (error) {
      if (error instanceof UnsafePathError) throw error;
      if (errno(error) !== "ENOENT" && errno(error) !== "ENOTDIR") {
        throw new UnsafePathError(`"${path}" cannot be resolved (${errno(error) ?? String(error)})`);
      }
    }
    const link = await lstat(existing).catch(() => undefined);
    if (link?.isSymbolicLink()) throw new UnsafePathError(`"${existing}" is a symlink to a path that does not exist`);
    if (existing === sep) throw new UnsafePathError(`"${path}" cannot be resolved`);
    missing.unshift(basename(existing));
    existing = dirname(existing);
  }
}

/**
 * O_PATH (Linux, every architecture Node ships for): a descriptor that names an object
 * without opening it for I/O, so a FIFO does not block and a device is not opened. Node's
 * fs.constants does not carry it.
 */
const O_PATH = 0o10000000;

/** The path of a descriptor of this process as the kernel walks it: the object itself, never its name again. */
export const procFd = (fd: number): string => `/proc/self/fd/${fd}`;

/** A descriptor handed to a child as its fd 3 + index (RunOptions.fds), as that child names it. */
export const childFd = (index: number): string => `/proc/self/fd/${3 + index}`;

/**
 * Opens the object at `path` without following a symlink at its end, and confirms that the
 * object opened is at exactly `path` (the kernel's own name for the descriptor), so a
 * directory on the way that is now a symlink, or was moved, is refused with PathChangedError.
 * `path` must be absolute and already resolved (resolveUnder). Rejects with the filesystem's
 * error (ENOENT, ENOTDIR, ...) when there is nothing there.
 */
export function openExact(path: string, options: { directory?: boolean } = {}): Promise<FileHandle> {
  return openConfirmed(path, path, options);
}

/** Opens `name` inside an open directory, exactly there (no symlink followed), and confirms it is at `path`. */
export function openInside(
  parent: FileHandle,
  name: string,
  path: string,
  options: { directory?: boolean } = {},
): Promise<FileHandle> {
  return openConfirmed(join(procFd(parent.fd), name), path, options);
}

/** Opens `where` (no symlink followed at its end) and confirms that the object is at `path`. */
async function openConfirmed(where: string, path: string, options: { directory?: boolean }): Promise<FileHandle> {
  const flags = O_PATH | constants.O_NOFOLLOW | (options.directory ? constants.O_DIRECTORY : 0);
  let handle: FileHandle;
  try {
    handle = await open(where, flags);
  } catch (error) {
    const code = errno(error);
    const link =
      code === "ELOOP" || (code === "ENOTDIR" && (await lstat(where).catch(() => undefined))?.isSymbolicLink());
    if (link) throw changed(path, "its last component is now a symlink");
    throw error;
  }
  try {
    if ((await handle.stat()).isSymbolicLink()) throw changed(path, "its last component is now a symlink");
    await confirmAt(handle, path);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** PathChangedError unless the kernel's name for the descriptor is `path`. */
export async function confirmAt(handle: FileHandle, path: string): Promise<void> {
  const now = await whereIs(handle.fd);
  if (now !== path) throw changed(path, `it now leads to ${now}`);
}

/** The kernel's current name for a descriptor's object (" (deleted)" appended when it was removed). */
export function whereIs(fd: number): Promise<string> {
  return fromMemoryFs(() => readlinkSync(procFd(fd)));
}

/** The id of the mount (mountinfo's first field) a descriptor's object is reached through. */
export async function mountIdOf(fd: number): Promise<number> {
  const info = await fromMemoryFs(() => readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
  const found = /^mnt_id:\s*(\d+)$/m.exec(info);
  if (!found) throw new Error(`/proc/self/fdinfo/${fd} has no mnt_id`);
  return Number(found[1]);
}

/**
 * Runs `fn` with the parent directory of `path` held open exactly (openExact) and the last
 * component's name; `fn` acts on `${procFd(parent.fd)}/${name}`, which no change above
 * the parent can redirect.
 */
export async function withParent<T>(path: string, fn: (parent: FileHandle, name: string) => Promise<T>): Promise<T> {
  const name = basename(path);
  if (!isAbsolute(path) || name === "" || name === "." || name === "..") {
    throw new UnsafePathError(`"${path}" has no last component to act on`);
  }
  const parent = await openExact(dirname(path), { directory: true });
  try {
    return await fn(parent, name);
  } finally {
    await parent.close();
  }
}

function changed(path: string, how: string): PathChangedError {
  return new PathChangedError(
    path,
    `${path} changed after it was checked (${how}): a directory on the way was moved or replaced by a symlink`,
  );
}

/**
 * Makes the directory at a resolved path and its missing parents (mode 0750), each one inside
 * its parent held open exactly, so no directory is made anywhere a symlink or a moved
 * directory would lead.
 */
export async function makeDirectoryExact(path: string): Promise<void> {
  try {
    await (await openExact(path, { directory: true })).close();
    return;
  } catch (error) {
    if (errno(error) !== "ENOENT" || dirname(path) === path) throw error;
  }
  await makeDirectoryExact(dirname(path));
  await withParent(path, async (parent, name) => {
    await mkdir(join(procFd(parent.fd), name), { mode: 0o750 }).catch((error: unknown) => {
      if (errno(error) !== "EEXIST") throw error;
    });
    await (await openInside(parent, name, path, { directory: true })).close();
  });
}

/** Makes an empty file (mode 0640) inside its parent held open exactly; an existing one is kept. */
export function makeFileExact(path: string): Promise<void> {
  return withParent(path, async (parent, name) => {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    try {
      await (await open(join(procFd(parent.fd), name), flags, 0o640)).close();
    } catch (error) {
      if (errno(error) !== "EEXIST") throw error;
    }
  });
}

/**
 * Removes an empty directory (rmdir) or a file (unlink) inside its parent held open exactly;
 * neither follows a symlink at the end. Resolves false only for a directory that holds entries.
 */
export async function removeExact(path: string, kind: "directory" | "file"): Promise<boolean> {
  try {
    await withParent(path, (parent, name) =>
      kind === "directory" ? rmdir(join(procFd(parent.fd), name)) : unlink(join(procFd(parent.fd), name)),
    );
    return true;
  } catch (error) {
    if (errno(error) === "ENOENT") return true;
    if (errno(error) === "ENOTEMPTY") return false;
    throw error;
  }
}
