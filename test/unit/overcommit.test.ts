/**
 * Concurrent allocation at the edge of what fits (issue 13, items 6 and 9): VolumeEngine over
 * the in-memory LVM stand-in, where nothing but promises runs, so "every call has gone as far
 * as it can" is a fact the test can wait for. Each storm holds the first LVM command of its
 * kind (lvcreate, the snapshot's lvcreate, lvextend) at the stand-in's pauseBefore barrier
 * until every other call of the storm has gone as far as it can, then lets it go: the
 * interleaving in which all of them check the room before any of them spends it is forced,
 * not hoped for. Exactly the calls that fit succeed; the rest are RESOURCE_EXHAUSTED
 * ("resource-exhausted": the CSI spec's code for CreateVolume and CreateSnapshot without room;
 * NodeExpandVolume keeps OUT_OF_RANGE for a range it does not support, and a retry can succeed
 * once room is freed). The fixture VG has two PVs of 255 extents of 4 MiB.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lvNameFor } from "../../src/lvm/names.js";
import type { DeviceClass } from "../../src/volumes/device-classes.js";
import { VolumeError } from "../../src/volumes/errors.js";
import type { VolumeEngine } from "../../src/volumes/engine.js";
import { MiB } from "../../src/volumes/size.js";
import type { InMemoryLvmStandIn, LvmMethod } from "../support/in-memory-lvm.js";
import { EXTENT, THIN_POOL, VG, makeEngine, thickClass } from "../support/engine.js";

const E = EXTENT;
const POOL = 512 * MiB;
const BUDGET = 4 * POOL; // thinClass(): overprovisionRatio 4

interface World {
  engine: VolumeEngine;
  lvm: InMemoryLvmStandIn;
}
const world = (classes?: readonly DeviceClass[]): Promise<World> => makeEngine(classes ? { classes } : {});

const thick = { shaping: {}, metadata: {} };
const thin = { shaping: { "loam.csi.dev/deviceClass": "thin" }, metadata: {} };
const range = (mib: number) => ({ requiredBytes: BigInt(mib * MiB), limitBytes: 0n });
const create = (w: World, name: string, mib: number, parameters = thick) =>
  w.engine.createVolume({ name, range: range(mib), parameters });
const expand = (w: World, name: string, mib: number) => w.engine.expandVolume(lvNameFor(name), range(mib));
const snapshot = (w: World, name: string, source: string) =>
  w.engine.createSnapshot({ name, sourceVolumeId: lvNameFor(source) });
const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Turns of the event loop until the stand-in has seen no new call for several of them: every request has gone as far as it can. */
async function idle(lvm: InMemoryLvmStandIn): Promise<void> {
  let seen = -1;
  for (let quiet = 0; quiet < 10;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (lvm.calls.length === seen) quiet++;
    else {
      quiet = 0;
      seen = lvm.calls.length;
    }
  }
}

/**
 * Starts every call, holds the first `method` until the rest have gone as far as they can,
 * then releases it; answers how many succeeded, and the gRPC codes of the failures.
 */
async function storm(
  lvm: InMemoryLvmStandIn,
  method: LvmMethod,
  calls: ReadonlyArray<() => Promise<unknown>>,
): Promise<{ ok: number; codes: string[] }> {
  const gate = lvm.pauseBefore(method);
  const settled = Promise.allSettled(calls.map((call) => call()));
  await gate.reached;
  await idle(lvm);
  gate.release();
  const results = await settled;
  const codes = results.flatMap((r) =>
    r.status === "fulfilled" ? [] : [r.reason instanceof VolumeError ? r.reason.kind : String(r.reason)],
  );
  return { ok: results.length - codes.length, codes };
}

const exhausted = (n: number): string[] => Array.from({ length: n }, () => "resource-exhausted");

/** Σ virtual sizes of the thin LVs in the pool, as the stand-in holds them. */
function virtualBytes(lvm: InMemoryLvmStandIn): number {
  const report = lvm.snapshotOf(VG);
  return (report?.lvs ?? [])
    .filter((lv) => lv.segType === "thin" && lv.poolLv === THIN_POOL)
    .reduce((sum, lv) => sum + lv.sizeBytes, 0);
}
const freeExtents = (lvm: InMemoryLvmStandIn): number => lvm.snapshotOf(VG)?.vg.freeExtentCount ?? -1;

test("12 concurrent thin CreateVolumes at the edge of the overprovision ratio: exactly the 4 that fit are made", async () => {
  const w = await world();
  for (const name of names("before", 4)) await create(w, name, 256, thin);
  // 1024 of 2048 MiB of the budget left: four more 256 MiB volumes.
  const result = await storm(
    w.lvm,
    "createLv",
    names("storm", 12).map((name) => () => create(w, name, 256, thin)),
  );
  assert.deepEqual(result, { ok: 4, codes: exhausted(8) });
  assert.equal(virtualBytes(w.lvm), BUDGET);
});

test("16 concurrent thick CreateVolumes at the edge of the class's spare: exactly the 11 that fit are made", async () => {
  // 510 free extents, 50 kept spare: eleven volumes of 40 extents (a twelfth would still fit the VG).
  const w = await world([thickClass({ spareBytes: 50 * E })]);
  const result = await storm(
    w.lvm,
    "createLv",
    names("storm", 16).map((name) => () => create(w, name, 160)),
  );
  assert.deepEqual(result, { ok: 11, codes: exhausted(5) });
  assert.equal(freeExtents(w.lvm), 510 - 11 * 40);
});

test("12 concurrent CreateSnapshots of different volumes at the edge of the ratio: exactly the 4 that fit are made", async () => {
  const w = await world();
  const sources = names("source", 12);
  for (const name of sources) await create(w, name, 128, thin);
  // 1536 of 2048 MiB spent: four 128 MiB snapshots.
  const result = await storm(
    w.lvm,
    "createThinSnapshot",
    sources.map((name) => () => snapshot(w, `snap-${name}`, name)),
  );
  assert.deepEqual(result, { ok: 4, codes: exhausted(8) });
  assert.equal(virtualBytes(w.lvm), BUDGET);
});

test("12 concurrent thin expansions at the edge of the ratio: exactly the 6 that fit grow", async () => {
  const w = await world();
  const volumes = names("grow", 12);
  for (const name of volumes) await create(w, name, 64, thin);
  // 768 of 2048 MiB spent; each grows by 192 MiB: six fit in the 1280 left.
  const result = await storm(
    w.lvm,
    "extendLv",
    volumes.map((name) => () => expand(w, name, 256)),
  );
  assert.deepEqual(result, { ok: 6, codes: exhausted(6) });
  assert.equal(virtualBytes(w.lvm), 6 * 256 * MiB + 6 * 64 * MiB);
});

test("8 concurrent thick expansions at the edge of the class's spare: exactly the 6 that fit grow", async () => {
  // 8 × 10 extents made: 430 free, 50 spare, 380 usable; each grows by 60: six fit (a seventh would still fit the VG).
  const w = await world([thickClass({ spareBytes: 50 * E })]);
  const volumes = names("grow", 8);
  for (const name of volumes) await create(w, name, 40);
  const result = await storm(
    w.lvm,
    "extendLv",
    volumes.map((name) => () => expand(w, name, 280)),
  );
  assert.deepEqual(result, { ok: 6, codes: exhausted(2) });
  assert.equal(freeExtents(w.lvm), 430 - 6 * 60);
});

test("concurrent creates and expansions share one VG's spare: together never past it", async () => {
  const w = await world([thickClass({ spareBytes: 50 * E })]);
  const volumes = names("grow", 4);
  for (const name of volumes) await create(w, name, 40);
  // 470 free, 420 usable: 4 growths of 60 and 8 creates of 40 ask for 560.
  const result = await storm(w.lvm, "createLv", [
    ...volumes.map((name) => () => expand(w, name, 280)),
    ...names("new", 8).map((name) => () => create(w, name, 160)),
  ]);
  assert.ok(freeExtents(w.lvm) >= 50, `${freeExtents(w.lvm)} free extents, 50 kept spare`);
  assert.equal(result.codes.length > 0, true);
  assert.deepEqual(result.codes, exhausted(result.codes.length));
});

test("expanding a raid1 volume counts both copies and the spare, as creating one does", async () => {
  // Spare 100 extents. A raid1 of 100 extents takes 2 × (100 + 1): 308 free, 208 usable, 154 on each PV.
  const w = await world([thickClass({ mirrors: 1, spareBytes: 100 * E })]);
  await create(w, "mirror", 400);
  const id = lvNameFor("mirror");
  assert.equal(freeExtents(w.lvm), 308);
  // Growing by 150 extents would take 300: it fits the VG (and each PV) but eats the spare.
  await assert.rejects(expand(w, "mirror", 1000), (error: unknown) => {
    assert.ok(error instanceof VolumeError);
    assert.equal(error.kind, "resource-exhausted");
    assert.match(
      error.message,
      /^cannot grow \S+ by 629145600 bytes: 436207616 bytes available \(volume group loamfx: 308 free extents of 4194304 bytes, 100 kept spare by device class "thick"; raid1 with 2 copies, each growing by 104 extents on its own physical volume\)$/,
    );
    return true;
  });
  assert.equal(w.lvm.lv(VG, id)?.sizeBytes, 400 * MiB);
  // 104 extents more on each copy is exactly what is left above the spare.
  assert.equal((await expand(w, "mirror", 816)).sizeBytes, 816 * MiB);
  assert.equal(freeExtents(w.lvm), 100);
  // GetCapacity agrees: nothing left for another raid1 volume of this class.
  assert.equal((await w.engine.capacity({})).availableBytes, 0);
});

test("expanding a striped volume counts whole stripes against the spare", async () => {
  // Spare 10 extents; 2 stripes of 10 extents made: 490 free, 480 usable, 245 on each PV.
  const w = await world([thickClass({ stripes: 2, spareBytes: 10 * E })]);
  await create(w, "striped", 80);
  await assert.rejects(expand(w, "striped", 80 + 481 * 4), (error: unknown) => {
    assert.ok(error instanceof VolumeError);
    assert.equal(error.kind, "resource-exhausted");
    // 481 extents round up to 482, two stripes of 241.
    assert.match(
      error.message,
      /^cannot grow \S+ by 2021654528 bytes: 2013265920 bytes available .*2 stripes of 240 extents/,
    );
    return true;
  });
  assert.equal((await expand(w, "striped", 80 + 480 * 4)).sizeBytes, (80 + 480 * 4) * MiB);
  assert.equal(freeExtents(w.lvm), 10);
});
