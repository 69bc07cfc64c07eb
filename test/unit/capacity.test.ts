/** Capacity formulas on hand-written report figures (the VM suite checks them against real LVM). */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { LogicalVolume, VolumeGroupReport } from "../../src/lvm/report.js";
import { thickCapacity, thinCapacity, thinPoolOverThreshold, thinPoolState } from "../../src/volumes/capacity.js";
import { type DeviceClass, type VolumeLayout, singleThickClass } from "../../src/volumes/device-classes.js";
import { MiB } from "../../src/volumes/size.js";
import { logicalVolume } from "../support/lvm-objects.js";

const E = 4 * MiB;

const lv = logicalVolume;

function report(pvFreeExtents: number[], lvs: LogicalVolume[] = []): VolumeGroupReport {
  const free = pvFreeExtents.reduce((a, b) => a + b, 0);
  return {
    vg: {
      name: "vg",
      uuid: "v",
      sizeBytes: 1000 * E,
      freeBytes: free * E,
      extentSizeBytes: E,
      extentCount: 1000,
      freeExtentCount: free,
      pvCount: pvFreeExtents.length,
      lvCount: lvs.length,
      tags: [],
    },
    pvs: pvFreeExtents.map((f, i) => ({
      name: `/dev/pv${i}`,
      vgName: "vg",
      uuid: `p${i}`,
      sizeBytes: 500 * E,
      freeBytes: f * E,
      missing: false,
    })),
    lvs,
  };
}

const layout = (
  kind: VolumeLayout["kind"],
  extra: Partial<VolumeLayout> = {},
  cls: Partial<DeviceClass> = {},
): VolumeLayout => ({
  deviceClass: { ...singleThickClass("vg"), ...cls },
  kind,
  stripes: 1,
  mirrors: 0,
  ...extra,
});

test("linear: every free extent less the spare, rounded up to extents", () => {
  assert.equal(thickCapacity(report([100, 60]), layout("linear")).availableBytes, 160 * E);
  assert.equal(thickCapacity(report([100, 60]), layout("linear", {}, { spareBytes: 5 * MiB })).availableBytes, 158 * E);
});

test("striped: n times the n-th largest PV's free extents, bounded by the total, minimum n extents", () => {
  const two = thickCapacity(report([100, 60, 10]), layout("striped", { stripes: 2 }));
  assert.equal(two.availableBytes, 120 * E);
  assert.equal(two.minimumVolumeBytes, 2 * E);
  assert.equal(
    thickCapacity(report([100, 60]), layout("striped", { stripes: 2 }, { spareBytes: 50 * E })).availableBytes,
    110 * E,
  );
});

test("raid1: each copy is its data plus one metadata extent on its own PV", () => {
  assert.equal(thickCapacity(report([100, 60]), layout("raid1", { mirrors: 1 })).availableBytes, 59 * E);
  assert.equal(
    thickCapacity(report([100, 100]), layout("raid1", { mirrors: 1 }, { spareBytes: 20 * E })).availableBytes,
    89 * E,
  );
  assert.equal(thickCapacity(report([100]), layout("raid1", { mirrors: 1 })).availableBytes, 0);
});

const thinClass = (ratio: number, extra: Partial<DeviceClass> = {}): DeviceClass => ({
  ...singleThickClass("vg"),
  name: "thin",
  type: "thin",
  thinPool: "pool",
  overprovisionRatio: ratio,
  ...extra,
});

function pooled(
  poolExtents: number,
  dataPercent: number,
  virtualExtents: number[],
  metadataPercent = 1,
): VolumeGroupReport {
  return report(
    [10],
    [
      lv({ name: "pool", segType: "thin-pool", sizeBytes: poolExtents * E, dataPercent, metadataPercent }),
      ...virtualExtents.map((v, i) => lv({ name: `t${i}`, segType: "thin", poolLv: "pool", sizeBytes: v * E })),
      lv({ name: "elsewhere", segType: "thin", poolLv: "otherpool", sizeBytes: 999 * E }),
    ],
  );
}

test("thin ratio 1: pool size minus the virtual sizes in that pool only", () => {
  const state = thinPoolState(pooled(64, 0, [16, 8]), "pool")!;
  assert.equal(state.virtualBytes, 24 * E);
  assert.equal(thinCapacity(state, thinClass(1), E).availableBytes, 40 * E);
});

test("thin ratio 5: the lesser of 5 × pool − virtual and what real data use leaves", () => {
  const roomy = thinPoolState(pooled(64, 0, [16]), "pool")!;
  assert.equal(thinCapacity(roomy, thinClass(5), E).availableBytes, 64 * E);
  const full = thinPoolState(pooled(64, 0, [64, 64, 64, 64, 60]), "pool")!;
  assert.equal(thinCapacity(full, thinClass(5), E).availableBytes, 4 * E);
  // 12.5% of 64 extents is 8 extents used: 56 left by data.
  const used = thinPoolState(pooled(64, 12.5, [16]), "pool")!;
  assert.equal(thinCapacity(used, thinClass(5), E).availableBytes, 56 * E);
});

test("a pool above its data or metadata threshold offers nothing and says why", () => {
  const hot = thinPoolState(pooled(64, 91, [16]), "pool")!;
  assert.equal(thinCapacity(hot, thinClass(5), E).availableBytes, 0);
  assert.match(
    thinPoolOverThreshold(hot, thinClass(5)) ?? "",
    /thin pool vg\/pool data usage is 91% \(above the threshold of 90%/,
  );
  const meta = thinPoolState(pooled(64, 1, [16], 50), "pool")!;
  assert.match(
    thinPoolOverThreshold(meta, thinClass(5, { metadataThresholdPercent: 40 })) ?? "",
    /metadata usage is 50%/,
  );
  assert.equal(thinPoolOverThreshold(meta, thinClass(5)), undefined);
});
