/**
 * The format-in-progress mark (issue 13, item 7) through loam's real gRPC server, over the
 * in-memory LVM stand-in and the stand-in host: a caller that goes away does not stop mkfs; a
 * crash (a new server over the same LVM and host) in the middle of mkfs, between the mark and
 * mkfs, or between mkfs and the unmark, ends in a formatted volume on the next
 * NodeStageVolume; a volume without the mark that holds a signature is still refused. The
 * same on real LVM with a SIGKILL is test/vm/format-crash.vm.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { CommandError } from "../../src/exec/index.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import type { InMemoryLvmStandIn } from "../support/in-memory-lvm.js";
import { type TestCsi, VG, makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

const ID = lvNameFor("pv-fmt");

/** A node process: a server over the shared LVM and host; a restart is a new one over the same two. */
async function startNode(lvm?: InMemoryLvmStandIn, host?: InMemoryNodeHostStandIn, kubeletDir?: string) {
  const made = await makeEngine(lvm ? { lvm, thinPoolBytes: 0 } : {});
  const machine = host ?? new InMemoryNodeHostStandIn(made.lvm);
  const csi = await startCsi({ made, host: machine, ...(kubeletDir ? { kubeletDir } : {}) });
  return { csi, host: machine, staging: `${csi.kubeletDir}/plugins/loam/globalmount` };
}

async function createVolume(csi: TestCsi): Promise<void> {
  await csi.client.call(Controller, "createVolume", {
    name: "pv-fmt",
    capacityRange: { requiredBytes: BigInt(512 * MiB), limitBytes: 0n },
    volumeCapabilities: [mount()],
    parameters: {},
  });
}

/** A node with the volume created, stopped after `body`. */
async function withVolume(body: (node: Awaited<ReturnType<typeof startNode>>) => Promise<void>): Promise<void> {
  const node = await startNode();
  try {
    await createVolume(node.csi);
    await body(node);
  } finally {
    await node.csi.stop();
  }
}

const stage = (csi: TestCsi, staging: string, fsType = "xfs", timeoutMs?: number) =>
  csi.client.call(
    Node,
    "nodeStageVolume",
    { volumeId: ID, stagingTargetPath: staging, volumeCapability: mount(fsType) },
    timeoutMs === undefined ? {} : { timeoutMs },
  );

const tagsOf = (lvm: InMemoryLvmStandIn): readonly string[] => lvm.lv(VG, ID)?.tags ?? [];
const mkfsCalls = (host: InMemoryNodeHostStandIn) => host.calls.filter((c) => c.method === "makeFilesystem");

test("format mark: a NodeStageVolume whose caller gives up during mkfs does not stop mkfs; the retry mounts what it made", () =>
  withVolume(async (node) => {
    const held = node.host.pauseBefore("makeFilesystem");
    const first = stage(node.csi, node.staging, "xfs", 300).catch((error: unknown) => error);
    await held.reached;
    const outcome = await first;
    assert.ok(outcome instanceof CsiCallError, "the caller's deadline passed while mkfs ran");
    assert.equal(outcome.code, status.DEADLINE_EXCEEDED, outcome.message);
    assert.ok(tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "the volume is marked while mkfs runs");
    // The client's cancel reaches the server a moment after the client gave up: let it arrive.
    await sleep(250);
    held.release();
    const deadline = Date.now() + 2_000;
    while (node.host.contentOf(VG, ID).kind !== "filesystem" && Date.now() < deadline) await sleep(5);
    assert.deepEqual(node.host.contentOf(VG, ID), { kind: "filesystem", fsType: "xfs" }, "mkfs ran to its end");
    await stage(node.csi, node.staging);
    assert.equal(mkfsCalls(node.host).length, 1, "the retry formatted nothing");
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "the mark is gone");
    assert.ok(node.host.mountTable.some((m) => m.mountPoint === node.staging));
  }));

test("format mark: loam dies in the middle of mkfs, leaving a partial head; after a restart NodeStageVolume wipes it and formats again", async () => {
  const node = await startNode();
  let restarted: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    await createVolume(node.csi);
    const held = node.host.pauseBefore("makeFilesystem");
    const first = stage(node.csi, node.staging).catch((error: unknown) => error);
    await held.reached;
    // mkfs wrote part of its head, then the process died (its mkfs killed with it).
    node.host.setContent(VG, ID, { kind: "other", description: "half an xfs" }, "data");
    held.fail(new CommandError("mkfs.xfs was killed by SIGKILL", ["mkfs.xfs"], null, ""));
    await first;
    await node.csi.stop();
    restarted = await startNode(node.csi.lvm, node.host);
    await stage(restarted.csi, restarted.staging);
    assert.deepEqual(node.host.contentOf(VG, ID), { kind: "filesystem", fsType: "xfs" });
    assert.deepEqual(
      node.host.calls.slice(-4).map((c) => c.method),
      ["firstLook", "wipeSignatures", "makeFilesystem", "mountFilesystem"],
    );
    assert.deepEqual(mkfsCalls(node.host).at(-1)?.args.at(-1), { force: true });
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "the mark is gone");
  } finally {
    await (restarted ?? node).csi.stop();
  }
});

for (const { when, content } of [
  { when: "between the mark and mkfs (the device still empty)", content: undefined },
  { when: "between mkfs and the unmark (a whole filesystem)", content: { kind: "filesystem", fsType: "xfs" } as const },
]) {
  test(`format mark: a crash ${when} converges: the restarted node formats as asked and mounts`, async () => {
    const node = await startNode();
    let restarted: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      await createVolume(node.csi);
      await node.csi.lvm.addTags(VG, ID, [FORMATTING_TAG]);
      if (content) node.host.setContent(VG, ID, content, "data");
      await node.csi.stop();
      restarted = await startNode(node.csi.lvm, node.host);
      await stage(restarted.csi, restarted.staging, "ext4");
      assert.deepEqual(node.host.contentOf(VG, ID), { kind: "filesystem", fsType: "ext4" });
      assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "the mark is gone");
    } finally {
      await (restarted ?? node).csi.stop();
    }
  });
}

test("format mark: a volume without the mark that holds a partial head is refused as before, and stays unmarked", () =>
  withVolume(async (node) => {
    // As after an earlier stage (which took off the mark the lvcreate wrote) and somebody else's writes.
    await node.csi.lvm.removeTags(VG, ID, [FORMATTING_TAG]);
    node.host.setContent(VG, ID, { kind: "other", description: "half an xfs" }, "data");
    await assert.rejects(stage(node.csi, node.staging), (error: CsiCallError) => {
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.match(error.message, /holds half an xfs, not a filesystem; loam never formats over existing data/);
      return true;
    });
    assert.deepEqual(node.host.contentOf(VG, ID), { kind: "other", description: "half an xfs" });
    assert.deepEqual(mkfsCalls(node.host), []);
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG));
  }));

test("format mark: a new volume carries the mark from its lvcreate; ControllerGetVolume says it is not formatted yet, not abnormal; after its first stage neither", () =>
  withVolume(async (node) => {
    assert.ok(tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "marked by the lvcreate");
    assert.deepEqual(
      node.csi.lvm.methods().filter((m) => m === "addTags"),
      [],
      "no LVM change but the lvcreate",
    );
    const reply = await node.csi.client.call(Controller, "controllerGetVolume", { volumeId: ID });
    assert.equal(reply.status?.volumeCondition?.abnormal, false);
    assert.match(
      reply.status?.volumeCondition?.message ?? "",
      /not formatted yet .*the next NodeStageVolume formats it/,
    );
    await stage(node.csi, node.staging);
    const after = await node.csi.client.call(Controller, "controllerGetVolume", { volumeId: ID });
    assert.equal(after.status?.volumeCondition?.message, "logical volume is active");
  }));

test("format mark: a clone is not marked (its blocks are its source's)", () =>
  withVolume(async (node) => {
    await node.csi.client.call(Controller, "createVolume", {
      name: "pv-fmt-clone",
      capacityRange: { requiredBytes: BigInt(512 * MiB), limitBytes: 0n },
      volumeCapabilities: [mount()],
      parameters: {},
      volumeContentSource: { type: { case: "volume", value: { volumeId: ID } } },
    });
    assert.ok(!(node.csi.lvm.lv(VG, lvNameFor("pv-fmt-clone"))?.tags ?? []).includes(FORMATTING_TAG));
  }));

const publish = (csi: TestCsi, staging: string) =>
  csi.client.call(Node, "nodePublishVolume", {
    volumeId: ID,
    stagingTargetPath: staging,
    targetPath: `${csi.kubeletDir}/pods/p1/volumes/kubernetes.io~csi/${ID}/mount`,
    volumeCapability: mount("xfs"),
  });

test("format mark: a first stage mounts without waiting for the mark's removal; NodePublishVolume answers only once the mark is off", () =>
  withVolume(async (node) => {
    const held = node.csi.lvm.pauseBefore("removeTags");
    await stage(node.csi, node.staging);
    await held.reached;
    assert.ok(
      node.host.mountTable.some((m) => m.mountPoint === node.staging),
      "mounted while the removal waits",
    );
    assert.ok(tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "still marked");
    let answered = false;
    const published = publish(node.csi, node.staging).then(() => (answered = true));
    await sleep(50);
    assert.equal(answered, false, "publish waits for the removal");
    held.release();
    await published;
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "the mark is gone when publish answers");
  }));

test("format mark: the stage's removal failed: NodePublishVolume removes the mark itself before it answers", () =>
  withVolume(async (node) => {
    node.csi.lvm.failNext("removeTags", new CommandError("lvchange was killed", ["lvchange"], null, ""));
    await stage(node.csi, node.staging);
    await publish(node.csi, node.staging);
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG));
    assert.equal(node.csi.lvm.callsOf("removeTags").length, 2, "the stage's try and publish's");
  }));

test("format mark: loam restarted between a stage's mount and its mark's removal: NodePublishVolume reads the mark and removes it; nothing is formatted again", async () => {
  // One kubelet directory (and host) across the restart: the stage's mount is still there.
  const kubeletDir = await mkdtemp(join(tmpdir(), "loam-fmt-kubelet-"));
  const node = await startNode(undefined, undefined, kubeletDir);
  let restarted: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    await createVolume(node.csi);
    const held = node.csi.lvm.pauseBefore("removeTags");
    await stage(node.csi, node.staging);
    await held.reached;
    held.fail(new CommandError("lvchange was killed by SIGKILL", ["lvchange"], null, ""));
    await node.csi.stop();
    restarted = await startNode(node.csi.lvm, node.host, kubeletDir);
    assert.ok(tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "still marked after the restart");
    await publish(restarted.csi, restarted.staging);
    assert.ok(!tagsOf(node.csi.lvm).includes(FORMATTING_TAG), "publish took the mark off");
    assert.equal(mkfsCalls(node.host).length, 1, "formatted once");
  } finally {
    await (restarted ?? node).csi.stop();
    await rm(kubeletDir, { recursive: true, force: true });
  }
});
