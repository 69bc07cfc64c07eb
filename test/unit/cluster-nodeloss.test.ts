/**
 * Node loss over real etcd with stand-in engines (test/support/cluster.ts): a node whose agent's
 * lease expires is lost (at read time, then marked by the controller doing the background
 * work); its volumes report an abnormal condition; DeleteVolume and DeleteSnapshot record a
 * tombstone and return without waiting for the node; the name gets a new id on a live node;
 * when the node returns with its disks its agent removes the tombstoned LVs, the records go,
 * the mark goes and its volumes are normal again, with no operator action.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeAgent } from "../../src/cluster/agent.js";
import { BackgroundWork } from "../../src/cluster/background.js";
import { tombstoneDue } from "../../src/cluster/liveness.js";
import { LostNodeSchema, VolumeSpecSchema } from "../../src/cluster/records.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { VolumeError, aborted, failedPrecondition } from "../../src/volumes/errors.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster } from "../support/cluster.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";
import { EtcdCluster } from "../support/etcd.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not in time: ${what}`);
    await sleep(50);
  }
}

const onNode = (node: string) => [{ [TOPOLOGY_KEY]: node }];

/** The node returns with its disks: a new agent over the same stand-in engine registers. */
async function comeBack(cluster: TestCluster, node: string, engine: InMemoryEngineStandIn): Promise<NodeAgent> {
  const agent = new NodeAgent({
    registry: cluster.registry,
    nodeId: node,
    segments: { [TOPOLOGY_KEY]: node },
    engine,
    version: "test",
    leaseSeconds: 2,
  });
  await agent.start();
  return agent;
}

test("a lost node's volumes are abnormal, deletes on it are tombstones, and it converges when it returns", async () => {
  // The node timeout (10 s) is far above every bound asserted here: a delete that waited for the lost node would fail them.
  const cluster = TestCluster.create(etcd.endpoints, { nodeTimeoutMs: 10_000 });
  const { controller, registry } = cluster;
  const keys = registry.keys;
  const lostCounts: number[] = [];
  const background = new BackgroundWork({
    registry,
    identity: "leader",
    leaseSeconds: 2,
    livenessSeconds: 0.2,
    onLostNodes: (count) => lostCounts.push(count),
  });
  let returned: NodeAgent | undefined;
  try {
    const n1 = await cluster.addNode("n1", undefined, { leaseSeconds: 2 });
    await cluster.addNode("n2", undefined, { leaseSeconds: 2 });
    const create = (name: string, requisite: Record<string, string>[] = []) =>
      controller.createVolume({
        name,
        range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        parameters: parseParameters({}),
        requisite,
        preferred: [],
      });
    const doomed = await create("pvc-doomed", onNode("n1"));
    const kept = await create("pvc-kept", onNode("n1"));
    const snapshot = await controller.createSnapshot({ name: "snap-doomed", sourceVolumeId: kept.id });
    assert.ok(n1.engine.volumes.has(doomed.id) && n1.engine.snapshots.has(snapshot.id));

    // The node goes: its agent stops without revoking, so its lease expires after 2 s.
    await n1.agent.stop(false);
    await until(
      async () => (await registry.client.get(keys.info("n1")).exec()).kvs.length === 0,
      "n1's member key expires",
    );

    // Read time, before any controller marked it: the volumes say the node is lost.
    const early = (await controller.listVolumes()).find((v) => v.id === kept.id);
    assert.equal(early?.condition.abnormal, true);
    assert.match(early.condition.message, /^node n1 lost: its agent has not renewed its lease since /);
    assert.match(early.condition.message, /the data is on that node's disks/);

    // The controller doing the background work marks it, and the gauge counts it.
    background.start();
    await until(async () => (await registry.read(LostNodeSchema, keys.lost("n1"))).value !== undefined, "n1 marked");
    const mark = (await registry.read(LostNodeSchema, keys.lost("n1"))).value!;
    await until(() => lostCounts.at(-1) === 1, "the gauge says 1 lost node");
    assert.equal((await registry.read(LostNodeSchema, keys.lost("n2"))).modRevision, "0", "n2 is not lost");

    const got = await controller.getVolume(kept.id);
    assert.deepEqual(got?.condition.abnormal, true);
    assert.match(
      got.condition.message,
      new RegExp(`^node n1 lost: its agent has not renewed its lease since ${mark.since}`),
    );
    const other = await create("pvc-on-n2", onNode("n2"));
    assert.equal((await controller.getVolume(other.id))?.condition.abnormal, false, "n2's volumes stay normal");

    // DeleteVolume returns at once (the node timeout is 10 s) and frees the name.
    let started = Date.now();
    await controller.deleteVolume(doomed.id);
    const deleteMs = Date.now() - started;
    assert.ok(deleteMs < 2000, `DeleteVolume of a volume on a lost node took ${deleteMs} ms`);
    assert.equal(await controller.getVolume(doomed.id), undefined);
    assert.ok(!(await controller.listVolumes()).some((v) => v.id === doomed.id));
    const tombstone = await registry.read(VolumeSpecSchema, keys.volume("n1", doomed.id));
    assert.equal(tombstone.value?.deleting, true, "the spec stays under n1 as a tombstone");
    await controller.deleteVolume(doomed.id); // a retry finds nothing to do

    started = Date.now();
    await controller.deleteSnapshot(snapshot.id);
    assert.ok(Date.now() - started < 2000, "DeleteSnapshot returns at once too");
    assert.equal(await controller.getSnapshot(snapshot.id), undefined);

    // The same name makes a new volume with a new id, on a live node; a retry finds that one.
    const again = await create("pvc-doomed");
    assert.notEqual(again.id, doomed.id);
    assert.equal(again.node, "n2");
    assert.ok(cluster.node("n2").engine.volumes.has(again.id), "n2's engine made the LV under the new id");
    assert.equal((await create("pvc-doomed")).id, again.id);
    assert.ok(n1.engine.volumes.has(doomed.id), "the lost node's LV is untouched while it is away");

    // An expansion asked meanwhile waits for the node (and times out here); the node acts on it when it returns.
    await assert.rejects(
      controller.expandVolume(
        kept.id,
        { requiredBytes: BigInt(2 * GiB), limitBytes: 0n },
        { signal: AbortSignal.timeout(300) },
      ),
      (error: unknown) => error instanceof VolumeError && error.kind === "deadline-exceeded",
    );
    assert.equal(n1.engine.volumes.get(kept.id)?.sizeBytes, GiB);

    // The node returns with its disks (the same engine): a new agent registers.
    returned = await comeBack(cluster, "n1", n1.engine);
    await until(() => !n1.engine.volumes.has(doomed.id), "the returned node removes the tombstoned LV");
    await until(() => !n1.engine.snapshots.has(snapshot.id), "the returned node removes the tombstoned snapshot");
    assert.ok(n1.engine.volumes.has(kept.id), "the other volume stays");
    await until(() => n1.engine.volumes.get(kept.id)?.sizeBytes === 2 * GiB, "the pending expansion is made");
    await until(async () => {
      const left = await registry.client.getAll().prefix(keys.node("n1")).keys();
      return !left.some((k) => k.includes(doomed.id) || k.includes(snapshot.id));
    }, "the tombstones' records are removed");
    await until(
      async () => (await registry.read(LostNodeSchema, keys.lost("n1"))).modRevision === "0",
      "the lost mark is removed",
    );
    await until(() => lostCounts.at(-1) === 0, "the gauge says 0");
    assert.equal((await controller.getVolume(kept.id))?.condition.abnormal, false);
    assert.equal((await controller.listVolumes()).find((v) => v.id === kept.id)?.condition.abnormal, false);
    // The name's new volume is still the one a retry finds, now that the tombstone is gone.
    assert.equal((await create("pvc-doomed")).id, again.id);
  } finally {
    await background.stop();
    await returned?.stop();
    await cluster.close();
  }
});

test("a create its node never made before it was lost is placed anew on a retry; the node cleans up when it returns", async () => {
  const cluster = TestCluster.create(etcd.endpoints, { nodeTimeoutMs: 10_000 });
  const { controller, registry } = cluster;
  const keys = registry.keys;
  const background = new BackgroundWork({ registry, identity: "leader", leaseSeconds: 2, livenessSeconds: 0.2 });
  const n3 = new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: 10 * GiB }]);
  let refuse = true;
  const agent = (): NodeAgent =>
    new NodeAgent({
      registry,
      nodeId: "n3",
      segments: { [TOPOLOGY_KEY]: "n3" },
      engine: n3,
      version: "test",
      leaseSeconds: 2,
      // The node dies before it makes the volume: every attempt fails as a transient error.
      beforeAct: () => (refuse ? Promise.reject(aborted("stand-in: the node is going down")) : Promise.resolve()),
    });
  const first = agent();
  let returned: NodeAgent | undefined;
  try {
    await first.start();
    await cluster.addNode("n2", undefined, { leaseSeconds: 2 });
    const request = {
      name: "pvc-pending",
      range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
      parameters: parseParameters({}),
      requisite: [...onNode("n3"), ...onNode("n2")],
      preferred: onNode("n3"),
    };
    await assert.rejects(
      controller.createVolume(request, { signal: AbortSignal.timeout(500) }),
      (error: unknown) => error instanceof VolumeError && error.kind === "deadline-exceeded",
    );
    const pendingId = lvNameFor("pvc-pending");
    assert.equal((await registry.read(VolumeSpecSchema, keys.volume("n3", pendingId))).value?.generation, 1);

    await first.stop(false);
    background.start();
    await until(async () => (await registry.read(LostNodeSchema, keys.lost("n3"))).value !== undefined, "n3 marked");

    // The CO's retry: without the abandonment it would wait 10 s for n3 and fail.
    const started = Date.now();
    const placed = await controller.createVolume(request, { signal: AbortSignal.timeout(5000) });
    assert.ok(Date.now() - started < 2000, `the retry took ${Date.now() - started} ms`);
    assert.equal(placed.node, "n2");
    assert.notEqual(placed.id, pendingId);
    assert.equal((await controller.createVolume(request)).id, placed.id, "a further retry finds the new volume");

    refuse = false;
    returned = agent();
    await returned.start();
    await until(async () => {
      const left = await registry.client.getAll().prefix(keys.node("n3")).keys();
      return !left.some((k) => k.includes(pendingId));
    }, "the abandoned create's records are removed once n3 has acted on them");
    assert.equal(n3.volumes.has(pendingId), false, "n3 holds no LV for the abandoned create");
  } finally {
    await background.stop();
    await returned?.stop();
    await cluster.close();
  }
});

test("a tombstone's delete the returned node refuses is asked again until it is done", async () => {
  const cluster = TestCluster.create(etcd.endpoints, { nodeTimeoutMs: 10_000 });
  const { controller, registry } = cluster;
  const keys = registry.keys;
  const background = new BackgroundWork({
    registry,
    identity: "leader",
    leaseSeconds: 2,
    livenessSeconds: 0.2,
    tombstoneRetrySeconds: 0.5,
  });
  let returned: NodeAgent | undefined;
  try {
    const n1 = await cluster.addNode("n1", undefined, { leaseSeconds: 2 });
    const volume = await controller.createVolume({
      name: "pvc-open",
      range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
      parameters: parseParameters({}),
      requisite: onNode("n1"),
      preferred: [],
    });
    await n1.agent.stop(false);
    background.start();
    await until(async () => (await registry.read(LostNodeSchema, keys.lost("n1"))).value !== undefined, "n1 marked");
    await controller.deleteVolume(volume.id);

    // The node returns with the volume still open: the stand-in refuses its delete, as LVM would.
    let refusals = 0;
    const remove = n1.engine.deleteVolume.bind(n1.engine);
    n1.engine.deleteVolume = async (id: string) => {
      if (refusals < 2) {
        refusals++;
        throw failedPrecondition(`stand-in: volume ${id} is open`);
      }
      await remove(id);
    };
    returned = await comeBack(cluster, "n1", n1.engine);
    await until(() => !n1.engine.volumes.has(volume.id), "the LV is removed once the node stops refusing", 20_000);
    assert.equal(refusals, 2);
    await until(async () => {
      const left = await registry.client.getAll().prefix(keys.node("n1")).keys();
      return !left.some((k) => k.includes(volume.id));
    }, "the tombstone's records are removed");
  } finally {
    await background.stop();
    await returned?.stop();
    await cluster.close();
  }
});

test("a node whose registration just went is waited for; one away longer than the node timeout is not", () => {
  const now = Date.parse("2026-01-01T00:10:00Z");
  const fresh = { node: "n", registered: false, lastReport: "2026-01-01T00:09:50Z" };
  assert.equal(tombstoneDue(fresh, 60_000, now), false, "an agent restarting is waited for");
  assert.equal(tombstoneDue(fresh, 5_000, now), true, "away longer than the node timeout");
  assert.equal(
    tombstoneDue({ ...fresh, lost: { schema: 1, node: "n", since: "x" } }, 60_000, now),
    true,
    "marked lost",
  );
  assert.equal(tombstoneDue({ node: "n", registered: true, lastReport: "2020-01-01T00:00:00Z" }, 1, now), false);
});
