/** Bad input, crashes and shutdown against real LVM: nothing is lost or half-made, and the driver stays up. */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  GroupController,
  Identity,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import { type Harness, SOCKET, VG } from "./harness.js";
import { type CreateInit, createRequest, mountCapability, rejectsWith } from "./support.js";

const badCreates: Array<[string, CreateInit, status, RegExp]> = [
  ["missing name", { ...createRequest(""), name: "" }, status.INVALID_ARGUMENT, /^name is required/],
  [
    "missing capabilities",
    { ...createRequest("bad-1"), volumeCapabilities: [] },
    status.INVALID_ARGUMENT,
    /volume_capabilities is required/,
  ],
  [
    "capability without access type",
    { ...createRequest("bad-2"), volumeCapabilities: [{ accessMode: { mode: Mode.SINGLE_NODE_WRITER } }] },
    status.INVALID_ARGUMENT,
    /volume_capabilities\[0\].access_type is required/,
  ],
  [
    "capability without access mode",
    { ...createRequest("bad-3"), volumeCapabilities: [{ accessType: { case: "block", value: {} } }] },
    status.INVALID_ARGUMENT,
    /volume_capabilities\[0\].access_mode UNKNOWN is not supported/,
  ],
  [
    "multi-node access",
    { ...createRequest("bad-4"), volumeCapabilities: [mountCapability("xfs", Mode.MULTI_NODE_MULTI_WRITER)] },
    status.INVALID_ARGUMENT,
    /MULTI_NODE_MULTI_WRITER is not supported \(a local LVM volume can only be reached from the node that holds it\)/,
  ],
  [
    "unsupported filesystem",
    { ...createRequest("bad-5"), volumeCapabilities: [mountCapability("btrfs")] },
    status.INVALID_ARGUMENT,
    /fs_type "btrfs" is not supported; allowed: xfs, ext4/,
  ],
  [
    "dangerous mount flag",
    {
      ...createRequest("bad-6"),
      volumeCapabilities: [
        {
          accessType: { case: "mount", value: { fsType: "xfs", mountFlags: ["suid"] } },
          accessMode: { mode: Mode.SINGLE_NODE_WRITER },
        },
      ],
    },
    status.INVALID_ARGUMENT,
    /mount_flags contains "suid"/,
  ],
  [
    "shell metacharacters in the name",
    createRequest("$(touch /tmp/pwned)"),
    status.INVALID_ARGUMENT,
    /characters loam does not accept/,
  ],
  [
    "semicolon in the name",
    createRequest("a;lvremove -y loamvg"),
    status.INVALID_ARGUMENT,
    /characters loam does not accept/,
  ],
  ["backticks in the name", createRequest("`reboot`"), status.INVALID_ARGUMENT, /characters loam does not accept/],
  ["path in the name", createRequest("../../etc/passwd"), status.INVALID_ARGUMENT, /characters loam does not accept/],
  ["10 KiB name", createRequest("n".repeat(10 * 1024)), status.INVALID_ARGUMENT, /10240 characters long; at most 128/],
  [
    "negative size",
    { ...createRequest("bad-7"), capacityRange: { requiredBytes: -1n, limitBytes: 0n } },
    status.INVALID_ARGUMENT,
    /capacity_range.required_bytes must not be negative/,
  ],
  [
    "absurd size",
    { ...createRequest("bad-8"), capacityRange: { requiredBytes: 2n ** 62n, limitBytes: 0n } },
    status.OUT_OF_RANGE,
    /the largest volume loam creates is/,
  ],
  [
    "limit below required",
    { ...createRequest("bad-9"), capacityRange: { requiredBytes: BigInt(GiB), limitBytes: BigInt(MiB) } },
    status.OUT_OF_RANGE,
    /required_bytes \(1073741824\) is larger than capacity_range.limit_bytes \(1048576\)/,
  ],
  [
    "unknown parameter",
    { ...createRequest("bad-10"), parameters: { fsType: "xfs" } },
    status.INVALID_ARGUMENT,
    /unknown key "fsType"/,
  ],
  [
    "content source",
    { ...createRequest("bad-11"), volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap" } } } },
    status.NOT_FOUND,
    /snapshot snap \(volume_content_source\) does not exist on this node/,
  ],
];

/** Finds a running process whose command line starts with this program name. */
async function processRunning(program: string): Promise<boolean> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const argv0 = cmdline.split("\0")[0] ?? "";
    if (
      argv0 === program ||
      argv0.endsWith(`/${program}`) ||
      (argv0.endsWith("lvm") && cmdline.split("\0")[1] === program)
    )
      return true;
  }
  return false;
}

export function robustnessTests(h: () => Harness): void {
  describe("bad input", () => {
    let lvsBefore: string[] = [];
    before(async () => {
      lvsBefore = (await h().report()).lvs.map((l) => l.name);
    });

    for (const [what, request, code, pattern] of badCreates) {
      test(`CreateVolume with ${what} is ${status[code]}`, async () => {
        await rejectsWith(h().client.call(Controller, "createVolume", request), code, pattern);
      });
    }

    test("every other required field, when missing, is INVALID_ARGUMENT naming it", async () => {
      const c = h().client;
      await rejectsWith(c.call(Controller, "deleteVolume", {}), status.INVALID_ARGUMENT, /^volume_id is required/);
      await rejectsWith(
        c.call(Controller, "validateVolumeCapabilities", { volumeCapabilities: [mountCapability()] }),
        status.INVALID_ARGUMENT,
        /^volume_id is required/,
      );
      await rejectsWith(
        c.call(Controller, "validateVolumeCapabilities", { volumeId: "x" }),
        status.INVALID_ARGUMENT,
        /^volume_capabilities is required/,
      );
      await rejectsWith(
        c.call(Controller, "controllerGetVolume", {}),
        status.INVALID_ARGUMENT,
        /^volume_id is required/,
      );
      await rejectsWith(
        c.call(Controller, "listVolumes", { maxEntries: -1 }),
        status.INVALID_ARGUMENT,
        /max_entries must not be negative/,
      );
      await rejectsWith(
        c.call(Controller, "getCapacity", { parameters: { stripes: "99" } }),
        status.INVALID_ARGUMENT,
        /unknown key "stripes"/,
      );
    });

    test("after all the bad input nothing was created on the VG and the driver is still up", async () => {
      const before = h().pid;
      const { lvs } = await h().report();
      assert.deepEqual(
        lvs.map((l) => l.name),
        lvsBefore,
        "no LV was made by a refused request",
      );
      assert.equal((await h().client.call(Identity, "probe", {})).ready, true);
      assert.equal(h().pid, before);
      await assert.rejects(stat("/tmp/pwned"), /ENOENT/);
    });

    test("RPCs loam does not offer answer UNIMPLEMENTED", async () => {
      await rejectsWith(
        h().client.call(Controller, "controllerPublishVolume", { volumeId: "x", nodeId: "y" }),
        status.UNIMPLEMENTED,
        /not implemented/,
      );
      await rejectsWith(
        h().client.call(GroupController, "groupControllerGetCapabilities", {}),
        status.UNIMPLEMENTED,
        /.*/,
      );
    });
  });

  describe("loam's cached LVM state follows changes made behind its back", () => {
    test("an LV removed by hand leaves ListVolumes at once, and DeleteVolume of it succeeds", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("view-removed", 64 * MiB));
      const id = volume!.volumeId;
      assert.ok((await listedIds()).includes(id));
      await h().must(["lvremove", "-y", `${VG}/${id}`]);
      assert.equal((await listedIds()).includes(id), false);
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("an LV deactivated by hand is reported abnormal at once", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("view-inactive", 64 * MiB));
      const id = volume!.volumeId;
      await h().must(["lvchange", "-an", `${VG}/${id}`]);
      const got = await h().client.call(Controller, "controllerGetVolume", { volumeId: id });
      assert.equal(got.status?.volumeCondition?.abnormal, true);
      assert.match(got.status?.volumeCondition?.message ?? "", /is not active/);
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("GetCapacity right after a CreateVolume is less by exactly what it took, and equals what LVM reports free", async () => {
      const extent = (await h().report()).vg.extentSizeBytes;
      const before = Number((await h().client.call(Controller, "getCapacity", {})).availableCapacity);
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("view-capacity", 16 * extent));
      const after = Number((await h().client.call(Controller, "getCapacity", {})).availableCapacity);
      assert.equal(before - after, 16 * extent);
      assert.equal(after, (await h().report()).vg.freeBytes);
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
    });

    test("device-mapper's thin pool usage reads exactly as lvs prints it", async () => {
      await h().must(["lvcreate", "-y", "--type", "thin-pool", "-L", "64M", "-n", "viewpool", VG]);
      try {
        await h().must(["lvcreate", "-y", "-V", "64M", "--thinpool", "viewpool", "-n", "viewthin", VG]);
        await h().must([
          "dd",
          "if=/dev/urandom",
          `of=/dev/${VG}/viewthin`,
          "bs=1M",
          "count=11",
          "oflag=direct",
          "status=none",
        ]);
        const usage = await h().lvm.thinPoolUsage(VG, "viewpool");
        const pool = (await h().report()).lvs.find((lv) => lv.name === "viewpool");
        assert.ok(usage.dataPercent > 0);
        assert.deepEqual(usage, { dataPercent: pool?.dataPercent, metadataPercent: pool?.metadataPercent });
      } finally {
        await h().must(["lvremove", "-y", `${VG}/viewthin`], { allowFailure: true });
        await h().must(["lvremove", "-y", `${VG}/viewpool`], { allowFailure: true });
      }
    });
  });

  const listedIds = async (): Promise<string[]> =>
    (await h().client.call(Controller, "listVolumes", {})).entries.map((e) => e.volume!.volumeId);

  describe("process life", () => {
    test("the socket is created with mode 0600", async () => {
      assert.equal((await stat(SOCKET)).mode & 0o777, 0o600);
    });

    for (const delayMs of [-1, 0, 300]) {
      const when = delayMs < 0 ? "while lvcreate runs" : `${delayMs} ms into the call`;
      test(`SIGKILL ${when}: after restart the volume is listed or cleanly absent, and the retry makes exactly one LV`, async () => {
        const name = `restart-${delayMs < 0 ? "lvcreate" : delayMs}`;
        const pending = h()
          .client.call(Controller, "createVolume", createRequest(name, 256 * MiB))
          .catch((e: unknown) => e);
        if (delayMs < 0) {
          const deadline = Date.now() + 20_000;
          while (!(await processRunning("lvcreate")) && Date.now() < deadline) await sleep(5);
        } else {
          await sleep(delayMs);
        }
        await h().killLoam("SIGKILL");
        const outcome = await pending;
        // The call either failed with the connection (UNAVAILABLE, which the provisioner retries)
        // or was answered before the kill; an answered volume must survive the restart.
        const acknowledged =
          outcome instanceof CsiCallError ? undefined : (outcome as { volume?: { volumeId: string } }).volume?.volumeId;
        if (outcome instanceof CsiCallError) assert.equal(outcome.code, status.UNAVAILABLE, outcome.message);
        else assert.ok(acknowledged, `the call ended with neither an error nor a volume: ${String(outcome)}`);
        // An orphaned lvcreate may still be finishing; LVM's own VG lock orders it before our reads.
        await h().startLoam();
        const listed = (await h().client.call(Controller, "listVolumes", {})).entries.map((e) => e.volume!.volumeId);
        const made = await h().lvsNamed(name);
        assert.ok(made.length <= 1, `at most one LV after the crash, found ${made.join(", ")}`);
        assert.deepEqual(
          listed.filter((id) => made.includes(id)),
          made,
          "what LVM holds is what ListVolumes shows",
        );
        if (acknowledged)
          assert.deepEqual(made, [acknowledged], "an acknowledged volume is still there after the crash");
        const { volume } = await h().client.call(Controller, "createVolume", createRequest(name, 256 * MiB));
        assert.deepEqual(await h().lvsNamed(name), [volume!.volumeId]);
        await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
      });
    }

    test("SIGTERM lets a call in flight finish, then exits 0 and removes the socket", async () => {
      const pending = h().client.call(Controller, "createVolume", createRequest("sigterm-inflight", 128 * MiB));
      await sleep(100);
      const code = await h().killLoam("SIGTERM");
      const reply = await pending;
      assert.ok(reply.volume?.volumeId, "the call in flight completed");
      assert.equal(code, 0);
      await assert.rejects(stat(SOCKET), /ENOENT/);
      await h().startLoam();
      await h().client.call(Controller, "deleteVolume", { volumeId: reply.volume.volumeId });
    });
  });
}
