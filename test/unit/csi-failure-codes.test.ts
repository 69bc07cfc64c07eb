/**
 * The codes the sidecars read for failures that are not final (issue 13, item 8), through the
 * engine and loam's real gRPC server over the in-memory stand-ins: a command that ran past its
 * deadline is DEADLINE_EXCEEDED, a cancelled one ABORTED, LVM's lock contention ABORTED; each
 * message keeps the step, the command and its numbers. Only real internal faults are INTERNAL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { CommandCancelledError, CommandStartError, CommandTimeoutError } from "../../src/exec/index.js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { toStatus } from "../../src/csi/status.js";
import { MiB } from "../../src/volumes/size.js";
import { CsiCallError } from "../../src/csi/client.js";
import { type TestCsi, VG, makeEngine, startCsi } from "../support/engine.js";
import { InMemoryNodeHostStandIn } from "../support/in-memory-node-host.js";
import { lvmFailure } from "../support/in-memory-lvm.js";
import { mount } from "../support/rpc-table.js";

interface World {
  csi: TestCsi;
  host: InMemoryNodeHostStandIn;
}

interface Row {
  name: string;
  given: (w: World) => Promise<unknown> | void;
  when: (w: World) => Promise<unknown>;
  code: status;
  message: RegExp;
}

const create = (w: World, name: string) =>
  w.csi.client.call(Controller, "createVolume", {
    name,
    capacityRange: { requiredBytes: BigInt(64 * MiB), limitBytes: 0n },
    volumeCapabilities: [mount()],
    parameters: {},
  });
const LVCREATE = ["lvm", "lvcreate", "--name", "x", VG];

const rows: Row[] = [
  {
    name: "CreateVolume whose lvcreate ran past its deadline",
    given: (w) => w.csi.lvm.failNext("createLv", new CommandTimeoutError(LVCREATE, 30_000, "")),
    when: (w) => create(w, "slow"),
    code: status.DEADLINE_EXCEEDED,
    message: /^creating slow-\w+ failed: lvm lvcreate did not finish within 30000 ms and was killed$/,
  },
  {
    name: "CreateVolume whose lvcreate was cancelled (the caller went away)",
    given: (w) => w.csi.lvm.failNext("createLv", new CommandCancelledError(LVCREATE, "")),
    when: (w) => create(w, "gone"),
    code: status.ABORTED,
    message: /^creating gone-\w+ was cancelled: lvm lvcreate was cancelled and killed$/,
  },
  {
    name: "CreateVolume while another command holds the volume group's lock",
    given: (w) => w.csi.lvm.failNext("createLv", lvmFailure(["lvm", "lvcreate"], [`Can't get lock for ${VG}`])),
    when: (w) => create(w, "locked"),
    code: status.ABORTED,
    message:
      /^creating locked-\w+ failed: lvm lvcreate failed with exit code 5: Can't get lock for loamfx \(another LVM command held the volume group's lock; retry\)$/,
  },
  {
    name: "DeleteVolume whose lvremove ran past its deadline",
    given: async (w) => {
      await create(w, "stuck");
      w.csi.lvm.failNext("removeLv", new CommandTimeoutError(["lvm", "lvremove"], 30_000, ""));
    },
    when: (w) => w.csi.client.call(Controller, "deleteVolume", { volumeId: lvNameFor("stuck") }),
    code: status.DEADLINE_EXCEEDED,
    message: /lvm lvremove did not finish within 30000 ms and was killed$/,
  },
  {
    name: "DeleteVolume whose lvremove met a lock held by another host (lvmlockd)",
    given: async (w) => {
      await create(w, "shared");
      w.csi.lvm.failNext("removeLv", lvmFailure(["lvm", "lvremove"], [`VG ${VG} lock failed: held by other host.`]));
    },
    when: (w) => w.csi.client.call(Controller, "deleteVolume", { volumeId: lvNameFor("shared") }),
    code: status.ABORTED,
    message: /lock failed: held by other host.*retry/,
  },
  {
    name: "NodeStageVolume whose mount ran past its deadline",
    given: async (w) => {
      await create(w, "pv-1");
      w.host.failNext("mountFilesystem", new CommandTimeoutError(["mount", "-t", "xfs"], 60_000, ""));
    },
    when: (w) =>
      w.csi.client.call(Node, "nodeStageVolume", {
        volumeId: lvNameFor("pv-1"),
        stagingTargetPath: `${w.csi.kubeletDir}/plugins/loam/globalmount`,
        volumeCapability: mount(),
      }),
    code: status.DEADLINE_EXCEEDED,
    message: /^mounting volume pv-1-\w+ at .*globalmount failed: mount did not finish within 60000 ms and was killed$/,
  },
  {
    // LVM's text from LVM2's lib/activate/activate.c (_lv_activate) and its missing-PV warning.
    name: "NodeStageVolume of a volume LVM will not activate because a PV under it is missing",
    given: async (w) => {
      await create(w, "partial");
      await w.csi.lvm.deactivateLv(VG, lvNameFor("partial"));
      w.csi.lvm.failNext(
        "activateLv",
        lvmFailure(
          ["lvm", "lvchange", "--activate", "y"],
          [
            `WARNING: VG ${VG} is missing PV Qx1yZ2-aaaa-bbbb-cccc-dddd-eeee-ffffff (last written to /dev/vdb).`,
            `Refusing activation of partial LV ${VG}/${lvNameFor("partial")}.  Use '--activationmode partial' to override.`,
          ],
        ),
      );
    },
    when: (w) =>
      w.csi.client.call(Node, "nodeStageVolume", {
        volumeId: lvNameFor("partial"),
        stagingTargetPath: `${w.csi.kubeletDir}/plugins/loam/globalmount`,
        volumeCapability: mount(),
      }),
    code: status.FAILED_PRECONDITION,
    message:
      /^activating partial-\w+ failed: the volume has extents on a missing physical volume \(Qx1yZ2-aaaa-bbbb-cccc-dddd-eeee-ffffff\) .*vgextend --restoremissing/,
  },
  {
    name: "an lvcreate that exited with an unknown failure stays INTERNAL",
    given: (w) => w.csi.lvm.failNext("createLv", lvmFailure(["lvm", "lvcreate"], ["Failed to write VG loamfx."])),
    when: (w) => create(w, "broken"),
    code: status.INTERNAL,
    message: /Failed to write VG loamfx\./,
  },
];

for (const row of rows) {
  test(`${row.name}: ${status[row.code]}`, async () => {
    const made = await makeEngine();
    const host = new InMemoryNodeHostStandIn(made.lvm);
    const w: World = { csi: await startCsi({ made, host }), host };
    try {
      await row.given(w);
      const error = await row.when(w).then(
        () => assert.fail("the call should have failed"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof CsiCallError, String(error));
      assert.equal(status[error.code], status[row.code], error.details);
      assert.match(error.details, row.message);
    } finally {
      await w.csi.stop();
    }
  });
}

test("toStatus: an untranslated command failure still gets the code its kind means, in its own words", () => {
  const timeout = new CommandTimeoutError(["mount"], 1000, "");
  assert.deepEqual(toStatus(timeout), { code: status.DEADLINE_EXCEEDED, message: timeout.message });
  assert.equal(toStatus(new CommandCancelledError(["mount"], "")).code, status.ABORTED);
  assert.equal(toStatus(lvmFailure(["lvm", "lvs"], [`Can't get lock for ${VG}`])).code, status.ABORTED);
  assert.equal(toStatus(new CommandStartError("nsenter could not start", ["nsenter"], null, "")).code, status.INTERNAL);
  assert.deepEqual(toStatus(new Error("bug")), { code: status.INTERNAL, message: "bug" });
});
