/**
 * Failures of the host layer (filesystems, mounts, paths). They carry the command's own
 * words; the CSI layer decides which status code each one becomes.
 */

/** A host command ran and exited non-zero. */
export class HostCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} exited ${exitCode}: ${stderr.trim() || "(no message)"}`);
    this.name = "HostCommandError";
  }
}

/** A path from a request that is not inside the directory it must stay in, or cannot be checked. */
export class UnsafePathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafePathError";
  }
}
