/**
 * The in-memory LVM stand-in behaves like the facade it stands in for: shapes from the
 * captured fixtures, honest extents, the facade's typed errors. Then the engine and the gRPC
 * server over it, end to end (create, list, delete; capacity moves).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  InsufficientPhysicalVolumesError,
  InsufficientSpaceError,
  InvalidLvmArgumentError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LogicalVolumeShrinkError,
  ThinPoolNotActiveError,
  VolumeGroupNotFoundError,
  encodeTag,
} from "../../src/lvm/index.js";
import { thickCapacity } from "../../src/volumes/capacity.js";
import { singleThickClass } from "../../src/volumes/device-classes.js";
import { MiB } from "../../src/volumes/size.js";
import { Controller, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { InMemoryLvmStandIn, fixtureReports } from "../support/in-memory-lvm.js";
import { EXTENT, THIN_POOL, VG, makeEngine, startCsi } from "../support/engine.js";

const E = EXTENT;
const tag = encodeTag("name", "x");
const free = (lvm: InMemoryLvmStandIn, vg = VG) => {
  const report = lvm.snapshotOf(vg);
  assert.ok(report);
  return { vg: report.vg.freeExtentCount, bytes: report.vg.freeBytes, pvs: report.pvs.map((pv) => pv.freeBytes / E) };
};

test("stand-in: seeded from a captured fullreport, it reports what the real parser read", async () => {
  const lvm = new InMemoryLvmStandIn(fixtureReports("fullreport-two-vgs"));
  const [one, two] = await lvm.reportAll(["loamfx", "loamfx2"]);
  const expected = fixtureReports("fullreport-two-vgs");
  assert.deepEqual(one.vg, expected[0].vg);
  assert.deepEqual(one.pvs, expected[0].pvs);
  assert.deepEqual(
    one.lvs.map((lv) => [lv.name, lv.sizeBytes, lv.segType, lv.tags]),
    expected[0].lvs.map((lv) => [lv.name, lv.sizeBytes, lv.segType, lv.tags]),
  );
  assert.equal(two.vg.name, "loamfx2");
  await assert.rejects(lvm.report("nosuchvg"), VolumeGroupNotFoundError);
  await assert.rejects(lvm.reportAll(["loamfx", "nosuchvg"]), VolumeGroupNotFoundError);
  await assert.rejects(lvm.report("bad/name"), InvalidLvmArgumentError);
  assert.deepEqual(lvm.methods(), ["reportAll", "report", "reportAll"]);
});

test("stand-in: linear LVs take whole extents from the PVs in order and give them back on removal", async () => {
  const lvm = new InMemoryLvmStandIn();
  assert.deepEqual(free(lvm), { vg: 510, bytes: 510 * E, pvs: [255, 255] });
  await lvm.createLv({ vg: VG, name: "a", sizeBytes: 300 * E + 1, tags: [tag] });
  assert.deepEqual(free(lvm), { vg: 209, bytes: 209 * E, pvs: [0, 209] });
  const a = lvm.lv(VG, "a");
  assert.equal(a?.sizeBytes, 301 * E);
  assert.equal(a?.segType, "linear");
  assert.equal(a?.attr, "-wi-a-----");
  assert.equal(a?.devicePath, `/dev/${VG}/a`);
  assert.deepEqual(a?.tags, [tag]);
  await lvm.removeLv(VG, "a");
  assert.deepEqual(free(lvm), { vg: 510, bytes: 510 * E, pvs: [255, 255] });
});

test("stand-in: striped and raid1 LVs follow the capacity rules of src/volumes/capacity.ts", async () => {
  const lvm = new InMemoryLvmStandIn();
  await lvm.createLv({ vg: VG, name: "filler", sizeBytes: 55 * E, tags: [] });
  const raid = { ...singleThickClass(VG) };
  const report = lvm.snapshotOf(VG);
  assert.ok(report);
  const room = thickCapacity(report, { deviceClass: raid, kind: "raid1", stripes: 1, mirrors: 1 });
  assert.equal(room.availableBytes, 199 * E);
  await assert.rejects(
    lvm.createLv({ vg: VG, name: "r", sizeBytes: room.availableBytes + E, tags: [], mirrors: 1 }),
    InsufficientSpaceError,
  );
  await lvm.createLv({ vg: VG, name: "r", sizeBytes: room.availableBytes, tags: [], mirrors: 1 });
  assert.deepEqual(free(lvm).pvs, [0, 55]);
  const r = lvm.snapshotOf(VG)?.lvs.filter((lv) => lv.name.includes("r_r"));
  assert.deepEqual(
    r?.map((lv) => [lv.name, lv.internal]),
    [
      ["[r_rimage_0]", true],
      ["[r_rmeta_0]", true],
      ["[r_rimage_1]", true],
      ["[r_rmeta_1]", true],
    ],
  );
  await lvm.removeLv(VG, "r");
  await lvm.createLv({ vg: VG, name: "s", sizeBytes: 3 * E, tags: [], stripes: 2, stripeSizeBytes: 128 * 1024 });
  const s = lvm.lv(VG, "s");
  assert.deepEqual([s?.sizeBytes, s?.stripes, s?.stripeSizeBytes, s?.segType], [4 * E, 2, 128 * 1024, "striped"]);
  assert.deepEqual(free(lvm).pvs, [198, 253]);
  await assert.rejects(
    lvm.createLv({ vg: VG, name: "s3", sizeBytes: 3 * E, tags: [], stripes: 3 }),
    InsufficientPhysicalVolumesError,
  );
  await assert.rejects(
    lvm.createLv({ vg: VG, name: "s4", sizeBytes: 400 * E, tags: [], stripes: 2 }),
    /Insufficient suitable allocatable extents/,
  );
});

test("stand-in: the facade's typed errors, from LVM's own sentences", async () => {
  const lvm = new InMemoryLvmStandIn();
  await lvm.createLv({ vg: VG, name: "a", sizeBytes: 4 * E, tags: [] });
  const cases: Array<[string, () => Promise<unknown>, new (...args: never[]) => Error, RegExp]> = [
    [
      "exists",
      () => lvm.createLv({ vg: VG, name: "a", sizeBytes: E, tags: [] }),
      LogicalVolumeExistsError,
      /Logical Volume "a" already exists in volume group "loamfx"/,
    ],
    [
      "no room",
      () => lvm.createLv({ vg: VG, name: "b", sizeBytes: 600 * E, tags: [] }),
      InsufficientSpaceError,
      /insufficient free space \(506 extents\): 600 required/,
    ],
    [
      "no VG",
      () => lvm.createLv({ vg: "novg", name: "b", sizeBytes: E, tags: [] }),
      VolumeGroupNotFoundError,
      /Volume group "novg" not found/,
    ],
    [
      "remove missing",
      () => lvm.removeLv(VG, "nolv"),
      LogicalVolumeNotFoundError,
      /Failed to find logical volume "loamfx\/nolv"/,
    ],
    [
      "extend missing",
      () => lvm.extendLv(VG, "nolv", E),
      LogicalVolumeNotFoundError,
      /nolv not found in volume group loamfx/,
    ],
    ["shrink", () => lvm.extendLv(VG, "a", E), LogicalVolumeShrinkError, /not larger than existing size \(4 extents\)/],
    [
      "extend no room",
      () => lvm.extendLv(VG, "a", 600 * E),
      InsufficientSpaceError,
      /Insufficient free space: 596 extents needed, but only 506 available/,
    ],
    ["tag missing", () => lvm.addTags(VG, "nolv", [tag]), LogicalVolumeNotFoundError, /Failed to find logical volume/],
    [
      "bad name",
      () => lvm.createLv({ vg: VG, name: "snapshot1", sizeBytes: E, tags: [] }),
      InvalidLvmArgumentError,
      /not a valid logical volume name/,
    ],
    ["bad tag", () => lvm.addTags(VG, "a", ["a,b"]), InvalidLvmArgumentError, /not a valid LVM tag/],
    [
      "bad size",
      () => lvm.createLv({ vg: VG, name: "b", sizeBytes: 0, tags: [] }),
      InvalidLvmArgumentError,
      /positive whole number/,
    ],
    ["no pool usage", () => lvm.thinPoolUsage(VG, THIN_POOL), ThinPoolNotActiveError, /loamfx\/pool is not active/],
  ];
  for (const [name, call, kind, message] of cases) {
    await assert.rejects(call(), (error: unknown) => error instanceof kind && message.test(error.message), name);
  }
  await lvm.extendLv(VG, "a", 4 * E); // the size it has: success, as the facade says
  lvm.setOpen(VG, "a");
  await assert.rejects(lvm.removeLv(VG, "a"), LogicalVolumeInUseError);
  await assert.rejects(lvm.deactivateLv(VG, "a"), LogicalVolumeInUseError);
});

test("stand-in: thin pools count virtual size, take extents only for data and metadata, and report usage as device-mapper does", async () => {
  const lvm = new InMemoryLvmStandIn();
  await lvm.createThinPool({ vg: VG, name: THIN_POOL, sizeBytes: 128 * E, metadataSizeBytes: 4 * MiB });
  assert.equal(free(lvm).vg, 510 - 128 - 1 - 1, "data, metadata and the spare metadata");
  await lvm.createLv({ vg: VG, name: "t", sizeBytes: 1000 * E, tags: [], thinPool: THIN_POOL });
  assert.equal(free(lvm).vg, 380);
  assert.deepEqual(await lvm.thinPoolUsage(VG, THIN_POOL), { dataPercent: 0, metadataPercent: 11.13 });
  lvm.write(VG, "t", "data-1", 32 * E);
  assert.deepEqual(await lvm.thinPoolUsage(VG, THIN_POOL), { dataPercent: 25, metadataPercent: 11.13 });
  await lvm.createThinSnapshot({ vg: VG, origin: "t", name: "snap", tags: [tag], writable: false });
  const snap = lvm.lv(VG, "snap");
  assert.deepEqual(
    [snap?.segType, snap?.origin, snap?.active, snap?.attr, snap?.sizeBytes],
    ["thin", "t", false, "Vwi---tz-k", 1000 * E],
  );
  assert.equal(lvm.contentOf(VG, "snap"), "data-1");
  const pool = lvm.lv(VG, THIN_POOL);
  assert.deepEqual([pool?.segType, pool?.internal, pool?.dataPercent], ["thin-pool", true, 25]);
  lvm.setThinPoolUsage(VG, THIN_POOL, { dataPercent: 95.5 });
  assert.equal((await lvm.thinPoolUsage(VG, THIN_POOL)).dataPercent, 95.5);
  await lvm.deactivateLv(VG, "t");
  await lvm.deactivateLv(VG, THIN_POOL);
  await assert.rejects(lvm.thinPoolUsage(VG, THIN_POOL), ThinPoolNotActiveError);
});

test("stand-in: records calls, fails or pauses a call before it takes effect", async () => {
  const lvm = new InMemoryLvmStandIn();
  lvm.failNext("createLv", new Error("injected"));
  await assert.rejects(lvm.createLv({ vg: VG, name: "a", sizeBytes: E, tags: [] }), /injected/);
  assert.equal(lvm.lv(VG, "a"), undefined);
  const pause = lvm.pauseBefore("createLv");
  const pending = lvm.createLv({ vg: VG, name: "a", sizeBytes: E, tags: [] });
  const call = await pause.reached;
  assert.equal((call.args[0] as { name: string }).name, "a");
  assert.equal(lvm.lv(VG, "a"), undefined);
  pause.release();
  await pending;
  assert.ok(lvm.lv(VG, "a"));
  assert.deepEqual(lvm.methods(), ["createLv", "createLv"]);
  const aborted = AbortSignal.abort(new Error("gone"));
  await assert.rejects(lvm.removeLv(VG, "a", { signal: aborted }), /cancelled/);
  assert.ok(lvm.lv(VG, "a"));
});

test("engine over the stand-in: create, list and delete; capacity of each class moves", async () => {
  const { engine, lvm } = await makeEngine();
  const thick = { shaping: { "loam.csi.dev/deviceClass": "thick" }, metadata: {} };
  const thin = { shaping: { "loam.csi.dev/deviceClass": "thin" }, metadata: {} };
  assert.equal((await engine.capacity({ parameters: thick })).availableBytes, 380 * E);
  assert.equal((await engine.capacity({ parameters: thin })).availableBytes, 128 * E);

  const a = await engine.createVolume({
    name: "a",
    range: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
    parameters: thick,
  });
  assert.deepEqual(
    [a.sizeBytes, a.layout, a.deviceClass, a.active, a.ready],
    [64 * MiB, "linear", "thick", true, true],
  );
  assert.equal((await engine.capacity({ parameters: thick })).availableBytes, 364 * E);
  const t = await engine.createVolume({
    name: "t",
    range: { requiredBytes: BigInt(256 * MiB), limitBytes: 0n },
    parameters: thin,
  });
  assert.equal(t.layout, "thin");
  lvm.write(VG, t.id, "bytes", 64 * MiB);
  assert.equal((await engine.capacity({ parameters: thin })).availableBytes, 112 * E);

  assert.deepEqual((await engine.listVolumes()).map((v) => v.name).sort(), ["a", "t"]);
  assert.equal((await engine.getVolume(a.id))?.active, true);
  await engine.deleteVolume(a.id);
  await engine.deleteVolume(t.id);
  assert.deepEqual(await engine.listVolumes(), []);
  assert.equal((await engine.capacity({ parameters: thick })).availableBytes, 380 * E);
  assert.deepEqual(
    lvm.callsOf("removeLv").map((c) => c.args[1]),
    [a.id, t.id],
  );
});

test("CSI server over the stand-in: real requests on a Unix socket", async () => {
  const csi = await startCsi();
  try {
    const info = await csi.client.call(Identity, "getPluginInfo", {});
    assert.equal(info.name, "loam.csi.dev");
    const created = await csi.client.call(Controller, "createVolume", {
      name: "pvc-1",
      capacityRange: { requiredBytes: BigInt(10 * MiB), limitBytes: 0n },
      volumeCapabilities: [
        {
          accessType: { case: "mount", value: { fsType: "xfs", mountFlags: [], volumeMountGroup: "" } },
          accessMode: { mode: 1 },
        },
      ],
      parameters: {},
    });
    assert.equal(created.volume?.capacityBytes, BigInt(12 * MiB));
    const listed = await csi.client.call(Controller, "listVolumes", {});
    assert.deepEqual(
      listed.entries.map((e) => e.volume?.volumeId),
      [created.volume?.volumeId],
    );
    await csi.client.call(Controller, "deleteVolume", { volumeId: created.volume?.volumeId ?? "" });
    await assert.rejects(
      csi.client.call(Controller, "deleteVolume", { volumeId: "" }),
      (error: unknown) =>
        error instanceof CsiCallError &&
        error.code === status.INVALID_ARGUMENT &&
        /volume_id is required/.test(error.details),
    );
  } finally {
    await csi.stop();
  }
});
