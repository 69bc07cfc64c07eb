/**
 * The node agent's garbage collection (src/cluster/gc.ts) over real etcd: orphan LVs (loam's
 * tags, no record) and dangling records (ready, no LV) found, reported only after the grace
 * period, removed only in delete mode and only after the registry was read again; the races
 * made to happen with hooks; an LV without loam's tags never touched (the real engine over
 * the in-memory LVM stand-in).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Etcd3 } from "etcd3";
import { NodeAgent, type NodeAgentOptions } from "../../src/cluster/agent.js";
import { GarbageCollector, type GcEngine, type GarbageCollectorOptions } from "../../src/cluster/gc.js";
import { Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";
import { readGcReport, renderGc } from "../../src/cli/status.js";
import { LoamMetrics } from "../../src/metrics/metrics.js";
import { encodeTag } from "../../src/lvm/tags.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster, type TestNode } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { makeEngine, VG } from "../support/engine.js";
import { parseExposition, sampleValue } from "../support/exposition.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

/** A test with a cluster under its own registry root and one stand-in node "a" with its agent. */
function clusterTest(name: string, fn: (cluster: TestCluster, node: TestNode) => Promise<void>): void {
  test(name, { timeout: 20_000 }, async () => {
    const cluster = TestCluster.create(etcd.endpoints);
    try {
      await fn(cluster, await cluster.addNode("a"));
    } finally {
      await cluster.close();
    }
  });
}

/** Replaces node a's agent with one given these options (a hook, garbage collection). */
async function restartAgent(cluster: TestCluster, node: TestNode, extra: Partial<NodeAgentOptions>): Promise<void> {
  await node.agent.stop();
  const agent = new NodeAgent({
    registry: cluster.registry,
    nodeId: node.id,
    segments: { [TOPOLOGY_KEY]: node.id },
    engine: node.engine,
    version: "test",
    ...extra,
  });
  await agent.start();
  node.agent = agent;
}

const GRACE = 600;
const T0 = Date.parse("2026-01-01T00:00:00Z");

/** A clock the test moves. */
function clock(): { now: () => number; at: (seconds: number) => void } {
  let t = T0;
  return { now: () => t, at: (seconds) => void (t = T0 + seconds * 1000) };
}

async function metric(metrics: LoamMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { samples } = parseExposition(await metrics.registry.metrics());
  return sampleValue(samples, name, labels) ?? NaN;
}

function collector(
  cluster: TestCluster,
  node: TestNode,
  extra: Partial<GarbageCollectorOptions> & { engine?: GcEngine } = {},
): GarbageCollector {
  return new GarbageCollector({
    registry: cluster.registry,
    nodeId: node.id,
    engine: node.engine,
    graceSeconds: GRACE,
    ...extra,
  });
}

const createThroughController = (cluster: TestCluster, name: string) =>
  cluster.controller.createVolume({
    name,
    range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
    parameters: parseParameters({}),
    requisite: [],
    preferred: [],
  });

/** An LV with loam's tags that the registry never heard of: made on the node's engine directly. */
const makeOrphan = (node: TestNode, name: string) =>
  node.engine.createVolume({
    name,
    range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
    parameters: parseParameters({}),
  });

clusterTest("an orphan LV is reported only after the grace period, and kept in report mode", async (cluster, node) => {
  const known = await createThroughController(cluster, "known");
  const orphan = await makeOrphan(node, "orphan");
  const time = clock();
  const metrics = new LoamMetrics({ version: "test" });
  const gc = collector(cluster, node, { now: time.now, observer: metrics });

  let report = await gc.sweep();
  assert.deepEqual(
    report.findings.map((f) => [f.kind, f.id, f.reported]),
    [["orphan-volume", orphan.id, false]],
    "found at once, not reported; the volume with a record is no finding",
  );
  assert.equal(await metric(metrics, "loam_cluster_gc_orphan_lvs", { kind: "volume" }), 0);
  assert.equal(await metric(metrics, "loam_cluster_gc_pending_findings"), 1);

  time.at(GRACE - 1);
  report = await gc.sweep();
  assert.equal(report.findings[0]?.reported, false, "one second before the grace ends: not reported");
  assert.equal(await metric(metrics, "loam_cluster_gc_orphan_lvs", { kind: "volume" }), 0);

  time.at(GRACE);
  report = await gc.sweep();
  assert.equal(report.findings[0]?.reported, true, "reported once the grace period has passed");
  assert.equal(report.findings[0]?.firstSeen, new Date(T0).toISOString());
  assert.equal(await metric(metrics, "loam_cluster_gc_orphan_lvs", { kind: "volume" }), 1);
  assert.equal(await metric(metrics, "loam_cluster_gc_pending_findings"), 0);
  assert.ok(node.engine.volumes.has(orphan.id), "report mode removes nothing");
  assert.ok(node.engine.volumes.has(known.id));
  assert.ok(!node.engine.calls.some((c) => c.startsWith("delete")), "no delete asked of the engine");
});

clusterTest(
  "a finding that disappears is forgotten: its grace starts again when it is seen again",
  async (cluster, node) => {
    const orphan = await makeOrphan(node, "flicker");
    const time = clock();
    const gc = collector(cluster, node, { now: time.now });
    await gc.sweep();
    const volume = node.engine.volumes.get(orphan.id)!;
    node.engine.volumes.delete(orphan.id);
    time.at(GRACE / 2);
    assert.deepEqual((await gc.sweep()).findings, []);
    node.engine.volumes.set(orphan.id, volume);
    time.at(GRACE);
    const report = await gc.sweep();
    assert.equal(report.findings[0]?.reported, false, "seen again at GRACE: the grace counts from then");
    assert.equal(report.findings[0]?.firstSeen, new Date(T0 + GRACE * 1000).toISOString());
  },
);

clusterTest("delete mode removes an orphan LV after the grace period, and counts it", async (cluster, node) => {
  const known = await createThroughController(cluster, "known");
  const orphan = await makeOrphan(node, "orphan");
  const time = clock();
  const metrics = new LoamMetrics({ version: "test" });
  const gc = collector(cluster, node, { now: time.now, observer: metrics, mode: "delete" });
  await gc.sweep();
  time.at(GRACE - 1);
  await gc.sweep();
  assert.ok(node.engine.volumes.has(orphan.id), "not removed within the grace period");
  time.at(GRACE);
  const report = await gc.sweep();
  assert.ok(!node.engine.volumes.has(orphan.id), "removed after the grace period");
  assert.ok(node.engine.volumes.has(known.id), "the volume with a record is kept");
  assert.deepEqual(report.findings, []);
  assert.deepEqual(report.removed, { volumes: 1, snapshots: 0 });
  assert.deepEqual(
    node.engine.calls.filter((c) => c.startsWith("delete")),
    [`delete ${orphan.id}`],
  );
  assert.equal(await metric(metrics, "loam_cluster_gc_removed_lvs_total", { kind: "volume" }), 1);
});

clusterTest(
  "an orphan given a spec between the decision and the removal is not removed (re-read first)",
  async (cluster, node) => {
    const orphan = await makeOrphan(node, "claimed");
    const time = clock();
    let rechecks = 0;
    const gc = collector(cluster, node, {
      now: time.now,
      mode: "delete",
      // The barrier: the removal is decided; now the spec appears (a controller placing a
      // volume of that name here), before the collector reads the registry again.
      beforeRecheck: async (finding) => {
        rechecks++;
        await cluster.client.put(cluster.registry.keys.volume(node.id, finding.id)).value("{}");
      },
    });
    await gc.sweep();
    time.at(GRACE);
    const report = await gc.sweep();
    assert.equal(rechecks, 1, "the removal was decided");
    assert.ok(node.engine.volumes.has(orphan.id), "the LV the registry now knows is kept");
    assert.deepEqual(report.findings, [], "and no longer a finding");
    assert.deepEqual(report.removed, { volumes: 0, snapshots: 0 });
  },
);

clusterTest("an LV reserved in the ledger (its spec about to be written) is no orphan", async (cluster, node) => {
  const orphan = await makeOrphan(node, "reserved-early");
  const key = cluster.registry.keys.ledger(node.id);
  const ledger = JSON.parse((await cluster.client.get(key).string())!) as { reservations: object };
  ledger.reservations = {
    [`volume:${orphan.id}`]: { deviceClass: "default", bytes: GiB, at: new Date().toISOString() },
  };
  await cluster.client.put(key).value(JSON.stringify(ledger));
  const gc = collector(cluster, node, { graceSeconds: 0 });
  assert.deepEqual((await gc.sweep()).findings, []);
});

clusterTest(
  "an orphan reserved in the ledger between the decision and the removal is not removed",
  async (cluster, node) => {
    const orphan = await makeOrphan(node, "reserved");
    const time = clock();
    const gc = collector(cluster, node, {
      now: time.now,
      mode: "delete",
      beforeRecheck: async (finding) => {
        const key = cluster.registry.keys.ledger(node.id);
        const ledger = JSON.parse((await cluster.client.get(key).string())!) as { reservations: object };
        ledger.reservations = {
          [`volume:${finding.id}`]: { deviceClass: "default", bytes: GiB, at: new Date().toISOString() },
        };
        await cluster.client.put(key).value(JSON.stringify(ledger));
      },
    });
    await gc.sweep();
    time.at(GRACE);
    await gc.sweep();
    assert.ok(node.engine.volumes.has(orphan.id));
  },
);

clusterTest(
  "a volume created between the LVM listing and the registry read is no orphan, even with no grace",
  async (cluster, node) => {
    let created: string | undefined;
    // Report mode: a finding would stay in the report (delete mode's re-read would hide it).
    const gc = collector(cluster, node, {
      graceSeconds: 0,
      // The barrier: the controller writes the spec and the agent makes the LV right now.
      betweenReads: async () => {
        if (!created) created = (await createThroughController(cluster, "just-made")).id;
      },
    });
    const first = await gc.sweep();
    assert.ok(created && node.engine.volumes.has(created), "the volume was made during the sweep");
    assert.deepEqual(first.findings, []);
    assert.deepEqual((await gc.sweep()).findings, [], "nor on the next sweep");
    assert.ok(node.engine.volumes.has(created));
  },
);

clusterTest(
  "a spec the agent is making right now is neither an orphan nor a dangling record",
  async (cluster, node) => {
    // The agent holds at the barrier once it has read the spec, before it makes the LV.
    let reached!: () => void;
    const atBarrier = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const gc = collector(cluster, node, { graceSeconds: 0, mode: "delete" });
    await restartAgent(cluster, node, {
      beforeAct: async () => {
        reached();
        await released;
      },
    });
    const creating = createThroughController(cluster, "in-flight");
    await atBarrier;
    assert.deepEqual((await gc.sweep()).findings, [], "spec written, LV not yet made: nothing found");
    // The LV exists, the status is not yet written (the agent makes it, then reports).
    await makeOrphan(node, "in-flight");
    assert.deepEqual((await gc.sweep()).findings, [], "LV made, status not yet written: nothing found");
    release();
    const volume = await creating;
    assert.deepEqual((await gc.sweep()).findings, []);
    assert.ok(node.engine.volumes.has(volume.id));
  },
);

clusterTest(
  "a dangling record is reported after the grace, marks the volume abnormal, and is never deleted",
  async (cluster, node) => {
    const volume = await createThroughController(cluster, "vanished");
    const lv = node.engine.volumes.get(volume.id)!;
    node.engine.volumes.delete(volume.id); // someone ran lvremove
    const time = clock();
    const metrics = new LoamMetrics({ version: "test" });
    const gc = collector(cluster, node, { now: time.now, observer: metrics, mode: "delete" });
    let report = await gc.sweep();
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.id, f.reported]),
      [["dangling-volume", volume.id, false]],
    );
    assert.equal((await cluster.controller.getVolume(volume.id))?.condition.abnormal, false, "not yet marked");
    time.at(GRACE);
    report = await gc.sweep();
    assert.equal(report.findings[0]?.reported, true);
    assert.equal(await metric(metrics, "loam_cluster_gc_dangling_records", { kind: "volume" }), 1);
    const seen = await cluster.controller.getVolume(volume.id);
    assert.equal(seen?.condition.abnormal, true, "the controller reports the volume abnormal");
    assert.match(seen?.condition.message ?? "", /does not exist on node a/);
    assert.ok(
      await cluster.client.get(cluster.registry.keys.volume(node.id, volume.id)).string(),
      "the record is kept, even in delete mode",
    );
    // The LV comes back (a disk restored): the mark is taken away.
    node.engine.volumes.set(volume.id, lv);
    report = await gc.sweep();
    assert.deepEqual(report.findings, []);
    assert.equal((await cluster.controller.getVolume(volume.id))?.condition.abnormal, false);
  },
);

clusterTest("a dangling snapshot record and an orphan snapshot LV are found", async (cluster, node) => {
  const volume = await createThroughController(cluster, "source");
  const snapshot = await cluster.controller.createSnapshot({ name: "snap", sourceVolumeId: volume.id });
  node.engine.snapshots.delete(snapshot.id);
  const orphan = await node.engine.createSnapshot({ name: "stray-snap", sourceVolumeId: volume.id });
  const gc = collector(cluster, node, { graceSeconds: 0 });
  const report = await gc.sweep();
  assert.deepEqual(
    report.findings.map((f) => [f.kind, f.id]).sort(),
    [
      ["dangling-snapshot", snapshot.id],
      ["orphan-snapshot", orphan.id],
    ].sort(),
  );
});

clusterTest(
  "the agent sweeps once its first listing is acted on, and writes the report loam status shows",
  async (cluster, node) => {
    const dir = await mkdtemp(join(tmpdir(), "loam-gc-"));
    try {
      const orphan = await makeOrphan(node, "left-behind");
      const reportPath = join(dir, "loam-gc.json");
      const gc = collector(cluster, node, { graceSeconds: 0, reportPath });
      await restartAgent(cluster, node, { gc });
      // Up to 15 s: the agent registers, lists and acts first; a busy host makes that slow.
      for (let i = 0; i < 300 && !gc.report; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(gc.report?.findings[0]?.id, orphan.id, "the agent ran a sweep after its first listing");
      const written = await readGcReport(reportPath);
      assert.ok(written, "the report file reads back");
      assert.equal(written.findings[0]?.kind, "orphan-volume");
      const text = renderGc(written);
      assert.match(text, /orphan-volume/);
      assert.match(text, /carries loam's tags but the registry has no record of it on node a/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  "with the real engine: an LV without loam's tags is never touched; an open orphan is not removed",
  { timeout: 20_000 },
  async () => {
    const client = new Etcd3({ hosts: etcd.endpoints });
    const registry = new Registry(client, new Keys(`/loam-test/${process.pid}-gc-real`));
    try {
      const { engine, lvm } = await makeEngine();
      await lvm.createLv({ vg: VG, name: "untagged", sizeBytes: 64 * MiB, tags: [] });
      await lvm.createLv({ vg: VG, name: "foreign", sizeBytes: 64 * MiB, tags: ["owner=someone-else"] });
      // loam's prefix but not a loam volume (no name tag): not ours either.
      await lvm.createLv({ vg: VG, name: "half", sizeBytes: 64 * MiB, tags: [encodeTag("pvc", "x")] });
      const orphan = await engine.createVolume({
        name: "real-orphan",
        range: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
        parameters: parseParameters({}),
      });
      const busy = await engine.createVolume({
        name: "real-busy",
        range: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
        parameters: parseParameters({}),
      });
      lvm.setOpen(VG, busy.id);
      const gc = new GarbageCollector({ registry, nodeId: "real", engine, graceSeconds: 0, mode: "delete" });
      const report = await gc.sweep();
      assert.deepEqual(
        report.findings.map((f) => [f.kind, f.id]),
        [["orphan-volume", busy.id]],
        "the open orphan stays a finding",
      );
      assert.match(report.findings[0]?.removalFailed ?? "", /in use/);
      assert.equal(lvm.lv(VG, orphan.id), undefined, "the loam orphan is removed");
      assert.ok(lvm.lv(VG, busy.id), "the open one is kept (the engine's delete refuses it)");
      for (const name of ["untagged", "foreign", "half"]) assert.ok(lvm.lv(VG, name), `${name} is untouched`);
      assert.deepEqual(
        lvm
          .callsOf("removeLv")
          .map((c) => c.args[1])
          .sort(),
        [orphan.id, busy.id].sort(),
        "removal was asked only for loam's LVs",
      );
    } finally {
      await client
        .delete()
        .prefix(registry.keys.root + "/")
        .exec()
        .catch(() => undefined);
      client.close();
    }
  },
);
