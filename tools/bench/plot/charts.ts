/** Turns one or two results files (a run, or a before/after pair) into the benchmark chart. */
import type { BenchResults } from "../results.js";
import { type Chart, type Panel, renderSvg, type Row } from "./svg.js";

export interface LabelledResults {
  label: string;
  results: BenchResults;
}

interface Point {
  label: string;
  value: number | undefined;
  reference?: boolean;
}

/** Rows in the order they first appear in any run; each run contributes its value or nothing. */
function panel(
  title: string,
  runs: readonly LabelledResults[],
  points: (r: BenchResults) => Point[],
): Panel | undefined {
  const perRun = runs.map((run) => points(run.results));
  const rows: Row[] = [];
  for (const list of perRun) {
    for (const point of list) {
      if (rows.some((r) => r.label === point.label)) continue;
      const row: Row = { label: point.label, values: perRun.map((l) => l.find((p) => p.label === point.label)?.value) };
      if (point.reference) row.reference = true;
      rows.push(row);
    }
  }
  return rows.length ? { title, rows } : undefined;
}

const MiB = 1024 ** 2;

export function chartOf(runs: readonly LabelledResults[]): Chart {
  const panels: Array<Panel | undefined> = [
    panel("Time to mounted, 1 GiB xfs: median ms (lower is better)", runs, (r) =>
      (r.timeToMounted ?? []).flatMap((m) => [
        { label: `${m.kind}: loam`, value: m.loamMedianMs },
        { label: `${m.kind}: bare LVM`, value: m.bareMedianMs, reference: true },
      ]),
    ),
    panel("Churn, 64 MiB create + delete: volumes/s (higher is better)", runs, (r) =>
      (r.churn ?? []).map((c) =>
        c.who === "bare"
          ? { label: "bare serial loop", value: c.volumesPerSecond, reference: true }
          : { label: `loam, concurrency ${c.concurrency}`, value: c.volumesPerSecond },
      ),
    ),
  ];
  const rpcNames = [
    ...new Set(runs.flatMap((run) => (run.results.scale ?? []).flatMap((s) => s.rpcs.map((x) => x.rpc)))),
  ];
  for (const rpc of rpcNames) {
    panels.push(
      panel(`${rpc}${rpc === "ListVolumes" ? " (whole walk)" : ""}: p50 / p99 ms by existing volumes`, runs, (r) =>
        (r.scale ?? []).flatMap((s) => {
          const x = s.rpcs.find((y) => y.rpc === rpc);
          return x
            ? [
                { label: `p50 @ ${s.volumes}`, value: x.p50Ms },
                { label: `p99 @ ${s.volumes}`, value: x.p99Ms },
              ]
            : [];
        }),
      ),
    );
  }
  panels.push(
    panel("loam resident memory (VmRSS after sampling): MiB", runs, (r) =>
      (r.scale ?? []).map((s) => ({ label: `${s.volumes} volumes`, value: s.memoryAfterSamples.rssBytes / MiB })),
    ),
    panel("gRPC overhead from grpc-go: calls/s (higher is better)", runs, (r) =>
      (r.rpc ?? []).map((l) => ({ label: `${l.rpc}, concurrency ${l.concurrency}`, value: l.callsPerSecond })),
    ),
    panel("gRPC overhead from grpc-go: p99 ms", runs, (r) =>
      (r.rpc ?? []).map((l) => ({ label: `${l.rpc}, concurrency ${l.concurrency}`, value: l.p99Ms ?? undefined })),
    ),
  );
  const first = runs[0]?.results;
  const chart: Chart = {
    title: runs.length > 1 ? `loam benchmarks: ${runs.map((r) => r.label).join(" vs ")}` : "loam benchmarks",
    series: runs.map((r) => r.label),
    panels: panels.filter((p): p is Panel => p !== undefined),
  };
  if (first)
    chart.footnote = `${first.machine.cpuModel}, ${first.machine.cpus} CPUs, LVM ${first.machine.lvm}, node ${first.machine.node}; run ${first.startedAt}`;
  return chart;
}

export function renderResultsSvg(runs: readonly LabelledResults[]): string {
  return renderSvg(chartOf(runs));
}
