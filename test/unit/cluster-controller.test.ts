/**
 * Cluster mode over real etcd: the controller places, reserves and waits; node agents over the
 * in-memory engine stand-in act and report. Each test has its own registry root.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ClusterController } from "../../src/cluster/controller.js";
import { VolumeError } from "../../src/volumes/errors.js";
import { PARAMETER_KEYS, parseParameters } from "../../src/volumes/parameters.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

const params = (p: Record<string, string> = {}) => parseParameters(p);
const range = (bytes: number) => ({ requiredBytes: BigInt(bytes), limitBytes: 0n });
const create = (
  controller: ClusterController,
  name: string,
  bytes: number,
  extra: {
    parameters?: Record<string, string>;
    requisite?: Record<string, string>[];
    preferred?: Record<string, string>[];
  } = {},
) =>
  controller.createVolume({
    name,
    range: range(bytes),
    parameters: params(extra.parameters),
    requisite: extra.requisite ?? [],
    preferred: extra.preferred ?? [],
  });

async function rejects(promise: Promise<unknown>, kind: string, text?: RegExp): Promise<VolumeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof VolumeError, `expected a VolumeError, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    if (text) assert.match(error.message, text);
    return error;
  }
  assert.fail(`expected ${kind}`);
}

async function withCluster(fn: (cluster: TestCluster) => Promise<void>, options = {}): Promise<void> {
  const cluster = TestCluster.create(etcd.endpoints, options);
  try {
    await fn(cluster);
  } finally {
    await cluster.close();
  }
}

describe("cluster controller over real etcd", () => {
  test("CreateVolume places the volume, the node's agent makes it, and a retry by name returns the same volume", () =>
    withCluster(async (cluster) => {
      const a = await cluster.addNode("node-a");
      const volume = await create(cluster.controller, "pvc-1", GiB);
      assert.equal(volume.node, "node-a");
      assert.deepEqual(volume.segments, { [TOPOLOGY_KEY]: "node-a" });
      assert.equal(volume.sizeBytes, GiB);
      assert.equal(a.engine.volumes.get(volume.id)?.sizeBytes, GiB);
      const again = await create(cluster.controller, "pvc-1", GiB);
      assert.equal(again.id, volume.id);
      assert.equal(a.engine.calls.filter((c) => c === "create pvc-1").length, 1);
      await rejects(create(cluster.controller, "pvc-1", 2 * GiB), "already-exists", /outside this request's range/);
      const listed = await cluster.controller.listVolumes();
      assert.deepEqual(
        listed.map((v) => [v.id, v.node, v.condition.abnormal]),
        [[volume.id, "node-a", false]],
      );
    }));

  test("spread puts a new volume on the node with most room; binpack on the fullest that fits", () =>
    withCluster(async (cluster) => {
      const klass = (total: number) => [{ name: "default", type: "thick" as const, default: true, totalBytes: total }];
      await cluster.addNode("small", klass(4 * GiB));
      await cluster.addNode("large", klass(8 * GiB));
      assert.equal((await create(cluster.controller, "s1", GiB)).node, "large");
      const packed = await create(cluster.controller, "b1", GiB, {
        parameters: { [PARAMETER_KEYS.placement]: "binpack" },
      });
      assert.equal(packed.node, "small");
    }));

  test("requisite topology limits the nodes, preferred orders them, and topology matching no node is RESOURCE_EXHAUSTED", () =>
    withCluster(async (cluster) => {
      await cluster.addNode("n1");
      await cluster.addNode("n2");
      await cluster.addNode("n3");
      const v = await create(cluster.controller, "t1", GiB, {
        requisite: [{ [TOPOLOGY_KEY]: "n1" }, { [TOPOLOGY_KEY]: "n3" }],
        preferred: [{ [TOPOLOGY_KEY]: "n3" }, { [TOPOLOGY_KEY]: "n1" }],
      });
      assert.equal(v.node, "n3");
      await rejects(
        create(cluster.controller, "t2", GiB, { requisite: [{ [TOPOLOGY_KEY]: "elsewhere" }] }),
        "resource-exhausted",
        /no registered node matches the requisite topology/,
      );
    }));

  test("a request that fits nowhere is RESOURCE_EXHAUSTED naming the best candidate and its free bytes", () =>
    withCluster(async (cluster) => {
      await cluster.addNode("a", [{ name: "default", type: "thick", default: true, totalBytes: 2 * GiB }]);
      await cluster.addNode("b", [{ name: "default", type: "thick", default: true, totalBytes: 3 * GiB }]);
      await rejects(
        create(cluster.controller, "huge", 5 * GiB),
        "resource-exhausted",
        new RegExp(`best candidate, node b, has ${3 * GiB} bytes free`),
      );
      await rejects(
        create(cluster.controller, "nc", GiB, { parameters: { [PARAMETER_KEYS.deviceClass]: "fast" } }),
        "invalid-argument",
        /no registered node has device class "fast"; classes offered: default/,
      );
    }));

  test("DeleteVolume removes the LV through the agent, frees the room, and is idempotent", () =>
    withCluster(async (cluster) => {
      const a = await cluster.addNode("a", [{ name: "default", type: "thick", default: true, totalBytes: 2 * GiB }]);
      const v = await create(cluster.controller, "d1", 2 * GiB);
      await rejects(create(cluster.controller, "d2", GiB), "resource-exhausted");
      await cluster.controller.deleteVolume(v.id);
      assert.equal(a.engine.volumes.size, 0);
      await cluster.controller.deleteVolume(v.id);
      await cluster.controller.deleteVolume("never-existed");
      assert.equal((await create(cluster.controller, "d2", GiB)).node, "a");
    }));

  test("ControllerExpandVolume reserves the growth on the owning node and grows the LV there", () =>
    withCluster(async (cluster) => {
      const a = await cluster.addNode("a", [{ name: "default", type: "thick", default: true, totalBytes: 3 * GiB }]);
      const v = await create(cluster.controller, "e1", GiB);
      const grown = await cluster.controller.expandVolume(v.id, range(2 * GiB));
      assert.equal(grown.sizeBytes, 2 * GiB);
      assert.equal(a.engine.volumes.get(v.id)?.sizeBytes, 2 * GiB);
      await rejects(cluster.controller.expandVolume(v.id, range(4 * GiB)), "resource-exhausted", /cannot grow by/);
      assert.equal((await cluster.controller.expandVolume(v.id, range(GiB))).sizeBytes, 2 * GiB, "never shrinks");
      await rejects(cluster.controller.expandVolume("missing", range(GiB)), "not-found");
    }));

  test("a snapshot and a restore from it land on the source's node", () =>
    withCluster(async (cluster) => {
      await cluster.addNode("a");
      await cluster.addNode("b");
      const v = await create(cluster.controller, "src", GiB);
      const snap = await cluster.controller.createSnapshot({ name: "snap-1", sourceVolumeId: v.id });
      assert.equal(snap.node, v.node);
      assert.equal(snap.readyToUse, true);
      assert.deepEqual(
        (await cluster.controller.listSnapshots()).map((s) => s.id),
        [snap.id],
      );
      const restored = await cluster.controller.createVolume({
        name: "restored",
        range: undefined,
        parameters: params(),
        contentSource: { kind: "snapshot", id: snap.id },
        requisite: [],
        preferred: [],
      });
      assert.equal(restored.node, v.node);
      assert.deepEqual(restored.contentSource, { kind: "snapshot", id: snap.id });
      await cluster.controller.deleteSnapshot(snap.id);
      assert.equal(await cluster.controller.getSnapshot(snap.id), undefined);
      await rejects(
        cluster.controller.createSnapshot({ name: "snap-2", sourceVolumeId: "no-such-volume" }),
        "not-found",
      );
    }));

  test("two controllers deciding on the same ledger revision cannot both promise its last free bytes", async () => {
    // A barrier in the hook holds both replicas after their decisions until both have decided:
    // they chose the same node from the same ledger revision; one transaction must lose.
    let waiting: (() => void)[] = [];
    const barrier = (): Promise<void> =>
      new Promise((resolve) => {
        waiting.push(resolve);
        if (waiting.length === 2) {
          waiting.forEach((r) => r());
          waiting = [];
        }
      });
    let armed = true;
    await withCluster(
      async (cluster) => {
        const a = await cluster.addNode("a", [{ name: "default", type: "thick", default: true, totalBytes: 3 * GiB }]);
        const other = new ClusterController({
          registry: cluster.registry,
          nodeTimeoutMs: 10_000,
          beforeReserve: () => (armed ? barrier() : Promise.resolve()),
        });
        const results = await Promise.allSettled([
          create(cluster.controller, "race-1", 2 * GiB),
          create(other, "race-2", 2 * GiB),
        ]);
        armed = false;
        const ok = results.filter((r) => r.status === "fulfilled");
        const refused = results.filter((r) => r.status === "rejected");
        assert.equal(ok.length, 1, "exactly one of the two fits");
        assert.equal(refused.length, 1);
        assert.equal((refused[0].reason as VolumeError).kind, "resource-exhausted");
        assert.equal(cluster.controller.stats.reservationConflicts + other.stats.reservationConflicts, 1);
        assert.equal(a.engine.overcommitted, 0);
        assert.equal(a.engine.usedBytes("default"), 2 * GiB);
      },
      { beforeReserve: () => (armed ? barrier() : Promise.resolve()) },
    );
  });

  test("300 concurrent CreateVolumes through 4 controller replicas on 5 tight nodes: zero over-commit, and every request that fits gets a volume", () =>
    withCluster(async (cluster) => {
      const replicas = [
        cluster.controller,
        ...Array.from(
          { length: 3 },
          () => new ClusterController({ registry: cluster.registry, nodeTimeoutMs: 20_000 }),
        ),
      ];
      // 5 nodes × 40 volumes' worth; 300 requests of 256 MiB: exactly 200 fit.
      const size = 256 * MiB;
      for (let i = 0; i < 5; i++) {
        await cluster.addNode(`n${i}`, [{ name: "default", type: "thick", default: true, totalBytes: 40 * size }], {
          delayMs: 2,
        });
      }
      const results = await Promise.allSettled(
        Array.from({ length: 300 }, (_, i) => create(replicas[i % replicas.length], `storm-${i}`, size)),
      );
      const made = results.filter((r) => r.status === "fulfilled").length;
      const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason as VolumeError] : []));
      assert.equal(
        made,
        200,
        `made ${made}; refusals: ${refused
          .slice(0, 3)
          .map((e) => e.message)
          .join(" | ")}`,
      );
      assert.ok(
        refused.every((e) => e.kind === "resource-exhausted"),
        refused.map((e) => e.kind).join(","),
      );
      for (const node of cluster.nodes) {
        assert.equal(node.engine.overcommitted, 0, `${node.id} was asked for more than it had`);
        assert.equal(node.engine.usedBytes("default"), 40 * size);
      }
      const capacity = await cluster.controller.capacity(params(), undefined);
      assert.equal(capacity.availableBytes, 0);
    }));

  test("a node whose agent does not answer gets DEADLINE_EXCEEDED, and the retry finds the same volume once it does", async () => {
    await withCluster(
      async (cluster) => {
        const a = await cluster.addNode("a");
        await a.agent.stop(false);
        // Keep the registration alive as a hung agent would (lease kept by a fresh one, no work done).
        const engine = a.engine;
        await rejects(create(cluster.controller, "slow", GiB), "deadline-exceeded", /node a's agent/);
        assert.equal(engine.volumes.size, 0);
        await cluster.addNode("a", [], { engine });
        const v = await create(cluster.controller, "slow", GiB);
        assert.equal(v.node, "a");
        assert.equal(engine.volumes.size, 1);
      },
      { nodeTimeoutMs: 1500 },
    );
  });

  test("an agent restarted after a spec was written acts on it: LVM and the registry converge", () =>
    withCluster(async (cluster) => {
      const a = await cluster.addNode("a");
      const engine = a.engine;
      // Stop the agent (its lease stays until it expires), then ask: the spec is written, nobody acts.
      await a.agent.stop(false);
      const pending = create(cluster.controller, "later", GiB);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(engine.volumes.size, 0);
      await cluster.addNode("a", [], { engine });
      const v = await pending;
      assert.equal(engine.volumes.get(v.id)?.name, "later");
    }));

  test("a registry value that fails validation is logged, never crashes the controller, and the volume is abnormal", () =>
    withCluster(async (cluster) => {
      await cluster.addNode("a");
      const v = await create(cluster.controller, "good", GiB);
      const keys = cluster.registry.keys;
      await cluster.client.put(keys.volumeStatus("a", v.id)).value('{"schema":1,"id":"x"');
      await cluster.client.put(keys.volumeIndex("broken-1")).value("[]");
      const listed = await cluster.controller.listVolumes();
      const good = listed.find((x) => x.id === v.id)!;
      assert.equal(good.condition.abnormal, true);
      assert.match(good.condition.message, /fails validation: not JSON/);
      const broken = listed.find((x) => x.id === "broken-1")!;
      assert.equal(broken.condition.abnormal, true);
      assert.match(broken.condition.message, /fails validation/);
      await rejects(cluster.controller.deleteVolume("broken-1"), "failed-precondition", /fails validation/);
      const other = await create(cluster.controller, "still-works", GiB);
      assert.equal(other.node, "a");
    }));

  test("GetCapacity sums the ledgers of the live nodes in a topology segment", () =>
    withCluster(async (cluster) => {
      await cluster.addNode("a", [{ name: "default", type: "thick", default: true, totalBytes: 2 * GiB }]);
      await cluster.addNode("b", [{ name: "default", type: "thick", default: true, totalBytes: 3 * GiB }]);
      const all = await cluster.controller.capacity(params(), undefined);
      assert.equal(all.availableBytes, 5 * GiB);
      assert.equal(all.maximumVolumeBytes, 3 * GiB);
      const justA = await cluster.controller.capacity(params(), { [TOPOLOGY_KEY]: "a" });
      assert.equal(justA.availableBytes, 2 * GiB);
      await cluster.node("b").agent.stop();
      assert.equal((await cluster.controller.capacity(params(), undefined)).availableBytes, 2 * GiB);
    }));
});
