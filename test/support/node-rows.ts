/**
 * Rows of Node service decisions over loam's real gRPC server, the in-memory LVM stand-in
 * and the NodeHost stand-in: each row gets a fresh server with volume pv-1 (64 MiB, id ID)
 * created, sets up what it needs, makes its calls and names the gRPC code, the message and
 * the host changes it expects. Used by csi-node-decisions.test.ts and csi-node-unmount.test.ts.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import type { DeviceContent, FirstLook } from "../../src/host/index.js";
import { InMemoryNodeHostStandIn } from "./in-memory-node-host.js";
import { type TestCsi, VG, makeEngine, startCsi } from "./engine.js";
import { type block, mount } from "./rpc-table.js";

export const ID = lvNameFor("pv-1");

export interface World {
  csi: TestCsi;
  host: InMemoryNodeHostStandIn;
  staging: string;
  target: string;
}

export interface NodeRow {
  name: string;
  given?: (w: World) => Promise<unknown> | void;
  when: (w: World) => Promise<unknown>;
  code?: status;
  message?: RegExp;
  /** Host methods that changed the machine during `when`, in order. */
  changes?: string[];
  then?: (w: World, reply: unknown) => void;
}

export type Capability = ReturnType<typeof mount> | ReturnType<typeof block>;
export const stage = (w: World, capability: Capability = mount(), volumeId = ID) =>
  w.csi.client.call(Node, "nodeStageVolume", { volumeId, stagingTargetPath: w.staging, volumeCapability: capability });
export const publish = (w: World, capability: Capability = mount(), readonly = false) =>
  w.csi.client.call(Node, "nodePublishVolume", {
    volumeId: ID,
    stagingTargetPath: w.staging,
    targetPath: w.target,
    volumeCapability: capability,
    readonly,
  });
export const argsOf = (w: World, method: string): readonly unknown[] | undefined =>
  w.host.calls.findLast((c) => c.method === method)?.args;
/**
 * The volume holds `content` as after an earlier stage and use: the format mark a new volume
 * gets from its lvcreate is gone (a stage took it off), so loam reads what is there.
 */
export async function holding(w: World, content: DeviceContent, look?: FirstLook): Promise<void> {
  await w.csi.lvm.removeTags(VG, ID, [FORMATTING_TAG]);
  w.host.setContent(VG, ID, content, look);
}
export const xfsData = (w: World) => holding(w, { kind: "filesystem", fsType: "xfs" });

export async function runRow(row: NodeRow): Promise<void> {
  const host = await startHost();
  const w: World = {
    ...host,
    staging: `${host.csi.kubeletDir}/plugins/loam/globalmount`,
    target: `${host.csi.kubeletDir}/pods/p1/volumes/mount`,
  };
  try {
    await w.csi.client.call(Controller, "createVolume", {
      name: "pv-1",
      capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
      volumeCapabilities: [mount()],
      parameters: {},
    });
    await row.given?.(w);
    w.host.calls.length = 0;
    let reply: unknown;
    try {
      reply = await row.when(w);
    } catch (error) {
      if (row.code === undefined) throw error;
      const failure = error as { code: status; details: string };
      assert.equal(status[failure.code], status[row.code], failure.details);
      if (row.message) assert.match(failure.details, row.message);
    }
    if (row.code !== undefined && reply !== undefined)
      assert.fail(`expected ${status[row.code]}, but the call succeeded`);
    if (row.changes) assert.deepEqual(w.host.changes(), row.changes);
    row.then?.(w, reply);
  } finally {
    await w.csi.stop();
  }
}

async function startHost(): Promise<{ csi: TestCsi; host: InMemoryNodeHostStandIn }> {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  return { csi: await startCsi({ made, host }), host };
}
