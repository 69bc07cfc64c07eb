import assert from "node:assert/strict";
import { test } from "node:test";
import { Keys } from "../../src/cluster/keys.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import {
  PLAN_EXTENT,
  SIZE_MIX,
  burstPlan,
  overcommitFigures,
  refusedAlthoughRoom,
  registryBytes,
} from "../../tools/bench/cluster-plan.js";

test("the burst plan is the same on every run, mixes the sizes, and gives the nodes the asked share of the bytes", () => {
  const plan = burstPlan(2000, 100, 85);
  assert.deepEqual(burstPlan(2000, 100, 85), plan, "same seed, same plan");
  assert.equal(plan.sizes.length, 2000);
  assert.equal(plan.capacities.length, 100);
  for (const { bytes } of SIZE_MIX) assert.ok(plan.sizes.includes(bytes), `the mix asks for ${bytes} bytes`);
  assert.ok(
    [...plan.sizes, ...plan.capacities].every((b) => b % PLAN_EXTENT === 0),
    "whole extents",
  );
  assert.equal(
    plan.requestedBytes,
    plan.sizes.reduce((a, b) => a + b, 0),
  );
  // 85 % of the bytes asked, less at most one extent per node of rounding down.
  const target = plan.requestedBytes * 0.85;
  assert.ok(
    plan.capacityBytes <= target && plan.capacityBytes > target - 100 * PLAN_EXTENT,
    String(plan.capacityBytes),
  );
  assert.ok(new Set(plan.capacities).size > 1, "nodes of several sizes");
  // 4 GiB requests are 10 % of the mix: far from all of one size.
  const large = plan.sizes.filter((s) => s === 4 * GiB).length;
  assert.ok(large > 120 && large < 280, `${large} requests of 4 GiB`);
});

test("a refusal counts as 'refused although room' only when some node still has its size free, rounded up to the extent", () => {
  const free = [100 * MiB, 1 * GiB, 0];
  assert.equal(refusedAlthoughRoom([2 * GiB, 4 * GiB], free), 0, "no node has room: honest refusals");
  assert.equal(refusedAlthoughRoom([GiB, 2 * GiB], free), 1, "one node could still take 1 GiB");
  // 1 GiB + 1 byte needs one more extent than the 1 GiB free.
  assert.equal(refusedAlthoughRoom([GiB + 1], free), 0);
  assert.equal(refusedAlthoughRoom([GiB - PLAN_EXTENT + 1], free), 1);
  assert.equal(refusedAlthoughRoom([], free), 0);
  assert.equal(refusedAlthoughRoom([PLAN_EXTENT], []), 0, "no nodes, no room");
});

test("over-commits sum the engines' refusals and name a node holding more than its capacity", () => {
  const figures = overcommitFigures([
    { id: "a", totalBytes: GiB, usedBytes: GiB, overcommitted: 0 },
    { id: "b", totalBytes: GiB, usedBytes: GiB + PLAN_EXTENT, overcommitted: 2 },
    { id: "c", totalBytes: GiB, usedBytes: 0, overcommitted: 1 },
  ]);
  assert.equal(figures.overcommits, 3);
  assert.deepEqual(figures.nodesOverCapacity, ["b"]);
  assert.deepEqual(overcommitFigures([{ id: "a", totalBytes: GiB, usedBytes: GiB, overcommitted: 0 }]), {
    overcommits: 0,
    nodesOverCapacity: [],
  });
});

test("registry bytes sort the keys by kind and count key and value bytes of a volume's spec, status and index", () => {
  const keys = new Keys("/loam/v1");
  const kv = (key: string, valueBytes: number) => ({ key, valueBytes });
  const bytes = registryBytes(keys, [
    kv(keys.volume("n1", "v1"), 500),
    kv(keys.volumeStatus("n1", "v1"), 200),
    kv(keys.volumeIndex("v1"), 30),
    kv(keys.ledger("n1"), 400),
    kv(keys.info("n1"), 250),
    kv(keys.election, 10),
  ]);
  assert.equal(bytes.byKind["volume spec"].keys, 1);
  assert.equal(bytes.byKind["volume spec"].bytes, keys.volume("n1", "v1").length + 500);
  assert.equal(bytes.byKind["volume status"].bytes, keys.volumeStatus("n1", "v1").length + 200);
  assert.equal(bytes.byKind["volume index"].bytes, keys.volumeIndex("v1").length + 30);
  assert.equal(bytes.byKind.ledger.bytes, keys.ledger("n1").length + 400);
  assert.equal(bytes.byKind.member.bytes, keys.info("n1").length + 250);
  assert.equal(bytes.byKind.other.keys, 1);
  assert.equal(
    bytes.volumeBytes,
    keys.volume("n1", "v1").length + keys.volumeStatus("n1", "v1").length + keys.volumeIndex("v1").length + 730,
  );
  assert.equal(
    bytes.totalBytes,
    Object.values(bytes.byKind).reduce((sum, k) => sum + k.bytes, 0),
  );
});
