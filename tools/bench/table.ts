/** Readable tables of the results, one per section. */
import type { ClusterBurstResult } from "./cluster-burst.js";
import type { NativeResult } from "./native.js";
import type { BenchResults } from "./results.js";

const MiB = 1024 ** 2;

function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  // First column left-aligned (names), the rest right-aligned (numbers).
  const line = (r: string[]): string =>
    "   " + r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)].join("\n");
}

const ms = (v: number): string => v.toFixed(0);

export function formatResults(r: BenchResults): string {
  const out: string[] = [];
  if (r.timeToMounted?.length) {
    out.push(`\n── time to mounted, 1 GiB xfs (medians of ${r.knobs.repeats}, ms)`);
    out.push(
      table(
        [
          "kind",
          "loam",
          "create",
          "stage",
          "publish",
          "bare",
          "lvcreate",
          "mkfs",
          "mount",
          "loam/bare",
          "bind",
          "loam/(bare+bind)",
        ],
        r.timeToMounted.map((m) => [
          m.kind,
          ms(m.loamMedianMs),
          ms(m.loamStepMediansMs.createMs),
          ms(m.loamStepMediansMs.stageMs),
          ms(m.loamStepMediansMs.publishMs),
          ms(m.bareMedianMs),
          ms(m.bareStepMediansMs.lvcreateMs),
          ms(m.bareStepMediansMs.mkfsMs),
          ms(m.bareStepMediansMs.mountMs),
          m.ratio.toFixed(2),
          m.bareStepMediansMs.bindMs === undefined ? "-" : ms(m.bareStepMediansMs.bindMs),
          m.floorRatio === undefined ? "-" : m.floorRatio.toFixed(2),
        ]),
      ),
    );
  }
  if (r.ownTime?.length) {
    out.push(
      `\n── loam's own time per RPC in time to mounted: wall less the time a command of loam's ran within it (medians, ms)`,
    );
    out.push(
      table(
        ["rpc", "calls", "wall", "commands", "per call", "own"],
        r.ownTime.map((o) => [
          o.method,
          o.calls,
          ms(o.wallMedianMs),
          ms(o.commandsMedianMs),
          o.commandsPerCall,
          ms(o.ownMedianMs),
        ]),
      ),
    );
  }
  if (r.storm?.length) {
    out.push(`\n── storm: ${r.storm[0]?.volumes ?? "?"} volumes at once, 1 GiB xfs, until the last is mounted (s)`);
    out.push(
      table(
        ["kind", "loam", "bare serial", "bare parallel", "loam/parallel", "loam/serial", "create", "stage", "publish"],
        r.storm.map((s) => [
          s.kind,
          (s.loamMs / 1000).toFixed(1),
          (s.bareSerialMs / 1000).toFixed(1),
          (s.bareParallelMs / 1000).toFixed(1),
          s.ratioParallel.toFixed(2),
          s.ratioSerial.toFixed(2),
          ms(s.loamCallMediansMs.createMs),
          ms(s.loamCallMediansMs.stageMs),
          ms(s.loamCallMediansMs.publishMs),
        ]),
      ),
    );
  }
  if (r.churn?.length) {
    out.push(`\n── churn: ${r.knobs.churnCycles} create + delete cycles, 64 MiB thick`);
    out.push(
      table(
        ["who", "concurrency", "seconds", "volumes/s"],
        r.churn.map((c) => [c.label, c.concurrency, c.seconds.toFixed(1), c.volumesPerSecond.toFixed(2)]),
      ),
    );
  }
  if (r.scale?.length) {
    out.push(
      `\n── scale: p50 / p99 ms (${r.knobs.scaleSamples} samples each; ListVolumes: ${r.knobs.listSamples} whole walks, ${r.knobs.listPageSize} per page)`,
    );
    const rows: Array<Array<string | number>> = [];
    for (const s of r.scale) {
      for (const rpc of s.rpcs) rows.push([`${s.volumes} volumes`, rpc.rpc, ms(rpc.p50Ms), ms(rpc.p99Ms), rpc.samples]);
      rows.push([
        `${s.volumes} volumes`,
        "loam VmRSS MiB",
        (s.memoryAfterSamples.rssBytes / MiB).toFixed(1),
        `peak ${(s.memoryAfterSamples.peakRssBytes / MiB).toFixed(1)}`,
        "",
      ]);
    }
    out.push(table(["scale", "rpc", "p50", "p99", "samples"], rows));
    const populated = r.scale.find((s) => s.populate)?.populate;
    if (populated)
      out.push(
        `   metadata: ${populated.metadataBytesPerVolume.toFixed(0)} bytes per loam volume in vgcfgbackup text, ${populated.metadataAreaBytesPerVolume?.toFixed(0) ?? "?"} in the metadata area`,
      );
  }
  if (r.rpc?.length) {
    out.push("\n── RPC overhead (grpc-go client)");
    out.push(
      table(
        ["rpc", "concurrency", "calls/s", "p50 ms", "p99 ms", "calls", "errors"],
        r.rpc.map((l) => [
          l.rpc,
          l.concurrency,
          l.callsPerSecond.toFixed(1),
          l.p50Ms?.toFixed(2) ?? "n/a",
          l.p99Ms?.toFixed(2) ?? "n/a",
          l.calls,
          l.errors,
        ]),
      ),
    );
  }
  if (r.native?.length) out.push(formatNative(r.native));
  if (r.throughput?.length) {
    out.push("\n── device throughput, dd with 1 MiB direct IO (MiB/s)");
    out.push(
      table(
        ["device", "MiB", "write", "read"],
        r.throughput.map((t) => [t.device, t.megabytes, t.writeMiBPerSecond.toFixed(1), t.readMiBPerSecond.toFixed(1)]),
      ),
    );
  }
  if (r.clusterBurst) out.push(formatClusterBurst(r.clusterBurst));
  for (const f of r.failures) out.push(`\nFAILED ${f.section}: ${f.error}`);
  return out.join("\n");
}

const GiB = 1024 ** 3;

export function formatClusterBurst(c: ClusterBurstResult): string {
  const k = c.knobs;
  const others = Object.entries(c.otherErrors)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
  const rows: Array<Array<string | number>> = [
    ["created", c.created],
    ["refused (RESOURCE_EXHAUSTED)", c.refused],
    ["other errors", others || 0],
    ["over-commits (goal 0)", c.overcommits.overcommits],
    ["nodes holding more than their capacity", c.overcommits.nodesOverCapacity.length],
    ["refused although a node had room (goal 0)", c.refusedAlthoughRoom],
    ["smallest refused request, MiB", c.refused ? (c.smallestRefusedBytes / 1024 ** 2).toFixed(0) : "-"],
    [
      "free after the burst, all nodes / most on one node, GiB",
      `${(c.freeBytesAfter / GiB).toFixed(2)} / ${(c.mostFreeOnANodeAfter / GiB).toFixed(2)}`,
    ],
    ["CreateVolume p50 / p99 ms (created)", `${ms(c.latency.created.p50Ms)} / ${ms(c.latency.created.p99Ms)}`],
    [
      "CreateVolume p50 / p99 ms (refused)",
      c.refused ? `${ms(c.latency.refused.p50Ms)} / ${ms(c.latency.refused.p99Ms)}` : "-",
    ],
    ["creates/s (answers/s)", `${c.createsPerSecond.toFixed(1)} (${c.answersPerSecond.toFixed(1)})`],
    ["reservation conflicts (lost races, decided again)", c.reservationConflicts],
    ["registry keys+values per volume, bytes (spec+status+index)", c.registry.volumeBytesPerVolume.toFixed(0)],
    ["registry keys+values under the root / volumes, bytes", c.registry.totalBytesPerVolume.toFixed(0)],
    ["etcd db in use growth / volumes, bytes (with history)", c.etcd.inUseBytesPerVolume.toFixed(0)],
    ["etcd db growth / volumes, bytes (compacted + defragmented)", c.etcd.bytesPerVolumeAfterCompaction.toFixed(0)],
    [
      "wall s: set-up / burst / total",
      `${c.seconds.setup.toFixed(1)} / ${c.seconds.burst.toFixed(1)} / ${c.seconds.total.toFixed(1)}`,
    ],
  ];
  return [
    `\n── cluster burst: ${k.creates} CreateVolumes, ${k.clients} clients, ${k.replicas} controller replicas, ${k.nodes} stand-in nodes (${k.delayMs} ms per change), etcd ${k.etcdMembers} member(s), capacity ${k.capacityPercent} % of the bytes asked (${(c.capacityBytes / GiB).toFixed(0)} of ${(c.requestedBytes / GiB).toFixed(0)} GiB), ${k.placement}`,
    table(["figure", "value"], rows),
    ...c.otherErrorSamples.map((m) => `   error: ${m}`),
  ].join("\n");
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0) : 0;
};

/** One row per server and RPC: medians over the rounds, and the ratios to the floor's medians. */
export function nativeRows(native: NativeResult[]): Array<{
  server: string;
  rpc: string;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  throughputOfFloor: number | undefined;
  p99OverFloor: number | undefined;
}> {
  const rows = native.flatMap((n) => {
    const rpcs = [...new Set(n.rounds.flatMap((round) => round.loads.map((l) => l.rpc)))];
    return rpcs.map((rpc) => {
      const loads = n.rounds.flatMap((round) => round.loads.filter((l) => l.rpc === rpc));
      return {
        server: n.server,
        rpc,
        callsPerSecond: median(loads.map((l) => l.callsPerSecond)),
        p50Ms: median(loads.map((l) => l.p50Ms ?? Number.NaN)),
        p99Ms: median(loads.map((l) => l.p99Ms ?? Number.NaN)),
      };
    });
  });
  return rows.map((row) => {
    const floor = rows.find((f) => f.server === "floor" && f.rpc === row.rpc);
    return {
      ...row,
      throughputOfFloor: floor ? row.callsPerSecond / floor.callsPerSecond : undefined,
      p99OverFloor: floor ? row.p99Ms / floor.p99Ms : undefined,
    };
  });
}

function formatNative(native: NativeResult[]): string {
  const rounds = Math.max(...native.map((n) => n.rounds.length));
  const ratio = (v: number | undefined): string => (v === undefined ? "-" : v.toFixed(2));
  return [
    `\n── native: capability RPCs against the grpc-go floor (medians of ${rounds} rounds)`,
    table(
      ["server", "rpc", "calls/s", "p50 ms", "p99 ms", "calls/s of floor", "p99 / floor"],
      nativeRows(native).map((row) => [
        row.server,
        row.rpc,
        row.callsPerSecond.toFixed(0),
        row.p50Ms.toFixed(2),
        row.p99Ms.toFixed(2),
        ratio(row.throughputOfFloor),
        ratio(row.p99OverFloor),
      ]),
    ),
    `\n── native: VmRSS MiB (during: the most sampled while a round's loads ran; after: 3 s after the round)`,
    table(
      ["server", "idle", ...Array.from({ length: rounds }, (_, i) => `during ${i + 1}`), "after each round", "peak"],
      native.map((n) => [
        n.server,
        (n.idleRssBytes / MiB).toFixed(1),
        ...n.rounds.map((round) => (round.duringRssBytes / MiB).toFixed(1)),
        n.rounds.map((round) => (round.afterRssBytes / MiB).toFixed(1)).join(" / "),
        (n.peakRssBytes / MiB).toFixed(1),
      ]),
    ),
  ].join("\n");
}
