/**
 * IO limits on real cgroup v2 in the guest (issue 17), one scenario: cgroup2 mounted at
 * /sys/fs/cgroup with the io controller delegated down a kubelet-like cgroupfs tree
 * (kubepods/burstable/pod<uid>/<container>), a volume on the shared VG created with a write
 * throughput limit and a per-GiB read IOPS limit, staged and published through loam's socket
 * with csi.storage.k8s.io/pod.uid: loam writes the LV's real major:minor into the pod cgroup's
 * io.max; dd oflag=direct from the container's cgroup is held to the limit while the same dd
 * from a sibling pod's cgroup is not (both figures printed; docs/benchmarks.md); a node
 * expansion raises the per-GiB limit; a pod without a cgroup is refused (FAILED_PRECONDITION);
 * unpublish removes the line. The guest mounts no cgroups of its own, so the group mounts
 * cgroup2 and unmounts it at the end.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { majorMinorOf } from "../../src/host/mountinfo.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG } from "./harness.js";
import { createRequest, mountCapability, rejectsWith } from "./support.js";

const CGROUP = "/sys/fs/cgroup";
const UID = "5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222";
const SIBLING = "9f3c1a7e-2b5d-4e8f-a1c6-3e7d0b9f5333";
const STRANGER = "11111111-2222-4333-8444-555555555555";
const WBPS = 8 * MiB;

/** MiB/s of a dd with O_DIRECT run from inside cgroup `dir` (a node child joins it, then runs dd). */
function ddRateIn(dir: string, file: string, mib: number): number {
  const script = [
    "const fs = require('node:fs'); const cp = require('node:child_process');",
    "fs.writeFileSync(process.argv[1] + '/cgroup.procs', String(process.pid));",
    "const t = process.hrtime.bigint();",
    "cp.execFileSync('dd', ['if=/dev/zero', 'of=' + process.argv[2], 'bs=1M', 'count=' + process.argv[3], 'oflag=direct', 'conv=fsync', 'status=none']);",
    "process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e9));",
  ].join("\n");
  const run = spawnSync(process.execPath, ["-e", script, dir, file, String(mib)], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return mib / Number(run.stdout);
}

const ioMaxLine = (dir: string, device: string): string | undefined =>
  readFileSync(join(dir, "io.max"), "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${device} `));

export function ioLimitTests(h: () => Harness): void {
  describe("IO limits on cgroup v2 (real io.max on a real LV)", () => {
    const kubepods = join(CGROUP, "kubepods");
    const burstable = join(kubepods, "burstable");
    const pod = join(burstable, `pod${UID}`);
    const container = join(pod, "c0ffee01");
    const sibling = join(burstable, `pod${SIBLING}`);
    const siblingContainer = join(sibling, "c0ffee02");
    let mounted = false;

    before(() => {
      if (!existsSync(join(CGROUP, "cgroup.controllers"))) {
        const run = spawnSync("mount", ["-t", "cgroup2", "cgroup2", CGROUP], { encoding: "utf8" });
        assert.equal(run.status, 0, run.stderr);
        mounted = true;
      }
      assert.match(readFileSync(join(CGROUP, "cgroup.controllers"), "utf8"), /\bio\b/);
      writeFileSync(join(CGROUP, "cgroup.subtree_control"), "+io");
      mkdirSync(burstable, { recursive: true });
      writeFileSync(join(kubepods, "cgroup.subtree_control"), "+io");
      writeFileSync(join(burstable, "cgroup.subtree_control"), "+io");
      for (const dir of [container, siblingContainer]) mkdirSync(dir, { recursive: true });
      writeFileSync(join(pod, "cgroup.subtree_control"), "+io");
      writeFileSync(join(sibling, "cgroup.subtree_control"), "+io");
    });
    after(() => {
      for (const dir of [container, siblingContainer, pod, sibling, burstable, kubepods]) {
        if (existsSync(dir)) rmdirSync(dir);
      }
      if (mounted) spawnSync("umount", [CGROUP]);
    });

    test("publish writes io.max for the LV, dd is held to it, expansion rescales, unpublish removes it", async (t) => {
      const { client } = h();
      const name = "pv-iolimits";
      const created = await client.call(Controller, "createVolume", {
        ...createRequest(name, 64 * MiB),
        parameters: { "loam.csi.dev/writeBytesPerSecond": String(WBPS), "loam.csi.dev/readIOPSPerGiB": "1000" },
      });
      const id = created.volume?.volumeId ?? "";
      const device = majorMinorOf(statSync(`/dev/${VG}/${id}`).rdev);
      const staging = join(KUBELET_DIR, "plugins/kubernetes.io/csi/loam.csi.dev", name, "globalmount");
      const podVolumes = (uid: string) => join(KUBELET_DIR, "pods", uid, "volumes/kubernetes.io~csi", name);
      for (const uid of [UID, SIBLING, STRANGER]) mkdirSync(podVolumes(uid), { recursive: true });
      mkdirSync(staging, { recursive: true });
      await client.call(Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: mountCapability("ext4"),
      });
      const publish = (uid: string) =>
        client.call(Node, "nodePublishVolume", {
          volumeId: id,
          stagingTargetPath: staging,
          targetPath: join(podVolumes(uid), "mount"),
          volumeCapability: mountCapability("ext4"),
          volumeContext: { "csi.storage.k8s.io/pod.uid": uid },
        });

      await rejectsWith(
        publish(STRANGER),
        status.FAILED_PRECONDITION,
        /no cgroup of pod 11111111-2222-4333-8444-555555555555/,
      );
      assert.ok(!existsSync(join(podVolumes(STRANGER), "mount")), "nothing published for a pod without a cgroup");

      await publish(UID);
      // 64 MiB at 1000 read IOPS per GiB: 62.5, rounded up.
      assert.equal(ioMaxLine(pod, device), `${device} rbps=max wbps=${WBPS} riops=63 wiops=max`);
      assert.equal(ioMaxLine(sibling, device), undefined);

      const file = join(podVolumes(UID), "mount", "dd.bin");
      const limited = ddRateIn(container, file, 24);
      const free = ddRateIn(siblingContainer, file, 24);
      t.diagnostic(
        `dd oflag=direct 1 MiB blocks, 24 MiB: limited to 8 MiB/s ${limited.toFixed(1)} MiB/s, unlimited ${free.toFixed(1)} MiB/s`,
      );
      assert.ok(limited <= (WBPS / MiB) * 1.25, `limited dd ran at ${limited} MiB/s`);

      // The node's own topology grows the LV and the filesystem in NodeExpandVolume.
      await client.call(Node, "nodeExpandVolume", {
        volumeId: id,
        volumePath: join(podVolumes(UID), "mount"),
        volumeCapability: mountCapability("ext4"),
        capacityRange: { requiredBytes: BigInt(128 * MiB), limitBytes: 0n },
      });
      assert.equal(ioMaxLine(pod, device), `${device} rbps=max wbps=${WBPS} riops=125 wiops=max`);

      await client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: join(podVolumes(UID), "mount") });
      assert.equal(ioMaxLine(pod, device), undefined);
      await client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await client.call(Controller, "deleteVolume", { volumeId: id });
    });
  });
}
