/**
 * The shipped manifests against real LVM, driven with the requests Kubernetes' components send
 * (test/support/sidecar-requests.ts): loam runs with the device classes of the shipped ConfigMap;
 * for every shipped StorageClass, GetCapacity as external-provisioner's capacity controller sends
 * it (unfiltered parameters, v5 and older shapes), CreateVolume as the provisioner sends it,
 * NodeStage/NodePublish/NodeExpand as kubelet sends them (volume context with the provisioner
 * identity and the pod's identity), then unpublish, unstage and delete; the shipped
 * VolumeSnapshotClass through CreateSnapshot as external-snapshotter sends it.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import {
  type Claim,
  type NodeSegment,
  capacityRequest,
  capacityRequestBeforeV5,
  createSnapshotRequest,
  createVolumeRequest,
  nodeExpandRequest,
  nodePublishRequest,
  nodeStageRequest,
  persistentVolume,
  shippedClasses,
  shippedNodeConfig,
} from "../support/sidecar-requests.js";
import { type Harness, KUBELET_DIR, NODE_ID, TOPOLOGY_KEY, VG, repoRoot } from "./harness.js";
import { useDeviceClasses } from "./device-classes.vm.js";

const node: NodeSegment = { key: TOPOLOGY_KEY, nodeId: NODE_ID };
const pod = { name: "db-0", namespace: "prod", uid: "6c0a3f52-7d1e-4a4b-9f0e-0d6f2b1c9a11", serviceAccount: "default" };

function mounted(path: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === path);
}

export function sidecarContractTests(h: () => Harness): void {
  const deploy = join(repoRoot(), "deploy", "kubernetes");
  const { storageClasses, snapshotClasses } = shippedClasses(deploy);

  describe("the shipped manifests, driven as the sidecars and kubelet drive them", () => {
    let undo: (() => Promise<void>) | undefined;
    before(async () => {
      // The shipped device classes, on the test VG (the ConfigMap names the VG "loam").
      const config = shippedNodeConfig(deploy);
      const classes: Record<string, unknown>[] = config.deviceClasses.map((c) => ({ ...c, volumeGroup: VG }));
      const pools = classes.flatMap((c) =>
        typeof c.thinPool === "string" ? [{ name: c.thinPool, sizeBytes: 1 * GiB }] : [],
      );
      undo = await useDeviceClasses(h, pools, classes);
    });
    after(async () => {
      await undo?.();
    });

    test("there is something to check: StorageClasses and a VolumeSnapshotClass are shipped", () => {
      assert.ok(storageClasses.length >= 4, storageClasses.map((s) => s.name).join(", "));
      assert.ok(snapshotClasses.length >= 1);
    });

    for (const sc of storageClasses) {
      test(`${sc.name}: GetCapacity with the StorageClass's parameters as stored gives room, in both provisioner shapes`, async () => {
        const v5 = await h().client.call(Controller, "getCapacity", capacityRequest(sc, node));
        assert.ok(v5.availableCapacity > 0n, `${sc.name}: ${v5.availableCapacity}`);
        const older = await h().client.call(Controller, "getCapacity", capacityRequestBeforeV5(sc, node));
        assert.equal(older.availableCapacity, v5.availableCapacity);
        const elsewhere = await h().client.call(
          Controller,
          "getCapacity",
          capacityRequest(sc, { ...node, nodeId: "another-node" }),
        );
        assert.equal(elsewhere.availableCapacity, 0n);
      });

      for (const volumeMode of ["Filesystem", "Block"] as const) {
        test(`${sc.name}: a ${volumeMode} claim is provisioned, staged, published, grown and removed with the sidecars' requests`, async () => {
          const claim: Claim = {
            name: `data-${sc.name}-${volumeMode.toLowerCase()}`,
            namespace: "prod",
            uid: randomUUID(),
            // mkfs.xfs refuses a filesystem under 300 MB (FAILED_PRECONDITION, which loam explains).
            bytes: volumeMode === "Filesystem" ? 512 * MiB : 64 * MiB,
            accessMode: "ReadWriteOnce",
            volumeMode,
          };
          const { volume } = await h().client.call(
            Controller,
            "createVolume",
            createVolumeRequest(sc, claim, node, { extraCreateMetadata: true }),
          );
          assert.ok(volume);
          assert.ok(volume.capacityBytes >= BigInt(claim.bytes));
          assert.deepEqual(volume.accessibleTopology[0]?.segments, { [TOPOLOGY_KEY]: NODE_ID });
          // A CO that does not strip the reserved keys gets the same volume back.
          const again = await h().client.call(
            Controller,
            "createVolume",
            createVolumeRequest(sc, claim, node, { extraCreateMetadata: true, unstripped: true }),
          );
          assert.equal(again.volume?.volumeId, volume.volumeId);

          const pv = persistentVolume(sc, claim, volume, "1764512400000-4242-loam.csi.dev");
          const stage = nodeStageRequest(pv, KUBELET_DIR, pod.uid);
          const publish = nodePublishRequest(pv, pod, KUBELET_DIR, true);
          // kubelet makes the staging directory and the target's parent.
          mkdirSync(stage.stagingTargetPath!, { recursive: true });
          mkdirSync(dirname(publish.targetPath!), { recursive: true });
          await h().client.call(Node, "nodeStageVolume", stage);
          await h().client.call(Node, "nodePublishVolume", publish);
          assert.ok(mounted(publish.targetPath!), "the target is mounted");
          if (volumeMode === "Filesystem") writeFileSync(join(publish.targetPath!, "hello"), "from a pod\n");

          const grown = 2 * claim.bytes;
          const expanded = await h().client.call(
            Node,
            "nodeExpandVolume",
            nodeExpandRequest(pv, pod, KUBELET_DIR, grown),
          );
          assert.ok(expanded.capacityBytes >= BigInt(grown));
          if (volumeMode === "Filesystem") {
            const stats = await h().client.call(Node, "nodeGetVolumeStats", {
              volumeId: pv.volumeHandle,
              volumePath: publish.targetPath!,
            });
            assert.ok(stats.usage.length > 0);
            assert.equal(readFileSync(join(publish.targetPath!, "hello"), "utf8"), "from a pod\n");
          }

          await h().client.call(Node, "nodeUnpublishVolume", {
            volumeId: pv.volumeHandle,
            targetPath: publish.targetPath!,
          });
          await h().client.call(Node, "nodeUnstageVolume", {
            volumeId: pv.volumeHandle,
            stagingTargetPath: stage.stagingTargetPath!,
          });
          assert.ok(!mounted(publish.targetPath!));
          await h().client.call(Controller, "deleteVolume", { volumeId: pv.volumeHandle });
        });
      }
    }

    for (const vsc of snapshotClasses) {
      test(`${vsc.name}: CreateSnapshot as external-snapshotter sends it, with and without its metadata and reserved keys`, async () => {
        const sc = storageClasses.find((s) => s.parameters["loam.csi.dev/deviceClass"] === "thin") ?? storageClasses[0];
        const claim: Claim = {
          name: "snap-source",
          namespace: "prod",
          uid: randomUUID(),
          bytes: 32 * MiB,
          accessMode: "ReadWriteOnce",
          volumeMode: "Filesystem",
        };
        const { volume } = await h().client.call(
          Controller,
          "createVolume",
          createVolumeRequest(sc, claim, node, { extraCreateMetadata: true }),
        );
        assert.ok(volume);
        const snapshot = { name: "nightly", namespace: "prod", uid: randomUUID() };
        const made = await h().client.call(
          Controller,
          "createSnapshot",
          createSnapshotRequest(vsc, snapshot, volume.volumeId, { extraCreateMetadata: true }),
        );
        assert.ok(made.snapshot?.readyToUse);
        const withSecrets = {
          ...vsc,
          parameters: {
            ...vsc.parameters,
            "csi.storage.k8s.io/snapshotter-secret-name": "s",
            "csi.storage.k8s.io/snapshotter-secret-namespace": "ns",
          },
        };
        const again = await h().client.call(
          Controller,
          "createSnapshot",
          createSnapshotRequest(withSecrets, snapshot, volume.volumeId, {
            extraCreateMetadata: false,
            unstripped: true,
          }),
        );
        assert.equal(again.snapshot?.snapshotId, made.snapshot?.snapshotId);
        await h().client.call(Controller, "deleteSnapshot", { snapshotId: made.snapshot.snapshotId });
        await h().client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
      });
    }
  });
}
