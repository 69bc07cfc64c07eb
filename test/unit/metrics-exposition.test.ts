import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CommandRunner } from "../../src/exec/index.js";
import { Lvm } from "../../src/lvm/lvm.js";
import { type VolumeGroupReport, parseFullReport } from "../../src/lvm/report.js";
import { encodeTag } from "../../src/lvm/tags.js";
import { LoamMetrics, commandLabel } from "../../src/metrics/metrics.js";
import { LvmStateSampler, summarize } from "../../src/metrics/lvm-state.js";
import { parseExposition, sampleValue } from "../support/exposition.js";
import { parseListenAddress, startObservabilityServer } from "../../src/metrics/http.js";
import { createLogger } from "../../src/log.js";
import { ConfigError, resolveConfig } from "../../src/cli/config.js";
import { renderStatus } from "../../src/cli/status.js";

const fixtureReport = (): VolumeGroupReport => {
  const fixture = JSON.parse(
    readFileSync(new URL("../../../test/fixtures/lvm/fullreport-linear-striped.json", import.meta.url), "utf8"),
  ) as { stdout: string };
  const [report] = parseFullReport(fixture.stdout);
  if (!report) throw new Error("fixture has no report");
  return report;
};

/** A report source standing in for LVM: returns what it is given and counts the calls. */
class CountingSource {
  calls = 0;
  constructor(public next: () => VolumeGroupReport) {}
  report(vg: string): Promise<VolumeGroupReport> {
    this.calls += 1;
    const report = this.next();
    if (report.vg.name !== vg) return Promise.reject(new Error(`volume group "${vg}" not found`));
    return Promise.resolve(report);
  }
}

const quiet = createLogger("error", () => undefined);

async function scrape(metrics: LoamMetrics): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition((await metrics.scrape()).body);
}

test("RPC histogram counts calls by method and code; the error counter counts only non-OK answers", async () => {
  const metrics = new LoamMetrics({ version: "9.9.9" });
  metrics.observeCall({ method: "Controller.CreateVolume", code: "OK", durationMs: 12 });
  metrics.observeCall({ method: "Controller.CreateVolume", code: "OK", durationMs: 700 });
  metrics.observeCall({ method: "Controller.CreateVolume", code: "RESOURCE_EXHAUSTED", durationMs: 3 });
  const { samples, families } = await scrape(metrics);
  const ok = { method: "Controller.CreateVolume", code: "OK" };
  assert.equal(sampleValue(samples, "loam_csi_rpc_duration_seconds_count", ok), 2);
  assert.equal(sampleValue(samples, "loam_csi_rpc_duration_seconds_sum", ok), 0.712);
  assert.equal(sampleValue(samples, "loam_csi_rpc_duration_seconds_bucket", { ...ok, le: "0.025" }), 1);
  assert.equal(sampleValue(samples, "loam_csi_rpc_duration_seconds_bucket", { ...ok, le: "+Inf" }), 2);
  assert.equal(
    sampleValue(samples, "loam_csi_rpc_errors_total", {
      method: "Controller.CreateVolume",
      code: "RESOURCE_EXHAUSTED",
    }),
    1,
  );
  assert.equal(sampleValue(samples, "loam_csi_rpc_errors_total", ok), undefined);
  assert.equal(sampleValue(samples, "loam_build_info", { version: "9.9.9" }), 1);
  const types = Object.fromEntries(families.map((f) => [f.name, f.type]));
  assert.equal(types.loam_csi_rpc_duration_seconds, "histogram");
  assert.equal(types.loam_csi_rpc_errors_total, "counter");
});

test("a failing LVM command (real lvm, missing VG) increments its failure counter and its duration histogram", async () => {
  const metrics = new LoamMetrics({ version: "t" });
  const lvm = new Lvm(new CommandRunner({ onCommand: (o) => metrics.observeCommand(o) }));
  await assert.rejects(lvm.report("loamnosuchvg"));
  const { samples } = await scrape(metrics);
  assert.equal(sampleValue(samples, "loam_lvm_command_failures_total", { command: "fullreport" }), 1);
  assert.equal(sampleValue(samples, "loam_lvm_command_duration_seconds_count", { command: "fullreport" }), 1);
});

test("a scrape's own failing report (real lvm, missing VG) shows in that same scrape: up=0 and one more failure", async () => {
  const metrics = new LoamMetrics({ version: "t" });
  const lvm = new Lvm(new CommandRunner({ onCommand: (o) => metrics.observeCommand(o) }));
  metrics.watchVolumeGroups(new LvmStateSampler(lvm, ["loamnosuchvg"], 0));
  const { samples } = await scrape(metrics);
  assert.equal(sampleValue(samples, "loam_volume_group_up", { volume_group: "loamnosuchvg" }), 0);
  assert.equal(sampleValue(samples, "loam_lvm_command_failures_total", { command: "fullreport" }), 1);
});

test("command labels are the LVM subcommand or program name, and anything odd is 'other'", () => {
  assert.equal(commandLabel(["lvm", "fullreport", "--reportformat", "json"]), "fullreport");
  assert.equal(commandLabel(["lvcreate", "--yes"]), "lvcreate");
  assert.equal(commandLabel(["/usr/sbin/lvremove"]), "lvremove");
  assert.equal(commandLabel(["lvm"]), "lvm");
  assert.equal(commandLabel(["lvm", "$(reboot)"]), "other");
  assert.equal(commandLabel([]), "other");
});

test("volume group gauges come from the report (fixture through a counting stand-in source), one report per scrape", async () => {
  const report = fixtureReport();
  const source = new CountingSource(() => report);
  const lvmState = new LvmStateSampler(source, ["loamfx"], 0);
  const metrics = new LoamMetrics({ version: "t", lvmState });
  const { samples } = await scrape(metrics);
  assert.equal(source.calls, 1, "a scrape must run exactly one report per volume group");
  const vg = { volume_group: "loamfx" };
  assert.equal(sampleValue(samples, "loam_volume_group_up", vg), 1);
  assert.equal(sampleValue(samples, "loam_volume_group_size_bytes", vg), 2139095040);
  assert.equal(sampleValue(samples, "loam_volume_group_free_bytes", vg), 1941962752);
  assert.equal(sampleValue(samples, "loam_volume_group_allocated_bytes", vg), 2139095040 - 1941962752);
  assert.equal(sampleValue(samples, "loam_volume_group_metadata_free_bytes", vg), 518656);
  assert.equal(sampleValue(samples, "loam_volumes", vg), 1, "only the LV with loam's name tag is a volume");
  assert.equal(sampleValue(samples, "loam_snapshots", vg), 0);
  assert.equal(
    sampleValue(samples, "loam_volume_provisioned_bytes", { ...vg, volume_id: "pvc-0a1b2c3d-5f3e1c2a9b7d4e60" }),
    104857600,
  );
  await scrape(metrics);
  assert.equal(source.calls, 2, "with no cache period every scrape reads again");
});

test("gauges follow volumes being created and deleted, and a VG that cannot be read reports up=0", async () => {
  const base = fixtureReport();
  const extra = {
    ...base.lvs[1],
    name: "vol-two",
    uuid: "u2",
    sizeBytes: 8 * 1024 * 1024,
    tags: [encodeTag("name", "two"), encodeTag("pvc", "data"), encodeTag("namespace", "db")],
  };
  let current: VolumeGroupReport = { ...base, lvs: [...base.lvs, extra] };
  const source = new CountingSource(() => current);
  const metrics = new LoamMetrics({ version: "t", lvmState: new LvmStateSampler(source, ["loamfx"], 0) });
  let { samples } = await scrape(metrics);
  assert.equal(sampleValue(samples, "loam_volumes", { volume_group: "loamfx" }), 2);
  assert.equal(
    sampleValue(samples, "loam_volume_provisioned_bytes", {
      volume_id: "vol-two",
      pvc_namespace: "db",
      pvc_name: "data",
    }),
    8 * 1024 * 1024,
  );
  current = base;
  ({ samples } = await scrape(metrics));
  assert.equal(sampleValue(samples, "loam_volumes", { volume_group: "loamfx" }), 1);
  assert.equal(
    sampleValue(samples, "loam_volume_provisioned_bytes", { volume_id: "vol-two" }),
    undefined,
    "a deleted volume's series disappears",
  );
  current = { ...base, vg: { ...base.vg, name: "other" } };
  ({ samples } = await scrape(metrics));
  assert.equal(sampleValue(samples, "loam_volume_group_up", { volume_group: "loamfx" }), 0);
  assert.equal(sampleValue(samples, "loam_volume_group_size_bytes", { volume_group: "loamfx" }), undefined);
});

test("thin pools: data and metadata usage as ratios and the sum of thin volumes' virtual sizes", () => {
  const base = fixtureReport();
  const template = base.lvs[1];
  const pool = {
    ...template,
    name: "pool0",
    segType: "thin-pool",
    sizeBytes: 1000,
    dataPercent: 25.5,
    metadataPercent: 10,
    tags: [],
  };
  const thin = (name: string, size: number, extraTags: string[] = [], attr = "Vwi-a-tz--") => ({
    ...template,
    name,
    segType: "thin",
    poolLv: "pool0",
    sizeBytes: size,
    dataPercent: 50,
    attr,
    tags: [encodeTag("name", name), ...extraTags],
  });
  const summary = summarize({
    ...base,
    lvs: [pool, thin("a", 600), thin("b", 900), thin("snap", 600, [encodeTag("kind", "snapshot")])],
  });
  assert.deepEqual(summary.pools, [
    {
      name: "pool0",
      sizeBytes: 1000,
      dataUsage: 0.255,
      metadataUsage: 0.1,
      provisionedBytes: 2100,
      health: "",
      problem: "",
    },
  ]);
  assert.deepEqual(
    summary.volumes.map((v) => v.id),
    ["a", "b"],
  );
  assert.deepEqual(
    summary.snapshots.map((v) => v.id),
    ["snap"],
  );
  assert.equal(summary.volumes[0]?.dataUsage, 0.5);
});

test("a thin pool out of data space: loam_thin_pool_healthy 0, and loam status names it and what to do (issue 13, item 2)", async () => {
  const base = fixtureReport();
  const pool = (healthStatus: string, dataPercent: number) => ({
    ...base.lvs[1],
    name: "pool0",
    segType: "thin-pool",
    sizeBytes: 1000,
    dataPercent,
    metadataPercent: 10,
    healthStatus,
    tags: [],
  });
  let current: VolumeGroupReport = { ...base, lvs: [pool("", 40)] };
  const metrics = new LoamMetrics({
    version: "t",
    lvmState: new LvmStateSampler(new CountingSource(() => current), ["loamfx"], 0),
  });
  const labels = { volume_group: "loamfx", thin_pool: "pool0" };
  assert.equal(sampleValue((await scrape(metrics)).samples, "loam_thin_pool_healthy", labels), 1);
  current = { ...base, lvs: [pool("out_of_data", 100)] };
  assert.equal(sampleValue((await scrape(metrics)).samples, "loam_thin_pool_healthy", labels), 0);
  const text = renderStatus([{ ok: true, ...summarize(current) }]);
  assert.match(text, /^loamfx\/pool0\s.*\sout_of_data$/m);
  assert.match(
    text,
    /^thin pool loamfx\/pool0 is out of data space \(data 100%, metadata 10%\): .*lvextend -L \+SIZE loamfx\/pool0/m,
  );
  current = { ...base, lvs: [pool("", 100)] };
  assert.equal(summarize(current).pools[0]?.health, "full", "100% used before device-mapper flags it");
  assert.equal(sampleValue((await scrape(metrics)).samples, "loam_thin_pool_healthy", labels), 0);
});

test("the LVM state sampler shares one report among concurrent readers and within its cache period", async () => {
  let clock = 0;
  const source = new CountingSource(fixtureReport);
  const lvmState = new LvmStateSampler(source, ["loamfx"], 2000, () => clock);
  await Promise.all([lvmState.read(), lvmState.read(), lvmState.read()]);
  clock = 1999;
  await lvmState.read();
  assert.equal(source.calls, 1);
  clock = 4001;
  await lvmState.read();
  assert.equal(source.calls, 2);
});

test("the HTTP listener serves /metrics in the text format, /healthz, and /readyz that fails while the VG cannot be read", async () => {
  let readable = true;
  const report = fixtureReport();
  const source = new CountingSource(() => (readable ? report : { ...report, vg: { ...report.vg, name: "gone" } }));
  const lvmState = new LvmStateSampler(source, ["loamfx"], 0);
  const metrics = new LoamMetrics({ version: "t", lvmState });
  const server = await startObservabilityServer({
    address: { host: "127.0.0.1", port: 0 },
    metrics,
    lvmState,
    logger: quiet,
  });
  try {
    const get = (path: string, method = "GET") => fetch(`${server.url}${path}`, { method });
    const scraped = await get("/metrics");
    assert.equal(scraped.status, 200);
    assert.match(scraped.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const { samples } = parseExposition(await scraped.text());
    assert.equal(sampleValue(samples, "loam_volume_group_up", { volume_group: "loamfx" }), 1);
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/readyz")).status, 200);
    readable = false;
    const notReady = await get("/readyz");
    assert.equal(notReady.status, 503);
    assert.match(await notReady.text(), /volume group loamfx cannot be read: volume group "loamfx" not found/);
    assert.equal((await get("/healthz")).status, 200, "liveness does not depend on LVM");
    assert.equal((await get("/nothing")).status, 404);
    assert.equal((await get("/metrics", "POST")).status, 405);
  } finally {
    await server.close();
  }
});

test('metricsAddress accepts host:port, [v6]:port, :port and "", and a bad value names the field', () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9975"), { host: "127.0.0.1", port: 9975 });
  assert.deepEqual(parseListenAddress("[::1]:80"), { host: "::1", port: 80 });
  assert.deepEqual(parseListenAddress(":9975"), { host: "", port: 9975 });
  assert.equal(parseListenAddress("9975"), undefined);
  assert.equal(parseListenAddress("host:99999"), undefined);
  assert.equal(resolveConfig({ volumeGroup: "vg", metricsAddress: "" }).metricsAddress, "");
  assert.equal(resolveConfig({ volumeGroup: "vg" }).metricsAddress, "127.0.0.1:9975");
  assert.throws(
    () => resolveConfig({ volumeGroup: "vg", metricsAddress: "localhost" }),
    (error: unknown) => error instanceof ConfigError && error.field === "metricsAddress",
  );
});

test("the exposition reader parses labels with escapes and rejects garbage", () => {
  const { samples } = parseExposition('# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash"} 1.5\ny 2 1700000000000\n');
  assert.deepEqual(samples[0], { name: "x", labels: { a: 'q"uote', b: "back\\slash" }, value: 1.5 });
  assert.equal(sampleValue(samples, "y"), 2);
  assert.throws(() => parseExposition("not a metric line at all!"), /not a sample/);
});
