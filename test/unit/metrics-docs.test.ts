import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { VolumeGroupReport } from "../../src/lvm/report.js";
import { LoamMetrics } from "../../src/metrics/metrics.js";
import { VolumeIoLimiter, kernelCgroups } from "../../src/volumes/io-limiting.js";
import { LvmStateSampler } from "../../src/metrics/lvm-state.js";
import { parseExposition } from "../support/exposition.js";

const repoFile = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");

/** Every metric family loam registers, with its type (VG gauges read through a source that always fails). */
async function families(): Promise<Map<string, string>> {
  const failing = { report: (): Promise<VolumeGroupReport> => Promise.reject(new Error("no LVM in this test")) };
  const metrics = new LoamMetrics({ version: "t", lvmState: new LvmStateSampler(failing, ["vg"], 0) });
  metrics.watchIoLimits(new VolumeIoLimiter(kernelCgroups("/nonexistent")));
  const { families: list } = parseExposition((await metrics.scrape()).body);
  return new Map(list.map((f) => [f.name, f.type]));
}

test("docs/observability.md lists every metric loam exports, with its type", async () => {
  const docs = repoFile("docs/observability.md");
  const all = await families();
  assert.ok(all.size >= 15, `expected the full set of metrics, got ${[...all.keys()].join(", ")}`);
  for (const [name, type] of all) {
    const row = docs.split("\n").find((line) => line.startsWith(`| \`${name}\` |`));
    assert.ok(row, `${name} is not in the docs' metric tables`);
    assert.match(row, new RegExp(`\\| ${type} \\|`), `${name} is documented with the wrong type`);
  }
  for (const [, name] of docs.matchAll(/^\| `(loam_[a-z_]+)` \|/gm))
    assert.ok(all.has(name), `the docs list ${name}, which loam does not export`);
});

test("deploy/grafana-dashboard.json is valid JSON and queries only metrics loam exports", async () => {
  const dashboard = JSON.parse(repoFile("deploy/grafana-dashboard.json")) as {
    panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ definition?: string }> };
  };
  const all = await families();
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.map((v) => v.definition ?? ""),
  ];
  const used = new Set<string>();
  for (const expr of exprs) for (const [name] of expr.matchAll(/\bloam_[a-z_]+/g)) used.add(name);
  for (const name of used) {
    const family = name.replace(/_(bucket|count|sum)$/, "");
    const known = all.has(name) || (family !== name && all.get(family) === "histogram");
    assert.ok(known, `the dashboard queries ${name}, which loam does not export`);
  }
  const queried = new Set([...used].map((n) => n.replace(/_(bucket|count|sum)$/, "")));
  for (const name of all.keys()) assert.ok(queried.has(name), `the dashboard shows nothing of ${name}`);
  for (const panel of dashboard.panels.filter((p) => p.type !== "row"))
    assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has no query`);
});
