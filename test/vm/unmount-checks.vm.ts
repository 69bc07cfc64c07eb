/**
 * Group "unmount-checks" (issue 13, item 5): NodeUnstageVolume and NodeUnpublishVolume
 * unmount only the volume named by volume_id, on real LVM and real mounts. Another volume's
 * staging path or target, a tmpfs loam never mounted, a mount stacked on the volume, another
 * device node bound onto a block target: each refused (FAILED_PRECONDITION, NOT_FOUND for a
 * volume that does not exist) and left mounted. Also after a restart of loam (nothing cached),
 * and a deleted volume whose paths hold nothing is OK so kubelet can clean up.
 */
import { describe, test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG } from "./harness.js";
import {
  blockCapability,
  createRequest,
  kubeletPaths,
  mountCapability,
  mountLines,
  rejectsWith,
  stageAndPublish,
} from "./support.js";

const pathsFor = (name: string) => kubeletPaths(`unmount-${name}`);

const MISSING = "pv-unmount-never-made-0123456789abcdef";

export function unmountCheckTests(h: () => Harness): void {
  const create = async (name: string, capability: ReturnType<typeof mountCapability | typeof blockCapability>) => {
    const { volume } = await h().client.call(Controller, "createVolume", {
      ...createRequest(name, 32 * MiB),
      volumeCapabilities: [capability],
    });
    assert.ok(volume);
    return volume.volumeId;
  };
  const unstage = (volumeId: string, stagingTargetPath: string) =>
    h().client.call(Node, "nodeUnstageVolume", { volumeId, stagingTargetPath });
  const unpublish = (volumeId: string, targetPath: string) =>
    h().client.call(Node, "nodeUnpublishVolume", { volumeId, targetPath });
  const show = (t: TestContext, what: string, path: string) => t.diagnostic(`${what}: ${mountLines(path).join(" | ")}`);

  describe("unmount-checks", () => {
    test("filesystem: unstage or unpublish of B at A's paths, a tmpfs at a target, a tmpfs stacked on A: refused, nothing unmounted; a restart changes nothing", async (t) => {
      const capability = mountCapability("ext4");
      const a = await create("unmount-a", capability);
      const b = await create("unmount-b", capability);
      const pa = pathsFor("a");
      const pb = pathsFor("b");
      await stageAndPublish(h().client, [[b, pb]], capability, false);
      await stageAndPublish(h().client, [[a, pa]], capability);
      show(t, "A staged", pa.staging);
      show(t, "A published", pa.target);
      const aDevice = lstatSync(realpathSync(`/dev/${VG}/${a}`)).rdev;
      assert.equal(mountLines(pa.staging)[0]?.split(" ")[2], `${aDevice >> 8}:${aDevice & 0xff}`);

      const refusals = async () => {
        await rejectsWith(
          unstage(b, pa.staging),
          status.FAILED_PRECONDITION,
          new RegExp(`^staging_target_path ${pa.staging} holds \\S+ \\(ext4\\), not volume ${b}; loam unmounts only`),
        );
        await rejectsWith(
          unpublish(b, pa.target),
          status.FAILED_PRECONDITION,
          new RegExp(`^target_path ${pa.target} holds .* \\(ext4\\), not volume ${b}`),
        );
        await rejectsWith(
          unstage(MISSING, pa.staging),
          status.NOT_FOUND,
          new RegExp(
            `^volume ${MISSING} does not exist on this node; staging_target_path .* which loam leaves mounted$`,
          ),
        );
        assert.equal(mountLines(pa.staging).length, 1, "A is still staged");
        assert.equal(mountLines(pa.target).length, 1, "A is still published");
      };
      await refusals();
      // A fresh process has nothing cached: the volumes are looked up in LVM.
      await h().killLoam("SIGTERM");
      await h().startLoam();
      await refusals();

      // A tmpfs loam never mounted, at a target directory.
      const foreign = join(KUBELET_DIR, "pods", "unmount-tmpfs", "volumes/kubernetes.io~csi/pvc/mount");
      mkdirSync(foreign, { recursive: true });
      await h().must(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", foreign]);
      writeFileSync(join(foreign, "kept"), "kept");
      await rejectsWith(
        unpublish(a, foreign),
        status.FAILED_PRECONDITION,
        new RegExp(`^target_path ${foreign} holds tmpfs \\(tmpfs\\), not volume ${a}`),
      );
      assert.equal(readFileSync(join(foreign, "kept"), "utf8"), "kept", "the tmpfs is still mounted");
      await h().must(["umount", foreign]);
      await unpublish(a, foreign);

      // A tmpfs stacked on A's target: A lies beneath; neither is unmounted.
      await h().must(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", pa.target]);
      await rejectsWith(
        unpublish(a, pa.target),
        status.FAILED_PRECONDITION,
        new RegExp(`holds tmpfs \\(tmpfs\\), not volume ${a}; volume ${a} is mounted beneath it`),
      );
      assert.equal(mountLines(pa.target).length, 2, "both mounts are left");
      await h().must(["umount", pa.target]);

      // Each volume's own calls still work, twice; after delete, OK with nothing mounted.
      for (let i = 0; i < 2; i++) {
        await unpublish(a, pa.target);
        await unstage(a, pa.staging);
        await unstage(b, pb.staging);
      }
      assert.deepEqual([mountLines(pa.target), mountLines(pa.staging), mountLines(pb.staging)], [[], [], []]);
      for (const id of [a, b]) await h().client.call(Controller, "deleteVolume", { volumeId: id });
      await unstage(a, pa.staging);
      await unpublish(a, pa.target);
    });

    test("block: unpublish of B at A's device file, another device node bound onto a file: refused, left bound", async (t) => {
      const capability = blockCapability();
      const a = await create("unmount-block-a", capability);
      const b = await create("unmount-block-b", capability);
      const pa = pathsFor("block-a");
      const pb = pathsFor("block-b");
      await stageAndPublish(
        h().client,
        [
          [a, pa],
          [b, pb],
        ],
        capability,
      );
      show(t, "A's device file", pa.target);
      // The bind of a device node: the devtmpfs with the node as its root.
      // The node is what /dev/<vg>/<lv> resolves to: /dev/dm-N under udev, /dev/mapper/<vg>-<lv> in this guest.
      const node = realpathSync(`/dev/${VG}/${a}`).slice("/dev".length);
      const fields = mountLines(pa.target)[0]?.split(" ") ?? [];
      assert.equal(fields[3], node, "mountinfo's root of the bind is the device node");
      assert.equal(fields[fields.indexOf("-") + 1], "devtmpfs");

      await rejectsWith(
        unpublish(b, pa.target),
        status.FAILED_PRECONDITION,
        new RegExp(`^target_path ${pa.target} holds \\S+\\[${node}\\] \\(devtmpfs\\), not volume ${b}`),
      );
      assert.ok(lstatSync(pa.target).isBlockDevice(), "A's device file is still bound");
      // B's device node bound by hand onto a file: not A.
      const other = join(KUBELET_DIR, "pods", "unmount-block-a", "other");
      writeFileSync(other, "");
      await h().must(["mount", "--bind", realpathSync(`/dev/${VG}/${b}`), other]);
      await rejectsWith(
        unpublish(a, other),
        status.FAILED_PRECONDITION,
        new RegExp(`^target_path ${other} holds \\S+\\[/\\S+\\] \\(devtmpfs\\), not volume ${a}`),
      );
      assert.equal(mountLines(other).length, 1, "the other bind is left");
      await h().must(["umount", other]);
      rmSync(other);

      for (const [id, p] of [
        [a, pa],
        [b, pb],
      ] as const) {
        await unpublish(id, p.target);
        await unpublish(id, p.target);
        await unstage(id, p.staging);
        assert.deepEqual(mountLines(p.target), []);
        await h().client.call(Controller, "deleteVolume", { volumeId: id });
      }
    });
  });
}
