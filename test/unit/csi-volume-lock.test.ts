/**
 * One lock per volume for both services (issue 13, item 9): the Node service stages under the
 * engine's lock for the volume, so a DeleteVolume of a volume being staged waits for the
 * stage and then finds the LV open (FAILED_PRECONDITION), and a stage of a volume being
 * deleted waits and then finds it gone (NOT_FOUND). Through loam's real gRPC server over the
 * LVM and node host stand-ins; the pauses hold an LVM call in flight.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { type TestCsi, VG, makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

const ID = lvNameFor("pv-lock");

async function world(): Promise<{ csi: TestCsi; host: InMemoryNodeHostStandIn; staging: string }> {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  const csi = await startCsi({ made, host });
  await csi.client.call(Controller, "createVolume", {
    name: "pv-lock",
    capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
    volumeCapabilities: [mount()],
    parameters: {},
  });
  return { csi, host, staging: `${csi.kubeletDir}/plugins/loam/globalmount` };
}

const codeOf = (error: unknown): string => (error instanceof CsiCallError ? status[error.code] : String(error));

test("DeleteVolume during a NodeStageVolume of the same volume waits for it, then is FAILED_PRECONDITION (the LV is mounted)", async () => {
  const { csi, staging } = await world();
  try {
    // Inactive, so the stage has an LVM call (lvchange -ay) to be held in.
    await csi.lvm.deactivateLv(VG, ID);
    const pause = csi.lvm.pauseBefore("activateLv");
    const staged = csi.client.call(Node, "nodeStageVolume", {
      volumeId: ID,
      stagingTargetPath: staging,
      volumeCapability: mount(),
    });
    staged.catch(() => undefined);
    await pause.reached;
    const deleted = csi.client.call(Controller, "deleteVolume", { volumeId: ID }).then(
      () => "OK",
      (error: unknown) => error,
    );
    await sleep(100);
    assert.deepEqual(csi.lvm.callsOf("removeLv"), [], "lvremove ran while the stage was in flight");
    pause.release();
    await staged;
    const outcome = await deleted;
    assert.equal(codeOf(outcome), "FAILED_PRECONDITION");
    assert.match(
      (outcome as CsiCallError).details,
      new RegExp(`^volume ${ID} is in use \\(mounted or open\\) on this node; unpublish it first`),
    );
    assert.ok(csi.lvm.lv(VG, ID), "the staged volume is still there");
  } finally {
    await csi.stop();
  }
});

test("NodeStageVolume during a DeleteVolume of the same volume waits for it, then is NOT_FOUND", async () => {
  const { csi, host, staging } = await world();
  try {
    const pause = csi.lvm.pauseBefore("removeLv");
    const deleted = csi.client.call(Controller, "deleteVolume", { volumeId: ID });
    deleted.catch(() => undefined);
    await pause.reached;
    const staged = csi.client
      .call(Node, "nodeStageVolume", { volumeId: ID, stagingTargetPath: staging, volumeCapability: mount() })
      .then(
        () => "OK",
        (error: unknown) => error,
      );
    await sleep(100);
    assert.deepEqual(host.changes(), [], "the stage changed the machine while the volume was being deleted");
    pause.release();
    await deleted;
    const outcome = await staged;
    assert.equal(codeOf(outcome), "NOT_FOUND");
    assert.deepEqual(host.changes(), []);
  } finally {
    await csi.stop();
  }
});
