/**
 * PrefixWatch (src/cluster/watch.ts) over real etcd, its connection going through a TCP proxy
 * the test cuts: changes made while the connection is down arrive once each, in order, when it
 * returns; changes compacted away while it is down arrive as the net difference from what the
 * consumer had seen; live changes keep arriving after both.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Etcd3 } from "etcd3";
import { z } from "zod";
import { Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";
import { type PrefixChange, PrefixWatch } from "../../src/cluster/watch.js";
import { EtcdCluster } from "../support/etcd.js";
import { CuttableTcpProxy } from "../support/tcp-proxy.js";

let etcd: EtcdCluster;
let proxy: CuttableTcpProxy;
let direct: Etcd3;
before(async () => {
  etcd = await EtcdCluster.start(1);
  proxy = await CuttableTcpProxy.start(etcd.endpoints[0]);
  direct = new Etcd3({ hosts: etcd.endpoints });
});
after(async () => {
  direct.close();
  await proxy.stop();
  await etcd.stop();
});

/** A change as the test compares it. */
const row = (c: PrefixChange): string => `${c.type} ${c.key} ${c.value?.toString() ?? "-"} @${c.modRevision}`;

/** Puts through the direct client; answers the row the watch must deliver for it. */
async function put(key: string, value: string): Promise<string> {
  const { header } = await direct.put(key).value(value).exec();
  return `put ${key} ${value} @${header.revision}`;
}
async function del(key: string): Promise<string> {
  const { header } = await direct.delete().key(key).exec();
  return `delete ${key} - @${header.revision}`;
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Cuts the proxy and gives the client time to see the loss (its reconnection is refused). */
async function cutAndWaitForRetry(): Promise<void> {
  const refused = proxy.stats.refused;
  proxy.cut();
  // A watch that is not made again leaves the client nothing to reconnect for: no refusal then.
  await until("the client tries to reconnect", () => proxy.stats.refused > refused, 3_000).catch(() => undefined);
}

async function watching(prefix: string): Promise<{ watch: PrefixWatch; client: Etcd3; seen: string[] }> {
  const client = new Etcd3({ hosts: [proxy.url] });
  const seen: string[] = [];
  const watch = await PrefixWatch.start({ client, prefix, onChange: (c) => seen.push(row(c)) });
  return { watch, client, seen };
}

test(
  "a watch whose connection is cut resumes from the last revision delivered: every change once, in order",
  { timeout: 60_000 },
  async () => {
    const prefix = `/loam-test/prefix-watch-${process.pid}/resume/`;
    const expected = [await put(`${prefix}a`, "a1"), await put(`${prefix}b`, "b1")];
    const { watch, client, seen } = await watching(prefix);
    try {
      await until("the listing is delivered", () => seen.length === 2);
      expected.push(await put(`${prefix}c`, "c1"));
      await until("a live change is delivered", () => seen.length === 3);

      await cutAndWaitForRetry();
      const watchesBefore = watch.stats.watches;
      expected.push(
        await put(`${prefix}a`, "a2"),
        await del(`${prefix}b`),
        await put(`${prefix}d`, "d1"),
        await put(`${prefix}a`, "a3"),
        await put(`${prefix}b`, "b2"),
      );
      assert.equal(seen.length, 3, "nothing arrives while the connection is cut");
      proxy.restore();
      await until("the changes made while cut are delivered", () => seen.length >= expected.length);
      expected.push(await put(`${prefix}e`, "e1"));
      await until("a live change after the restore is delivered", () => seen.length >= expected.length);
      await sleep(500);
      assert.deepEqual(seen, expected, "each change once, in revision order");
      assert.ok(watch.stats.watches > watchesBefore, "the watch was made again after the loss");
      assert.equal(watch.stats.listings, 1, "resumed from a revision, not listed again");
    } finally {
      proxy.restore();
      await watch.stop();
      client.close();
    }
  },
);

test(
  "a watch resuming at a compacted revision lists again and delivers the net difference, then live changes",
  { timeout: 60_000 },
  async () => {
    const prefix = `/loam-test/prefix-watch-${process.pid}/compact/`;
    const listed = [
      await put(`${prefix}keep`, "k1"),
      await put(`${prefix}over`, "o1"),
      await put(`${prefix}gone`, "g1"),
      await put(`${prefix}back`, "b1"),
    ];
    const { watch, client, seen } = await watching(prefix);
    try {
      await until("the listing is delivered", () => seen.length === listed.length);
      assert.deepEqual(seen, listed);
      const live = await put(`${prefix}live`, "l1");
      await until("a live change is delivered", () => seen.length === listed.length + 1);
      assert.equal(seen.at(-1), live);

      await cutAndWaitForRetry();
      await put(`${prefix}over`, "o2");
      const over = await put(`${prefix}over`, "o3");
      await del(`${prefix}gone`);
      await put(`${prefix}brief`, "x1"); // put and deleted within the gap: never seen, never delivered
      await del(`${prefix}brief`);
      await del(`${prefix}back`);
      const back = await put(`${prefix}back`, "b2");
      const added = await put(`${prefix}new`, "n1");
      const { header } = await direct.get(`${prefix}keep`).exec();
      await direct.kv.compact({ revision: header.revision, physical: true });
      const listingsBefore = watch.stats.listings;
      const before = seen.length;
      proxy.restore();

      await until("the difference is delivered", () => seen.length >= before + 4);
      await sleep(300);
      const difference = seen.slice(before);
      assert.deepEqual(
        difference,
        [over, back, added, `delete ${prefix}gone - @${header.revision}`],
        "puts of what changed (by revision), deletes of what vanished; nothing unchanged, nothing seen twice",
      );
      assert.equal(watch.stats.listings, listingsBefore + 1, "listed again after the compaction");
      assert.equal(watch.upTo, header.revision);

      const after = await put(`${prefix}keep`, "k2");
      await until("a live change after the listing is delivered", () => seen.length === before + 5);
      await sleep(300);
      assert.deepEqual(seen.slice(before + 4), [after], "live again, nothing repeated");
    } finally {
      proxy.restore();
      await watch.stop();
      client.close();
    }
  },
);

test("stop() ends the watch: nothing is delivered after it", { timeout: 30_000 }, async () => {
  const prefix = `/loam-test/prefix-watch-${process.pid}/stop/`;
  const { watch, client, seen } = await watching(prefix);
  try {
    await put(`${prefix}a`, "1");
    await until("a change is delivered", () => seen.length === 1);
    await watch.stop();
    await put(`${prefix}a`, "2");
    await sleep(300);
    assert.equal(seen.length, 1);
  } finally {
    client.close();
  }
});

test(
  "Registry.waitFor outlives a cut connection and a compaction of the revisions it missed",
  { timeout: 60_000 },
  async () => {
    const key = `/loam-test/prefix-watch-${process.pid}/wait/status`;
    const client = new Etcd3({ hosts: [proxy.url] });
    const registry = new Registry(client, new Keys(`/loam-test/prefix-watch-${process.pid}/wait`));
    const schema = z.object({ state: z.string() });
    try {
      await direct
        .put(key)
        .value(JSON.stringify({ state: "working" }))
        .exec();
      // A key that only starts with the waited one: not its change.
      await direct
        .put(`${key}-other`)
        .value(JSON.stringify({ state: "ready (another key)" }))
        .exec();
      const waiting = registry.waitFor(
        schema,
        key,
        (s) => (s.value?.state.startsWith("ready") ? s.value : undefined),
        AbortSignal.timeout(30_000),
        "the test's key to be ready",
      );
      await sleep(300);
      await cutAndWaitForRetry();
      await direct
        .put(key)
        .value(JSON.stringify({ state: "ready" }))
        .exec();
      const { header } = await direct.put(`${key}-other`).value("{}").exec();
      await direct.kv.compact({ revision: header.revision, physical: true });
      proxy.restore();
      assert.deepEqual(await waiting, { state: "ready" });
    } finally {
      proxy.restore();
      client.close();
    }
  },
);
