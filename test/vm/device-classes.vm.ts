/**
 * Device classes against real LVM: every layout made, written and checked with lvs; GetCapacity
 * equal to the formulas of docs/capacity.md computed here from real vgs/pvs/lvs figures; exact
 * fits and one-extent-too-many; thin overcommit and usage thresholds; bad parameters and config.
 * One file because every case runs on the pools and config useDeviceClasses sets up once.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, VG, repoRoot, vmDisks } from "./harness.js";
import { createRequest, rejectsWith } from "./support.js";

export const VG2 = "loamvg2";
const CONFIG = "/run/loam-test/classes.json";
const PARAM = "loam.csi.dev/deviceClass";

/** The thin pools each group makes on loamvg, with their sizes. */
export interface PoolPlan {
  name: string;
  sizeBytes: number;
}

/**
 * Makes the pools (and the second VG on the third disk, when there is one), writes a config
 * file with these classes and restarts loam on it. Returns the undo.
 */
export async function useDeviceClasses(
  h: () => Harness,
  pools: PoolPlan[],
  classes: object[],
): Promise<() => Promise<void>> {
  for (const pool of pools) await h().lvm.createThinPool({ vg: VG, name: pool.name, sizeBytes: pool.sizeBytes });
  const third = vmDisks()[2];
  if (third) {
    await h().must(["pvcreate", "-ff", "-y", third]);
    await h().must(["vgcreate", "-y", VG2, third]);
  }
  const usable = classes.filter((c) => third || (c as { volumeGroup: string }).volumeGroup !== VG2);
  await writeFile(CONFIG, JSON.stringify({ deviceClasses: usable }));
  await h().killLoam("SIGTERM");
  await h().startLoam(["--config", CONFIG]);
  return async () => {
    await h().killLoam("SIGTERM");
    const { lvs } = await h().report();
    // Thin LVs first, then their pools: lvremove of a pool with thin LVs in it asks questions.
    for (const lv of lvs.filter((l) => !l.internal && l.segType === "thin"))
      await h().must(["lvremove", "-y", `${VG}/${lv.name}`]);
    for (const lv of lvs.filter((l) => !l.internal && l.segType !== "thin"))
      await h().must(["lvremove", "-y", `${VG}/${lv.name}`]);
    if (third) await h().must(["vgremove", "-ff", "-y", VG2]);
    await h().startLoam();
  };
}

export async function sha256(path: string, bytes?: number): Promise<string> {
  const hash = createHash("sha256");
  const stream = createReadStream(path, bytes === undefined ? {} : { start: 0, end: bytes - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Random data at an offset, written through to the device. */
export async function writeRandom(h: () => Harness, device: string, mib: number, seekMiB = 0): Promise<void> {
  await h().must([
    "dd",
    "if=/dev/urandom",
    `of=${device}`,
    "bs=1M",
    `count=${mib}`,
    `seek=${seekMiB}`,
    "oflag=direct",
    "conv=fsync,notrunc",
    "status=none",
  ]);
}

type Row = Record<string, string>;

async function rows(
  h: () => Harness,
  command: string,
  section: string,
  columns: string,
  ...extra: string[]
): Promise<Row[]> {
  const out = await h().must([
    command,
    "--reportformat",
    "json",
    "--units",
    "b",
    "--nosuffix",
    "-o",
    columns,
    ...extra,
  ]);
  return (JSON.parse(out.stdout) as { report: Array<Record<string, Row[]>> }).report[0][section];
}

/** The figures docs/capacity.md's formulas start from, read with vgs, pvs and lvs. */
async function figures(h: () => Harness) {
  const vg = (await rows(h, "vgs", "vg", "vg_free_count,vg_extent_size", VG))[0];
  const extent = Number(vg.vg_extent_size);
  const pvFree = (await rows(h, "pvs", "pv", "pv_name,pv_free", "--select", `vg_name=${VG}`))
    .map((r) => Number(r.pv_free) / extent)
    .sort((a, b) => b - a);
  const lvs = await rows(h, "lvs", "lv", "lv_name,lv_size,segtype,pool_lv,data_percent,metadata_percent", VG);
  return { freeExtents: Number(vg.vg_free_count), extent, pvFree, lvs };
}

async function expectedThick(
  h: () => Harness,
  kind: "linear" | "striped" | "raid1",
  n: number,
  spareBytes = 0,
): Promise<number> {
  const f = await figures(h);
  const usable = f.freeExtents - Math.ceil(spareBytes / f.extent);
  if (kind === "linear") return usable * f.extent;
  if (kind === "striped") return Math.min(n * f.pvFree[n - 1], Math.floor(usable / n) * n) * f.extent;
  return Math.max(0, Math.min(f.pvFree[n - 1] - 1, Math.floor(usable / n) - 1)) * f.extent;
}

async function expectedThin(h: () => Harness, pool: string, ratio: number): Promise<number> {
  const f = await figures(h);
  const row = f.lvs.find((r) => r.lv_name === pool)!;
  const size = Number(row.lv_size);
  const virtual = f.lvs
    .filter((r) => r.segtype === "thin" && r.pool_lv === pool)
    .reduce((sum, r) => sum + Number(r.lv_size), 0);
  const used = Math.ceil((size * Number(row.data_percent)) / 100 / f.extent) * f.extent;
  const byRatio = Math.floor((size * ratio) / f.extent) * f.extent - virtual;
  return Math.max(0, Math.floor(Math.min(byRatio, size - used) / f.extent) * f.extent);
}

async function capacityOf(h: () => Harness, deviceClass: string): Promise<number> {
  const reply = await h().client.call(Controller, "getCapacity", { parameters: { [PARAM]: deviceClass } });
  assert.equal(reply.maximumVolumeSize, reply.availableCapacity);
  return Number(reply.availableCapacity);
}

function inClass(name: string, deviceClass: string, bytes: number, extra: Record<string, string> = {}) {
  return { ...createRequest(name, bytes), parameters: { [PARAM]: deviceClass, ...extra } };
}

async function lvsRow(h: () => Harness, vg: string, id: string): Promise<Row> {
  const found = await rows(
    h,
    "lvs",
    "lv",
    "lv_name,segtype,stripes,stripe_size,data_copies,pool_lv,lv_size",
    `${vg}/${id}`,
  );
  return found[0];
}

/** Exactly the reported capacity fits; one extent more is RESOURCE_EXHAUSTED and makes nothing. */
async function exactFit(
  h: () => Harness,
  deviceClass: string,
  expected: number,
  extra: Record<string, string> = {},
  stripes = 1,
): Promise<void> {
  const extent = (await figures(h)).extent;
  assert.ok(expected > 0, `class ${deviceClass} should have room`);
  await rejectsWith(
    h().client.call(
      Controller,
      "createVolume",
      inClass(`fit-${deviceClass}-over`, deviceClass, expected + extent, extra),
    ),
    status.RESOURCE_EXHAUSTED,
    // A striped request is rounded up to whole extents on every stripe.
    new RegExp(`requested ${expected + stripes * extent} bytes, free ${expected} bytes`),
  );
  assert.deepEqual(await h().lvsNamed(`fit-${deviceClass}-over`), []);
  const { volume } = await h().client.call(
    Controller,
    "createVolume",
    inClass(`fit-${deviceClass}`, deviceClass, expected, extra),
  );
  assert.equal(Number(volume!.capacityBytes), expected);
  await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
}

export function deviceClassTests(h: () => Harness): void {
  describe("device classes", () => {
    let undo: (() => Promise<void>) | undefined;
    before(async () => {
      undo = await useDeviceClasses(
        h,
        [
          { name: "pool1", sizeBytes: 128 * MiB },
          { name: "pool5", sizeBytes: 64 * MiB },
          { name: "hot", sizeBytes: 32 * MiB },
        ],
        [
          { name: "plain", volumeGroup: VG, default: true },
          { name: "striped", volumeGroup: VG, stripes: 2, stripeSize: "64Ki" },
          { name: "mirror", volumeGroup: VG, mirrors: 1 },
          { name: "spare", volumeGroup: VG, spareBytes: 64 * MiB },
          { name: "thin1", volumeGroup: VG, type: "thin", thinPool: "pool1", overprovisionRatio: 1 },
          { name: "thin5", volumeGroup: VG, type: "thin", thinPool: "pool5", overprovisionRatio: 5 },
          { name: "hot", volumeGroup: VG, type: "thin", thinPool: "hot", dataThresholdPercent: 50 },
          { name: "second", volumeGroup: VG2 },
        ],
      );
      // Leave little, and unequal, free space on the two PVs so raid1 syncs fast and the
      // "n-th largest PV" terms of the formulas matter: 50 extents on one, 30 on the other.
      const [first, secondDisk] = vmDisks();
      const { pvs, vg } = await h().report();
      for (const [disk, keep] of [
        [first, 50],
        [secondDisk, 30],
      ] as const) {
        const pv = pvs.find((p) => p.name === disk)!;
        const extents = Math.floor(pv.freeBytes / vg.extentSizeBytes) - keep;
        await h().must([
          "lvcreate",
          "-y",
          "-an",
          "-Zn",
          "-l",
          String(extents),
          "-n",
          `filler-${disk.slice(-3)}`,
          VG,
          disk,
        ]);
      }
    });
    after(async () => {
      await undo?.();
    });

    test("each layout is made as asked, takes writes, and lvs shows its segtype, stripes, copies and pool", async () => {
      const made: Array<[string, Record<string, string>, (row: Row) => void]> = [
        ["plain", {}, (r) => assert.equal(r.segtype, "linear")],
        [
          "striped",
          {},
          (r) => assert.deepEqual([r.segtype, r.stripes, r.stripe_size], ["striped", "2", String(64 * 1024)]),
        ],
        [
          "plain",
          { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "128Ki" },
          (r) => assert.deepEqual([r.segtype, r.stripes, r.stripe_size], ["striped", "2", String(128 * 1024)]),
        ],
        ["mirror", {}, (r) => assert.deepEqual([r.segtype, r.data_copies], ["raid1", "2"])],
        ["plain", { "loam.csi.dev/mirrors": "1" }, (r) => assert.deepEqual([r.segtype, r.data_copies], ["raid1", "2"])],
        ["thin1", {}, (r) => assert.deepEqual([r.segtype, r.pool_lv], ["thin", "pool1"])],
      ];
      for (const [i, [deviceClass, extra, check]] of made.entries()) {
        const { volume } = await h().client.call(
          Controller,
          "createVolume",
          inClass(`layout-${i}`, deviceClass, 8 * MiB, extra),
        );
        const id = volume!.volumeId;
        check(await lvsRow(h, VG, id));
        const device = `/dev/${VG}/${id}`;
        await writeRandom(h, device, 2);
        const written = await sha256(device, 2 * MiB);
        assert.equal(await sha256(device, 2 * MiB), written, `${deviceClass} reads back what was written`);
        const got = await h().client.call(Controller, "controllerGetVolume", { volumeId: id });
        assert.equal(got.status?.volumeCondition?.abnormal, false);
        if (deviceClass === "mirror")
          assert.match(got.status.volumeCondition.message, /raid1 volume is active.*(in sync|% in sync)/);
        if (deviceClass === "thin1") assert.match(got.status.volumeCondition.message, /pool loamvg\/pool1 data/);
        await h().client.call(Controller, "deleteVolume", { volumeId: id });
      }
    });

    test("a class on a second volume group: created there, found, listed and deleted by the same id", async (t) => {
      if (!vmDisks()[2]) return t.skip("needs a third disk");
      const { volume } = await h().client.call(Controller, "createVolume", inClass("on-vg2", "second", 8 * MiB));
      const id = volume!.volumeId;
      assert.equal((await lvsRow(h, VG2, id)).segtype, "linear");
      const listed = await h().client.call(Controller, "listVolumes", {});
      assert.ok(listed.entries.some((e) => e.volume?.volumeId === id));
      assert.ok((await h().client.call(Controller, "controllerGetVolume", { volumeId: id })).volume);
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
      assert.deepEqual(await rows(h, "lvs", "lv", "lv_name", VG2), []);
    });

    test("GetCapacity equals the documented thick formulas, and exactly that much fits", async () => {
      const linear = await expectedThick(h, "linear", 1);
      assert.equal(await capacityOf(h, "plain"), linear);
      assert.equal(linear, 80 * (await figures(h)).extent, "50 + 30 free extents");
      await exactFit(h, "plain", linear);

      const spare = await expectedThick(h, "linear", 1, 64 * MiB);
      assert.equal(await capacityOf(h, "spare"), spare);
      await exactFit(h, "spare", spare);

      const striped = await expectedThick(h, "striped", 2);
      assert.equal(await capacityOf(h, "striped"), striped);
      assert.equal(striped, 60 * (await figures(h)).extent, "2 × the smaller PV's 30 extents");
      await exactFit(h, "striped", striped, {}, 2);

      const raid1 = await expectedThick(h, "raid1", 2);
      assert.equal(await capacityOf(h, "mirror"), raid1);
      assert.equal(raid1, 29 * (await figures(h)).extent, "the smaller PV's 30 extents less one metadata extent");
      await exactFit(h, "mirror", raid1);

      const reply = await h().client.call(Controller, "getCapacity", { parameters: { [PARAM]: "striped" } });
      assert.equal(Number(reply.minimumVolumeSize), 2 * (await figures(h)).extent);
    });

    test("GetCapacity equals the documented thin formula at ratio 1 and 5, and exactly that much fits", async () => {
      const one = await expectedThin(h, "pool1", 1);
      assert.equal(one, 128 * MiB);
      assert.equal(await capacityOf(h, "thin1"), one);
      await exactFit(h, "thin1", one);
      const five = await expectedThin(h, "pool5", 5);
      assert.equal(five, 64 * MiB, "bounded by the pool's real free data, not 5 × 64 MiB");
      assert.equal(await capacityOf(h, "thin5"), five);
      await exactFit(h, "thin5", five);
    });

    test("overcommit stops exactly at the ratio: five 64 MiB volumes in a 64 MiB pool at ratio 5, then nothing", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        assert.equal(await capacityOf(h, "thin5"), await expectedThin(h, "pool5", 5));
        const { volume } = await h().client.call(Controller, "createVolume", inClass(`over-${i}`, "thin5", 64 * MiB));
        ids.push(volume!.volumeId);
      }
      assert.equal(await capacityOf(h, "thin5"), 0);
      const extent = (await figures(h)).extent;
      await rejectsWith(
        h().client.call(Controller, "createVolume", inClass("over-5", "thin5", extent)),
        status.RESOURCE_EXHAUSTED,
        /free 0 bytes for a thin volume \(thin pool loamvg\/pool5: pool 67108864 × ratio 5 − virtual 335544320 = 0 bytes/,
      );
      for (const id of ids) await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("a pool above its data threshold refuses new thin volumes naming pool and usage; its volumes keep working", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", inClass("hot-1", "hot", 32 * MiB));
      const device = `/dev/${VG}/${volume!.volumeId}`;
      await writeRandom(h, device, 20);
      await rejectsWith(
        h().client.call(Controller, "createVolume", inClass("hot-2", "hot", 4 * MiB)),
        status.RESOURCE_EXHAUSTED,
        /thin pool loamvg\/hot data usage is 6\d(\.\d+)?% \(above the threshold of 50% for device class "hot"\)/,
      );
      assert.equal(await capacityOf(h, "hot"), 0);
      await writeRandom(h, device, 2, 24);
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
    });

    test("bad parameters are refused naming the parameter and what is allowed", async () => {
      const c = h().client;
      await rejectsWith(
        c.call(Controller, "createVolume", inClass("bad-stripes", "plain", 8 * MiB, { "loam.csi.dev/stripes": "3" })),
        status.INVALID_ARGUMENT,
        /loam.csi.dev\/stripes"\] asks for 3 stripes but device class "plain" \(volume group loamvg\) has 2 physical volumes; allowed: 1 to 2/,
      );
      await rejectsWith(
        c.call(Controller, "createVolume", inClass("bad-mirror", "thin1", 8 * MiB, { "loam.csi.dev/mirrors": "1" })),
        status.INVALID_ARGUMENT,
        /loam.csi.dev\/mirrors"\] does not apply to thin device class "thin1"/,
      );
      await rejectsWith(
        c.call(Controller, "createVolume", inClass("bad-class", "gold", 8 * MiB)),
        status.INVALID_ARGUMENT,
        /"gold" is not a device class of this node; allowed: plain, striped, mirror/,
      );
      await rejectsWith(
        c.call(Controller, "getCapacity", { parameters: { [PARAM]: "striped", "loam.csi.dev/mirrors": "1" } }),
        status.INVALID_ARGUMENT,
        /not both/,
      );
      for (const name of ["bad-stripes", "bad-mirror", "bad-class"]) assert.deepEqual(await h().lvsNamed(name), []);
    });

    test("a config with an overprovision ratio below 1 stops loam at start, naming the field", async () => {
      const bad = "/run/loam-test/bad-classes.json";
      await writeFile(
        bad,
        JSON.stringify({
          deviceClasses: [
            { name: "a", volumeGroup: VG, default: true },
            { name: "b", volumeGroup: VG, type: "thin", thinPool: "pool1", overprovisionRatio: 0.5 },
          ],
        }),
      );
      const run = await h().must(
        [
          process.execPath,
          join(repoRoot(), "dist", "loam.mjs"),
          "node",
          "--config",
          bad,
          "--endpoint",
          "unix:///run/loam-test/bad.sock",
        ],
        { allowFailure: true },
      );
      assert.notEqual(run.exitCode, 0);
      assert.match(run.stderr, /deviceClasses\[1\]\.overprovisionRatio: 0\.5 is out of range; allowed: from 1 to 100/);
    });
  });
}
