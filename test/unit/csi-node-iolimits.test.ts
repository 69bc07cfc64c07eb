/**
 * The Node service's IO limit hooks (issue 17) through loam's real gRPC server, the in-memory
 * LVM stand-in, the NodeHost stand-in and a recording stand-in for the cgroup files
 * (CgroupAccess): NodePublishVolume writes the volume's limits to the pod's cgroup (named by
 * csi.storage.k8s.io/pod.uid) before it binds anything, fails FAILED_PRECONDITION and binds
 * nothing when the pod has no cgroup, refuses a malformed pod UID; NodeUnpublishVolume
 * removes them; a volume without limits writes nothing. The kernel's files: io-limits-blkio.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import type { CgroupHierarchy, CgroupIoLimits, Workload } from "../../src/host/cgroup.js";
import { type CgroupAccess, VolumeIoLimiter } from "../../src/volumes/io-limiting.js";
import { PARAMETER_KEYS } from "../../src/volumes/parameters.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { makeEngine, startCsi } from "../support/engine.js";
import { mount } from "../support/rpc-table.js";

const POD = "5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222";
const NO_CGROUP = "11111111-2222-4333-8444-555555555555";

/** Records the writes; the pod POD has a cgroup, any other pod none. */
class RecordingCgroupsStandIn implements CgroupAccess {
  writes: Array<{ dir: string; device: string; limits: CgroupIoLimits }> = [];
  hierarchy(): Promise<CgroupHierarchy> {
    return Promise.resolve({ version: 2, root: "/stand-in" });
  }
  workloadCgroups(_h: CgroupHierarchy, workload: Workload): Promise<string[]> {
    return Promise.resolve(workload.kind === "pod" && workload.uid === POD ? [`/stand-in/kubepods/pod${POD}`] : []);
  }
  limitTargets(_h: CgroupHierarchy, cgroups: readonly string[]): Promise<string[]> {
    return Promise.resolve([...cgroups]);
  }
  writeLimits(_h: CgroupHierarchy, dir: string, device: string, limits: CgroupIoLimits): Promise<void> {
    this.writes.push({ dir, device, limits });
    return Promise.resolve();
  }
}

test("publish writes the pod's limits before binding, fails without a cgroup, unpublish removes them", async () => {
  const made = await makeEngine();
  const host = new InMemoryNodeHostStandIn(made.lvm);
  const cgroups = new RecordingCgroupsStandIn();
  const csi = await startCsi({ made, host, ioLimiter: new VolumeIoLimiter(cgroups) });
  try {
    const create = (name: string, parameters: Record<string, string>) =>
      csi.client.call(Controller, "createVolume", {
        name,
        capacityRange: { requiredBytes: BigInt(512 * MiB), limitBytes: 0n },
        volumeCapabilities: [mount()],
        parameters,
      });
    await create("pv-limited", {
      [PARAMETER_KEYS.writeIOPSPerGiB]: "25",
      [PARAMETER_KEYS.readBytesPerSecond]: "1048576",
    });
    await create("pv-plain", {});
    const staging = (name: string) => `${csi.kubeletDir}/plugins/loam/${name}/globalmount`;
    const target = (name: string, uid: string) =>
      `${csi.kubeletDir}/pods/${uid}/volumes/kubernetes.io~csi/${name}/mount`;
    const stage = (name: string) =>
      csi.client.call(Node, "nodeStageVolume", {
        volumeId: lvNameFor(name),
        stagingTargetPath: staging(name),
        volumeCapability: mount(),
      });
    const publish = (name: string, uid: string) =>
      csi.client.call(Node, "nodePublishVolume", {
        volumeId: lvNameFor(name),
        stagingTargetPath: staging(name),
        targetPath: target(name, uid),
        volumeCapability: mount(),
        volumeContext: { "csi.storage.k8s.io/pod.uid": uid, "csi.storage.k8s.io/pod.name": "db-0" },
      });
    await stage("pv-limited");
    await stage("pv-plain");

    host.calls.length = 0;
    await assert.rejects(publish("pv-limited", NO_CGROUP), (error: { code: status; details: string }) => {
      assert.equal(status[error.code], "FAILED_PRECONDITION");
      assert.match(error.details, /IO limits \(wiops=13 rbps=1048576\).*no cgroup of pod 1111/);
      return true;
    });
    assert.deepEqual(host.changes(), [], "nothing bound for a pod whose limits cannot be applied");
    assert.equal(cgroups.writes.length, 0);

    await assert.rejects(publish("pv-limited", "not-a-uid"), (error: { code: status; details: string }) => {
      assert.equal(status[error.code], "INVALID_ARGUMENT");
      assert.match(error.details, /pod.uid"\] "not-a-uid" is not a pod UID/);
      return true;
    });

    await publish("pv-limited", POD);
    assert.equal(cgroups.writes.length, 1);
    const written = cgroups.writes[0];
    assert.equal(written?.dir, `/stand-in/kubepods/pod${POD}`);
    assert.match(written?.device ?? "", /^\d+:\d+$/);
    assert.deepEqual(written?.limits, { writeIops: 13, readBytesPerSecond: 1048576 });
    assert.ok(host.changes().includes("bindMount"));

    await publish("pv-plain", POD);
    assert.equal(cgroups.writes.length, 1, "a volume without limits writes nothing");

    await csi.client.call(Node, "nodeUnpublishVolume", {
      volumeId: lvNameFor("pv-limited"),
      targetPath: target("pv-limited", POD),
    });
    assert.deepEqual(cgroups.writes[1], { dir: `/stand-in/kubepods/pod${POD}`, device: written?.device, limits: {} });
  } finally {
    await csi.stop();
  }
});
