/**
 * What a block device holds, asked of blkid's low-level probe (`-p`, no cache), so that
 * stage formats only a device that is really empty.
 */
import { open } from "node:fs/promises";
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

export async function probeDevice(runner: CommandRunner, device: string, options: RunOptions = {}): Promise<DeviceContent> {
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
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).every((b) => b === 0);
  } finally {
    await handle.close();
  }
}
