/**
 * The Node service's decisions (src/volumes/staging.ts, publishing.ts) through loam's real
 * gRPC server, over the in-memory LVM stand-in and a stand-in for the machine (NodeHost):
 * format only an empty device, never over data; xfs gets nouuid; a found filesystem is
 * grown; every call idempotent; what a mismatch is answered with. Each row has a fresh server.
 * Real mkfs, mount and blkid are checked by the host and VM suites. The row machinery is in
 * test/support/node-rows.ts; what unstage and unpublish may unmount is csi-node-unmount.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  Node,
  VolumeCapability_AccessMode_Mode as Mode,
  VolumeUsage_Unit as Unit,
} from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { VG } from "../support/engine.js";
import { block, mount } from "../support/rpc-table.js";
import { ID, type NodeRow, argsOf, holding, publish, runRow, stage, xfsData } from "../support/node-rows.js";

const rows: NodeRow[] = [
  // ---- stage ----
  {
    name: "stage, a new thick volume for xfs: marked by its lvcreate, so no probe and one LVM change (the mark removed); a deleted volume's leftovers behind the zeroed head wiped, mkfs.xfs, mounted with nouuid",
    when: (w) => stage(w),
    changes: ["makeDirectory", "wipeSignatures", "makeFilesystem", "mountFilesystem"],
    then: (w) => {
      assert.deepEqual(
        w.host.methods().filter((m) => m === "probe" || m === "makeFilesystem"),
        ["makeFilesystem"],
      );
      assert.deepEqual(
        w.csi.lvm.methods().filter((m) => m === "addTags" || m === "removeTags"),
        ["removeTags"],
      );
      assert.deepEqual(argsOf(w, "mountFilesystem"), [
        `/dev/${VG}/${ID}`,
        w.staging,
        "xfs",
        ["nouuid"],
        { readonly: false },
      ]);
    },
  },
  {
    name: "stage, an unmarked empty volume (made before lvcreate marked, or its mark removed): blkid first, mkfs under a mark added and removed",
    given: (w) => holding(w, { kind: "empty" }, "zero-head"),
    when: (w) => stage(w),
    changes: ["makeDirectory", "makeFilesystem", "mountFilesystem"],
    then: (w) => {
      assert.deepEqual(
        w.host.methods().filter((m) => m === "probe" || m === "makeFilesystem"),
        ["probe", "makeFilesystem"],
      );
      assert.deepEqual(
        w.csi.lvm.methods().filter((m) => m === "addTags" || m === "removeTags"),
        ["removeTags", "addTags", "removeTags"],
      );
    },
  },
  {
    name: "stage, a new volume whose edges are zero (a thin volume's usual case) for ext4: no process but mkfs.ext4; no nouuid",
    given: (w) => w.host.setContent(VG, ID, { kind: "empty" }, "empty"),
    when: (w) => stage(w, mount("ext4", Mode.SINGLE_NODE_WRITER, { mountFlags: ["noatime"] })),
    changes: ["makeDirectory", "makeFilesystem", "mountFilesystem"],
    then: (w) => {
      assert.ok(!w.host.methods().includes("probe"));
      assert.deepEqual(argsOf(w, "mountFilesystem")?.slice(2, 4), ["ext4", ["noatime"]]);
    },
  },
  {
    name: "stage, a device holding xfs and no fs_type asked: mounted as it is, then grown to its device",
    given: xfsData,
    when: (w) => stage(w, mount("")),
    changes: ["makeDirectory", "mountFilesystem", "growFilesystem"],
  },
  {
    name: "stage, a device holding ext4 when xfs is asked: FAILED_PRECONDITION, never reformatted",
    given: (w) => holding(w, { kind: "filesystem", fsType: "ext4" }),
    when: (w) => stage(w, mount("xfs")),
    code: status.FAILED_PRECONDITION,
    message:
      /^volume pv-1-\w+ already holds a ext4 filesystem but xfs was asked for; loam never reformats existing data$/,
    changes: ["makeDirectory"],
    then: (w) => assert.deepEqual(w.host.contentOf(VG, ID), { kind: "filesystem", fsType: "ext4" }),
  },
  {
    name: "stage, a device holding something that is not a filesystem: FAILED_PRECONDITION, left intact",
    given: (w) => holding(w, { kind: "other", description: "a dos partition table" }),
    when: (w) => stage(w, mount("ext4")),
    code: status.FAILED_PRECONDITION,
    message: /^volume pv-1-\w+ holds a dos partition table, not a filesystem; loam never formats over existing data$/,
    changes: ["makeDirectory"],
  },
  {
    name: "stage, stale blocks behind a zeroed head: blkid names them, nothing marked or formatted",
    given: (w) => holding(w, { kind: "other", description: "an iso9660 filesystem" }, "zero-head"),
    when: (w) => stage(w),
    code: status.FAILED_PRECONDITION,
    message: /holds an iso9660 filesystem, not a filesystem; loam never formats over existing data/,
    then: (w) => {
      assert.deepEqual(
        w.host.methods().filter((m) => m === "makeFilesystem" || m === "probe"),
        ["probe"],
      );
      assert.deepEqual(w.csi.lvm.callsOf("addTags"), []);
    },
  },
  {
    name: "stage, a volume too small for xfs: FAILED_PRECONDITION with mkfs's words and the way out",
    given: (w) =>
      w.host.failNext(
        "makeFilesystem",
        InMemoryNodeHostStandIn.commandFailure(
          ["mkfs.xfs"],
          1,
          "agsize (4096 blocks) too small, need at least 4096 blocks; must be larger than 300MB",
        ),
      ),
    when: (w) => stage(w),
    code: status.FAILED_PRECONDITION,
    message:
      /^making xfs on volume pv-1-\w+ if it is empty failed: agsize .* must be larger than 300MB \(ask for a larger volume or fs_type ext4\)$/,
  },
  {
    name: "stage, the mount fails: INTERNAL naming the step and mount's words",
    given: (w) =>
      w.host.failNext(
        "mountFilesystem",
        InMemoryNodeHostStandIn.commandFailure(["mount"], 32, "mount: bad superblock"),
      ),
    when: (w) => stage(w),
    code: status.INTERNAL,
    message: /^mounting volume pv-1-\w+ at .*globalmount failed: mount exited 32: mount: bad superblock$/,
  },
  {
    name: "stage again, as staged: nothing done",
    given: (w) => stage(w),
    when: (w) => stage(w),
    changes: [],
  },
  {
    name: "stage where another device is mounted: ALREADY_EXISTS",
    given: (w) => w.host.mountOther(w.staging, { majorMinor: "8:1", fsType: "ext4", source: "/dev/sda1" }),
    when: (w) => stage(w),
    code: status.ALREADY_EXISTS,
    message: /^staging_target_path .*globalmount already has \/dev\/sda1 \(ext4\) mounted, not volume pv-1-\w+$/,
    changes: [],
  },
  {
    name: "stage as xfs where it is staged as ext4: ALREADY_EXISTS",
    given: (w) => stage(w, mount("ext4")),
    when: (w) => stage(w, mount("xfs")),
    code: status.ALREADY_EXISTS,
    message: /is staged at .* as ext4; this request asks for xfs$/,
  },
  {
    name: "stage with noatime where it is staged without: ALREADY_EXISTS",
    given: (w) => stage(w),
    when: (w) => stage(w, mount("xfs", Mode.SINGLE_NODE_WRITER, { mountFlags: ["noatime"] })),
    code: status.ALREADY_EXISTS,
    message: /with mount options rw,nouuid; this request also asks for noatime$/,
  },
  {
    name: "stage read-only (a reader-only mode): mounted read-only, a found filesystem not grown",
    given: xfsData,
    when: (w) => stage(w, mount("xfs", Mode.SINGLE_NODE_READER_ONLY)),
    changes: ["makeDirectory", "mountFilesystem"],
    then: (w) => assert.deepEqual(argsOf(w, "mountFilesystem")?.at(-1), { readonly: true }),
  },
  {
    name: "stage a block volume after a reboot: the LV activated, nothing mounted",
    given: (w) => w.csi.lvm.deactivateLv(VG, ID),
    when: (w) => stage(w, block()),
    changes: [],
    then: (w) => assert.equal(w.csi.lvm.lv(VG, ID)?.active, true),
  },
  {
    name: "stage a new block volume: the mark its lvcreate wrote comes off, nothing formatted; staged again as a filesystem, what was written is refused, not formatted over",
    when: async (w) => {
      await stage(w, block());
      w.host.setContent(VG, ID, { kind: "other", description: "a database's blocks" });
      return stage(w, mount("xfs"));
    },
    code: status.FAILED_PRECONDITION,
    message: /holds a database's blocks, not a filesystem; loam never formats over existing data/,
    changes: ["makeDirectory"],
    then: (w) => {
      assert.ok(!w.csi.lvm.lv(VG, ID)?.tags.includes(FORMATTING_TAG), "unmarked");
      assert.ok(!w.host.methods().includes("makeFilesystem"));
    },
  },
  // ---- publish ----
  {
    name: "publish a new block volume before any stage: FAILED_PRECONDITION, nothing bound (its mark would let a later stage format over what it holds)",
    when: (w) => publish(w, block()),
    code: status.FAILED_PRECONDITION,
    message: /^volume pv-1-\w+ has not been staged on this node; call NodeStageVolume first$/,
    changes: [],
  },
  {
    name: "publish before stage: FAILED_PRECONDITION",
    when: (w) => publish(w),
    code: status.FAILED_PRECONDITION,
    message: /^volume pv-1-\w+ is not staged at staging_target_path .*; call NodeStageVolume first$/,
    changes: [],
  },
  {
    name: "publish: the staging mount bound in with the pod's per-mount flags only",
    given: (w) => stage(w),
    when: (w) => publish(w, mount("xfs", Mode.SINGLE_NODE_WRITER, { mountFlags: ["noatime", "nouuid", "nodev"] })),
    changes: ["makeDirectory", "bindMount"],
    then: (w) =>
      assert.deepEqual(argsOf(w, "bindMount"), [w.staging, w.target, ["noatime", "nodev"], { readonly: false }]),
  },
  {
    name: "publish read-only: bound read-only",
    given: (w) => stage(w),
    when: (w) => publish(w, mount(), true),
    changes: ["makeDirectory", "bindMount"],
    then: (w) => assert.deepEqual(argsOf(w, "bindMount")?.at(-1), { readonly: true }),
  },
  {
    name: "publish again, as published: nothing done",
    given: async (w) => {
      await stage(w);
      await publish(w);
    },
    when: (w) => publish(w),
    changes: [],
  },
  {
    name: "publish read-only where it is published read-write: ALREADY_EXISTS",
    given: async (w) => {
      await stage(w);
      await publish(w);
    },
    when: (w) => publish(w, mount(), true),
    code: status.ALREADY_EXISTS,
    message: /is already published at .* read-write; this request asks for read-only$/,
  },
  {
    name: "publish where another device is mounted at the target: ALREADY_EXISTS",
    given: async (w) => {
      await stage(w);
      w.host.mountOther(w.target, { majorMinor: "8:2", fsType: "ext4", source: "/dev/sdb" });
    },
    when: (w) => publish(w),
    code: status.ALREADY_EXISTS,
    message: /^target_path .* already has \/dev\/sdb \(ext4\) mounted, not volume pv-1-\w+$/,
  },
  {
    name: "publish a block volume: its device node bound onto a new file; again: nothing done",
    given: (w) => stage(w, block()),
    when: async (w) => {
      await publish(w, block());
      return publish(w, block());
    },
    changes: ["makeFile", "bindMount"],
    then: (w) => assert.deepEqual(argsOf(w, "bindMount")?.slice(0, 2), [`/dev/dm-0`, w.target]),
  },
  {
    name: "publish a block volume onto a directory: FAILED_PRECONDITION",
    given: async (w) => {
      await stage(w, block());
      w.host.directories.add(w.target);
    },
    when: (w) => publish(w, block()),
    code: status.FAILED_PRECONDITION,
    message: /^target_path .*mount is a directory; a block volume is published onto a file$/,
  },
  {
    name: "publish whose bind fails: the target it made is removed, INTERNAL",
    given: async (w) => {
      await stage(w);
      w.host.failNext(
        "bindMount",
        InMemoryNodeHostStandIn.commandFailure(["mount", "--bind"], 32, "mount: permission denied"),
      );
    },
    when: (w) => publish(w),
    code: status.INTERNAL,
    message: /^binding .*globalmount onto .*mount failed: mount --bind exited 32: mount: permission denied$/,
    changes: ["makeDirectory", "bindMount", "removeDirectory"],
    then: (w) => assert.ok(!w.host.directories.has(w.target)),
  },
  // ---- unpublish, unstage ----
  {
    name: "unpublish: unmounted and the target directory removed; again: nothing left to do",
    given: async (w) => {
      await stage(w);
      await publish(w);
    },
    when: async (w) => {
      await w.csi.client.call(Node, "nodeUnpublishVolume", { volumeId: ID, targetPath: w.target });
      return w.csi.client.call(Node, "nodeUnpublishVolume", { volumeId: ID, targetPath: w.target });
    },
    changes: ["unmount", "removeDirectory"],
    then: (w) => assert.equal(w.host.mountTable.filter((m) => m.mountPoint === w.target).length, 0),
  },
  {
    name: "unpublish of a target holding files loam did not make: FAILED_PRECONDITION, files left",
    given: async (w) => {
      await stage(w);
      await publish(w);
      w.host.files.add(`${w.target}/precious`);
    },
    when: (w) => w.csi.client.call(Node, "nodeUnpublishVolume", { volumeId: ID, targetPath: w.target }),
    code: status.FAILED_PRECONDITION,
    message: /is not mounted but holds files; loam leaves them in place$/,
    then: (w) => assert.ok(w.host.files.has(`${w.target}/precious`)),
  },
  {
    name: "unstage: the staging mount taken away (kubelet removes the directory)",
    given: (w) => stage(w),
    when: (w) => w.csi.client.call(Node, "nodeUnstageVolume", { volumeId: ID, stagingTargetPath: w.staging }),
    changes: ["unmount"],
    then: (w) => assert.ok(w.host.directories.has(w.staging)),
  },
  // ---- expand, stats ----
  {
    name: "expand a staged volume: the LV grown, then its filesystem, the new size answered",
    given: (w) => stage(w),
    when: (w) =>
      w.csi.client.call(Node, "nodeExpandVolume", {
        volumeId: ID,
        volumePath: w.staging,
        capacityRange: { requiredBytes: BigInt(100 * MiB), limitBytes: 0n },
      }),
    changes: ["growFilesystem"],
    then: (w, reply) => {
      assert.equal((reply as { capacityBytes: bigint }).capacityBytes, BigInt(100 * MiB));
      assert.equal(w.csi.lvm.lv(VG, ID)?.sizeBytes, 100 * MiB);
    },
  },
  {
    name: "expand where the volume is not mounted: FAILED_PRECONDITION, the LV not grown",
    given: (w) => void w.host.directories.add(w.staging),
    when: (w) =>
      w.csi.client.call(Node, "nodeExpandVolume", {
        volumeId: ID,
        volumePath: w.staging,
        capacityRange: { requiredBytes: BigInt(100 * MiB), limitBytes: 0n },
      }),
    code: status.FAILED_PRECONDITION,
    message: /is not mounted at volume_path .*, so its filesystem cannot be grown$/,
    then: (w) => assert.equal(w.csi.lvm.lv(VG, ID)?.sizeBytes, 64 * MiB),
  },
  {
    name: "stats of a staged volume: bytes and inodes of its filesystem, healthy",
    given: (w) => stage(w),
    when: (w) => w.csi.client.call(Node, "nodeGetVolumeStats", { volumeId: ID, volumePath: w.staging }),
    then: (_w, reply) => {
      const r = reply as {
        usage: Array<{ unit: Unit; total: bigint }>;
        volumeCondition?: { abnormal: boolean; message: string };
      };
      assert.deepEqual(
        r.usage.map((u) => [u.unit, u.total]),
        [
          [Unit.BYTES, 1000n],
          [Unit.INODES, 64n],
        ],
      );
      assert.deepEqual([r.volumeCondition?.abnormal, r.volumeCondition?.message], [false, "volume is healthy"]);
    },
  },
  {
    name: "stats of a filesystem that went read-only under a read-write mount: abnormal, says so",
    given: async (w) => {
      await stage(w);
      const staged = w.host.mountTable.at(-1);
      if (staged) staged.superOptions = ["ro"];
    },
    when: (w) => w.csi.client.call(Node, "nodeGetVolumeStats", { volumeId: ID, volumePath: w.staging }),
    then: (_w, reply) =>
      assert.match(
        (reply as { volumeCondition?: { message: string } }).volumeCondition?.message ?? "",
        /went read-only \(a filesystem error forced it\)$/,
      ),
  },
];

for (const row of rows) test(`node: ${row.name}`, { timeout: 10_000 }, () => runRow(row));
