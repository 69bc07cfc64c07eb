/**
 * An interrupted format on real LVM (issue 13, item 7): loam is SIGKILLed while mkfs runs on
 * a new volume, is started again, and the retried NodeStageVolume must make a sound
 * filesystem, where before it found a partial head (FAILED_PRECONDITION for ever, or a
 * filesystem that fails to mount).
 *
 * The kill is made to land mid-mkfs deterministically: loam runs with a directory of its own
 * first on PATH holding stand-ins for mkfs.xfs and mkfs.ext4, which write the first 256 KiB
 * of a real filesystem of that type onto the device (what a killed mkfs leaves: superblock
 * and group headers, no log, no inodes) and then wait. The test kills loam once both are
 * waiting. A real mkfs killed at a random moment would often finish first or not have
 * started (a 512 MiB mkfs.xfs takes well under a second), and a hook in loam would put test
 * code in the shipped binary; the stand-ins need neither, and everything else, including the
 * mark loam puts on the LV before it starts mkfs, is loam's real path on real LVM. After the
 * restart loam runs the real wipefs and mkfs.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG } from "./harness.js";
import { createRequest, mountCapability, rejectsWith, until } from "./support.js";

const WORK = "/tmp/loam-format-crash";
const SHIMS = join(WORK, "bin");
const HEAD_BYTES = 256 * 1024;
const FS_TYPES = ["xfs", "ext4"] as const;
type Fs = (typeof FS_TYPES)[number];

const stagingFor = (name: string): string => {
  const path = join(KUBELET_DIR, "plugins/kubernetes.io/csi/loam.csi.dev", name, "globalmount");
  mkdirSync(path, { recursive: true });
  return path;
};

/** The first HEAD_BYTES of a real filesystem of this type, made in a file on the guest's tmpfs. */
async function headOf(h: Harness, fsType: Fs): Promise<Buffer> {
  const image = join(WORK, `${fsType}.img`);
  writeFileSync(image, "");
  truncateSync(image, 320 * MiB);
  await h.must(fsType === "xfs" ? ["mkfs.xfs", "-q", "-K", "-f", image] : ["mkfs.ext4", "-q", "-F", image]);
  const head = Buffer.alloc(HEAD_BYTES);
  const fd = openSync(image, "r");
  readSync(fd, head, 0, HEAD_BYTES, 0);
  closeSync(fd);
  rmSync(image);
  return head;
}

/** mkfs.<fsType> for loam's PATH: writes the head file onto the device, says so, then waits to be killed. */
function writeShim(fsType: Fs): void {
  const path = join(SHIMS, `mkfs.${fsType}`);
  writeFileSync(
    path,
    [
      "#!/bin/bash",
      'dev="${!#}"',
      `echo $$ > ${WORK}/${fsType}.pid`,
      `dd if=${WORK}/${fsType}.head of="$dev" bs=64k conv=notrunc,fsync 2>/dev/null`,
      `touch ${WORK}/${fsType}.reached`,
      "exec sleep 300",
      "",
    ].join("\n"),
  );
  chmodSync(path, 0o755);
}

/** The stand-ins' process groups outlive loam, as a real mkfs would: each is ended by its own pid. */
function killStandIns(): void {
  for (const fsType of FS_TYPES) {
    const pidFile = join(WORK, `${fsType}.pid`);
    if (!existsSync(pidFile)) continue;
    try {
      process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    } catch {
      // Already gone.
    }
    rmSync(pidFile);
  }
}

const checkCommand = (fsType: Fs, device: string): string[] =>
  fsType === "xfs" ? ["xfs_repair", "-n", device] : ["e2fsck", "-n", "-f", device];

export function formatCrashTests(h: () => Harness): void {
  describe("format crash", () => {
    test("SIGKILL while mkfs runs: after a restart the retried NodeStageVolume formats again and the filesystem checks clean", async () => {
      rmSync(WORK, { recursive: true, force: true });
      mkdirSync(SHIMS, { recursive: true });
      const heads = new Map<Fs, Buffer>();
      for (const fsType of FS_TYPES) {
        heads.set(fsType, await headOf(h(), fsType));
        writeFileSync(join(WORK, `${fsType}.head`), heads.get(fsType)!);
        writeShim(fsType);
      }
      const volumes = new Map<Fs, { id: string; staging: string; device: string }>();
      /** Which loam runs: the suite's, the one with the mkfs stand-ins first on PATH, or none. */
      let loam: "usual" | "shimmed" | "none" = "usual";
      try {
        await h().killLoam("SIGTERM");
        loam = "none";
        await h().startLoam([], { ...process.env, PATH: `${SHIMS}:${process.env.PATH ?? ""}` });
        loam = "shimmed";
        for (const fsType of FS_TYPES) {
          const name = `format-crash-${fsType}`;
          const request = { ...createRequest(name, 512 * MiB), volumeCapabilities: [mountCapability(fsType)] };
          const { volume } = await h().client.call(Controller, "createVolume", request);
          const id = volume!.volumeId;
          volumes.set(fsType, { id, staging: stagingFor(name), device: `/dev/${VG}/${id}` });
        }
        const pending = [...volumes].map(([fsType, v]) =>
          h()
            .client.call(Node, "nodeStageVolume", {
              volumeId: v.id,
              stagingTargetPath: v.staging,
              volumeCapability: mountCapability(fsType),
            })
            .catch((error: unknown) => error),
        );
        await until("both mkfs stand-ins to write their heads", () =>
          FS_TYPES.every((fsType) => existsSync(join(WORK, `${fsType}.reached`))),
        );
        const { lvs } = await h().report();
        for (const [fsType, v] of volumes) {
          const lv = lvs.find((candidate) => candidate.name === v.id);
          assert.ok(lv?.tags.includes(FORMATTING_TAG), `${fsType}: the LV is marked before mkfs starts`);
        }
        await h().killLoam("SIGKILL");
        loam = "none";
        killStandIns();
        await Promise.all(pending);
        for (const [fsType, v] of volumes) {
          // What the kill left: a head that reads as this filesystem but is not one.
          const probe = await h().must(["blkid", "-p", "-o", "value", "-s", "TYPE", v.device], { allowFailure: true });
          assert.equal(probe.stdout.trim(), fsType, `${fsType}: blkid reads the partial head as ${fsType}`);
          const check = await h().must(checkCommand(fsType, v.device), { allowFailure: true });
          assert.notEqual(check.exitCode, 0, `${fsType}: the partial head is not a sound filesystem`);
        }

        await h().startLoam();
        loam = "usual";
        for (const [fsType, v] of volumes) {
          await h().client.call(Node, "nodeStageVolume", {
            volumeId: v.id,
            stagingTargetPath: v.staging,
            volumeCapability: mountCapability(fsType),
          });
          writeFileSync(join(v.staging, "after-the-crash"), `written on ${fsType}`);
          await h().client.call(Node, "nodeUnstageVolume", { volumeId: v.id, stagingTargetPath: v.staging });
          const check = await h().must(checkCommand(fsType, v.device), { allowFailure: true });
          assert.equal(check.exitCode, 0, `${fsType} check after the retry:\n${check.stdout}${check.stderr}`);
        }
        const { lvs: after } = await h().report();
        for (const [fsType, v] of volumes) {
          const lv = after.find((candidate) => candidate.name === v.id);
          assert.ok(lv && !lv.tags.includes(FORMATTING_TAG), `${fsType}: the mark is gone once mkfs finished`);
        }
      } finally {
        if (loam === "shimmed") await h().killLoam("SIGTERM");
        killStandIns();
        if (loam !== "usual") await h().startLoam();
        for (const v of volumes.values()) {
          await h().client.call(Node, "nodeUnstageVolume", { volumeId: v.id, stagingTargetPath: v.staging });
          await h().client.call(Controller, "deleteVolume", { volumeId: v.id });
        }
      }
    });

    test("a volume without the mark that holds the same partial head is refused and left byte for byte", async () => {
      mkdirSync(WORK, { recursive: true });
      const head = await headOf(h(), "xfs");
      const name = "format-crash-unmarked";
      const { volume } = await h().client.call(Controller, "createVolume", createRequest(name, 512 * MiB));
      const id = volume!.volumeId;
      const device = `/dev/${VG}/${id}`;
      try {
        // A new volume is marked by its lvcreate until its first stage; this one is as a volume
        // staged before (or made before create-time marks): unmarked, so what it holds is data.
        await h().must(["lvchange", "--deltag", FORMATTING_TAG, `${VG}/${id}`]);
        const fd = openSync(device, "r+");
        try {
          // Not through loam: somebody else's bytes on a volume loam never marked.
          writeSync(fd, head, 0, head.length, 0);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        await rejectsWith(
          h().client.call(Node, "nodeStageVolume", {
            volumeId: id,
            stagingTargetPath: stagingFor(name),
            volumeCapability: mountCapability("ext4"),
          }),
          status.FAILED_PRECONDITION,
          /already holds a xfs filesystem but ext4 was asked for; loam never reformats existing data/,
        );
        const back = Buffer.alloc(head.length);
        const check = openSync(device, "r");
        readSync(check, back, 0, back.length, 0);
        closeSync(check);
        assert.ok(back.equals(head), "the volume's head is unchanged");
      } finally {
        await h().client.call(Controller, "deleteVolume", { volumeId: id });
        rmSync(WORK, { recursive: true, force: true });
      }
    });
  });
}
