/**
 * The bench's workbench: the command runner, timing, output, clean-ups and the volume group
 * every section shares. Everything here runs commands; the pure parts live elsewhere.
 */
import { CommandRunner } from "../../src/exec/index.js";
import { scratchDisks } from "../testbed/scratch-disks.js";

export const VG = "loambench";
export const POOL = "pool";
export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
/**
 * Large enough for 1,000+ tagged LVs. LVM keeps the old and the new metadata side by side
 * in this area while committing, so it needs room for two copies (see docs/benchmarks.md).
 */
export const METADATA_SIZE = "64m";

export const runner = new CommandRunner({ defaultTimeoutMs: 600_000 });
const cleanups: Array<() => Promise<void>> = [];

export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

export async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  cleanups.length = 0;
}

export async function must(argv: string[]): Promise<string> {
  const result = await runner.run(argv);
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.trim()}`);
  return result.stdout;
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The VG over both disks with a 4 GiB thin pool; returns the PV device paths. */
export async function createVolumeGroup(): Promise<string[]> {
  const { devices, release } = await scratchDisks("bench", "24G", must);
  onCleanup(release);
  await must(["pvcreate", "-ff", "-y", "--metadatasize", METADATA_SIZE, ...devices]);
  await must(["vgcreate", VG, ...devices]);
  onCleanup(async () => void (await runner.run(["vgremove", "-ff", "-y", VG])));
  await must(["lvcreate", "-y", "--type", "thin-pool", "--size", "4G", "--name", POOL, VG]);
  return devices;
}
