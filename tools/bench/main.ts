/**
 * `npm run bench`: loam's figures side by side with the bare LVM command line, in one boot on
 * the same volume group (issue 7): time to mounted, churn, scale (10 and 1,000 volumes) and
 * gRPC overhead. Prints a table per section and writes every sample to the results JSON, with
 * an SVG plot beside it. A benchmark records numbers and never judges them: it exits non-zero
 * only when an operation fails (a failed section is recorded and the others still run).
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CsiClient } from "../../src/csi/client.js";
import { bareChurn, type ChurnResult, loamChurn } from "./churn.js";
import { clusterBurst } from "./cluster-burst.js";
import { needsLvm, readKnobs, type Section } from "./knobs.js";
import { cleanUp, createVolumeGroup, must, say } from "./lab.js";
import { ENDPOINT, startLoam, stopLoam } from "./loam-process.js";
import { type MountedResult, timeToMounted } from "./mounted.js";
import { ownTimes, summarizeOwnTimes } from "./own-time.js";
import { renderResultsSvg } from "./plot/charts.js";
import type { BenchResults } from "./results.js";
import { nativeSection } from "./native.js";
import { LOAD_RPCS, type LoadResult, rpcLoad } from "./rpc.js";
import { type ScaleResult, scaleSection } from "./scale.js";
import { stormSection } from "./storm.js";
import { formatResults } from "./table.js";
import { throughputSection } from "./throughput.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const knobs = readKnobs(process.env, { loam: join(HERE, "loam.mjs"), out: join(HERE, "..", "bench", "results.json") });
const GO_CLIENT = join(HERE, "go", "csi-client");
const GO_FLOOR = join(HERE, "go", "csi-floor");

async function machine(): Promise<BenchResults["machine"]> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "",
    memoryBytes: totalmem(),
    inVm: Boolean(process.env.LOAM_VM_DISKS),
    node: process.version,
    // The cluster section alone runs where LVM may be missing.
    lvm:
      (await must(["lvm", "version"]).catch(() => ""))
        .split("\n")[0]
        ?.replace(/^\s*LVM version:\s*/, "")
        .trim() ?? "",
    kernel: release(),
  };
}

async function bench(results: BenchResults): Promise<void> {
  say(
    `loam bench: sections ${knobs.sections.join(", ")}; loam ${knobs.loam}${knobs.gitCommit ? ` (${knobs.gitCommit})` : ""}`,
  );
  const run = async (section: Section, title: string, body: () => Promise<void>): Promise<void> => {
    if (!knobs.sections.includes(section)) return;
    say(`\n── ${title}`);
    try {
      await body();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      results.failures.push({ section, error: message });
      say(`   FAILED: ${message}`);
    }
  };
  const cluster = knobs.cluster;
  const burst = (): Promise<void> =>
    run(
      "cluster-burst",
      `cluster burst: ${cluster.creates} CreateVolumes from ${cluster.clients} clients through ${cluster.replicas} controller replicas onto ${cluster.nodes} stand-in nodes, real etcd (${cluster.etcdMembers} member(s))`,
      async () => {
        const r = (results.clusterBurst = await clusterBurst(cluster));
        say(
          `   ${r.created} created, ${r.refused} refused, ${r.overcommits.overcommits} over-commits, ${r.refusedAlthoughRoom} refused although room, ${r.createsPerSecond.toFixed(1)} creates/s in ${r.seconds.burst.toFixed(1)} s`,
        );
      },
    );
  const native = (): Promise<void> =>
    run(
      "native",
      `native: capability RPCs, loam against the grpc-go floor, concurrency ${knobs.rpcConcurrency}, ${knobs.nativeRounds} rounds of ${knobs.nativeSeconds} s per RPC`,
      async () => {
        results.native = await nativeSection(
          {
            client: GO_CLIENT,
            floor: GO_FLOOR,
            nodeFloor: join(HERE, "tools", "bench", "node-floor.js"),
            loam: knobs.loam,
            concurrency: knobs.rpcConcurrency,
            seconds: knobs.nativeSeconds,
            rounds: knobs.nativeRounds,
            ...(knobs.nativeV8Flags ? { v8Flags: knobs.nativeV8Flags } : {}),
          },
          (line) => say(`   ${line}`),
        );
      },
    );
  if (!needsLvm(knobs.sections)) {
    // No volume group: real etcd and stand-in engines, or loam answering capability RPCs.
    results.machine = await machine();
    await native();
    await burst();
    return;
  }
  await createVolumeGroup();
  results.machine = await machine();
  let child: ChildProcess = await startLoam(knobs.loam, knobs);
  const client = new CsiClient(ENDPOINT);
  try {
    await run("mounted", `time to mounted, 1 GiB xfs, ${knobs.repeats} repetitions`, async () => {
      const mounted: MountedResult[] = (results.timeToMounted = []);
      // With a debug log, each call's own time: its wall time less the time commands ran within it (own-time.ts).
      const logFrom = knobs.logFile
        ? await stat(knobs.logFile).then(
            (s) => s.size,
            () => 0,
          )
        : 0;
      for (const kind of ["thick", "thin"] as const) mounted.push(await timeToMounted(GO_CLIENT, kind, knobs.repeats));
      if (knobs.logFile) {
        const log = (await readFile(knobs.logFile)).subarray(logFrom).toString("utf8");
        results.ownTime = summarizeOwnTimes(ownTimes(log), ["CreateVolume", "NodeStageVolume", "NodePublishVolume"]);
      }
    });

    await run(
      "storm",
      `storm: ${knobs.stormVolumes} volumes of 1 GiB xfs created, staged and published at once, against bare scripts serial and parallel`,
      async () => {
        results.storm = await stormSection(GO_CLIENT, knobs.stormVolumes);
      },
    );

    await run("churn", `churn: ${knobs.churnCycles} create + delete cycles, 64 MiB thick`, async () => {
      const churn: ChurnResult[] = (results.churn = []);
      const bare = await bareChurn(knobs.churnCycles);
      churn.push(bare);
      say(`   bare serial: ${bare.volumesPerSecond.toFixed(2)} volumes/s`);
      for (const concurrency of knobs.churnConcurrency) {
        const result = await loamChurn(client, knobs.churnCycles, concurrency);
        churn.push(result);
        say(`   loam c=${concurrency}: ${result.volumesPerSecond.toFixed(2)} volumes/s`);
      }
    });

    await run(
      "rpc",
      `RPC overhead: grpc-go client, concurrency ${knobs.rpcConcurrency}, ${knobs.rpcSeconds} s each`,
      async () => {
        const rpc: LoadResult[] = (results.rpc = []);
        for (const name of LOAD_RPCS) {
          const result = await rpcLoad(GO_CLIENT, name, knobs.rpcConcurrency, knobs.rpcSeconds);
          rpc.push(result);
          say(
            `   ${name}: ${result.calls} calls in ${result.seconds.toFixed(1)} s = ${result.callsPerSecond.toFixed(1)} calls/s, p50 ${result.p50Ms?.toFixed(2) ?? "n/a"} ms, p99 ${result.p99Ms?.toFixed(2) ?? "n/a"} ms`,
          );
        }
      },
    );

    await native();

    await run("throughput", "device throughput: dd, 1 MiB direct IO, plain LV and LUKS2 mapping", async () => {
      results.throughput = await throughputSection();
      for (const r of results.throughput)
        say(
          `   ${r.device}: write ${r.writeMiBPerSecond.toFixed(1)} MiB/s, read ${r.readMiBPerSecond.toFixed(1)} MiB/s (${r.megabytes} MiB)`,
        );
    });

    await burst();

    await run(
      "scale",
      `scale: ${knobs.scales.join(" and ")} existing volumes, ${knobs.scaleSamples} samples per RPC`,
      async () => {
        const scale: ScaleResult[] = (results.scale = []);
        scale.push(
          ...(await scaleSection(knobs.scales, {
            samples: knobs.scaleSamples,
            listSamples: knobs.listSamples,
            pageSize: knobs.listPageSize,
            restartLoam: async () => {
              await stopLoam(child);
              child = await startLoam(knobs.loam, knobs);
              return child;
            },
          })),
        );
      },
    );
  } finally {
    client.close();
  }
}

const results: BenchResults = {
  startedAt: new Date().toISOString(),
  finishedAt: "",
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "",
    memoryBytes: totalmem(),
    inVm: Boolean(process.env.LOAM_VM_DISKS),
    node: process.version,
    lvm: "",
    kernel: release(),
  },
  loam: { bundle: resolve(knobs.loam), ...(knobs.gitCommit ? { gitCommit: knobs.gitCommit } : {}) },
  knobs,
  failures: [],
};
try {
  await bench(results);
} catch (error) {
  results.failures.push({ section: "setup", error: error instanceof Error ? error.message : String(error) });
} finally {
  await cleanUp();
}
results.finishedAt = new Date().toISOString();
await mkdir(dirname(knobs.out), { recursive: true });
await writeFile(knobs.out, `${JSON.stringify(results, null, 2)}\n`);
say(formatResults(results));
if (needsLvm(knobs.sections)) {
  const svg = knobs.out.replace(/\.json$/, "") + ".svg";
  await writeFile(svg, renderResultsSvg([{ label: knobs.gitCommit ?? "this run", results }]));
  say(`\nwrote ${knobs.out} and ${svg}`);
} else {
  // The plot draws the LVM sections; the cluster burst's figures are the table above and the JSON.
  say(`\nwrote ${knobs.out}`);
}
process.exitCode = results.failures.length ? 1 : 0;
