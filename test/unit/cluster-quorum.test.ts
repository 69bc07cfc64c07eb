/**
 * Cluster mode without quorum, on real etcd (three members on loopback) and the controller's
 * real gRPC server: with one member killed everything works; with two killed every
 * metadata-changing call answers UNAVAILABLE at once (saying why), a call in flight is
 * answered UNAVAILABLE instead of waiting for the node timeout, reads still answer from the
 * surviving member, and Probe says ready; with the members back, a retried create succeeds.
 * A single member with a tiny quota goes read-only on NOSPACE, says what the operator must do,
 * and recovers when the alarm is cleared. A node agent's CSI Node service answers with etcd gone.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { ClusterController } from "../../src/cluster/controller.js";
import type { QuorumWatch } from "../../src/cluster/quorum.js";
import { ALARM_PERIOD_MS, QUORUM_BOUND_MS, QUORUM_DEADLINE_MS, QUORUM_PERIOD_MS } from "../../src/cluster/quorum.js";
import { Registry } from "../../src/cluster/registry.js";
import { registrySizes } from "../../src/cluster/sizes.js";
import { connectRegistry, watchQuorum } from "../../src/cli/registry.js";
import { CsiCallError, CsiClient } from "../../src/csi/client.js";
import { type RunningServer, startClusterControllerServer, startServer } from "../../src/csi/server.js";
import { Controller, Identity, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { CommandRunner } from "../../src/exec/index.js";
import { type Logger, createLogger } from "../../src/log.js";
import { Lvm } from "../../src/lvm/lvm.js";
import { LoamMetrics } from "../../src/metrics/metrics.js";
import { VolumeEngine } from "../../src/volumes/engine.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";

const KEY = "topology.loam.csi.dev/node";
const NODE_TIMEOUT_MS = 20_000;
const mount = {
  accessType: { case: "mount" as const, value: { fsType: "xfs", mountFlags: [], volumeMountGroup: "" } },
  accessMode: { mode: 1 },
};

/** "<code> <details>" of a call, or "OK". */
async function code(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "OK";
  } catch (error) {
    if (error instanceof CsiCallError) return `${error.code} ${error.details}`;
    throw error;
  }
}

/** A logger that keeps its lines, to check what the controller said. */
function keptLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger("info", (line) => lines.push(line)), lines };
}

/** The controller as `loam controller` wires it: registry, quorum watch (with read fallback), gRPC server. */
async function startController(endpoints: string[], dir: string, logger: Logger) {
  const registry = connectRegistry({ endpoints });
  const metrics = new LoamMetrics({ version: "test" });
  registry.observe = (r) => metrics.observeEtcdRequest(r);
  const changes: boolean[] = [];
  const quorum = await watchQuorum(
    { endpoints },
    registry,
    logger,
    (w) => {
      changes.push(w);
      metrics.setMetadataWritable(w);
    },
    { reads: true },
  );
  const controller = new ClusterController({ registry, nodeTimeoutMs: NODE_TIMEOUT_MS, logger });
  const socketPath = join(dir, "controller.sock");
  const server = await startClusterControllerServer({
    socketPath,
    socketMode: 0o600,
    driverName: "loam.csi.dev",
    version: "test",
    controller,
    writes: quorum,
    logger,
  });
  const client = new CsiClient(`unix://${socketPath}`);
  const close = async (): Promise<void> => {
    client.close();
    await server.stop(0);
    quorum.stop();
    registry.client.close();
  };
  return { registry, metrics, quorum, changes, client, close };
}

async function startAgent(endpoints: string[], id: string, delayMs = 0) {
  const client = new Etcd3({ hosts: endpoints });
  const engine = new InMemoryEngineStandIn(
    [{ name: "default", type: "thick", default: true, totalBytes: 8 * GiB }],
    delayMs,
  );
  const agent = new NodeAgent({
    registry: new Registry(client),
    nodeId: id,
    segments: { [KEY]: id },
    engine,
    version: "test",
    leaseSeconds: 30,
  });
  await agent.start();
  return {
    engine,
    stop: async (): Promise<void> => {
      await Promise.race([agent.stop().catch(() => undefined), sleep(2000)]);
      client.close();
    },
  };
}

const createOn = (client: CsiClient, name: string, node: string, timeoutMs?: number) =>
  client.call(
    Controller,
    "createVolume",
    {
      name,
      capacityRange: { requiredBytes: BigInt(GiB), limitBytes: 0n },
      volumeCapabilities: [mount],
      accessibilityRequirements: { requisite: [{ segments: { [KEY]: node } }] },
    },
    timeoutMs ? { timeoutMs } : {},
  );

/** Retries a call until it succeeds (what a CO does with UNAVAILABLE), up to `budgetMs`. */
async function untilOk<T>(call: () => Promise<T>, budgetMs: number): Promise<{ value: T; tries: number }> {
  const deadline = Date.now() + budgetMs;
  for (let tries = 1; ; tries++) {
    try {
      return { value: await call(), tries };
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

describe("without quorum the cluster is read-only for metadata, and resumes by itself", () => {
  let etcd: EtcdCluster;
  let dir: string;
  let control: Awaited<ReturnType<typeof startController>>;
  const kept = keptLogger();
  const agents: Awaited<ReturnType<typeof startAgent>>[] = [];

  before(async () => {
    etcd = await EtcdCluster.start(3);
    dir = await mkdtemp(join(tmpdir(), "loam-quorum-"));
    agents.push(await startAgent(etcd.endpoints, "node-a"), await startAgent(etcd.endpoints, "node-slow", 4000));
    control = await startController(etcd.endpoints, dir, kept.logger);
  });

  after(async () => {
    await control?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("one member down: everything works; two down: UNAVAILABLE at once, reads answer; back: a retry succeeds", async () => {
    const { client, quorum } = control;
    const made = await createOn(client, "before-loss", "node-a");
    const volumeId = made.volume?.volumeId ?? "";
    const snap = await client.call(Controller, "createSnapshot", { name: "snap-before", sourceVolumeId: volumeId });

    await etcd.killMember(0);
    assert.equal(await code(createOn(client, "one-member-down", "node-a")), "OK");
    await quorum.check();
    assert.equal(quorum.writable, true, "one member of three down leaves a quorum");

    // A create in flight on the slow node (its agent takes 4 s) when quorum goes.
    const inFlight = code(createOn(client, "in-flight", "node-slow"));
    await sleep(300);
    await etcd.killMember(1);
    const lost = performance.now();
    while (quorum.writable) await sleep(20);
    const detectedMs = performance.now() - lost;
    const refusedAt = performance.now();
    const refused = await code(createOn(client, "during-loss", "node-a"));
    const refusedMs = performance.now() - refusedAt;
    const inFlightAnswer = await inFlight;
    const inFlightMs = performance.now() - lost;
    process.stdout.write(
      `# quorum loss seen after ${detectedMs.toFixed(0)} ms (bound ${QUORUM_BOUND_MS} ms, period ${QUORUM_PERIOD_MS} ms, deadline ${QUORUM_DEADLINE_MS} ms); ` +
        `a CreateVolume then answered in ${refusedMs.toFixed(0)} ms; the one in flight in ${inFlightMs.toFixed(0)} ms after the loss\n`,
    );
    assert.match(
      refused,
      /^14 cannot create volume "during-loss": the cluster's metadata is read-only because no quorum/,
    );
    assert.match(
      inFlightAnswer,
      /^14 .*no quorum/,
      "a call in flight is answered UNAVAILABLE, not left to the node timeout",
    );
    assert.ok(inFlightMs < NODE_TIMEOUT_MS, `the call in flight answered before the node timeout (${inFlightMs} ms)`);

    // Every metadata-changing call: 14 UNAVAILABLE with the reason.
    const refusals = {
      deleteVolume: await code(client.call(Controller, "deleteVolume", { volumeId })),
      controllerExpandVolume: await code(
        client.call(Controller, "controllerExpandVolume", {
          volumeId,
          capacityRange: { requiredBytes: BigInt(2 * GiB), limitBytes: 0n },
        }),
      ),
      createSnapshot: await code(
        client.call(Controller, "createSnapshot", { name: "snap-during", sourceVolumeId: volumeId }),
      ),
      deleteSnapshot: await code(
        client.call(Controller, "deleteSnapshot", { snapshotId: snap.snapshot?.snapshotId ?? "" }),
      ),
    };
    for (const [method, answer] of Object.entries(refusals)) {
      assert.match(answer, /^14 cannot .*read-only because no quorum/, method);
    }
    // Validation still comes first.
    assert.match(await code(client.call(Controller, "createVolume", { name: "", volumeCapabilities: [mount] })), /^3 /);

    // Reads answer from the surviving member, and say so in the log; Probe says ready.
    const listed = await client.call(Controller, "listVolumes", {});
    assert.ok(
      listed.entries.some((e) => e.volume?.volumeId === volumeId),
      "ListVolumes answers without quorum",
    );
    const got = await client.call(Controller, "controllerGetVolume", { volumeId });
    assert.equal(got.volume?.volumeId, volumeId);
    const snapshots = await client.call(Controller, "listSnapshots", {});
    assert.ok(snapshots.entries.some((e) => e.snapshot?.sourceVolumeId === volumeId));
    const capacity = await client.call(Controller, "getCapacity", {});
    assert.ok(capacity.availableCapacity > 0n);
    const probe = await client.call(Identity, "probe", {});
    assert.notEqual(probe.ready, false, "Probe says ready without quorum");
    assert.ok(
      kept.lines.some((l) => /etcd registry not writable/.test(l) && /no quorum/.test(l)),
      "the loss is logged",
    );
    assert.ok(
      kept.lines.some((l) => /answering reads from one member \(serializable/.test(l)),
      "the fallback is logged",
    );
    assert.match(await control.metrics.scrape().then((s) => s.body), /^loam_cluster_metadata_writable 0$/m);

    // Quorum back: the refused create succeeds on retry; the one that was in flight finds its volume.
    await etcd.startMember(0);
    await etcd.startMember(1);
    const back = performance.now();
    const retried = await untilOk(() => createOn(client, "during-loss", "node-a", 5000), 60_000);
    process.stdout.write(
      `# quorum back: the retried CreateVolume succeeded ${(performance.now() - back).toFixed(0)} ms after the members restarted (${retried.tries} tries)\n`,
    );
    assert.equal(quorum.writable, true);
    const again = await untilOk(() => createOn(client, "in-flight", "node-slow", 15_000), 60_000);
    assert.equal(agents[1].engine.volumes.has(again.value.volume?.volumeId ?? ""), true);
    assert.equal(agents[1].engine.volumes.size, 1, "the retried in-flight create made no second volume");
    assert.ok(
      kept.lines.some((l) => /etcd registry writable again/.test(l)),
      "the return is logged",
    );
    assert.deepEqual(control.changes.slice(-2), [false, true], "the gauge went 0 then back to 1");
    assert.match(await control.metrics.scrape().then((s) => s.body), /^loam_cluster_metadata_writable 1$/m);
    assert.match(
      await control.metrics.scrape().then((s) => s.body),
      /^loam_etcd_request_duration_seconds_count\{operation="reserving"\} [1-9]/m,
    );
  });
});

describe("NOSPACE: etcd out of space makes the metadata read-only with the operator's remedy", () => {
  let etcd: EtcdCluster;
  let dir: string;
  let control: Awaited<ReturnType<typeof startController>>;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let filler: Etcd3;

  before(async () => {
    etcd = await EtcdCluster.start(1, { quotaBackendBytes: 4 * 1024 * 1024 });
    dir = await mkdtemp(join(tmpdir(), "loam-nospace-"));
    agent = await startAgent(etcd.endpoints, "node-a");
    control = await startController(etcd.endpoints, dir, keptLogger().logger);
    // No retries and no circuit breaker: the first NOSPACE refusal is what the test sees.
    filler = new Etcd3({ hosts: etcd.endpoints, faultHandling: { host: () => noop, global: noop } });
  });

  after(async () => {
    filler?.close();
    await control?.close();
    await agent?.stop();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("filled to its quota, etcd raises NOSPACE; loam refuses writes naming it; cleared, a create succeeds", async () => {
    const { client, quorum } = control;
    assert.equal(await code(createOn(client, "before-full", "node-a")), "OK");
    const value = "x".repeat(256 * 1024);
    let full = false;
    for (let i = 0; i < 200 && !full; i++) {
      try {
        await filler.put(`/filler/${i}`).value(value).exec();
      } catch (error) {
        assert.match(String(error), /database space exceeded/);
        full = true;
      }
    }
    assert.ok(full, "etcd reached its quota");
    // Before the watch has read the alarm list, etcd's own refusal is translated the same way.
    assert.match(await code(createOn(client, "just-full", "node-a")), /^14 .*NOSPACE alarm.*etcdctl alarm disarm/);
    // The alarm list is read every ALARM_PERIOD_MS (10 s): the watch sees NOSPACE within that.
    const filled = performance.now();
    while (quorum.writable) {
      assert.ok(performance.now() - filled < 3 * ALARM_PERIOD_MS, "the watch saw the NOSPACE alarm");
      await sleep(100);
    }
    process.stdout.write(
      `# NOSPACE seen by the quorum watch ${(performance.now() - filled).toFixed(0)} ms after etcd refused a write\n`,
    );
    const refused = await code(createOn(client, "while-full", "node-a"));
    assert.match(refused, /^14 cannot create volume "while-full": .*NOSPACE alarm/);
    assert.match(refused, /etcdctl compact/);
    assert.match(refused, /etcdctl defrag/);
    assert.match(refused, /etcdctl alarm disarm/);
    // Reads go on (linearizable: etcd has its quorum).
    const listed = await client.call(Controller, "listVolumes", {});
    assert.equal(listed.entries.length, 1);

    // What the operator does: free space, compact, defragment, disarm.
    await filler.delete().prefix("/filler/").exec();
    const { header } = await filler.get("/").exec();
    await filler.kv.compact({ revision: header.revision, physical: true });
    await filler.maintenance.defragment({});
    const { alarms } = await filler.maintenance.alarm({ action: "Get", memberID: 0, alarm: "None" });
    for (const alarm of alarms) {
      await filler.maintenance.alarm({ action: "Deactivate", memberID: alarm.memberID, alarm: alarm.alarm });
    }
    await quorum.check();
    assert.equal(quorum.writable, true);
    assert.equal(await code(createOn(client, "while-full", "node-a")), "OK");
  });
});

describe("a node agent's CSI Node service does not wait on etcd", () => {
  test("with every etcd member gone, NodeGetInfo and NodeGetCapabilities answer, and the gauge says 0", async () => {
    const etcd = await EtcdCluster.start(1);
    const dir = await mkdtemp(join(tmpdir(), "loam-node-quorum-"));
    const logger = createLogger("error");
    const agent = await startAgent(etcd.endpoints, "node-a");
    const registry = connectRegistry({ endpoints: etcd.endpoints });
    const metrics = new LoamMetrics({ version: "test" });
    let watch: QuorumWatch | undefined;
    let server: RunningServer | undefined;
    const client = new CsiClient(`unix://${join(dir, "csi.sock")}`);
    try {
      watch = await watchQuorum(
        { endpoints: etcd.endpoints },
        registry,
        logger,
        (w) => metrics.setMetadataWritable(w),
        { reads: false, boundMs: 1000 },
      );
      server = await startServer({
        socketPath: join(dir, "csi.sock"),
        socketMode: 0o600,
        driverName: "loam.csi.dev",
        version: "test",
        node: { key: KEY, nodeId: "node-a" },
        maxVolumesPerNode: 0,
        // Probe, NodeGetInfo and NodeGetCapabilities run no LVM command; this engine has no volume group on the host.
        engine: new VolumeEngine(new Lvm(new CommandRunner()), "loamnosuchvg"),
        logger,
        controller: false,
      });
      await etcd.stop();
      await watch.check();
      await sleep(1100); // past the bound: no quorum confirmed for it
      assert.equal(watch.writable, false);
      assert.match((await metrics.scrape()).body, /^loam_cluster_metadata_writable 0$/m);
      const started = performance.now();
      const info = await client.call(Node, "nodeGetInfo", {}, { timeoutMs: 5000 });
      assert.equal(info.nodeId, "node-a");
      const caps = await client.call(Node, "nodeGetCapabilities", {}, { timeoutMs: 5000 });
      assert.ok(caps.capabilities.length > 0);
      process.stdout.write(
        `# with etcd gone, NodeGetInfo + NodeGetCapabilities answered in ${(performance.now() - started).toFixed(0)} ms\n`,
      );
    } finally {
      client.close();
      await server?.stop(0);
      watch?.stop();
      registry.client.close();
      await agent.stop();
      await etcd.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("registry sizes and etcd request latency", () => {
  test("registrySizes counts keys and bytes per prefix across pages; Registry.call observes each request", async () => {
    const etcd = await EtcdCluster.start(1);
    const cluster = TestCluster.create(etcd.endpoints);
    const observed: string[] = [];
    cluster.registry.observe = (r) => observed.push(`${r.operation}:${r.failed ? "failed" : "ok"}`);
    try {
      await cluster.addNode("node-a");
      for (const name of ["size-1", "size-2", "size-3"]) {
        await cluster.controller.createVolume({
          name,
          range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
          parameters: parseParameters({}),
          requisite: [],
          preferred: [],
        });
      }
      // Pages of two keys: every prefix with more than two keys takes several requests.
      const sizes = await registrySizes(cluster.registry, 2);
      const byPrefix = new Map(sizes.map((s) => [s.prefix, s]));
      assert.deepEqual(
        sizes.map((s) => [s.prefix, s.keys]),
        [
          ["members", 1],
          ["ledgers", 1],
          ["nodes", 6],
          ["volumes", 3],
          ["snapshots", 0],
        ],
      );
      const all = await cluster.client.getAll().prefix(cluster.registry.keys.nodes).exec();
      const bytes = all.kvs.reduce((sum, kv) => sum + kv.key.length + kv.value.length, 0);
      assert.equal(byPrefix.get("nodes")?.bytes, bytes);
      assert.ok(observed.includes("reserving:ok") && observed.includes("sizing:ok"), observed.join(" "));
    } finally {
      await cluster.close();
      await etcd.stop();
    }
  });
});
