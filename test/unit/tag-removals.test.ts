/**
 * TagRemovals (src/volumes/tag-removals.ts): the group commit that takes format-in-progress
 * marks off many volumes in one lvchange. The first removal runs at once; those asked while it
 * runs go together in the next; a refused batch is run again one LV at a time. Then the same
 * through loam's gRPC server: three first stages at once, two lvchange runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { TagRemovals } from "../../src/volumes/tag-removals.js";
import { KeyedLocks } from "../../src/volumes/locks.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { VG, makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

/** A removeTag that records its calls and holds each until released. */
function heldRemovals() {
  const calls: Array<{ vg: string; names: string[]; release: () => void; fail: (e: Error) => void }> = [];
  let arrived: (() => void) | undefined;
  const removals = new TagRemovals(
    (vg, names) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ vg, names: [...names], release: resolve, fail: reject });
        arrived?.();
      }),
    (_domain, fn) => fn(),
  );
  const nthCall = async (n: number) => {
    while (calls.length < n) await new Promise<void>((resolve) => (arrived = resolve));
    const call = calls[n - 1];
    if (!call) throw new Error(`no call ${n}`);
    return call;
  };
  return { removals, calls, nthCall };
}

test("tag removals: the first runs at once, alone; three asked while it runs go together in one", async () => {
  const { removals, calls, nthCall } = heldRemovals();
  const first = removals.remove("d0", "vg0", "a", "t");
  const one = await nthCall(1);
  assert.deepEqual(one.names, ["a"]);
  const rest = ["b", "c", "d"].map((name) => removals.remove("d0", "vg0", name, "t"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls.length, 1, "nothing else runs while the first does");
  one.release();
  await first;
  const two = await nthCall(2);
  assert.deepEqual(two.names, ["b", "c", "d"]);
  two.release();
  await Promise.all(rest);
  assert.equal(calls.length, 2);
});

test("tag removals: another domain is not held behind this one's", async () => {
  const { removals, nthCall } = heldRemovals();
  void removals.remove("d0", "vg0", "a", "t");
  await nthCall(1);
  void removals.remove("d1", "vg1", "b", "t");
  const other = await nthCall(2);
  assert.deepEqual([other.vg, other.names], ["vg1", ["b"]]);
});

test("tag removals: a removal waits for its domain's turn (lvcreates queued before it), then every removal that arrived meanwhile goes in one call", async () => {
  const locks = new KeyedLocks();
  const calls: string[][] = [];
  const removals = new TagRemovals(
    (_vg, names) => {
      calls.push([...names]);
      return Promise.resolve();
    },
    (domain, fn) => locks.withKeys([domain], fn),
  );
  let releaseCreate!: () => void;
  const create = locks.withKeys(["d0"], () => new Promise<void>((resolve) => (releaseCreate = resolve)));
  const asked = ["a", "b", "c"].map((name) => removals.remove("d0", "vg0", name, "t"));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(calls, [], "nothing runs while a create holds the domain");
  releaseCreate();
  await create;
  await Promise.all(asked);
  assert.deepEqual(calls, [["a", "b", "c"]]);
});

test("tag removals: a refused batch is run again per LV; the missing LV's caller alone gets the error", async () => {
  const { removals, nthCall } = heldRemovals();
  const first = removals.remove("d0", "vg0", "a", "t");
  const held = await nthCall(1);
  const asked = ["b", "gone", "c"].map((name) =>
    removals.remove("d0", "vg0", name, "t").then(
      () => "ok",
      (e: Error) => e.message,
    ),
  );
  held.release();
  await first;
  (await nthCall(2)).fail(new Error("Failed to find logical volume vg0/gone"));
  for (const [n, name] of [
    [3, "b"],
    [4, "gone"],
    [5, "c"],
  ] as const) {
    const alone = await nthCall(n);
    assert.deepEqual(alone.names, [name]);
    if (name === "gone") alone.fail(new Error("Failed to find logical volume vg0/gone"));
    else alone.release();
  }
  assert.deepEqual(await Promise.all(asked), ["ok", "Failed to find logical volume vg0/gone", "ok"]);
});

test("tag removals: three first stages at once through the server mount without waiting and take their marks off in two lvchange runs; behind a create in progress, in one", async () => {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  const csi = await startCsi({ made, host });
  try {
    const names = ["pv-a", "pv-b", "pv-c"];
    const create = (name: string) =>
      csi.client.call(Controller, "createVolume", {
        name,
        capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
        volumeCapabilities: [mount()],
        parameters: {},
      });
    for (const name of names) await create(name);
    const held = csi.lvm.pauseBefore("removeTags");
    const stage = (name: string) =>
      csi.client.call(Node, "nodeStageVolume", {
        volumeId: lvNameFor(name),
        stagingTargetPath: `${csi.kubeletDir}/plugins/loam/${name}/globalmount`,
        volumeCapability: mount("xfs"),
      });
    const unstage = (name: string) =>
      csi.client.call(Node, "nodeUnstageVolume", {
        volumeId: lvNameFor(name),
        stagingTargetPath: `${csi.kubeletDir}/plugins/loam/${name}/globalmount`,
      });
    const first = stage("pv-a");
    await held.reached;
    const others = [stage("pv-b"), stage("pv-c")];
    // Both reach the removal (their mkfs done) while the first lvchange is held.
    while (host.calls.filter((c) => c.method === "makeFilesystem").length < 3)
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all([first, ...others]);
    held.release();
    // A stage mounts without waiting for its mark's removal; unstage waits for it.
    for (const name of names) await unstage(name);
    const removals = csi.lvm.callsOf("removeTags").map((c) => [...(c.args[1] as string[])].sort());
    assert.deepEqual(removals, [[lvNameFor("pv-a")], [lvNameFor("pv-b"), lvNameFor("pv-c")]]);
    for (const name of names) assert.ok(!csi.lvm.lv(VG, lvNameFor(name))?.tags.includes(FORMATTING_TAG), name);

    // A storm: a create holds the VG's turn (paused in lvcreate) while two first stages finish mkfs.
    for (const name of ["pv-d", "pv-e"]) await create(name);
    const creating = csi.lvm.pauseBefore("createLv");
    const created = create("pv-f");
    await creating.reached;
    const before = csi.lvm.callsOf("removeTags").length;
    const storm = [stage("pv-d"), stage("pv-e")];
    while (host.calls.filter((c) => c.method === "makeFilesystem").length < 5)
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(csi.lvm.callsOf("removeTags").length, before, "no lvchange while the create holds the turn");
    await Promise.all(storm);
    creating.release();
    await created;
    for (const name of ["pv-d", "pv-e"]) await unstage(name);
    const after = csi.lvm
      .callsOf("removeTags")
      .slice(before)
      .map((c) => [...(c.args[1] as string[])].sort());
    assert.deepEqual(after, [[lvNameFor("pv-d"), lvNameFor("pv-e")]]);
  } finally {
    await csi.stop();
  }
});
