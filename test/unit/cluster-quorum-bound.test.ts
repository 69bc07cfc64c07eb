/**
 * The quorum watch's bound, on a real etcd member behind a TCP proxy the test cuts: checks that
 * fail for less than the bound (one slow or lost check, a busy machine) leave the registry
 * writable; once no check has confirmed quorum for the bound, writes are refused at once, and
 * a state asked for between checks is already right (it is evaluated when asked).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Etcd3 } from "etcd3";
import { noop } from "cockatiel";
import { QuorumWatch } from "../../src/cluster/quorum.js";
import { EtcdCluster } from "../support/etcd.js";
import { CuttableTcpProxy } from "../support/tcp-proxy.js";

let etcd: EtcdCluster;
let proxy: CuttableTcpProxy;
before(async () => {
  etcd = await EtcdCluster.start(1);
  proxy = await CuttableTcpProxy.start(etcd.endpoints[0]);
});
after(async () => {
  await proxy.stop();
  await etcd.stop();
});

test("checks failing for less than the bound leave etcd writable; past the bound writes are refused, and quorum back clears it", async () => {
  const BOUND_MS = 2000;
  const changes: boolean[] = [];
  const watch = new QuorumWatch({
    members: [
      {
        endpoint: proxy.url,
        client: new Etcd3({ hosts: [proxy.url], faultHandling: { host: () => noop, global: noop } }),
      },
    ],
    key: "/loam-bound-test",
    boundMs: BOUND_MS,
    onChange: (w) => changes.push(w),
  });
  try {
    await watch.start();
    assert.equal(watch.writable, true);

    // Cut for 60% of the bound: at least one check fails, the state never changes.
    proxy.cut();
    const shortCut = performance.now();
    while (performance.now() - shortCut < BOUND_MS * 0.6) {
      assert.equal(watch.writable, true, `writable ${Math.round(performance.now() - shortCut)} ms into a short cut`);
      await sleep(50);
    }
    await watch.check();
    assert.equal(watch.writable, true, "a check failed within the bound and etcd stayed writable");
    proxy.restore();
    await watch.check();
    assert.deepEqual(changes, [true], "no change published for the short cut");

    // Cut for good: refused once the bound passes, without waiting for a check to end.
    proxy.cut();
    const cutAt = performance.now();
    while (watch.writable) {
      assert.ok(performance.now() - cutAt < BOUND_MS * 2, "refused within twice the bound");
      await sleep(20);
    }
    const refusedAfter = performance.now() - cutAt;
    assert.ok(
      refusedAfter >= BOUND_MS * 0.5,
      `not refused before the bound could pass (${Math.round(refusedAfter)} ms)`,
    );
    assert.match(
      watch.refusal('create volume "x"')?.message ?? "",
      /read-only because no quorum: no etcd member confirmed quorum for 2000 ms/,
    );
    assert.deepEqual(changes, [true, false]);

    proxy.restore();
    const back = performance.now();
    while (!watch.writable) {
      assert.ok(performance.now() - back < 10_000, "writable again once etcd answers");
      await sleep(50);
    }
    assert.deepEqual(changes, [true, false, true]);
  } finally {
    watch.stop();
  }
});
