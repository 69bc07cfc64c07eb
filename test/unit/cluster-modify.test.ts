/**
 * ControllerModifyVolume in cluster mode (issue 17): the controller records the new IO limits in
 * the volume's spec over real etcd, the node's agent writes them to the LV's parameter tag
 * through the real VolumeEngine (over the in-memory LVM stand-in) and tells the node
 * (onVolumeModified, where `loam node` re-applies the cgroup limits); keys that cannot change in
 * place are refused with INVALID_ARGUMENT naming each of them; an unknown volume is NOT_FOUND.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { ClusterController } from "../../src/cluster/controller.js";
import { Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";
import { VolumeError } from "../../src/volumes/errors.js";
import { PARAMETER_KEYS as K, parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { EtcdCluster } from "../support/etcd.js";
import { makeEngine } from "../support/engine.js";

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

const refusal = async (promise: Promise<unknown>): Promise<VolumeError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof VolumeError, String(error));
    return error;
  }
  assert.fail("the call succeeded");
};

test("modify: new limits reach the LV's tag through the agent; immutable keys named and refused", async () => {
  const client = new Etcd3({ hosts: etcd.endpoints });
  const registry = new Registry(client, new Keys(`/loam-test/${process.pid}-modify`));
  const { engine } = await makeEngine();
  const modified: string[] = [];
  const agent = new NodeAgent({
    registry,
    nodeId: "node-a",
    segments: { "topology.loam.csi.dev/node": "node-a" },
    engine,
    version: "test",
    leaseSeconds: 5,
    onVolumeModified: (id) => {
      modified.push(id);
      return Promise.resolve();
    },
  });
  await agent.start();
  const controller = new ClusterController({ registry, nodeTimeoutMs: 10_000 });
  try {
    const volume = await controller.createVolume({
      name: "pv-db",
      range: { requiredBytes: BigInt(GiB / 4), limitBytes: 0n },
      parameters: parseParameters({ [K.writeIOPS]: "100" }),
      requisite: [],
      preferred: [],
    });
    assert.deepEqual((await engine.getVolume(volume.id))?.ioLimits?.limits, { writeIops: { absolute: 100 } });

    await controller.modifyVolume(volume.id, { [K.writeIOPSPerGiB]: "50", [K.readBytesPerSecond]: "1048576" });
    const after = await engine.getVolume(volume.id);
    assert.deepEqual(after?.ioLimits?.limits, {
      writeIops: { perGiB: 50 },
      readBytesPerSecond: { absolute: 1048576 },
    });
    assert.deepEqual(modified, [volume.id]);

    // The same change again: nothing new for the agent to do.
    await controller.modifyVolume(volume.id, { [K.writeIOPSPerGiB]: "50" });
    assert.deepEqual(modified, [volume.id]);

    const immutable = await refusal(
      controller.modifyVolume(volume.id, { [K.deviceClass]: "fast", [K.stripes]: "2", [K.writeIOPS]: "5" }),
    );
    assert.equal(immutable.kind, "invalid-argument");
    assert.match(
      immutable.message,
      /cannot change on an existing volume: "loam.csi.dev\/deviceClass", "loam.csi.dev\/stripes"; only the IO limits can/,
    );
    const bad = await refusal(controller.modifyVolume(volume.id, { [K.readIOPS]: "0" }));
    assert.equal(bad.kind, "invalid-argument");
    assert.match(bad.message, /readIOPS"\] "0" is not allowed/);
    const missing = await refusal(controller.modifyVolume("pvc-nothing", { [K.readIOPS]: "5" }));
    assert.equal(missing.kind, "not-found");
    assert.deepEqual((await engine.getVolume(volume.id))?.ioLimits?.limits, after?.ioLimits?.limits);
  } finally {
    await agent.stop();
    await client
      .delete()
      .prefix(registry.keys.root + "/")
      .exec()
      .catch(() => undefined);
    client.close();
  }
});
