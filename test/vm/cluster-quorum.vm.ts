/**
 * etcd losing quorum under a running cluster, on real LVM (issue 15): the cluster group's
 * controller and agents over three etcd members in the guest. One member killed: everything
 * works. Two killed: metadata RPCs answer UNAVAILABLE (timed from the kill), while existing
 * volumes are unpublished, unstaged, staged and published again through their nodes' sockets and
 * the data written before is read back. Both restored: the CreateVolume retried all along
 * succeeds (timed from the restart), and LVM and the registry agree: nothing lost, nothing
 * made twice. The figures go to docs/reliability.md.
 *
 * Runs inside the cluster group's describe (cluster.vm.ts), which owns the processes.
 */
import assert from "node:assert/strict";
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { status } from "@grpc/grpc-js";
import type { CsiClient } from "../../src/csi/client.js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import type { EtcdCluster } from "../support/etcd.js";
import { TOPOLOGY_KEY } from "./harness.js";
import { createRequest, mountCapability, stageAndPublish } from "./support.js";

export interface QuorumScene<N extends string> {
  nodes: readonly N[];
  etcd(): EtcdCluster;
  controller(): CsiClient;
  nodeClient(node: N): CsiClient;
  pathsOn(node: N, name: string): { staging: string; target: string };
  lvsOn(node: N): Promise<{ name: string; csiName: string | undefined }[]>;
}

/** What a call answered: "OK" or the gRPC code's name. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "OK";
  } catch (error) {
    return status[(error as { code: number }).code] ?? String(error);
  }
}

function writeMarker(dir: string, text: string): void {
  const fd = openSync(join(dir, "marker"), "w");
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
}

export function quorumLossTest<N extends string>(scene: QuorumScene<N>, nodeTimeoutSeconds: number): void {
  test("etcd loses quorum: metadata RPCs answer UNAVAILABLE, existing volumes are staged, published and read back; quorum returns and the pending create succeeds once", async (t) => {
    const controller = scene.controller();
    const etcd = scene.etcd();
    const [a, b] = scene.nodes as unknown as [N, N];
    const capability = mountCapability("ext4");
    const on = (node: N) => ({ requisite: [{ segments: { [TOPOLOGY_KEY]: node } }], preferred: [] });
    const ms = (since: number): number => Math.round(performance.now() - since);
    const tried: Record<string, number> = {};
    const count = (what: string): void => void (tried[what] = (tried[what] ?? 0) + 1);

    // Before: one volume staged and published with data on a, one made but not staged on b.
    const { volume: q1 } = await controller.call(Controller, "createVolume", {
      ...createRequest("q-staged", 64 * MiB),
      volumeCapabilities: [capability],
      accessibilityRequirements: on(a),
    });
    const { volume: q2 } = await controller.call(Controller, "createVolume", {
      ...createRequest("q-idle", 64 * MiB),
      volumeCapabilities: [capability],
      accessibilityRequirements: on(b),
    });
    assert.ok(q1 && q2);
    const p1 = scene.pathsOn(a, "q-staged");
    const p2 = scene.pathsOn(b, "q-idle");
    await stageAndPublish(scene.nodeClient(a), [[q1.volumeId, p1]], capability);
    writeMarker(p1.target, "written before quorum was lost");

    // One member of three gone: everything works.
    await etcd.killMember(2);
    let since = performance.now();
    const { volume: one } = await controller.call(Controller, "createVolume", {
      ...createRequest("q-one-down", 32 * MiB),
      volumeCapabilities: [capability],
    });
    assert.ok(one);
    await controller.call(Controller, "deleteVolume", { volumeId: one.volumeId });
    t.diagnostic(`one member down: CreateVolume + DeleteVolume in ${ms(since)} ms`);

    // Two gone: no quorum. A CreateVolume is tried again and again, as the external-provisioner does.
    await etcd.killMember(1);
    const lostAt = performance.now();
    const pending = { ...createRequest("q-pending", 32 * MiB), volumeCapabilities: [capability] };
    let readOnlyMs = -1;
    let message = "";
    while (readOnlyMs < 0) {
      count("CreateVolume without quorum");
      try {
        await controller.call(Controller, "createVolume", pending, { timeoutMs: 3_000 });
        assert.fail("a CreateVolume succeeded without quorum");
      } catch (error) {
        const code = (error as { code: status }).code;
        if (code === status.UNAVAILABLE) {
          readOnlyMs = ms(lostAt);
          message = (error as Error).message;
        } else assert.equal(code, status.DEADLINE_EXCEEDED, `an attempt ended ${status[code]}`);
      }
      assert.ok(performance.now() - lostAt < nodeTimeoutSeconds * 1000, "UNAVAILABLE before the node timeout");
      if (readOnlyMs < 0) await sleep(250);
    }
    t.diagnostic(`no quorum: first UNAVAILABLE ${readOnlyMs} ms after the second kill: ${message}`);
    for (const [what, call] of [
      ["DeleteVolume", controller.call(Controller, "deleteVolume", { volumeId: q2.volumeId }, { timeoutMs: 10_000 })],
      [
        "ControllerExpandVolume",
        controller.call(
          Controller,
          "controllerExpandVolume",
          { volumeId: q2.volumeId, capacityRange: { requiredBytes: BigInt(96 * MiB), limitBytes: 0n } },
          { timeoutMs: 10_000 },
        ),
      ],
      [
        "CreateSnapshot",
        controller.call(
          Controller,
          "createSnapshot",
          { name: "q-snap", sourceVolumeId: q1.volumeId },
          { timeoutMs: 10_000 },
        ),
      ],
    ] as const) {
      count(`${what} without quorum`);
      assert.equal(await outcome(call), "UNAVAILABLE", `${what} without quorum`);
    }

    // The Node service never waits on etcd: unpublish, unstage, stage, publish; the data is there.
    since = performance.now();
    const nodeA = scene.nodeClient(a);
    await nodeA.call(Node, "nodeUnpublishVolume", { volumeId: q1.volumeId, targetPath: p1.target });
    await nodeA.call(Node, "nodeUnstageVolume", { volumeId: q1.volumeId, stagingTargetPath: p1.staging });
    await stageAndPublish(nodeA, [[q1.volumeId, p1]], capability);
    assert.equal(readFileSync(join(p1.target, "marker"), "utf8"), "written before quorum was lost");
    await stageAndPublish(scene.nodeClient(b), [[q2.volumeId, p2]], capability);
    writeMarker(p2.target, "written without quorum");
    assert.equal(readFileSync(join(p2.target, "marker"), "utf8"), "written without quorum");
    count("Node RPCs without quorum (6)");
    t.diagnostic(
      `no quorum: unpublish + unstage + stage + publish of one volume, stage + publish of another: ${ms(since)} ms`,
    );

    // Quorum back: the pending CreateVolume, retried, succeeds.
    await Promise.all([etcd.startMember(1), etcd.startMember(2)]);
    const restoredAt = performance.now();
    let made: string | undefined;
    while (made === undefined) {
      count("CreateVolume after restart");
      try {
        const { volume } = await controller.call(Controller, "createVolume", pending, { timeoutMs: 10_000 });
        made = volume?.volumeId;
      } catch (error) {
        const code = (error as { code: status }).code;
        assert.ok(
          code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED,
          `a retry after the restart ended ${status[code]}`,
        );
        assert.ok(performance.now() - restoredAt < 120_000, "the pending create succeeded within 2 minutes");
        await sleep(250);
      }
    }
    t.diagnostic(`quorum back: the pending CreateVolume succeeded ${ms(restoredAt)} ms after the members restarted`);

    // Nothing lost, nothing made twice: LVM on every node and the registry agree.
    const listed = (await controller.call(Controller, "listVolumes", {})).entries.map((e) => e.volume?.volumeId);
    for (const id of [q1.volumeId, q2.volumeId, made]) assert.ok(listed.includes(id), `${id} is listed`);
    const lvs = (await Promise.all(scene.nodes.map((n) => scene.lvsOn(n)))).flat();
    const byName = (name: string): string[] => lvs.filter((lv) => lv.csiName === name).map((lv) => lv.name);
    assert.deepEqual(byName("q-pending"), [made], "the pending create made exactly one LV");
    assert.deepEqual(byName("q-staged"), [q1.volumeId]);
    assert.deepEqual(byName("q-idle"), [q2.volumeId]);
    assert.deepEqual(byName("q-one-down"), [], "the volume deleted with one member down is gone");
    assert.deepEqual(
      lvs.map((lv) => lv.name).filter((id) => !listed.includes(id)),
      [],
      "no LV the registry does not list",
    );
    t.diagnostic(`operations tried: ${JSON.stringify(tried)}; lost 0, duplicated 0`);

    // Clean up through the same paths.
    for (const [node, id, p] of [
      [a, q1.volumeId, p1],
      [b, q2.volumeId, p2],
    ] as const) {
      await scene.nodeClient(node).call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: p.target });
      await scene.nodeClient(node).call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: p.staging });
    }
    for (const id of [q1.volumeId, q2.volumeId, made])
      await controller.call(Controller, "deleteVolume", { volumeId: id });
  });
}
