import { test } from "node:test";
import assert from "node:assert/strict";
import { chartOf } from "../../tools/bench/plot/charts.js";
import { escapeXml, formatValue, renderSvg } from "../../tools/bench/plot/svg.js";
import type { BenchResults } from "../../tools/bench/results.js";

const bars = (svg: string): Array<{ width: number; fill: string }> =>
  [...svg.matchAll(/<rect x="200" y="[\d.]+" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]{6})"\/>/g)].map((m) => ({
    width: Number(m[1]),
    fill: m[2] ?? "",
  }));

test("renderSvg draws one bar per value, widths proportional to the largest value of the panel", () => {
  const svg = renderSvg({
    title: "t",
    series: ["run"],
    panels: [
      {
        title: "p",
        rows: [
          { label: "a", values: [10] },
          { label: "b", values: [40] },
        ],
      },
    ],
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.deepEqual(
    bars(svg).map((b) => b.width),
    [110, 440],
  );
});

test("each panel has its own scale, so a small panel is not flattened by a large one", () => {
  const svg = renderSvg({
    title: "t",
    series: ["run"],
    panels: [
      { title: "ms", rows: [{ label: "a", values: [5000] }] },
      { title: "volumes/s", rows: [{ label: "b", values: [0.5] }] },
    ],
  });
  assert.deepEqual(
    bars(svg).map((b) => b.width),
    [440, 440],
  );
});

test("two series draw before and after bars side by side in two colours with a legend, and a missing value says so", () => {
  const svg = renderSvg({
    title: "t",
    series: ["before", "after"],
    panels: [
      {
        title: "p",
        rows: [
          { label: "a", values: [20, 10] },
          { label: "b", values: [undefined, 5] },
        ],
      },
    ],
  });
  const drawn = bars(svg);
  assert.deepEqual(
    drawn.map((b) => b.width),
    [440, 220, 110],
  );
  assert.notEqual(drawn[0]?.fill, drawn[1]?.fill);
  assert.match(svg, />before</);
  assert.match(svg, />after</);
  assert.match(svg, />not measured</);
});

test("labels are XML-escaped so a title with & or < keeps the document well-formed", () => {
  assert.equal(escapeXml(`a<b & "c">`), "a&lt;b &amp; &quot;c&quot;&gt;");
  const svg = renderSvg({ title: "p50 & p99 <ms>", series: ["x"], panels: [] });
  assert.match(svg, /p50 &amp; p99 &lt;ms&gt;/);
  assert.doesNotMatch(svg, /p50 & p99/);
});

test("values are printed with about three significant figures", () => {
  assert.equal(formatValue(2267.98), "2268");
  assert.equal(formatValue(12.345), "12.3");
  assert.equal(formatValue(0.8312), "0.83");
  assert.equal(formatValue(Number.NaN), "n/a");
});

const results = (loamMs: number, churn: number): BenchResults => ({
  startedAt: "2026-11-23T00:00:00Z",
  finishedAt: "",
  failures: [],
  machine: { cpus: 2, cpuModel: "QEMU", memoryBytes: 1, inVm: true, node: "v20", lvm: "2.03.16", kernel: "6" },
  loam: { bundle: "/x/loam.mjs" },
  knobs: {
    sections: [],
    loam: "",
    out: "",
    repeats: 1,
    stormVolumes: 1,
    churnCycles: 1,
    churnConcurrency: [1],
    scales: [10],
    scaleSamples: 1,
    listSamples: 1,
    listPageSize: 100,
    rpcConcurrency: 32,
    rpcSeconds: 5,
    nativeRounds: 1,
    nativeSeconds: 1,
    cluster: {
      nodes: 1,
      creates: 1,
      clients: 1,
      replicas: 1,
      etcdMembers: 1,
      delayMs: 0,
      capacityPercent: 85,
      placement: "spread",
    },
  },
  timeToMounted: [
    {
      kind: "thick",
      loamMs: [],
      bareMs: [],
      loamMedianMs: loamMs,
      bareMedianMs: 800,
      ratio: loamMs / 800,
      loamStepMediansMs: { createMs: 0, stageMs: 0, publishMs: 0 },
      bareStepMediansMs: { lvcreateMs: 0, mkfsMs: 0, mountMs: 0, bindMs: 0 },
      loamSamples: [],
      bareSamples: [],
    },
  ],
  churn: [
    { who: "bare", label: "bare", concurrency: 1, cycles: 1, seconds: 1, volumesPerSecond: 1.1 },
    { who: "loam", label: "loam", concurrency: 8, cycles: 1, seconds: 1, volumesPerSecond: churn },
  ],
  scale: [
    {
      volumes: 1000,
      listed: 1000,
      rpcs: [{ rpc: "ListVolumes", samples: 1, p50Ms: 900, p99Ms: 1200, meanMs: 900, samplesMs: [900] }],
      memoryAfterStart: { rssBytes: 1, peakRssBytes: 1 },
      memoryAfterSamples: { rssBytes: 80 * 1024 ** 2, peakRssBytes: 1 },
    },
  ],
});

test("chartOf a before/after pair puts both runs' figures in the same rows, in series order", () => {
  const chart = chartOf([
    { label: "before", results: results(2268, 0.8) },
    { label: "after", results: results(900, 1.5) },
  ]);
  const row = (panel: RegExp, label: string) =>
    chart.panels.find((p) => panel.test(p.title))?.rows.find((r) => r.label === label);
  assert.deepEqual(row(/Time to mounted/, "thick: loam")?.values, [2268, 900]);
  assert.deepEqual(row(/Time to mounted/, "thick: bare LVM")?.values, [800, 800]);
  assert.equal(row(/Time to mounted/, "thick: bare LVM")?.reference, true);
  assert.deepEqual(row(/Churn/, "loam, concurrency 8")?.values, [0.8, 1.5]);
  assert.deepEqual(row(/ListVolumes/, "p99 @ 1000")?.values, [1200, 1200]);
  assert.deepEqual(row(/resident memory/, "1000 volumes")?.values, [80, 80]);
  assert.equal(
    chart.panels.some((p) => /gRPC/.test(p.title)),
    false,
    "a section no run measured gets no panel",
  );
});
