/**
 * Paths from requests must stay inside kubelet's directory. The check runs on the path
 * with every symlink resolved, so a link planted under the directory cannot send a mount
 * elsewhere; the resolved path is then the one handed to mount, so what was checked is
 * what is used.
 */
import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, sep } from "node:path";
import { UnsafePathError } from "./errors.js";

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
