/**
 * Failures of the host layer (filesystems, mounts, paths). They carry the command's own
 * words; the CSI layer decides which status code each one becomes. A host command that could
 * not start, timed out or was cancelled rejects with src/exec's errors, never an LVM one.
 */
import { CommandExitError } from "../exec/index.js";

/** A host command (mkfs, mount, blkid, a filesystem's grow tool) ran and exited non-zero. */
export class HostCommandError extends CommandExitError {}

/** A path from a request that is not inside the directory it must stay in, or cannot be checked. */
export class UnsafePathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafePathError";
  }
}

/**
 * A checked path that no longer leads to the object that was checked: a directory on the way
 * was moved or replaced by a symlink after the check. Nothing was done through it (or what
 * was done was undone); a new request checks the path again from the start.
 */
export class PathChangedError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "PathChangedError";
  }
}
