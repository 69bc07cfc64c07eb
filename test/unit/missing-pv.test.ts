/**
 * A volume group with a missing PV (issue 13, item 3), over the LVM stand-in and the real gRPC
 * server: GetCapacity says 0 for every class of the group; CreateVolume answers
 * RESOURCE_EXHAUSTED, CreateSnapshot and ControllerExpandVolume FAILED_PRECONDITION, naming the
 * PV and the fix, before any LVM change runs; a PV lost between that check and lvcreate gets the
 * same answer from LVM's own words; volumes with extents on the PV (their own, or their thin
 * pool's) have an abnormal condition naming it in ControllerGetVolume, ListVolumes and
 * NodeGetVolumeStats, the others stay normal; loam doctor, loam status and the metrics name the
 * PV and the volumes on it.
 *
 * The world: fullreport-empty-vg's two PVs of 255 extents; the 512 MiB thin pool and the thick
 * volumes "first" and "filler" fill /dev/loop0, "second" lies on /dev/loop1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { VolumeError, type VolumeErrorKind } from "../../src/volumes/errors.js";
import { MiB } from "../../src/volumes/size.js";
import { checkVolumeGroups } from "../../src/cli/doctor/volume-groups.js";
import type { HostProbe } from "../../src/cli/doctor/findings.js";
import { collectStatus, renderStatus } from "../../src/cli/status.js";
import { LoamMetrics } from "../../src/metrics/metrics.js";
import { LvmStateSampler } from "../../src/metrics/lvm-state.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { type TestCsi, VG, makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

const THIN = { "loam.csi.dev/deviceClass": "thin" };
const create = (csi: TestCsi, name: string, mib: number, parameters: Record<string, string> = {}) =>
  csi.client.call(Controller, "createVolume", {
    name,
    capacityRange: { requiredBytes: BigInt(mib * MiB), limitBytes: 0n },
    volumeCapabilities: [mount()],
    parameters,
  });
const capacity = async (csi: TestCsi, parameters: Record<string, string> = {}): Promise<bigint> =>
  (await csi.client.call(Controller, "getCapacity", { volumeCapabilities: [mount()], parameters })).availableCapacity;
const condition = async (csi: TestCsi, name: string) =>
  (await csi.client.call(Controller, "controllerGetVolume", { volumeId: lvNameFor(name) })).status?.volumeCondition;

async function rejects(call: Promise<unknown>, code: status, pattern: RegExp): Promise<void> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof CsiCallError, String(error));
    assert.equal(status[error.code], status[code], error.details);
    assert.match(error.details, pattern);
    return;
  }
  assert.fail(`expected ${status[code]}, but the call succeeded`);
}

const grow = (mib: number) => ({ requiredBytes: BigInt(mib * MiB), limitBytes: 0n });

/** Asserts that an engine call fails with this domain error kind and a message matching the pattern. */
async function refuses(call: Promise<unknown>, kind: VolumeErrorKind, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof VolumeError, String(error));
    assert.equal(error.kind, kind, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

type World = Awaited<ReturnType<typeof world>>;

/** A test over a fresh world, its server stopped whatever happens. */
function scenario(name: string, body: (w: World) => Promise<void>): void {
  test(name, { timeout: 10_000 }, async () => {
    const w = await world();
    try {
      await body(w);
    } finally {
      await w.csi.stop();
    }
  });
}

async function world(): Promise<{ csi: TestCsi; host: InMemoryNodeHostStandIn; staging: string }> {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  const csi = await startCsi({ made, host });
  await create(csi, "first", 100);
  await create(csi, "filler", 400);
  await create(csi, "second", 100);
  await create(csi, "thin-1", 64, THIN);
  const staging = `${csi.kubeletDir}/plugins/loam/globalmount`;
  await csi.client.call(Node, "nodeStageVolume", {
    volumeId: lvNameFor("second"),
    stagingTargetPath: staging,
    volumeCapability: mount(),
  });
  assert.deepEqual(
    made.lvm.snapshotOf(VG)?.pvs.map((pv) => pv.freeBytes),
    [0, 1044 * MiB - 100 * MiB - 24 * MiB],
  );
  return { csi, host, staging };
}

const lostPv = (uuid: string): RegExp => new RegExp(`physical volume ${uuid}`);
const FIX = /vgextend --restoremissing loamfx DEVICE.*vgreduce --removemissing loamfx/;

scenario("missing PV: GetCapacity is 0 for every class of the volume group", async ({ csi }) => {
  assert.ok((await capacity(csi)) > 0n);
  assert.ok((await capacity(csi, THIN)) > 0n);
  csi.lvm.losePv(VG, "/dev/loop1");
  assert.equal(await capacity(csi), 0n);
  assert.equal(await capacity(csi, THIN), 0n);
  assert.equal(await capacity(csi, { "loam.csi.dev/stripes": "2" }), 0n);
});

scenario(
  "missing PV: CreateVolume is RESOURCE_EXHAUSTED naming the PV, its volumes and the fix; no lvcreate runs",
  async ({ csi }) => {
    const uuid = csi.lvm.losePv(VG, "/dev/loop1");
    csi.lvm.calls.length = 0;
    const second = lvNameFor("second");
    await rejects(
      create(csi, "new", 8),
      status.RESOURCE_EXHAUSTED,
      new RegExp(
        `cannot create volume "new" in device class "thick": volume group loamfx cannot allocate: .*${lostPv(uuid).source} \\(holding ${second}\\).*${FIX.source}`,
      ),
    );
    await rejects(create(csi, "new-thin", 8, THIN), status.RESOURCE_EXHAUSTED, lostPv(uuid));
    assert.deepEqual(csi.lvm.callsOf("createLv"), []);
    // A retry of a volume made before the loss is still answered: nothing is to be allocated.
    assert.equal((await create(csi, "first", 100)).volume?.volumeId, lvNameFor("first"));
  },
);

scenario(
  "missing PV: CreateSnapshot and expansion are FAILED_PRECONDITION with the fix; nothing runs",
  async ({ csi }) => {
    const uuid = csi.lvm.losePv(VG, "/dev/loop1");
    csi.lvm.calls.length = 0;
    await rejects(
      csi.client.call(Controller, "createSnapshot", { name: "snap", sourceVolumeId: lvNameFor("thin-1") }),
      status.FAILED_PRECONDITION,
      new RegExp(`cannot snapshot ${lvNameFor("thin-1")}: volume group loamfx cannot allocate: .*${FIX.source}`),
    );
    await refuses(
      csi.engine.expandVolume(lvNameFor("first"), grow(200)),
      "failed-precondition",
      new RegExp(`cannot grow ${lvNameFor("first")}: volume group loamfx cannot allocate: .*${lostPv(uuid).source}`),
    );
    assert.deepEqual(
      csi.lvm.methods().filter((m) => m !== "report" && m !== "reportAll" && m !== "thinPoolUsage"),
      [],
    );
  },
);

scenario(
  "missing PV lost between loam's check and lvcreate: LVM's refusal gets the same code and the fix",
  async ({ csi }) => {
    const paused = csi.lvm.pauseBefore("createLv");
    const call = create(csi, "racing", 8);
    await paused.reached;
    const uuid = csi.lvm.losePv(VG, "/dev/loop1");
    paused.release();
    await rejects(
      call,
      status.RESOURCE_EXHAUSTED,
      new RegExp(
        `creating ${lvNameFor("racing")} failed: volume group loamfx has a missing physical volume \\(${uuid}\\) .*${FIX.source}`,
      ),
    );
  },
);

scenario("missing PV lost between loam's check and lvextend: FAILED_PRECONDITION with the fix", async ({ csi }) => {
  const paused2 = csi.lvm.pauseBefore("extendLv");
  const expand = csi.engine.expandVolume(lvNameFor("first"), grow(104));
  await paused2.reached;
  csi.lvm.losePv(VG, "/dev/loop0");
  paused2.release();
  await refuses(expand, "failed-precondition", /growing .* failed: volume group loamfx has a missing physical volume/);
});

scenario(
  "missing PV: volumes on it are abnormal (ControllerGetVolume, ListVolumes, NodeGetVolumeStats), the others normal",
  async ({ csi, staging }) => {
    const uuid = csi.lvm.losePv(VG, "/dev/loop1");
    const second = await condition(csi, "second");
    assert.equal(second?.abnormal, true);
    assert.match(
      second?.message ?? "",
      new RegExp(`logical volume loamfx/${lvNameFor("second")} has extents on ${lostPv(uuid).source}`),
    );
    assert.match(second?.message ?? "", FIX);
    assert.equal((await condition(csi, "first"))?.abnormal, false);
    assert.equal((await condition(csi, "thin-1"))?.abnormal, false);
    const listed = await csi.client.call(Controller, "listVolumes", {});
    assert.deepEqual(
      listed.entries.map((e) => [e.volume?.volumeId, e.status?.volumeCondition?.abnormal]).sort(),
      ["filler", "first", "second", "thin-1"].map((n) => [lvNameFor(n), n === "second"]).sort(),
    );
    const stats = await csi.client.call(Node, "nodeGetVolumeStats", {
      volumeId: lvNameFor("second"),
      volumePath: staging,
    });
    assert.equal(stats.volumeCondition?.abnormal, true);
    assert.match(stats.volumeCondition?.message ?? "", lostPv(uuid));
  },
);

scenario("missing PV under a thin pool: the pool's thin volumes are abnormal, naming that PV", async ({ csi }) => {
  const uuid = csi.lvm.losePv(VG, "/dev/loop0");
  const thin = await condition(csi, "thin-1");
  assert.equal(thin?.abnormal, true);
  assert.match(thin?.message ?? "", new RegExp(`has extents on physical volume ${uuid}`));
  assert.equal((await condition(csi, "second"))?.abnormal, false);
});

scenario("missing PV: loam doctor, loam status and the metrics name the PV and the volumes on it", async ({ csi }) => {
  const second = lvNameFor("second");
  const healthyScrape = await new LoamMetrics({
    version: "t",
    lvmState: new LvmStateSampler(csi.lvm, [VG], 0),
  }).scrape();
  assert.match(healthyScrape.body, /^loam_volume_group_missing_physical_volumes\{volume_group="loamfx"\} 0$/m);
  assert.deepEqual(await checkVolumeGroups(probe(csi), [VG]).then((f) => f.filter((x) => x.status === "fail")), []);

  const uuid = csi.lvm.losePv(VG, "/dev/loop1");
  const [finding] = (await checkVolumeGroups(probe(csi), [VG])).filter((f) => f.status === "fail");
  assert.equal(finding?.check, "physical volumes of loamfx");
  assert.match(finding?.detail ?? "", new RegExp(`LVM cannot find physical volume ${uuid} \\(holding ${second}\\)`));
  assert.match(finding?.fix ?? "", FIX);

  const status = renderStatus(await collectStatus(csi.lvm, [VG]));
  assert.match(status, new RegExp(`^${uuid} +loamfx +${second} *$`, "m"));
  assert.match(status, /^loamfx allocates nothing until it is repaired/m);

  const { body } = await new LoamMetrics({
    version: "t",
    lvmState: new LvmStateSampler(csi.lvm, [VG], 0),
  }).scrape();
  assert.match(body, /^loam_volume_group_missing_physical_volumes\{volume_group="loamfx"\} 1$/m);
  assert.match(body, new RegExp(`^loam_volume_abnormal\\{volume_group="loamfx",volume_id="${second}"\\} 1$`, "m"));
  assert.match(
    body,
    new RegExp(`^loam_volume_abnormal\\{volume_group="loamfx",volume_id="${lvNameFor("first")}"\\} 0$`, "m"),
  );
});

/** Doctor's host, answering only the LVM reports its volume group checks read. */
const probe = (csi: TestCsi): HostProbe => ({ report: (vg: string) => csi.lvm.report(vg) }) as unknown as HostProbe;
