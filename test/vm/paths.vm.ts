/**
 * Issue 13, item 1, reproduced through loam's gRPC on real LVM: a directory on the way to a
 * staging or target path is swapped for a symlink to a directory outside kubelet's (`mv vol
 * aside; ln -s /elsewhere vol`) after loam checked the path. The swap is made
 * deterministically, not by timing: loam runs with a PATH whose mkfs.ext4, mount and umount
 * are wrappers that make the swap once, when a plan file asks, and then run the real
 * program with loam's descriptors (fds 3 and 4) passed on. Loam must refuse (ABORTED) and
 * leave nothing made, mounted or unmounted where the symlink leads.
 */
import { describe, test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR } from "./harness.js";
import { createRequest, mountCapability, rejectsWith } from "./support.js";

const WRAPPERS = "/tmp/loam-paths-wrappers";
const PLAN = join(WRAPPERS, "plan.json");
const WRAPPED = ["mkfs.ext4", "mount", "umount"];

/**
 * The wrapper: when the plan names this program, rename `from` to `aside` and put a symlink
 * to `to` in its place (once: the plan is removed), then run the real program found on PATH
 * after the wrappers' directory, with stdio and fds 3 and 4 passed on, and exit as it did.
 */
const WRAPPER = `
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const name = path.basename(process.argv[1]);
try {
  const plan = JSON.parse(fs.readFileSync(${JSON.stringify(PLAN)}, "utf8"));
  if (plan.program === name) {
    fs.rmSync(${JSON.stringify(PLAN)});
    fs.renameSync(plan.from, plan.aside);
    fs.symlinkSync(plan.to, plan.from);
  }
} catch (error) {
  if (error.code !== "ENOENT") throw error;
}
const dirs = (process.env.PATH || "").split(":").filter((d) => d && d !== ${JSON.stringify(WRAPPERS)});
const real = dirs.map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
const fds = [3, 4].filter((fd) => { try { fs.fstatSync(fd); return true; } catch { return false; } });
const run = spawnSync(real, process.argv.slice(2), { stdio: [0, 1, 2, ...fds] });
process.exit(run.status === null ? 1 : run.status);
`;

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

export function pathsTests(h: () => Harness): void {
  describe("paths", () => {
    const race = join(KUBELET_DIR, "pods", "race");
    const vol = join(race, "vol");
    const aside = join(race, "vol-aside");
    const elsewhere = "/tmp/loam-paths-elsewhere";
    const stagingDir = join(KUBELET_DIR, "plugins/kubernetes.io/csi/loam.csi.dev/paths-race/globalmount");
    const capability = mountCapability("ext4");
    let volumeId = "";

    /** The swap happens when loam next starts `program`. */
    const planSwap = (program: string): void =>
      writeFileSync(PLAN, JSON.stringify({ program, from: vol, aside, to: elsewhere }));
    /** Undoes a swap, also one a failed test left: the symlink goes, the real directory comes back. */
    const restore = (): void => {
      rmSync(PLAN, { force: true });
      if (lstatSync(vol, { throwIfNoEntry: false })?.isSymbolicLink()) rmSync(vol);
      if (existsSync(aside) && !existsSync(vol)) renameSync(aside, vol);
    };

    before(async () => {
      mkdirSync(WRAPPERS, { recursive: true });
      for (const program of WRAPPED) {
        writeFileSync(join(WRAPPERS, program), `#!${process.execPath}\n${WRAPPER}`);
        chmodSync(join(WRAPPERS, program), 0o755);
      }
      await h().killLoam("SIGTERM");
      await h().startLoam([], { ...process.env, PATH: `${WRAPPERS}:${process.env.PATH ?? ""}` });
      const { volume } = await h().client.call(Controller, "createVolume", {
        ...createRequest("paths-race", 64 * MiB),
        volumeCapabilities: [capability],
      });
      volumeId = volume?.volumeId ?? "";
    });

    const stage = (stagingTargetPath: string) =>
      h().client.call(Node, "nodeStageVolume", { volumeId, stagingTargetPath, volumeCapability: capability });

    beforeEach(restore);

    after(async () => {
      restore();
      // Whatever a failed test left mounted goes first, then the volume.
      for (const point of [...mountsUnder(race), ...mountsUnder(elsewhere), ...mountsUnder(stagingDir)].reverse()) {
        await h().must(["umount", point], { allowFailure: true });
      }
      if (volumeId) await h().client.call(Controller, "deleteVolume", { volumeId });
      rmSync(race, { recursive: true, force: true });
      rmSync(elsewhere, { recursive: true, force: true });
      await h().killLoam("SIGTERM");
      await h().startLoam();
      rmSync(WRAPPERS, { recursive: true, force: true });
    });

    test("stage: vol swapped for a symlink out of kubelet's directory while mkfs runs is ABORTED; nothing is mounted there", async () => {
      mkdirSync(vol, { recursive: true });
      mkdirSync(join(elsewhere, "globalmount"), { recursive: true });
      const staging = join(vol, "globalmount");
      planSwap("mkfs.ext4");
      await rejectsWith(
        stage(staging),
        status.ABORTED,
        /globalmount changed after it was checked \(it now leads to \/tmp\/loam-paths-elsewhere\/globalmount\)/,
      );
      assert.equal(existsSync(PLAN), false, "the swap happened");
      assert.deepEqual(mountsUnder(elsewhere), [], "nothing mounted where the symlink leads");
      assert.deepEqual(mountsUnder(race), []);
      // A retry judges the path again: it now leads out of kubelet's directory.
      await rejectsWith(stage(staging), status.INVALID_ARGUMENT, /is not under/);
      // With the directory back, the same request stages (the filesystem mkfs made is kept).
      restore();
      await stage(staging);
      assert.deepEqual(mountsUnder(race), [staging]);
      await h().client.call(Node, "nodeUnstageVolume", { volumeId, stagingTargetPath: staging });
      assert.deepEqual(mountsUnder(race), []);
    });

    test("stage: vol swapped while mount starts: the mount on the moved directory is undone, ABORTED", async () => {
      const staging = join(vol, "globalmount");
      planSwap("mount");
      await rejectsWith(
        stage(staging),
        status.ABORTED,
        /changed while it was being mounted \(the directory is now at \S+vol-aside\/globalmount\)/,
      );
      assert.equal(existsSync(PLAN), false, "the swap happened");
      assert.deepEqual(mountsUnder(elsewhere), []);
      assert.deepEqual(mountsUnder(race), [], "the mount made on the moved directory was undone");
      restore();
    });

    test("publish: target's parent swapped while mount starts is ABORTED; unpublish unmounts what was checked, never what a swapped path leads to", async () => {
      mkdirSync(stagingDir, { recursive: true });
      await stage(stagingDir);
      const target = join(vol, "mount");
      const publish = {
        volumeId,
        stagingTargetPath: stagingDir,
        targetPath: target,
        volumeCapability: capability,
        readonly: false,
      };
      mkdirSync(join(elsewhere, "mount"), { recursive: true });
      planSwap("mount");
      await rejectsWith(
        h().client.call(Node, "nodePublishVolume", publish),
        status.ABORTED,
        /changed while it was being mounted/,
      );
      assert.deepEqual(mountsUnder(elsewhere), [], "nothing bound where the symlink leads");
      assert.deepEqual(mountsUnder(race), [], "the bind on the moved directory was undone");
      restore();

      // Published for real; someone else's mount waits where the symlink will lead.
      await h().client.call(Node, "nodePublishVolume", publish);
      assert.deepEqual(mountsUnder(race), [target]);
      await h().must(["mount", "-t", "tmpfs", "tmpfs", join(elsewhere, "mount")]);
      planSwap("umount");
      // umount acts inside the directory that was checked: the published mount goes (now
      // under vol-aside), the one the symlink leads to stays.
      await h().client.call(Node, "nodeUnpublishVolume", { volumeId, targetPath: target });
      assert.equal(existsSync(PLAN), false, "the swap happened");
      assert.deepEqual(mountsUnder(elsewhere), [join(elsewhere, "mount")], "the mount outside is untouched");
      assert.deepEqual(mountsUnder(race), [], "the published mount (now under vol-aside) is gone");
      restore();
      await h().client.call(Node, "nodeUnstageVolume", { volumeId, stagingTargetPath: stagingDir });
    });
  });
}
