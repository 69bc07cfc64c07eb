/**
 * What a volume can be used as. A local LV is reachable from one node only, so every
 * MULTI_NODE mode is refused; the filesystem and mount flags are checked against
 * allow-lists before they ever reach mkfs or mount.
 */
import { invalidArgument } from "./errors.js";

export type AccessMode =
  "single-node-writer" | "single-node-reader-only" | "single-node-single-writer" | "single-node-multi-writer";

export type VolumeAccess =
  { kind: "mount"; fsType: FsType; mountFlags: string[]; mountGroup: string } | { kind: "block" };

export interface VolumeUse {
  access: VolumeAccess;
  mode: AccessMode;
}

export const FS_TYPES = ["xfs", "ext4"] as const;
export type FsType = (typeof FS_TYPES)[number];
export const DEFAULT_FS_TYPE: FsType = "xfs";

/**
 * Mount options a pod may ask for. Anything that changes who can reach the data
 * (e.g. `suid`, `dev`, `exec` on a shared host path), that the CO sets itself (ro/rw)
 * or that reaches beyond the pod (`errors=panic`: one filesystem error would panic the
 * node) stays off the list; the message for a refused flag lists these.
 */
export const ALLOWED_MOUNT_FLAGS: readonly string[] = [
  "noatime",
  "nodiratime",
  "relatime",
  "strictatime",
  "lazytime",
  "nosuid",
  "nodev",
  "noexec",
  "discard",
  "nodiscard",
  "sync",
  "dirsync",
  "nouuid",
  "grpid",
  "nogrpid",
  "usrquota",
  "grpquota",
  "prjquota",
  "quota",
  "noquota",
  "inode64",
  "largeio",
  "nolargeio",
  "data=ordered",
  "data=journal",
  "data=writeback",
  "barrier",
  "nobarrier",
  "commit",
  "errors=remount-ro",
  "errors=continue",
];
/**
 * The allowed flags the kernel keeps per mount rather than per filesystem. A bind mount
 * copies them from its source, and a remount of the bind must repeat them, or it drops them.
 */
export const PER_MOUNT_FLAGS: readonly string[] = [
  "nosuid",
  "nodev",
  "noexec",
  "noatime",
  "nodiratime",
  "relatime",
  "strictatime",
];

/** The per-mount subset of already-checked flags, in the order given. */
export function perMountFlags(flags: readonly string[]): string[] {
  return flags.filter((flag) => PER_MOUNT_FLAGS.includes(flag));
}

/** Flags that take a numeric value, e.g. `commit=30`, `logbufs=8`. */
const NUMERIC_FLAGS = new Set(["commit", "logbufs", "allocsize", "stripe", "stride", "inode_readahead_blks"]);

export function parseFsType(value: string, field: string): FsType {
  if (value === "") return DEFAULT_FS_TYPE;
  const found = FS_TYPES.find((t) => t === value);
  if (!found) throw invalidArgument(`${field} "${printable(value)}" is not supported; allowed: ${FS_TYPES.join(", ")}`);
  return found;
}

export function checkMountFlags(flags: readonly string[], field: string): string[] {
  const seen = new Set<string>();
  for (const flag of flags) {
    // A flag may carry a comma-joined list; each piece is checked on its own.
    for (const piece of flag.split(",")) {
      if (!isAllowedFlag(piece)) {
        throw invalidArgument(
          `${field} contains "${printable(piece)}", which loam does not pass to mount; allowed: ${ALLOWED_MOUNT_FLAGS.join(", ")}, ` +
            `and ${[...NUMERIC_FLAGS].map((f) => `${f}=N`).join(", ")}`,
        );
      }
      seen.add(piece);
    }
  }
  return [...seen];
}

function isAllowedFlag(piece: string): boolean {
  if (ALLOWED_MOUNT_FLAGS.includes(piece)) return true;
  const eq = piece.indexOf("=");
  if (eq > 0 && NUMERIC_FLAGS.has(piece.slice(0, eq))) return /^[0-9]{1,10}[kKmM]?$/.test(piece.slice(eq + 1));
  return false;
}

export function checkMountGroup(value: string, field: string): string {
  if (value === "") return value;
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) > 0xfffffffe) {
    throw invalidArgument(`${field} "${printable(value)}" must be a numeric group id (0 to 4294967294)`);
  }
  return value;
}

/** Shortens and escapes a request string for an error message so the message itself stays readable. */
export function printable(value: string, max = 64): string {
  const shown = value.length > max ? `${value.slice(0, max)}…(${value.length} chars)` : value;
  return JSON.stringify(shown).slice(1, -1);
}
