/**
 * What NodeUnstageVolume and NodeUnpublishVolume may unmount (issue 13, item 5): only the
 * volume named by volume_id, judged from the mount table (the mount's device number is the
 * LV's) or, for a raw block target, from the device node bound there. Something else at the
 * path is refused with FAILED_PRECONDITION naming it (NOT_FOUND when the volume does not
 * exist) and left mounted; nothing mounted is OK, so kubelet can clean up after a deleted
 * volume. Stacked mounts are taken from the top while they are the volume's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { VG } from "../support/engine.js";
import { block, mount } from "../support/rpc-table.js";
import { ID, type NodeRow, type World, publish, runRow, stage } from "../support/node-rows.js";

const OTHER = lvNameFor("pv-2");
const MISSING = lvNameFor("pv-never-made");

const createOther = (w: World) =>
  w.csi.client.call(Controller, "createVolume", {
    name: "pv-2",
    capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
    volumeCapabilities: [mount()],
    parameters: {},
  });
const unstage = (w: World, volumeId = ID) =>
  w.csi.client.call(Node, "nodeUnstageVolume", { volumeId, stagingTargetPath: w.staging });
const unpublish = (w: World, volumeId = ID) =>
  w.csi.client.call(Node, "nodeUnpublishVolume", { volumeId, targetPath: w.target });
const stackAt = (w: World, path: string) => w.host.mountsAt(path).map((m) => `${m.source} ${m.fsType}`);
const STAGED_A = `/dev/${VG}/${ID} xfs`;

const rows: NodeRow[] = [
  // ---- unstage ----
  {
    name: "unstage B at A's staging path: FAILED_PRECONDITION naming A's mount; A stays mounted",
    given: async (w) => {
      await stage(w);
      await createOther(w);
    },
    when: (w) => unstage(w, OTHER),
    code: status.FAILED_PRECONDITION,
    message:
      /^staging_target_path .*globalmount holds \/dev\/loamfx\/pv-1-\w+ \(xfs\), not volume pv-2-\w+; loam unmounts only the volume it is asked about and leaves \/dev\/loamfx\/pv-1-\w+ mounted/,
    changes: [],
    then: (w) => assert.deepEqual(stackAt(w, w.staging), [STAGED_A]),
  },
  {
    name: "unstage B, inactive, at A's staging path: FAILED_PRECONDITION, says B is not active",
    given: async (w) => {
      await stage(w);
      await createOther(w);
      await w.csi.lvm.deactivateLv(VG, OTHER);
    },
    when: (w) => unstage(w, OTHER),
    code: status.FAILED_PRECONDITION,
    message: /holds \/dev\/loamfx\/pv-1-\w+ \(xfs\), not volume pv-2-\w+ \(which is not active\)/,
    changes: [],
  },
  {
    name: "unstage of a volume that does not exist where A is staged: NOT_FOUND, A stays mounted",
    given: (w) => stage(w),
    when: (w) => unstage(w, MISSING),
    code: status.NOT_FOUND,
    message:
      /^volume pv-never-made-\w+ does not exist on this node; staging_target_path .* holds \/dev\/loamfx\/pv-1-\w+ \(xfs\), which loam leaves mounted$/,
    changes: [],
    then: (w) => assert.deepEqual(stackAt(w, w.staging), [STAGED_A]),
  },
  {
    name: "unstage of a volume that does not exist, nothing mounted: OK (kubelet cleans up after a deleted volume)",
    given: (w) => void w.host.directories.add(w.staging),
    when: (w) => unstage(w, MISSING),
    changes: [],
  },
  {
    name: "unstage where a tmpfs is stacked on the staged volume: refused, both left, the volume named beneath",
    given: async (w) => {
      await stage(w);
      w.host.mountOther(w.staging);
    },
    when: (w) => unstage(w),
    code: status.FAILED_PRECONDITION,
    message:
      /^staging_target_path .* holds tmpfs \(tmpfs\), not volume pv-1-\w+; volume pv-1-\w+ is mounted beneath it; loam unmounts only/,
    changes: [],
    then: (w) => assert.deepEqual(stackAt(w, w.staging), [STAGED_A, "tmpfs tmpfs"]),
  },
  {
    name: "unstage whose umount fails: INTERNAL naming the step and umount's words",
    given: async (w) => {
      await stage(w);
      w.host.failNext("unmount", InMemoryNodeHostStandIn.commandFailure(["umount"], 32, "umount: target is busy."));
    },
    when: (w) => unstage(w),
    code: status.INTERNAL,
    message: /^unmounting volume pv-1-\w+ from .*globalmount failed: umount exited 32: umount: target is busy\.$/,
  },
  // ---- unpublish, filesystem ----
  {
    name: "unpublish where a tmpfs loam never mounted is at the target: FAILED_PRECONDITION, it stays",
    given: async (w) => {
      await stage(w);
      w.host.directories.add(w.target);
      w.host.mountOther(w.target);
    },
    when: (w) => unpublish(w),
    code: status.FAILED_PRECONDITION,
    message:
      /^target_path .*mount holds tmpfs \(tmpfs\), not volume pv-1-\w+; loam unmounts only .* leaves tmpfs mounted/,
    changes: [],
    then: (w) => {
      assert.deepEqual(stackAt(w, w.target), ["tmpfs tmpfs"]);
      assert.ok(w.host.directories.has(w.target));
    },
  },
  {
    name: "unpublish B at A's target: FAILED_PRECONDITION; A stays published",
    given: async (w) => {
      await stage(w);
      await publish(w);
      await createOther(w);
    },
    when: (w) => unpublish(w, OTHER),
    code: status.FAILED_PRECONDITION,
    message: /^target_path .* holds \/dev\/loamfx\/pv-1-\w+ \(xfs\), not volume pv-2-\w+/,
    changes: [],
    then: (w) => assert.deepEqual(stackAt(w, w.target), [STAGED_A]),
  },
  {
    name: "unpublish of a volume that does not exist with something at the target: NOT_FOUND, left mounted",
    given: async (w) => {
      await stage(w);
      await publish(w);
    },
    when: (w) => unpublish(w, MISSING),
    code: status.NOT_FOUND,
    message: /^volume pv-never-made-\w+ does not exist on this node; target_path .* which loam leaves mounted$/,
    changes: [],
  },
  {
    name: "unpublish of a deleted volume, its empty target left: OK, the directory removed",
    given: (w) => void w.host.directories.add(w.target),
    when: (w) => unpublish(w, MISSING),
    changes: ["removeDirectory"],
  },
  {
    name: "unpublish, the volume stacked on a tmpfs: the volume's bind taken away, then refused naming the tmpfs",
    given: async (w) => {
      await stage(w);
      w.host.directories.add(w.target);
      w.host.mountOther(w.target);
      await w.host.bindMount(w.staging, w.target, []);
    },
    when: (w) => unpublish(w),
    code: status.FAILED_PRECONDITION,
    message:
      /holds tmpfs \(tmpfs\), not volume pv-1-\w+; 1 mount\(s\) of volume pv-1-\w+ above it were unmounted; loam unmounts only/,
    changes: ["unmount"],
    then: (w) => assert.deepEqual(stackAt(w, w.target), ["tmpfs tmpfs"]),
  },
  {
    name: "unpublish, a tmpfs mounted on top between the look and the umount: it is not unmounted, refused",
    given: async (w) => {
      await stage(w);
      await publish(w);
      const unmount = w.host.unmount.bind(w.host);
      w.host.unmount = (target, mountId) => {
        w.host.unmount = unmount;
        w.host.mountOther(target);
        return unmount(target, mountId);
      };
    },
    when: (w) => unpublish(w),
    code: status.FAILED_PRECONDITION,
    message: /holds tmpfs \(tmpfs\), not volume pv-1-\w+; volume pv-1-\w+ is mounted beneath it/,
    then: (w) => assert.deepEqual(stackAt(w, w.target), [STAGED_A, "tmpfs tmpfs"]),
  },
  {
    name: "unpublish, the volume bound twice at the target: both unmounted, the directory removed",
    given: async (w) => {
      await stage(w);
      await publish(w);
      await w.host.bindMount(w.staging, w.target, []);
    },
    when: (w) => unpublish(w),
    changes: ["unmount", "unmount", "removeDirectory"],
    then: (w) => assert.deepEqual(stackAt(w, w.target), []),
  },
  // ---- unpublish, raw block ----
  {
    name: "unpublish a block volume: its device bind taken away, the file removed",
    given: async (w) => {
      await stage(w, block());
      await publish(w, block());
    },
    when: (w) => unpublish(w),
    changes: ["unmount", "removeFile"],
  },
  {
    name: "unpublish B at A's block target: FAILED_PRECONDITION naming A's device node; A stays bound",
    given: async (w) => {
      await stage(w, block());
      await publish(w, block());
      await createOther(w);
    },
    when: (w) => unpublish(w, OTHER),
    code: status.FAILED_PRECONDITION,
    message: /^target_path .* holds udev\[\/dm-0\] \(devtmpfs\), not volume pv-2-\w+/,
    changes: [],
    then: (w) => assert.deepEqual(stackAt(w, w.target), ["udev devtmpfs"]),
  },
  {
    name: "unpublish a block volume where another device node is bound: FAILED_PRECONDITION, left bound",
    given: async (w) => {
      await stage(w, block());
      w.host.files.add(w.target);
      w.host.mountOther(w.target, {
        majorMinor: "0:5",
        fsType: "devtmpfs",
        source: "udev",
        root: "/sdb",
        device: "8:16",
      });
    },
    when: (w) => unpublish(w),
    code: status.FAILED_PRECONDITION,
    message: /^target_path .* holds udev\[\/sdb\] \(devtmpfs\), not volume pv-1-\w+/,
    changes: [],
    then: (w) => assert.ok(w.host.files.has(w.target)),
  },
];

for (const row of rows) test(`node unmount: ${row.name}`, { timeout: 10_000 }, () => runRow(row));
