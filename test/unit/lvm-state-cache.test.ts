/**
 * The engine's LVM state cache, against a stand-in Lvm that counts reports and a stand-in
 * metadata stamp (the real stamp is tested on real PVs in lvm-metadata-area.test.ts, the cache
 * against real LVM in the VM suite).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Lvm } from "../../src/lvm/lvm.js";
import type { LogicalVolume, VolumeGroupReport } from "../../src/lvm/report.js";
import { LvmStateCache } from "../../src/volumes/lvm-state-cache.js";
import { logicalVolume } from "../support/lvm-objects.js";

const EXTENT = 4 * 1024 * 1024;

function lv(name: string, sizeBytes: number): LogicalVolume {
  return logicalVolume({ name, uuid: name, sizeBytes, devicePath: `/dev/vg/${name}` });
}

function world() {
  const state = {
    reports: 0,
    stamp: "s1",
    stampFails: false,
    lvs: [lv("a", 10 * EXTENT)],
    free: 100,
    /** Resolves the next report only when released, to race changes against it. */
    gate: undefined as Promise<void> | undefined,
  };
  const report = (): VolumeGroupReport => ({
    vg: {
      name: "vg",
      uuid: "u",
      sizeBytes: 200 * EXTENT,
      freeBytes: state.free * EXTENT,
      extentSizeBytes: EXTENT,
      extentCount: 200,
      freeExtentCount: state.free,
      pvCount: 1,
      lvCount: state.lvs.length,
      tags: [],
    },
    pvs: [
      {
        name: "/dev/standin0",
        vgName: "vg",
        uuid: "p",
        sizeBytes: 200 * EXTENT,
        freeBytes: state.free * EXTENT,
        missing: false,
      },
    ],
    lvs: state.lvs.map((l) => ({ ...l })),
  });
  const lvm = {
    reportAll: async () => {
      state.reports++;
      const taken = report();
      if (state.gate) await state.gate;
      return [taken];
    },
  } as unknown as Lvm;
  const cache = new LvmStateCache(lvm, ["vg"], {
    stamp: () => (state.stampFails ? Promise.reject(new Error("unreadable")) : Promise.resolve(state.stamp)),
  });
  return { state, cache };
}

test("LVM state cache (stand-in LVM): an unchanged metadata stamp serves the cached state without a report", async () => {
  const { state, cache } = world();
  const first = await cache.get("lookup");
  assert.equal(first.fresh, true);
  const second = await cache.get("capacity");
  assert.equal(state.reports, 1);
  assert.equal(second.fresh, false);
  assert.deepEqual(second.reports, first.reports);
});

test("LVM state cache (stand-in LVM): a caller arriving while loam stamps its own change waits for that stamp instead of reading LVM", async () => {
  const state = { reports: 0, stamp: "s1" };
  let releaseStamp: (() => void) | undefined;
  const lvm = {
    reportAll: () => {
      state.reports++;
      return Promise.resolve([
        {
          vg: {
            name: "vg",
            uuid: "u",
            sizeBytes: 0,
            freeBytes: 0,
            extentSizeBytes: EXTENT,
            extentCount: 0,
            freeExtentCount: 100,
            pvCount: 1,
            lvCount: 0,
            tags: [],
          },
          pvs: [{ name: "/dev/standin0", vgName: "vg", uuid: "p", sizeBytes: 0, freeBytes: 0, missing: false }],
          lvs: [],
        },
      ] as VolumeGroupReport[]);
    },
  } as unknown as Lvm;
  const cache = new LvmStateCache(lvm, ["vg"], {
    // The stamp after the change is held until released: the window a storm's callers fell into.
    stamp: () =>
      releaseStamp === undefined && state.stamp === "s2"
        ? new Promise<string>((resolve) => (releaseStamp = () => resolve(state.stamp)))
        : Promise.resolve(state.stamp),
  });
  await cache.get("lookup");
  state.stamp = "s2"; // loam's lvcreate committed
  const applying = cache.apply("vg", { kind: "created", lv: lv("c", 5 * EXTENT), extents: 5 });
  const meanwhile = cache.get("lookup");
  await new Promise((resolve) => setImmediate(resolve));
  releaseStamp?.();
  await applying;
  const seen = await meanwhile;
  assert.equal(state.reports, 1, "no report for a caller that arrived while the change was stamped");
  assert.deepEqual(
    seen.reports[0].lvs.map((l) => l.name),
    ["c"],
  );
});

test("LVM state cache (stand-in LVM): a caller arriving while loam's own command has committed but not returned waits for its change instead of reading LVM", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  // The lvcreate in flight: it commits (the stamp changes) long before it returns.
  let finish!: () => void;
  const returned = new Promise<void>((resolve) => (finish = resolve));
  const creating = cache
    .own(async () => {
      state.stamp = "s2";
      state.lvs.push(lv("c", 5 * EXTENT));
      await returned;
    })
    .then(() => cache.apply("vg", { kind: "created", lv: lv("c", 5 * EXTENT), extents: 5 }));
  await new Promise((resolve) => setImmediate(resolve));
  const meanwhile = cache.get("lookup");
  let answered = false;
  void meanwhile.then(() => (answered = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(answered, false, "the caller waits while the command runs");
  finish();
  await creating;
  const seen = await meanwhile;
  assert.equal(state.reports, 1, "no report: the caller got loam's applied change");
  assert.equal(seen.fresh, false);
  assert.deepEqual(
    seen.reports[0].lvs.map((l) => l.name),
    ["a", "c"],
  );
});

test("LVM state cache (stand-in LVM): a 'named' caller does not wait for loam's own command under way, and reads nothing", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  let finish!: () => void;
  const returned = new Promise<void>((resolve) => (finish = resolve));
  const removing = cache
    .own(async () => {
      state.stamp = "s2"; // the lvchange --deltag has committed
      await returned;
    })
    .then(() => cache.apply("vg", { kind: "updated", name: "a", patch: { tags: [] }, extents: 0 }));
  await new Promise((resolve) => setImmediate(resolve));
  let waited = false;
  const lookup = cache.get("lookup").then(() => (waited = true));
  const named = await Promise.race([
    cache.get("named"),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500)),
  ]);
  assert.ok(named, "the named caller waited for loam's own command");
  assert.equal(waited, false, "a plain lookup is still waiting for the command");
  assert.equal(state.reports, 1, "no report for the named caller");
  assert.equal(named.fresh, false);
  assert.deepEqual(
    named.reports[0].lvs.map((l) => l.name),
    ["a"],
  );
  finish();
  await removing;
  await lookup;
  assert.equal(state.reports, 1);
});

test("LVM state cache (stand-in LVM): a 'named' caller still reads LVM when the stamp moved and no command of loam's runs", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  state.lvs.push(lv("b", EXTENT));
  state.stamp = "s2";
  const seen = await cache.get("named");
  assert.equal(state.reports, 2);
  assert.deepEqual(
    seen.reports[0].lvs.map((l) => l.name),
    ["a", "b"],
  );
});

test("LVM state cache (stand-in LVM): a command of loam's that fails leaves the waiting caller a report", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  const failing = cache
    .own(async () => {
      state.stamp = "s2";
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error("lvcreate failed after its commit");
    })
    .catch(() => cache.invalidate());
  await new Promise((resolve) => setImmediate(resolve));
  const seen = await cache.get("lookup");
  await failing;
  assert.equal(state.reports, 2, "the state was invalidated: read again");
  assert.equal(seen.fresh, true);
});

test("LVM state cache (stand-in LVM): a changed stamp (someone else's commit) reads LVM again", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  state.lvs.push(lv("b", EXTENT));
  state.stamp = "s2";
  const again = await cache.get("lookup");
  assert.equal(state.reports, 2);
  assert.deepEqual(
    again.reports[0].lvs.map((l) => l.name),
    ["a", "b"],
  );
});

test("LVM state cache (stand-in LVM): loam's own create and remove are applied without a report, free extents exact", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  state.stamp = "s2"; // the lvcreate's commit
  await cache.apply("vg", { kind: "created", lv: lv("c", 5 * EXTENT), extents: 5 });
  let seen = await cache.get("capacity");
  assert.equal(state.reports, 1);
  assert.deepEqual(
    seen.reports[0].lvs.map((l) => l.name),
    ["a", "c"],
  );
  assert.equal(seen.reports[0].vg.freeExtentCount, 95);
  assert.equal(seen.reports[0].vg.freeBytes, 95 * EXTENT);
  assert.equal(seen.exact, false, "per-PV free space is unknown after a thick allocation");
  state.stamp = "s3";
  await cache.apply("vg", { kind: "removed", name: "a", extents: -10 });
  seen = await cache.get("lookup");
  assert.equal(state.reports, 1);
  assert.deepEqual(
    seen.reports[0].lvs.map((l) => l.name),
    ["c"],
  );
  assert.equal(seen.reports[0].vg.freeExtentCount, 105);
});

test("LVM state cache (stand-in LVM): a layout that needs per-PV free space reads again after a thick change", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  await cache.apply("vg", { kind: "created", lv: lv("c", 5 * EXTENT), extents: 5 });
  await cache.get("capacity");
  assert.equal(state.reports, 1);
  const exact = await cache.get("exact");
  assert.equal(state.reports, 2);
  assert.equal(exact.exact, true);
});

test("LVM state cache (stand-in LVM): a change of unknown cost is not guessed at", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  await cache.apply("vg", { kind: "created", lv: { ...lv("r", EXTENT), segType: "raid1" }, extents: undefined });
  await cache.get("lookup");
  assert.equal(state.reports, 2);
});

test("LVM state cache (stand-in LVM): a report that raced one of loam's changes is not trusted afterwards", async () => {
  const { state, cache } = world();
  await cache.get("lookup");
  state.stamp = "s2";
  cache.invalidate();
  let release!: () => void;
  state.gate = new Promise((resolve) => (release = resolve));
  const reading = cache.get("lookup");
  await new Promise((resolve) => setImmediate(resolve));
  await cache.apply("vg", { kind: "created", lv: lv("c", EXTENT), extents: 1 });
  state.gate = undefined;
  release();
  await reading;
  await cache.get("lookup");
  assert.equal(state.reports, 3, "the raced report (the second) must be followed by a third");
});

test("LVM state cache (stand-in LVM): unreadable physical volumes mean a report every time", async () => {
  const { state, cache } = world();
  state.stampFails = true;
  await cache.get("lookup");
  await cache.get("lookup");
  assert.equal(state.reports, 2);
});

test("LVM state cache (stand-in LVM): concurrent callers share one report", async () => {
  const { state, cache } = world();
  await Promise.all([cache.get("lookup"), cache.get("lookup"), cache.get("capacity")]);
  assert.equal(state.reports, 1);
});

test("LVM state cache (stand-in LVM): a cache older than its maximum age is read again", async () => {
  const { state } = world();
  const lvm = {
    reportAll: () => {
      state.reports++;
      return Promise.resolve([]);
    },
  } as unknown as Lvm;
  const cache = new LvmStateCache(lvm, ["vg"], { maxAgeMs: 0, stamp: () => Promise.resolve("same") });
  await cache.get("lookup");
  await cache.get("lookup");
  assert.equal(state.reports, 2);
});
