/**
 * /proc/self/mountinfo, the kernel's own list of mounts in our namespace. Unlike
 * /proc/mounts it gives the device number of each mount, which is how we tell whether a
 * path holds *this* volume, and the per-mount options apart from the filesystem's.
 */
import { readFileSync } from "node:fs";
import { fromMemoryFs } from "./memory-fs.js";

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem's device. */
  majorMinor: string;
  /** Path inside the filesystem that is mounted ("/" for the whole filesystem). */
  root: string;
  mountPoint: string;
  /** Per-mount options such as rw/ro, nosuid, noatime. */
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** The kernel escapes space, tab, newline and backslash in paths as three octal digits. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (separator < 0 || fields.length < separator + 4) throw new Error(`unexpected mountinfo line: ${line}`);
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      majorMinor: fields[2] ?? "",
      root: unescape(fields[3] ?? ""),
      mountPoint: unescape(fields[4] ?? ""),
      mountOptions: (fields[5] ?? "").split(","),
      fsType: fields[separator + 1] ?? "",
      source: unescape(fields[separator + 2] ?? ""),
      superOptions: (fields[separator + 3] ?? "").split(","),
    });
  }
  return entries;
}

export function readMountInfo(path = "/proc/self/mountinfo"): Promise<MountEntry[]> {
  return fromMemoryFs(() => parseMountInfo(readFileSync(path, "utf8")));
}

/** The mount visible at this path: when mounts are stacked, the last one listed is on top. */
export function mountAt<T extends Pick<MountEntry, "mountPoint">>(entries: readonly T[], path: string): T | undefined {
  return entries.findLast((entry) => entry.mountPoint === path);
}

export function isReadOnly(entry: Pick<MountEntry, "mountOptions">): boolean {
  return entry.mountOptions.includes("ro");
}

/** "major:minor" of a device number as Linux encodes it (glibc's gnu_dev_major/minor). */
export function majorMinorOf(rdev: number | bigint): string {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}
