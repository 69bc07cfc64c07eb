/**
 * What a block device holds, asked of blkid's low-level probe (`-p`, no cache), so that
 * stage formats only a device that is really empty.
 */
import { type FileHandle, open, readFile, stat } from "node:fs/promises";
import { majorMinorOf } from "./mountinfo.js";
import type { CommandRunner, RunOptions } from "../lvm/runner.js";
import { HostCommandError } from "./errors.js";

export type DeviceContent =
  | { kind: "empty" }
  | { kind: "filesystem"; fsType: string }
  | { kind: "other"; description: string };

/** blkid -p exits 2 when it finds no signature at all, 8 when signatures contradict each other. */
const NOTHING_FOUND = 2;
const AMBIVALENT = 8;
/** lvcreate zeroes the first 4 KiB of a new LV; anything else there is data we did not write. */
const ZEROED_BYTES = 4096;
/**
 * Filesystem superblocks, RAID and LUKS headers and partition tables sit in a device's first
 * or last MiB (the furthest from the start, btrfs and ZFS labels, within 256 KiB; md 0.90/1.0
 * and UDF anchors within the last 128 KiB). A device that is zero there has nothing blkid
 * reports, so stage can skip starting it: a fresh LV's usual case.
 */
const EDGE_BYTES = 1024 * 1024;

export async function probeDevice(runner: CommandRunner, device: string, options: RunOptions = {}): Promise<DeviceContent> {
  if (await edgesAreZero(device)) return { kind: "empty" };
  const argv = ["blkid", "-p", "-o", "export", device];
  const result = await runner.run(argv, options);
  if (result.exitCode === NOTHING_FOUND) {
    return (await startsWithZeros(device, ZEROED_BYTES))
      ? { kind: "empty" }
      : { kind: "other", description: `data that blkid does not recognise (the first ${ZEROED_BYTES} bytes are not zero)` };
  }
  if (result.exitCode === AMBIVALENT) return { kind: "other", description: "several conflicting signatures (blkid: ambivalent result)" };
  if (result.exitCode !== 0) throw new HostCommandError(argv, result.exitCode, result.stderr);
  return classify(parseExport(result.stdout));
}

/** `KEY=value` lines of `blkid -o export`. */
export function parseExport(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return values;
}

export function classify(values: ReadonlyMap<string, string>): DeviceContent {
  const type = values.get("TYPE");
  const usage = values.get("USAGE");
  if (type && usage === "filesystem") return { kind: "filesystem", fsType: type };
  if (type) return { kind: "other", description: `a ${type} signature (${usage ?? "unknown"} usage)` };
  const table = values.get("PTTYPE");
  if (table) return { kind: "other", description: `a ${table} partition table` };
  return { kind: "other", description: `a signature blkid reports as ${[...values.keys()].join(", ") || "nothing"}` };
}

async function startsWithZeros(device: string, bytes: number): Promise<boolean> {
  const handle = await open(device, "r");
  try {
    return (await readZeros(handle, 0, bytes)).zero;
  } finally {
    await handle.close();
  }
}

/** True only when both edges of the device could be read and are all zeros; any doubt is false. */
export async function edgesAreZero(device: string): Promise<boolean> {
  try {
    const size = await blockDeviceBytes(device);
    if (size < 2 * EDGE_BYTES) return false;
    const handle = await open(device, "r");
    try {
      for (const position of [0, size - EDGE_BYTES]) {
        const { bytesRead, zero } = await readZeros(handle, position, EDGE_BYTES);
        if (bytesRead !== EDGE_BYTES || !zero) return false;
      }
      return true;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

/** Reads up to `length` bytes at `position`: how many came, and whether they are all zero. */
async function readZeros(handle: FileHandle, position: number, length: number): Promise<{ bytesRead: number; zero: boolean }> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return { bytesRead, zero: buffer.subarray(0, bytesRead).equals(Buffer.alloc(bytesRead)) };
}

/**
 * A block device's size from sysfs (a block device's stat size is 0), found by its device
 * number: LVM without udev makes /dev/mapper/<name> a node of its own, not a link to dm-N.
 */
async function blockDeviceBytes(device: string): Promise<number> {
  const { rdev } = await stat(device);
  const sectors = await readFile(`/sys/dev/block/${majorMinorOf(rdev)}/size`, "utf8");
  return Number(sectors.trim()) * 512;
}
