/**
 * An agent whose watch starts at a revision etcd has compacted away: etcd cancels the watch,
 * and the agent must list again and watch anew, without dying (etcd3 throws outside any caller
 * when a watch etcd already ended is cancelled a second time) and without missing work.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { NodeAgent } from "../../src/cluster/agent.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";

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
