/**
 * An agent's registration outlives etcd going away: its lease is lost while no member can
 * grant another, the agent keeps trying (backing off, one attempt at a time, never a tight
 * loop), and it is registered again by itself once quorum returns. Real etcd, three members.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeAgent } from "../../src/cluster/agent.js";
import type { Logger } from "../../src/log.js";
import { GiB } from "../../src/volumes/size.js";
import { TOPOLOGY_KEY, TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(3);
});
after(async () => {
  await etcd.stop();
});

test(
  "a lease lost while etcd is down is registered again once etcd returns, with backoff meanwhile",
  { timeout: 90_000 },
  async () => {
    const cluster = TestCluster.create(etcd.endpoints);
    const lines: string[] = [];
    const logger: Logger = {
      debug: () => undefined,
      info: (msg) => void lines.push(msg),
      warn: (msg) => void lines.push(msg),
      error: (msg) => void lines.push(msg),
    };
    const agent = new NodeAgent({
      registry: cluster.registry,
      nodeId: "n1",
      segments: { [TOPOLOGY_KEY]: "n1" },
      engine: new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: GiB }]),
      version: "test",
      leaseSeconds: 1,
      logger,
    });
    const member = cluster.registry.keys.info("n1");
    try {
      await agent.start();
      assert.ok(await cluster.client.get(member).string(), "registered");
      await etcd.killMember(1);
      await etcd.killMember(2);
      // etcd3 gives a lease up two TTLs after its last keep-alive; then the agent tries again.
      const lostBy = Date.now() + 15_000;
      while (!lines.includes("registration lease lost; registering again")) {
        assert.ok(Date.now() < lostBy, `the lease was not reported lost: ${JSON.stringify(lines)}`);
        await sleep(100);
      }
      await sleep(5_000);
      const attempts = lines.filter((l) => l === "registering again failed; will retry").length;
      assert.ok(attempts < 20, `at most a few attempts in 5 s without quorum, not a tight loop (${attempts})`);

      await Promise.all([etcd.startMember(1), etcd.startMember(2)]);
      await etcd.waitHealthy();
      const backBy = Date.now() + 30_000;
      while (!(await cluster.client.get(member).string())) {
        assert.ok(Date.now() < backBy, `not registered again: ${JSON.stringify(lines.slice(-5))}`);
        await sleep(200);
      }
      assert.ok(lines.includes("registered again"));
    } finally {
      await agent.stop();
      await cluster.close();
    }
  },
);
