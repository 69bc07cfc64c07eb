/**
 * The agent's watch of its prefix (src/cluster/watch.ts under NodeAgent). One whose start
 * revision etcd has compacted away: etcd cancels the watch, and the agent must list again and
 * watch anew, without dying (etcd3 throws outside any caller when a watch etcd already ended is
 * cancelled a second time) and without missing work. An agent whose connection to etcd is cut
 * (a TCP proxy) while a spec is written: it acts once the connection is back. And an agent
 * stopped while it works a spec, replaced by a new one: the new one's listing finds the spec and
 * converges.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { Registry } from "../../src/cluster/registry.js";
import { LedgerSchema, VolumeStatusSchema } from "../../src/cluster/records.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";
import { CuttableTcpProxy } from "../support/tcp-proxy.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

test(
  "an agent whose watch start was compacted lists again, watches anew and still acts",
  { timeout: 20_000 },
  async () => {
    const cluster = TestCluster.create(etcd.endpoints);
    const engine = new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: 4 * GiB }]);
    let compactions = 0;
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    const agent = new NodeAgent({
      registry: cluster.registry,
      nodeId: "a",
      segments: { [TOPOLOGY_KEY]: "a" },
      engine,
      version: "test",
      beforeWatch: async () => {
        if (compactions++ > 0) return;
        // Between the agent's listing and its watch: more revisions, then all compacted away.
        for (let i = 0; i < 5; i++) await cluster.client.put(`${cluster.registry.keys.root}/noise`).value(String(i));
        const { header } = await cluster.client.get(`${cluster.registry.keys.root}/noise`).exec();
        await cluster.client.kv.compact({ revision: header.revision, physical: true });
      },
    });
    // Another watch on the same client keeps its watch stream open, as a controller's waits do.
    const other = await cluster.client.watch().key(`${cluster.registry.keys.root}/keep-open`).create();
    try {
      await agent.start();
      const volume = await cluster.controller.createVolume({
        name: "after-compaction",
        range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        parameters: parseParameters({}),
        requisite: [],
        preferred: [],
      });
      assert.equal(engine.volumes.get(volume.id)?.name, "after-compaction");
      assert.ok(compactions >= 2, `the agent watched again (${compactions} watch starts)`);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(uncaught, [], "nothing thrown outside a caller");
    } finally {
      process.off("uncaughtException", onUncaught);
      await other.cancel();
      await agent.stop();
      await cluster.close();
    }
  },
);

test(
  "an agent stopped while it works a spec, replaced by a new agent: one volume, its status, one engine create",
  { timeout: 30_000 },
  async () => {
    const cluster = TestCluster.create(etcd.endpoints);
    const engine = new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: 4 * GiB }]);
    const options = {
      registry: cluster.registry,
      nodeId: "a",
      segments: { [TOPOLOGY_KEY]: "a" },
      engine,
      version: "test",
      leaseSeconds: 5,
    };
    let stopped: Promise<void> | undefined;
    const first: NodeAgent = new NodeAgent({
      ...options,
      beforeAct: (work) => {
        // The agent goes away with the spec in hand, before the engine is asked: as if killed there.
        stopped ??= first.stop(false);
        return Promise.reject(new Error(`agent stopped while working ${work.kind} ${work.id} (test)`));
      },
    });
    let second: NodeAgent | undefined;
    try {
      await first.start();
      const creating = cluster.controller.createVolume({
        name: "mid-reconcile",
        range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        parameters: parseParameters({}),
        requisite: [],
        preferred: [],
      });
      creating.catch(() => undefined);
      const deadline = Date.now() + 10_000;
      while (!stopped && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(stopped, "the first agent reached the spec");
      await stopped;
      assert.deepEqual(engine.calls, [], "the first agent never asked the engine");

      second = new NodeAgent(options);
      await second.start();
      const volume = await creating;
      assert.equal(volume.sizeBytes, GiB);
      assert.deepEqual(engine.calls, ["create mid-reconcile"], "one engine create in all");
      assert.equal(engine.volumes.size, 1);
      const status = await cluster.registry.read(
        VolumeStatusSchema,
        cluster.registry.keys.volumeStatus("a", volume.id),
      );
      assert.equal(status.value?.state, "ready");
      assert.equal(status.value?.generation, 1);
      const ledger = await cluster.registry.read(LedgerSchema, cluster.registry.keys.ledger("a"));
      assert.deepEqual(ledger.value?.reservations, {}, "the reservation was dropped with the status");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(engine.calls, ["create mid-reconcile"], "nothing acted on twice afterwards");
    } finally {
      await first.stop();
      await second?.stop();
      await cluster.close();
    }
  },
);

test(
  "an agent whose connection is cut while a spec is written acts on it once the connection is back",
  { timeout: 30_000 },
  async () => {
    const cluster = TestCluster.create(etcd.endpoints);
    const proxy = await CuttableTcpProxy.start(etcd.endpoints[0]);
    const client = new Etcd3({ hosts: [proxy.url] });
    const engine = new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: 4 * GiB }]);
    const agent = new NodeAgent({
      registry: new Registry(client, cluster.registry.keys),
      nodeId: "a",
      segments: { [TOPOLOGY_KEY]: "a" },
      engine,
      version: "test",
      leaseSeconds: 10,
    });
    try {
      await agent.start();
      proxy.cut();
      const creating = cluster.controller.createVolume({
        name: "while-cut",
        range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        parameters: parseParameters({}),
        requisite: [],
        preferred: [],
      });
      creating.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(engine.calls, [], "nothing reaches the agent while its connection is cut");
      assert.ok(proxy.stats.refused > 0, "the agent's client tried to reconnect");
      proxy.restore();
      const volume = await creating;
      assert.equal(engine.volumes.get(volume.id)?.name, "while-cut");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(engine.calls, ["create while-cut"], "acted on once");
    } finally {
      proxy.restore();
      await agent.stop();
      client.close();
      await proxy.stop();
      await cluster.close();
    }
  },
);
