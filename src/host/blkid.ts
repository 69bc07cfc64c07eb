/**
 * What a block device holds, asked of blkid's low-level probe (`-p`, no cache), so that
 * stage formats only a device that is really empty.
 */
import { readFileSync, statSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { majorMinorOf } from "./mountinfo.js";
import { fromMemoryFs } from "./memory-fs.js";
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { HostCommandError } from "./errors.js";

export type DeviceContent =
  { kind: "empty" } | { kind: "filesystem"; fsType: string } | { kind: "other"; description: string };

/** blkid -p exits 2 when it finds no signature at all, 8 when signatures contradict each other. */
const NOTHING_FOUND = 2;
const AMBIVALENT = 8;
/** lvcreate zeroes the first 4 KiB of a new LV; anything else there is data we did not write. */
const ZEROED_BYTES = 4096;
/**
 * Filesystem superblocks, RAID and LUKS headers and partition tables sit in a device's first
 * or last MiB (the furthest from the start, btrfs and ZFS labels, within 256 KiB; md 0.90/1.0
 * and UDF anchors within the last 128 KiB). A device that is zero there has nothing blkid
 * reports, so stage can skip starting it: a fresh thin LV's usual case.
 */
const EDGE_BYTES = 1024 * 1024;
const FIRST_READ_BYTES = 64 * 1024;

/**
 * What loam's own read of a device shows, before any process is started:
 * - "empty": the first and last MiB are zero, so nothing a prober reports is there;
 * - "zero-head": the first 4 KiB are zero (lvcreate zeroes them) but the edges are not: a new
 *   thick LV laid on a deleted volume's blocks, or a signature further in (btrfs, iso9660);
 * - "data": anything else, including a device that could not be read.
 */
export type FirstLook = "empty" | "zero-head" | "data";

export async function firstLook(device: string): Promise<FirstLook> {
  try {
    const size = await blockDeviceBytes(device);
    const handle = await open(device, "r");
    try {
      // A deleted volume's leftovers usually start right after the zeroed 4 KiB, so a short
      // first read settles most devices that are not empty.
      const head = await readAt(handle, 0, Math.min(FIRST_READ_BYTES, size));
      if (head.length < ZEROED_BYTES || !isZero(head.subarray(0, ZEROED_BYTES))) return "data";
      if (size < 2 * EDGE_BYTES || head.length < FIRST_READ_BYTES || !isZero(head)) return "zero-head";
      for (const [position, length] of [
        [FIRST_READ_BYTES, EDGE_BYTES - FIRST_READ_BYTES],
        [size - EDGE_BYTES, EDGE_BYTES],
      ]) {
        const part = await readAt(handle, position, length);
        if (part.length < length || !isZero(part)) return "zero-head";
      }
      return "empty";
    } finally {
      await handle.close();
    }
  } catch {
    return "data";
  }
}

/** `look`, when the caller has already taken it, saves reading the device again. */
export async function probeDevice(
  runner: CommandRunner,
  device: string,
  options: RunOptions = {},
  look?: FirstLook,
): Promise<DeviceContent> {
  if ((look ?? (await firstLook(device))) === "empty") return { kind: "empty" };
  const argv = ["blkid", "-p", "-o", "export", device];
  const result = await runner.run(argv, options);
  if (result.exitCode === NOTHING_FOUND) {
    return (await startsWithZeros(device, ZEROED_BYTES))
      ? { kind: "empty" }
      : {
          kind: "other",
          description: `data that blkid does not recognise (the first ${ZEROED_BYTES} bytes are not zero)`,
        };
  }
  if (result.exitCode === AMBIVALENT)
    return { kind: "other", description: "several conflicting signatures (blkid: ambivalent result)" };
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
    const head = await readAt(handle, 0, bytes);
    return head.length === bytes && isZero(head);
  } finally {
    await handle.close();
  }
}

const ZEROS = Buffer.alloc(EDGE_BYTES);

/** True when every byte is zero; `bytes` is at most EDGE_BYTES long. */
function isZero(bytes: Buffer): boolean {
  return bytes.equals(ZEROS.subarray(0, bytes.length));
}

/** Up to `length` bytes at `position`: fewer at the end of the device. */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/**
 * A block device's size from sysfs (a block device's stat size is 0), found by its device
 * number: LVM without udev makes /dev/mapper/<name> a node of its own, not a link to dm-N.
 */
async function blockDeviceBytes(device: string): Promise<number> {
  const sectors = await fromMemoryFs(() =>
    readFileSync(`/sys/dev/block/${majorMinorOf(statSync(device).rdev)}/size`, "utf8"),
  );
  return Number(sectors.trim()) * 512;
}
