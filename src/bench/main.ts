/**
 * `npm run bench`: loam's figures side by side with the bare LVM command line, in one boot on
 * the same volume group (issue 7, first part). Measures time to mounted (CreateVolume +
 * NodeStageVolume + NodePublishVolume through CSI against lvcreate + mkfs.xfs + mount) and
 * churn (create + delete cycles). Prints a table and writes bench/results.json. A benchmark
 * records numbers and never judges them: it exits non-zero only when an operation fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { CommandRunner } from "../lvm/runner.js";
import { CsiClient } from "../csi/client.js";
import { Controller, Identity, Node, VolumeCapability_AccessMode_Mode as Mode } from "../gen/csi/v1/csi_pb.js";

const VG = "loambench";
const POOL = "pool";
const SOCKET = "/run/loam-bench/csi.sock";
const ENDPOINT = `unix://${SOCKET}`;
const KUBELET = "/var/lib/kubelet";
const HERE = dirname(fileURLToPath(import.meta.url));
const LOAM = join(HERE, "loam.mjs");
const RESULTS = join(HERE, "..", "bench", "results.json");
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const REPEATS = Number(process.env.LOAM_BENCH_REPEATS ?? 6);
const CHURN_CYCLES = Number(process.env.LOAM_BENCH_CHURN ?? 30);
const CHURN_CONCURRENCY = [1, 8];
// Small enough that churn measures LVM and loam, not zeroing of data.
const CHURN_BYTES = 64 * MiB;

type Kind = "thick" | "thin";

const runner = new CommandRunner({ defaultTimeoutMs: 300_000 });
const cleanups: Array<() => Promise<void>> = [];

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function must(argv: string[]): Promise<string> {
  const result = await runner.run(argv);
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.trim()}`);
  return result.stdout;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function disks(): Promise<string[]> {
  const fromVm = (process.env.LOAM_VM_DISKS ?? "").split(/\s+/).filter(Boolean);
  if (fromVm.length >= 2) return fromVm.slice(0, 2);
  // On a host with device-mapper: two sparse files on loop devices.
  const dir = await mkdtemp(join(tmpdir(), "loam-bench-"));
  const devices: string[] = [];
  for (const name of ["disk0", "disk1"]) {
    const file = join(dir, name);
    await must(["truncate", "-s", "8G", file]);
    devices.push((await must(["losetup", "--find", "--show", file])).trim());
  }
  cleanups.push(async () => {
    for (const device of devices) await runner.run(["losetup", "-d", device]);
    await rm(dir, { recursive: true, force: true });
  });
  return devices;
}

async function startLoam(configPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [LOAM, "node", "--config", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (logs = (logs + chunk).slice(-20_000)));
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });
  const probe = new CsiClient(ENDPOINT);
  try {
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`loam exited with ${child.exitCode}:\n${logs}`);
      try {
        await probe.call(Identity, "probe", {}, { timeoutMs: 1000 });
        return child;
      } catch {
        await sleep(200);
      }
    }
  } finally {
    probe.close();
  }
  throw new Error(`loam did not become ready:\n${logs}`);
}

const mountCapability = {
  accessType: { case: "mount" as const, value: { fsType: "xfs", mountFlags: [], volumeMountGroup: "" } },
  accessMode: { mode: Mode.SINGLE_NODE_WRITER },
};

function createInit(name: string, bytes: number, kind: Kind) {
  return {
    name,
    capacityRange: { requiredBytes: BigInt(bytes), limitBytes: 0n },
    volumeCapabilities: [mountCapability],
    parameters: { "loam.csi.dev/deviceClass": kind },
  };
}

function csiPaths(id: string) {
  return {
    staging: join(KUBELET, "plugins/kubernetes.io/csi/loam.csi.dev", id, "globalmount"),
    target: join(KUBELET, "pods/bench-pod/volumes/kubernetes.io~csi", id, "mount"),
  };
}

/** Where one loam sample's time went, per call; kubelet makes the staging directory, so that is untimed. */
interface LoamSample {
  createMs: number;
  stageMs: number;
  publishMs: number;
}

async function loamMounted(client: CsiClient, name: string, kind: Kind): Promise<LoamSample> {
  let id = "";
  const createMs = await timed(async () => {
    const reply = await client.call(Controller, "createVolume", createInit(name, GiB, kind));
    id = reply.volume?.volumeId ?? "";
  });
  const p = csiPaths(id);
  await mkdir(p.staging, { recursive: true });
  const stageMs = await timed(() =>
    client.call(Node, "nodeStageVolume", { volumeId: id, stagingTargetPath: p.staging, volumeCapability: mountCapability }));
  const publishMs = await timed(() =>
    client.call(Node, "nodePublishVolume", { volumeId: id, stagingTargetPath: p.staging, targetPath: p.target, volumeCapability: mountCapability }));
  await client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: p.target });
  await client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: p.staging });
  await client.call(Controller, "deleteVolume", { volumeId: id });
  await rm(join(KUBELET, "plugins/kubernetes.io/csi/loam.csi.dev", id), { recursive: true, force: true });
  await rm(join(KUBELET, "pods/bench-pod"), { recursive: true, force: true });
  return { createMs, stageMs, publishMs };
}

/** The bare sequence an administrator would type, with the same mkfs flags loam uses. */
interface BareSample {
  lvcreateMs: number;
  mkfsMs: number;
  mountMs: number;
}

async function bareMounted(name: string, kind: Kind): Promise<BareSample> {
  const mountPoint = join("/mnt/loam-bench", name);
  await mkdir(mountPoint, { recursive: true });
  const create = kind === "thick"
    ? ["lvcreate", "-y", "-n", name, "-L", "1G", VG]
    : ["lvcreate", "-y", "-n", name, "-V", "1G", "--thin", `${VG}/${POOL}`];
  const device = `/dev/${VG}/${name}`;
  const lvcreateMs = await timed(() => must(create));
  const mkfsMs = await timed(() => must(["mkfs.xfs", "-q", "-K", device]));
  const mountMs = await timed(() => must(["mount", "-t", "xfs", device, mountPoint]));
  await must(["umount", mountPoint]);
  await must(["lvremove", "-y", `${VG}/${name}`]);
  await rm(mountPoint, { recursive: true, force: true });
  return { lvcreateMs, mkfsMs, mountMs };
}

const sum = (sample: object): number => Object.values(sample as Record<string, number>).reduce((a, b) => a + b, 0);

/** Median of each field across samples. */
function medians<T extends object>(samples: T[]): Record<keyof T, number> {
  const keys = Object.keys(samples[0] ?? {}) as Array<keyof T>;
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k] as number))])) as Record<keyof T, number>;
}

interface MountedResult {
  kind: Kind;
  loamMs: number[];
  bareMs: number[];
  loamMedianMs: number;
  bareMedianMs: number;
  ratio: number;
  loamStepMediansMs: Record<keyof LoamSample, number>;
  bareStepMediansMs: Record<keyof BareSample, number>;
  loamSamples: LoamSample[];
  bareSamples: BareSample[];
}

async function timeToMounted(client: CsiClient, kind: Kind): Promise<MountedResult> {
  const loamSamples: LoamSample[] = [];
  const bareSamples: BareSample[] = [];
  // Alternate loam and bare so drift in the guest (page cache, metadata growth) hits both.
  for (let i = 0; i < REPEATS; i++) {
    const l = await loamMounted(client, `bench-mnt-${kind}-${i}`, kind);
    const b = await bareMounted(`bare_mnt_${kind}_${i}`, kind);
    loamSamples.push(l);
    bareSamples.push(b);
    say(`   ${kind} #${i + 1}: loam ${sum(l).toFixed(0)} ms (create ${l.createMs.toFixed(0)}, stage ${l.stageMs.toFixed(0)}, publish ${l.publishMs.toFixed(0)}), ` +
      `bare ${sum(b).toFixed(0)} ms (lvcreate ${b.lvcreateMs.toFixed(0)}, mkfs ${b.mkfsMs.toFixed(0)}, mount ${b.mountMs.toFixed(0)})`);
  }
  const loamMs = loamSamples.map(sum);
  const bareMs = bareSamples.map(sum);
  const loamMedianMs = median(loamMs);
  const bareMedianMs = median(bareMs);
  return {
    kind, loamMs, bareMs, loamMedianMs, bareMedianMs, ratio: loamMedianMs / bareMedianMs,
    loamStepMediansMs: medians(loamSamples), bareStepMediansMs: medians(bareSamples), loamSamples, bareSamples,
  };
}

interface ChurnResult {
  who: string;
  concurrency: number;
  cycles: number;
  seconds: number;
  volumesPerSecond: number;
}

async function loamChurn(client: CsiClient, concurrency: number): Promise<ChurnResult> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CHURN_CYCLES) {
      const i = next++;
      const reply = await client.call(Controller, "createVolume", createInit(`bench-churn-c${concurrency}-${i}`, CHURN_BYTES, "thick"));
      await client.call(Controller, "deleteVolume", { volumeId: reply.volume?.volumeId ?? "" });
    }
  };
  const ms = await timed(() => Promise.all(Array.from({ length: concurrency }, worker)));
  return { who: "loam (CSI)", concurrency, cycles: CHURN_CYCLES, seconds: ms / 1000, volumesPerSecond: CHURN_CYCLES / (ms / 1000) };
}

async function bareChurn(): Promise<ChurnResult> {
  const ms = await timed(async () => {
    for (let i = 0; i < CHURN_CYCLES; i++) {
      await must(["lvcreate", "-y", "-n", `bare_churn_${i}`, "-L", `${CHURN_BYTES / MiB}M`, VG]);
      await must(["lvremove", "-y", `${VG}/bare_churn_${i}`]);
    }
  });
  return { who: "bare serial lvcreate/lvremove", concurrency: 1, cycles: CHURN_CYCLES, seconds: ms / 1000, volumesPerSecond: CHURN_CYCLES / (ms / 1000) };
}

async function bench(): Promise<void> {
  const started = new Date();
  say(`loam bench: ${REPEATS} repetitions of time to mounted, ${CHURN_CYCLES} churn cycles`);
  const devices = await disks();
  await must(["pvcreate", "-ff", "-y", ...devices]);
  await must(["vgcreate", VG, ...devices]);
  cleanups.push(async () => void (await runner.run(["vgremove", "-ff", "-y", VG])));
  await must(["lvcreate", "-y", "--type", "thin-pool", "--size", "4G", "--name", POOL, VG]);

  const configDir = await mkdtemp(join(tmpdir(), "loam-bench-config-"));
  const configPath = join(configDir, "config.json");
  await writeFile(configPath, JSON.stringify({
    endpoint: ENDPOINT,
    nodeId: "bench-node",
    kubeletDir: KUBELET,
    deviceClasses: [
      { name: "thick", volumeGroup: VG, type: "thick", default: true },
      { name: "thin", volumeGroup: VG, type: "thin", thinPool: POOL, overprovisionRatio: 4 },
    ],
  }));
  await startLoam(configPath);
  const client = new CsiClient(ENDPOINT);
  cleanups.push(() => Promise.resolve(client.close()));

  say("\n── time to mounted, 1 GiB xfs");
  const mounted: MountedResult[] = [];
  for (const kind of ["thick", "thin"] as const) mounted.push(await timeToMounted(client, kind));

  say("\n── churn: create + delete cycles, 64 MiB thick volumes");
  const churn: ChurnResult[] = [await bareChurn()];
  say(`   bare: ${churn[0].volumesPerSecond.toFixed(2)} volumes/s`);
  for (const concurrency of CHURN_CONCURRENCY) {
    const result = await loamChurn(client, concurrency);
    churn.push(result);
    say(`   loam c=${concurrency}: ${result.volumesPerSecond.toFixed(2)} volumes/s`);
  }

  const lvmVersion = (await must(["lvm", "version"])).split("\n")[0]?.trim() ?? "";
  const results = {
    startedAt: started.toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "",
      memoryBytes: totalmem(),
      inVm: Boolean(process.env.LOAM_VM_DISKS),
      node: process.version,
      lvm: lvmVersion,
    },
    timeToMounted: mounted,
    churn,
  };
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`);

  say("\n── time to mounted (median of " + REPEATS + ")");
  say("   kind    loam ms   bare ms   loam/bare");
  for (const m of mounted) {
    say(`   ${m.kind.padEnd(6)} ${m.loamMedianMs.toFixed(0).padStart(8)} ${m.bareMedianMs.toFixed(0).padStart(9)} ${m.ratio.toFixed(2).padStart(10)}`);
    const l = m.loamStepMediansMs;
    const b = m.bareStepMediansMs;
    say(`          loam: create ${l.createMs.toFixed(0)}, stage ${l.stageMs.toFixed(0)}, publish ${l.publishMs.toFixed(0)}; ` +
      `bare: lvcreate ${b.lvcreateMs.toFixed(0)}, mkfs ${b.mkfsMs.toFixed(0)}, mount ${b.mountMs.toFixed(0)} (medians, ms)`);
  }
  say("\n── churn (" + CHURN_CYCLES + " create+delete cycles)");
  say("   who                              concurrency   seconds   volumes/s");
  for (const c of churn) {
    say(`   ${c.who.padEnd(32)} ${String(c.concurrency).padStart(11)} ${c.seconds.toFixed(1).padStart(9)} ${c.volumesPerSecond.toFixed(2).padStart(11)}`);
  }
  say(`\nwrote ${RESULTS}`);
}

let failed = false;
try {
  await bench();
} catch (error) {
  failed = true;
  say(`bench FAILED: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
process.exitCode = failed ? 1 : 0;
