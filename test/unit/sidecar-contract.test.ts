/**
 * The contract with Kubernetes' components, in seconds: for every StorageClass and
 * VolumeSnapshotClass shipped in deploy/kubernetes, the requests external-provisioner,
 * external-snapshotter, node-driver-registrar and kubelet send (rebuilt from their source in
 * test/support/sidecar-requests.ts) go to loam's real gRPC server over a Unix socket, with the
 * shipped ConfigMap's device classes on the in-memory LVM stand-in. A manifest change that
 * breaks what these components send fails here. Node stage/publish/expand run on real LVM and
 * mounts in the VM (test/vm/sidecar-contract.vm.ts); here, what kubelet sends is checked up to
 * the first host command.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { Controller, Identity, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { readConfigFile, resolveConfig } from "../../src/cli/config.js";
import type { DeviceClass } from "../../src/volumes/device-classes.js";
import { MiB } from "../../src/volumes/size.js";
import {
  CHECKED_VERSIONS,
  type Claim,
  type NodeSegment,
  capacityRequest,
  capacityRequestBeforeV5,
  createSnapshotRequest,
  createVolumeRequest,
  nodePublishRequest,
  nodeStageRequest,
  persistentVolume,
  shippedClasses,
  shippedNodeConfig,
} from "../support/sidecar-requests.js";
import { NODE_ID, THIN_POOL, TOPOLOGY_KEY, type TestCsi, VG, startCsi } from "../support/engine.js";

const deploy = fileURLToPath(new URL("../../../deploy/kubernetes/", import.meta.url));
const { storageClasses, snapshotClasses } = shippedClasses(deploy);
const node: NodeSegment = { key: TOPOLOGY_KEY, nodeId: NODE_ID };
const pod = { name: "db-0", namespace: "prod", uid: randomUUID(), serviceAccount: "default" };
const versions = Object.entries(CHECKED_VERSIONS)
  .map(([name, version]) => `${name} ${version}`)
  .join(", ");

/** The shipped ConfigMap's device classes, read by loam's own config loader, on the stand-in's volume group and thin pool. */
async function shippedDeviceClasses(): Promise<DeviceClass[]> {
  const config = shippedNodeConfig(deploy);
  config.deviceClasses = config.deviceClasses.map((c) => ({
    ...c,
    volumeGroup: VG,
    ...(typeof c.thinPool === "string" ? { thinPool: THIN_POOL } : {}),
  }));
  const dir = await mkdtemp(join(tmpdir(), "loam-contract-"));
  try {
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    return resolveConfig(await readConfigFile(join(dir, "config.json")), { nodeId: NODE_ID }).deviceClasses;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const claimFor = (name: string, volumeMode: Claim["volumeMode"] = "Filesystem"): Claim => ({
  name,
  namespace: "prod",
  uid: randomUUID(),
  bytes: 64 * MiB,
  accessMode: "ReadWriteOnce",
  volumeMode,
});

describe(`the shipped manifests against what the sidecars send (${versions})`, () => {
  let csi: TestCsi;
  before(async () => {
    csi = await startCsi({ classes: await shippedDeviceClasses() });
  });
  after(async () => {
    await csi.stop();
  });

  test("the manifests ship StorageClasses for loam, each with the fstype key, and a VolumeSnapshotClass", () => {
    assert.ok(storageClasses.length >= 4);
    for (const sc of storageClasses) {
      assert.equal(sc.provisioner, "loam.csi.dev", sc.name);
      // The key that broke GetCapacity: if the classes stop setting it, this contract checks less.
      assert.ok("csi.storage.k8s.io/fstype" in sc.parameters, sc.name);
    }
    assert.ok(snapshotClasses.some((vsc) => vsc.driver === "loam.csi.dev"));
  });

  test("node-driver-registrar: GetPluginInfo names the driver and NodeGetInfo gives the node id and its topology segment", async () => {
    const info = await csi.client.call(Identity, "getPluginInfo", {});
    assert.equal(info.name, "loam.csi.dev");
    const nodeInfo = await csi.client.call(Node, "nodeGetInfo", {});
    assert.equal(nodeInfo.nodeId, NODE_ID);
    assert.deepEqual(nodeInfo.accessibleTopology?.segments, { [TOPOLOGY_KEY]: NODE_ID });
  });

  for (const sc of storageClasses) {
    test(`${sc.name}: GetCapacity with the parameters as stored (provisioner v5: no capability) yields this node's room, and none for another node`, async () => {
      const reply = await csi.client.call(Controller, "getCapacity", capacityRequest(sc, node));
      assert.ok(reply.availableCapacity > 0n, `${sc.name}: available ${reply.availableCapacity}`);
      assert.ok((reply.maximumVolumeSize ?? 0n) > 0n);
      const elsewhere = await csi.client.call(
        Controller,
        "getCapacity",
        capacityRequest(sc, { ...node, nodeId: "node-b" }),
      );
      assert.equal(elsewhere.availableCapacity, 0n);
    });

    test(`${sc.name}: GetCapacity as provisioners before v5 ask (a mount capability, access mode UNKNOWN) gives the same answer`, async () => {
      const v5 = await csi.client.call(Controller, "getCapacity", capacityRequest(sc, node));
      const older = await csi.client.call(Controller, "getCapacity", capacityRequestBeforeV5(sc, node));
      assert.equal(older.availableCapacity, v5.availableCapacity);
      assert.equal(older.maximumVolumeSize, v5.maximumVolumeSize);
    });

    for (const volumeMode of ["Filesystem", "Block"] as const) {
      test(`${sc.name}: CreateVolume for a ${volumeMode} claim as the provisioner sends it (stripped keys, claim metadata, strict topology); unstripped gives the same volume`, async () => {
        const claim = claimFor(`data-${sc.name}-${volumeMode.toLowerCase()}`, volumeMode);
        const request = createVolumeRequest(sc, claim, node, { extraCreateMetadata: true });
        const { volume } = await csi.client.call(Controller, "createVolume", request);
        assert.ok(volume);
        assert.ok(volume.capacityBytes >= BigInt(claim.bytes));
        assert.deepEqual(volume.accessibleTopology[0]?.segments, { [TOPOLOGY_KEY]: NODE_ID });
        const again = await csi.client.call(
          Controller,
          "createVolume",
          createVolumeRequest(sc, claim, node, { extraCreateMetadata: true, unstripped: true }),
        );
        assert.equal(again.volume?.volumeId, volume.volumeId);
        assert.equal(again.volume?.capacityBytes, volume.capacityBytes);
        await csi.client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
      });
    }

    test(`${sc.name}: NodeStage and NodePublish as kubelet sends them (provisioner identity and pod info in the volume context) pass validation`, async () => {
      const claim = claimFor(`node-${sc.name}`);
      const { volume } = await csi.client.call(
        Controller,
        "createVolume",
        createVolumeRequest(sc, claim, node, { extraCreateMetadata: true }),
      );
      assert.ok(volume);
      const pv = persistentVolume(sc, claim, volume, "1764512400000-4242-loam.csi.dev");
      // The stand-in has no device and the fast tests run no host command: the call may get as far
      // as the first one, but must not be refused for what kubelet put in it.
      for (const [rpc, request] of [
        ["nodeStageVolume", nodeStageRequest(pv, csi.kubeletDir, pod.uid)],
        ["nodePublishVolume", nodePublishRequest(pv, pod, csi.kubeletDir, true)],
      ] as const) {
        try {
          await csi.client.call(Node, rpc, request);
        } catch (error) {
          assert.ok(error instanceof CsiCallError, String(error));
          assert.notEqual(error.code, status.INVALID_ARGUMENT, `${rpc}: ${error.message}`);
        }
      }
      await csi.client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
    });
  }

  for (const vsc of snapshotClasses) {
    test(`${vsc.name}: CreateSnapshot as the snapshotter sends it, with its metadata keys or with reserved keys left in, makes one snapshot`, async () => {
      const sc = storageClasses.find((s) => s.parameters["loam.csi.dev/deviceClass"] === "thin") ?? storageClasses[0];
      const { volume } = await csi.client.call(
        Controller,
        "createVolume",
        createVolumeRequest(sc, claimFor("snap-source"), node, { extraCreateMetadata: true }),
      );
      assert.ok(volume);
      const snapshot = { name: "nightly", namespace: "prod", uid: randomUUID() };
      const made = await csi.client.call(
        Controller,
        "createSnapshot",
        createSnapshotRequest(vsc, snapshot, volume.volumeId, { extraCreateMetadata: true }),
      );
      assert.ok(made.snapshot);
      const withSecrets = {
        ...vsc,
        parameters: {
          ...vsc.parameters,
          "csi.storage.k8s.io/snapshotter-secret-name": "s",
          "csi.storage.k8s.io/snapshotter-secret-namespace": "ns",
        },
      };
      const again = await csi.client.call(
        Controller,
        "createSnapshot",
        createSnapshotRequest(withSecrets, snapshot, volume.volumeId, { extraCreateMetadata: false, unstripped: true }),
      );
      assert.equal(again.snapshot?.snapshotId, made.snapshot.snapshotId);
      await csi.client.call(Controller, "deleteSnapshot", { snapshotId: made.snapshot.snapshotId });
      await csi.client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
    });
  }

  test("loam's own keys stay strict next to Kubernetes' keys: a typo in a StorageClass still fails GetCapacity and CreateVolume", async () => {
    const sc = storageClasses[0];
    const typo = { ...sc, parameters: { ...sc.parameters, "loam.csi.dev/devceClass": "thick" } };
    for (const call of [
      csi.client.call(Controller, "getCapacity", capacityRequest(typo, node)),
      csi.client.call(
        Controller,
        "createVolume",
        createVolumeRequest(typo, claimFor("typo"), node, { extraCreateMetadata: true }),
      ),
    ]) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof CsiCallError);
        assert.equal(error.code, status.INVALID_ARGUMENT);
        assert.match(error.message, /unknown key "loam.csi.dev\/devceClass"/);
        return true;
      });
    }
  });
});
