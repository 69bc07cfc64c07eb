/**
 * Device throughput: `dd` with direct IO on a plain LV and on a LUKS2 mapping over an LV of the
 * same size (issue 18). loam is not in the data path of either: an encrypted volume is a
 * dm-crypt mapping loam opened at stage, so the bare commands measure exactly what a workload
 * gets. Under the VM's software emulation the figures show the relative cost of the cipher,
 * not a real disk's speed. Moved here from the VM test suite: a test checks behaviour, the
 * bench records speed.
 */
import { must, runner, VG } from "./lab.js";

export interface ThroughputResult {
  /** "plain": the LV itself; "luks2": a LUKS2 mapping (aes-xts-plain64, 512-bit key) over an LV. */
  device: "plain" | "luks2";
  megabytes: number;
  writeMiBPerSecond: number;
  readMiBPerSecond: number;
}

/** A throwaway passphrase with PBKDF2 timed to 1 ms: opening costs nothing, the cipher is the default. */
const PASSPHRASE = "loam-bench-throughput";
const MAPPING = "loam-bench-throughput";

async function rate(argv: string[], megabytes: number): Promise<number> {
  const started = performance.now();
  await must(argv);
  return megabytes / ((performance.now() - started) / 1000);
}

async function measure(device: ThroughputResult["device"], path: string, megabytes: number): Promise<ThroughputResult> {
  const common = ["bs=1M", `count=${megabytes}`, "status=none"];
  const writeMiBPerSecond = await rate(["dd", "if=/dev/zero", `of=${path}`, "oflag=direct", ...common], megabytes);
  const readMiBPerSecond = await rate(["dd", `if=${path}`, "of=/dev/null", "iflag=direct", ...common], megabytes);
  return { device, megabytes, writeMiBPerSecond, readMiBPerSecond };
}

async function keyed(argv: string[]): Promise<void> {
  const result = await runner.run([...argv, "--key-file", "-"], { input: Buffer.from(PASSPHRASE) });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.trim()}`);
}

/** Writes then reads `megabytes` MiB with 1 MiB direct IO on each device kind. */
export async function throughputSection(megabytes = 256): Promise<ThroughputResult[]> {
  // 16 MiB more than is written: room for the LUKS2 header.
  const size = `${megabytes + 16}m`;
  const names = ["tp-plain", "tp-luks2"];
  const results: ThroughputResult[] = [];
  try {
    for (const name of names)
      await must(["lvcreate", "-y", "--wipesignatures", "y", "--size", size, "--name", name, VG]);
    results.push(await measure("plain", `/dev/${VG}/tp-plain`, megabytes));
    const lv = `/dev/${VG}/tp-luks2`;
    await keyed([
      "cryptsetup",
      "luksFormat",
      "--batch-mode",
      "--type",
      "luks2",
      "--pbkdf",
      "pbkdf2",
      "--iter-time",
      "1",
      lv,
    ]);
    await keyed(["cryptsetup", "open", "--type", "luks2", lv, MAPPING]);
    results.push(await measure("luks2", `/dev/mapper/${MAPPING}`, megabytes));
  } finally {
    await runner.run(["cryptsetup", "close", MAPPING]);
    for (const name of names) await runner.run(["lvremove", "-y", `${VG}/${name}`]);
  }
  return results;
}
