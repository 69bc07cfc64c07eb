/**
 * A full (or otherwise broken) thin pool shows in every volume condition (issue 13, item 2):
 * ControllerGetVolume, ListVolumes and NodeGetVolumeStats of a thin volume read the pool's
 * state from device-mapper at the time of the call, not from the cached LVM report, which a
 * pool filling up with writes does not change. Over the LVM and host stand-ins.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import type { ThinPoolCondition } from "../support/in-memory-lvm.js";
import { THIN_POOL, type TestCsi, VG, makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

let csi: TestCsi;
let id = "";
let thickId = "";
let staging = "";

before(async () => {
  const made = await makeEngine();
  csi = await startCsi({ made, host: new InMemoryNodeHostStandIn(made.lvm) });
  const create = async (name: string, parameters: Record<string, string>): Promise<string> =>
    (
      await csi.client.call(Controller, "createVolume", {
        name,
        capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
        volumeCapabilities: [mount()],
        parameters,
      })
    ).volume?.volumeId ?? "";
  id = await create("full-thin", { "loam.csi.dev/deviceClass": "thin" });
  thickId = await create("full-thick", {});
  staging = `${csi.kubeletDir}/plugins/loam/globalmount`;
  await csi.client.call(Node, "nodeStageVolume", {
    volumeId: id,
    stagingTargetPath: staging,
    volumeCapability: mount(),
  });
});
after(async () => {
  await csi.stop();
});

interface Condition {
  abnormal: boolean;
  message: string;
}

/** The condition each of the three RPCs gives for the thin volume. */
async function conditions(): Promise<Record<"get" | "list" | "stats", Condition | undefined>> {
  const get = (await csi.client.call(Controller, "controllerGetVolume", { volumeId: id })).status?.volumeCondition;
  const list = (await csi.client.call(Controller, "listVolumes", {})).entries.find((e) => e.volume?.volumeId === id)
    ?.status?.volumeCondition;
  const stats = (await csi.client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: staging }))
    .volumeCondition;
  const plain = (c: Condition | undefined): Condition | undefined => c && { abnormal: c.abnormal, message: c.message };
  return { get: plain(get), list: plain(list), stats: plain(stats) };
}

async function assertAll(abnormal: boolean, message: RegExp): Promise<void> {
  for (const [rpc, condition] of Object.entries(await conditions())) {
    assert.equal(condition?.abnormal, abnormal, `${rpc}: ${condition?.message}`);
    assert.match(condition?.message ?? "", message, rpc);
  }
}

const setPool = (state: { dataPercent?: number; metadataPercent?: number } & ThinPoolCondition): void =>
  csi.lvm.setThinPoolUsage(VG, THIN_POOL, state);

describe("thin pool state in volume conditions (issue 13, item 2)", () => {
  test("a pool that fills up after the cache was warmed: all three conditions abnormal, saying what to do", async () => {
    await assertAll(false, /thin volume is active; pool loamfx\/pool data [\d.]+%|volume is healthy/);
    const reportsBefore = csi.lvm.callsOf("reportAll").length;
    // Writes fill the pool: no LVM metadata changes, so the cached report still says "data 0%".
    setPool({ dataPercent: 100 });
    await assertAll(
      true,
      /^thin pool loamfx\/pool is out of data space \(data 100%, metadata [\d.]+%\): writes that need new blocks wait up to 60 s, then fail; extend the pool \(lvextend -L \+SIZE loamfx\/pool, after vgextend loamfx NEW_PV if the volume group has no free space\) or free blocks in it/,
    );
    assert.equal(csi.lvm.callsOf("reportAll").length, reportsBefore, "device-mapper answered: no new report");
  });

  test("the condition returns to normal once the pool has room again", async () => {
    setPool({ dataPercent: 40, healthStatus: "" });
    await assertAll(false, /thin volume is active; pool loamfx\/pool data 40%|volume is healthy/);
  });

  test("out of metadata space: read-only, grow the metadata, then repair", async () => {
    setPool({ metadataPercent: 100, healthStatus: "metadata_read_only", needsCheck: true });
    await assertAll(
      true,
      /thin pool loamfx\/pool is out of metadata space \(data 40%, metadata 100%\) and read-only: writes fail; grow its metadata with lvextend --poolmetadatasize \+SIZE loamfx\/pool, then deactivate the pool's volumes and run lvconvert --repair loamfx\/pool/,
    );
  });

  test("metadata read-only with room left: repair", async () => {
    setPool({ metadataPercent: 20, healthStatus: "metadata_read_only", needsCheck: false });
    await assertAll(
      true,
      /thin pool loamfx\/pool metadata is read-only \(data 40%, metadata 20%; device-mapper switched it after a metadata error\): writes fail; deactivate the pool's volumes and run lvconvert --repair loamfx\/pool/,
    );
  });

  test("needs_check: repair", async () => {
    setPool({ healthStatus: "", needsCheck: true });
    await assertAll(true, /thin pool loamfx\/pool metadata needs checking \(needs_check; data 40%, metadata 20%\)/);
  });

  test("a failed pool: repair", async () => {
    setPool({ healthStatus: "failed", needsCheck: false });
    await assertAll(true, /thin pool loamfx\/pool has failed \(device-mapper reports Fail\)/);
    setPool({ healthStatus: "" });
    await assertAll(false, /thin volume is active|volume is healthy/);
  });

  test("a thick volume's condition reads no pool state", async () => {
    const before = csi.lvm.callsOf("thinPoolStatuses").length + csi.lvm.callsOf("thinPoolUsage").length;
    const got = await csi.client.call(Controller, "controllerGetVolume", { volumeId: thickId });
    assert.equal(got.status?.volumeCondition?.abnormal, false);
    assert.equal(csi.lvm.callsOf("thinPoolStatuses").length + csi.lvm.callsOf("thinPoolUsage").length, before);
  });
});
