/**
 * SINGLE_NODE_SINGLE_WRITER (Kubernetes' ReadWriteOncePod) is one workload (issue 13, item 9):
 * NodePublishVolume at a second target path while the volume is published at another is
 * FAILED_PRECONDITION, read-only or not; the same target again is OK; SINGLE_NODE_MULTI_WRITER
 * publishes at several. What is published is read from the mount table, so a new server (a
 * restarted loam) over the same machine refuses too. Through loam's real gRPC server over the
 * LVM and node host stand-ins.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Controller, Node, VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { type TestCsi, makeEngine, startCsi } from "../support/engine.js";
import { block, mount } from "../support/rpc-table.js";

const ID = lvNameFor("pv-rwop");
type Capability = ReturnType<typeof mount> | ReturnType<typeof block>;

interface World {
  csi: TestCsi;
  host: InMemoryNodeHostStandIn;
  staging: string;
  target: (pod: string) => string;
}

async function world(capability: Capability): Promise<World> {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  const csi = await startCsi({ made, host });
  await csi.client.call(Controller, "createVolume", {
    name: "pv-rwop",
    capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
    volumeCapabilities: [capability],
    parameters: {},
  });
  const staging = `${csi.kubeletDir}/plugins/loam/globalmount`;
  await csi.client.call(Node, "nodeStageVolume", {
    volumeId: ID,
    stagingTargetPath: staging,
    volumeCapability: capability,
  });
  return { csi, host, staging, target: (pod) => `${csi.kubeletDir}/pods/${pod}/volumes/pv` };
}

const publish = (w: World, csi: TestCsi, pod: string, capability: Capability, readonly = false) =>
  csi.client.call(Node, "nodePublishVolume", {
    volumeId: ID,
    stagingTargetPath: w.staging,
    targetPath: w.target(pod),
    volumeCapability: capability,
    readonly,
  });

async function refused(call: Promise<unknown>, w: World, pod: string, other: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof CsiCallError, String(error));
    assert.equal(status[error.code], "FAILED_PRECONDITION", error.details);
    assert.equal(
      error.details,
      `volume ${ID} has access mode SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod: one workload at a time) and is ` +
        `already published at ${w.target(other)}; it cannot also be published at ${w.target(pod)}. Stop the workload that uses it ` +
        "(NodeUnpublishVolume there) first, or use SINGLE_NODE_MULTI_WRITER (ReadWriteOnce) for several workloads on this node",
    );
    return true;
  });
  assert.ok(!w.host.mountTable.some((m) => m.mountPoint === w.target(pod)), "nothing is mounted at the refused target");
}

for (const [kind, capability] of [
  ["filesystem", mount("xfs", Mode.SINGLE_NODE_SINGLE_WRITER)],
  ["block", block(Mode.SINGLE_NODE_SINGLE_WRITER)],
] as const) {
  const readOnlyToo = kind === "filesystem" ? " (read-only too)" : "";
  test(`SINGLE_NODE_SINGLE_WRITER ${kind} volume: a second target is FAILED_PRECONDITION${readOnlyToo}; the first again is OK; after unpublish the second is OK`, async () => {
    const w = await world(capability);
    try {
      await publish(w, w.csi, "a", capability);
      await refused(publish(w, w.csi, "b", capability), w, "b", "a");
      if (kind === "filesystem") await refused(publish(w, w.csi, "b", capability, true), w, "b", "a");
      await publish(w, w.csi, "a", capability);
      await w.csi.client.call(Node, "nodeUnpublishVolume", { volumeId: ID, targetPath: w.target("a") });
      await publish(w, w.csi, "b", capability);
    } finally {
      await w.csi.stop();
    }
  });
}

test("SINGLE_NODE_SINGLE_WRITER: a restarted loam (a new server over the same machine) still refuses the second target", async () => {
  const capability = mount("xfs", Mode.SINGLE_NODE_SINGLE_WRITER);
  const w = await world(capability);
  try {
    await publish(w, w.csi, "a", capability);
    const made = await makeEngine({ lvm: w.csi.lvm, thinPoolBytes: 0 });
    const restarted = await startCsi({ made, host: w.host, kubeletDir: w.csi.kubeletDir });
    try {
      await refused(publish(w, restarted, "b", capability), w, "b", "a");
    } finally {
      await restarted.stop();
    }
  } finally {
    await w.csi.stop();
  }
});

test("SINGLE_NODE_MULTI_WRITER (ReadWriteOnce) publishes at several targets", async () => {
  const capability = mount("xfs", Mode.SINGLE_NODE_MULTI_WRITER);
  const w = await world(capability);
  try {
    await publish(w, w.csi, "a", capability);
    await publish(w, w.csi, "b", capability);
    await publish(w, w.csi, "c", capability, true);
    assert.equal(w.host.mountTable.filter((m) => m.mountPoint.includes("/pods/")).length, 3);
  } finally {
    await w.csi.stop();
  }
});
