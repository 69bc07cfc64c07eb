/**
 * Native section (issue 20): on the host, no VM and no LVM. loam's Identity and Node capability
 * RPCs read nothing, so their cost is loam's gRPC stack and process alone; the same grpc-go
 * client loads them from N goroutines against `loam node` and against csi-floor
 * (test/go/csi-floor), the smallest grpc-go CSI server, which is the floor for any CSI driver.
 * A third server, node-floor (node-floor.ts), is the same for Node and grpc-js: what of loam's
 * figures any driver on loam's stack pays. The servers run side by side and take turns, round
 * by round, at the same loads; each one's resident memory is read idle, sampled during every
 * load and read again after each round, so growth across rounds shows.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Node } from "../../src/gen/csi/v1/csi_pb.js";
import { LOAM_NODE_V8_FLAGS } from "../../src/deploy/node-runtime.js";
import { HEAP_GROWING_FLAG } from "../../src/cli/node.js";
import { onCleanup } from "./lab.js";
import { memoryOf, untilAnswering } from "./loam-process.js";
import { type LoadResult, rpcLoad } from "./rpc.js";

/** The capability RPCs both servers answer without looking anything up. */
export const NATIVE_RPCS = ["NodeGetCapabilities", "GetPluginCapabilities"] as const;
/** How long a server rests before its idle memory is read, and after each round. */
const SETTLE_MS = 3000;
const SAMPLE_MS = 200;

export interface NativeRound {
  loads: LoadResult[];
  /** The most VmRSS seen while this round's loads ran (sampled every 200 ms). */
  duringRssBytes: number;
  /** VmRSS 3 s after the round. */
  afterRssBytes: number;
}

export interface NativeResult {
  /** floor: grpc-go's (csi-floor); node-floor: Node's and grpc-js's (node-floor.ts), with loam's V8 flags. */
  server: "floor" | "node-floor" | "loam";
  /** The command line that ran (without its config path). */
  argv: string[];
  idleRssBytes: number;
  rounds: NativeRound[];
  /** VmHWM at the end: the most it was ever resident. */
  peakRssBytes: number;
}

export interface NativeOptions {
  client: string;
  floor: string;
  /** tools/bench/node-floor.ts, compiled. */
  nodeFloor: string;
  loam: string;
  concurrency: number;
  seconds: number;
  rounds: number;
  /** The V8 flags loam runs with; the deployed ones (src/deploy/node-runtime.ts) unless given. */
  v8Flags?: readonly string[];
}

async function loamConfig(dir: string, endpoint: string): Promise<string> {
  const path = join(dir, "config.json");
  // No volume group is read by these RPCs; the name only has to be valid. Metrics stay on, as deployed.
  await writeFile(
    path,
    JSON.stringify({
      endpoint,
      nodeId: "bench-node",
      kubeletDir: join(dir, "kubelet"),
      metricsAddress: "127.0.0.1:0",
      deviceClasses: [{ name: "thick", volumeGroup: "loamnative", type: "thick", default: true }],
    }),
  );
  return path;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function serve(argv: string[], endpoint: string): Promise<ChildProcess> {
  const [command, ...args] = argv;
  const child = spawn(command ?? "", args, { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (logs = (logs + chunk).slice(-5000)));
  onCleanup(() => stop(child));
  await untilAnswering(
    child,
    command ?? "",
    endpoint,
    (probe) => probe.call(Node, "nodeGetCapabilities", {}, { timeoutMs: 5000 }),
    { withinMs: 60_000, pauseMs: 100, logs: () => logs },
  );
  return child;
}

/** Runs fn while sampling pid's VmRSS; returns fn's value and the most seen. */
async function sampling<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; maxRssBytes: number }> {
  let max = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      max = Math.max(max, (await memoryOf(pid)).rssBytes);
      await sleep(SAMPLE_MS);
    }
  })();
  try {
    return { value: await fn(), maxRssBytes: max };
  } finally {
    running = false;
    await sampler;
    max = Math.max(max, (await memoryOf(pid)).rssBytes);
  }
}

interface Running {
  server: NativeResult["server"];
  argv: string[];
  endpoint: string;
  child: ChildProcess;
  result: NativeResult;
}

/** One round of loads against one server, its memory sampled throughout and read after. */
async function round(target: Running, options: NativeOptions, report: (line: string) => void): Promise<void> {
  const pid = target.child.pid ?? 0;
  const { value: loads, maxRssBytes } = await sampling(pid, async () => {
    const loads: LoadResult[] = [];
    for (const rpc of NATIVE_RPCS)
      loads.push(await rpcLoad(options.client, rpc, options.concurrency, options.seconds, target.endpoint));
    return loads;
  });
  await sleep(SETTLE_MS);
  const afterRssBytes = (await memoryOf(pid)).rssBytes;
  target.result.rounds.push({ loads, duringRssBytes: maxRssBytes, afterRssBytes });
  report(
    `${target.server} round ${target.result.rounds.length}: ${loads.map((l) => `${l.rpc} ${l.callsPerSecond.toFixed(0)} calls/s p50 ${l.p50Ms?.toFixed(2)} ms p99 ${l.p99Ms?.toFixed(2)} ms`).join("; ")}; VmRSS during ${mib(maxRssBytes)}, after ${mib(afterRssBytes)} MiB`,
  );
}

const mib = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);

export async function nativeSection(options: NativeOptions, report: (line: string) => void): Promise<NativeResult[]> {
  const dir = await mkdtemp(join(tmpdir(), "loam-bench-native-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const floorEndpoint = `unix://${join(dir, "floor.sock")}`;
  const nodeFloorEndpoint = `unix://${join(dir, "node-floor.sock")}`;
  const loamEndpoint = `unix://${join(dir, "loam.sock")}`;
  // loam runs with the V8 flags its manifests give it (src/deploy/node-runtime.ts); the Node floor
  // with the same, and the heap growth `loam node` sets itself, so the two differ in loam's code alone.
  const v8Flags = options.v8Flags ?? LOAM_NODE_V8_FLAGS;
  const nodeFloorArgv = [
    process.execPath,
    ...v8Flags,
    ...(v8Flags.some((flag) => flag.startsWith("--heap-growing-percent")) ? [] : [HEAP_GROWING_FLAG]),
    options.nodeFloor,
    nodeFloorEndpoint,
  ];
  const loamArgv = [
    process.execPath,
    ...v8Flags,
    options.loam,
    "node",
    "--config",
    await loamConfig(dir, loamEndpoint),
  ];
  const targets: Running[] = [];
  try {
    for (const [server, argv, endpoint] of [
      ["floor", [options.floor, "--endpoint", floorEndpoint], floorEndpoint],
      ["node-floor", nodeFloorArgv, nodeFloorEndpoint],
      ["loam", loamArgv, loamEndpoint],
    ] as const) {
      const child = await serve([...argv], endpoint);
      const shown = argv.filter((a) => !a.endsWith("config.json"));
      targets.push({
        server,
        argv: shown,
        endpoint,
        child,
        result: { server, argv: shown, idleRssBytes: 0, rounds: [], peakRssBytes: 0 },
      });
    }
    await sleep(SETTLE_MS);
    for (const t of targets) {
      t.result.idleRssBytes = (await memoryOf(t.child.pid ?? 0)).rssBytes;
      report(`${t.server}: idle VmRSS ${mib(t.result.idleRssBytes)} MiB`);
    }
    // Round by round, the floor then loam: the host's other load drifts over minutes, and this way
    // it weighs on both alike.
    for (let r = 0; r < options.rounds; r++) for (const t of targets) await round(t, options, report);
    for (const t of targets) t.result.peakRssBytes = (await memoryOf(t.child.pid ?? 0)).peakRssBytes;
    return targets.map((t) => t.result);
  } finally {
    for (const t of targets) await stop(t.child);
  }
}
