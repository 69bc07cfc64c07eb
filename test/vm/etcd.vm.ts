/**
 * etcd inside the guest, for cluster mode's end-to-end tests: Debian's etcd (copied into the
 * initramfs by scripts/vm.d/build-initramfs) started on the guest's loopback by
 * test/support/etcd.ts, one member and three, used through the etcd3 client as this bundled
 * suite carries it (scripts/bundle-options.mjs inlines its protos). Each start is timed: the
 * diagnostics are the guest's cost of an etcd under TCG, which the cluster tests pay.
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import { EtcdCluster } from "../support/etcd.js";

async function timedStart(t: TestContext, size: number): Promise<EtcdCluster> {
  const started = performance.now();
  const cluster = await EtcdCluster.start(size);
  t.diagnostic(`${size} member(s) started and healthy in ${Math.round(performance.now() - started)} ms`);
  return cluster;
}

async function timedStop(t: TestContext, cluster: EtcdCluster): Promise<void> {
  const started = performance.now();
  await cluster.stop();
  t.diagnostic(`stopped in ${Math.round(performance.now() - started)} ms`);
}

/** Put/get, a lease (its key goes with it) and a watch, through one client. */
async function exercise(client: Etcd3, prefix: string): Promise<void> {
  await client.put(`${prefix}/plain`).value("v1");
  assert.equal(await client.get(`${prefix}/plain`).string(), "v1");

  const lease = client.lease(30);
  await lease.put(`${prefix}/leased`).value("held");
  assert.equal(await client.get(`${prefix}/leased`).string(), "held");
  await lease.revoke();
  assert.equal(await client.get(`${prefix}/leased`).string(), null, "revoking the lease deletes its key");

  const watcher = await client.watch().key(`${prefix}/watched`).create();
  try {
    const seen = new Promise<string>((resolve) => watcher.on("put", (kv) => resolve(kv.value.toString())));
    await client.put(`${prefix}/watched`).value("event");
    assert.equal(await seen, "event");
  } finally {
    await watcher.cancel();
  }
}

export function etcdTests(): void {
  describe("etcd in the guest", () => {
    test("one member on loopback: put/get, a lease and a watch through the bundled etcd3 client", async (t) => {
      const cluster = await timedStart(t, 1);
      const client = new Etcd3({ hosts: cluster.endpoints });
      try {
        await exercise(client, "one");
      } finally {
        client.close();
        await timedStop(t, cluster);
      }
    });

    test("three members form one cluster, replicate, and keep serving with one member killed", async (t) => {
      const cluster = await timedStart(t, 3);
      const clients = cluster.endpoints.map((endpoint) => new Etcd3({ hosts: endpoint }));
      try {
        const members = await clients[0].cluster.memberList({});
        assert.equal(members.members.length, 3, "etcd lists three members");
        await exercise(clients[0], "three");
        await clients[0].put("three/replicated").value("everywhere");
        for (const client of clients) {
          // Each client talks to one member only: each of the three serves the write.
          assert.equal(await client.get("three/replicated").string(), "everywhere");
        }

        const killed = performance.now();
        await cluster.killMember(0);
        await cluster.waitHealthy();
        t.diagnostic(`member 0 killed; the other two healthy again in ${Math.round(performance.now() - killed)} ms`);
        await clients[1].put("three/after-kill").value("quorum");
        assert.equal(await clients[2].get("three/after-kill").string(), "quorum");
      } finally {
        for (const client of clients) client.close();
        await timedStop(t, cluster);
      }
    });
  });
}
