/**
 * Stage's rules over a stand-in host, in milliseconds: when a device may be formatted (never
 * over data; again when the format-in-progress mark says an earlier one did not finish),
 * which probe runs first, xfs's nouuid, and how a host step's failure reads.
 * The same rule runs on loop devices in host-mount.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { HostCommandError, PathChangedError } from "../../src/host/errors.js";
import { CommandTimeoutError } from "../../src/exec/index.js";
import type { DeviceContent, FirstLook, HostFormatOptions, NodeHost } from "../../src/volumes/node-host.js";
import { hostFailure } from "../../src/volumes/node-host.js";
import { type FormatMark, prepareFilesystem, stageMountFlags } from "../../src/volumes/staging.js";
import { VolumeError } from "../../src/volumes/errors.js";

/** A device as the stand-in host sees it; mkfs without force refuses any content (as mkfs.xfs without -f does), or fails with `mkfsFails`. */
interface StandInDevice {
  look: FirstLook;
  content: DeviceContent;
  /** The volume carries the format-in-progress mark. */
  marked?: boolean;
  mkfsFails?: string;
}

/** Only the probing, wiping and mkfs of NodeHost and the mark, recording each step; the rest is never called here. */
function standInHost(device: StandInDevice): { host: NodeHost; mark: FormatMark; steps: string[] } {
  const steps: string[] = [];
  const host = {
    firstLook: () => Promise.resolve(device.look),
    probe: (_device: string, _options?: unknown, look?: FirstLook) => {
      if ((look ?? device.look) === "empty") return Promise.resolve<DeviceContent>({ kind: "empty" });
      steps.push("blkid");
      return Promise.resolve(device.content);
    },
    wipeSignatures: () => {
      steps.push("wipefs");
      device.content = { kind: "empty" };
      return Promise.resolve();
    },
    makeFilesystem: (_device: string, fsType: string, options: HostFormatOptions) => {
      assert.ok(!("signal" in options), "mkfs is never given the caller's signal");
      assert.ok(options.timeoutMs > 0, "mkfs runs with a timeout");
      steps.push(`mkfs.${fsType}${options.force ? " (forced)" : ""}`);
      const refusal =
        device.content.kind !== "empty" && !options.force
          ? "appears to contain an existing filesystem"
          : device.mkfsFails;
      if (refusal) return Promise.reject(new HostCommandError([`mkfs.${fsType}`], 1, refusal));
      return Promise.resolve();
    },
  } as Partial<NodeHost> as NodeHost;
  const mark: FormatMark = {
    marked: device.marked ?? false,
    add: () => {
      steps.push("mark");
      device.marked = true;
      return Promise.resolve();
    },
    clear: () => {
      steps.push("unmark");
      device.marked = false;
      return Promise.resolve();
    },
  };
  return { host, mark, steps };
}

const cases: Array<{ what: string; device: StandInDevice; fsType: "xfs" | "ext4"; steps: string[]; result: unknown }> =
  [
    {
      what: "an empty device is marked, formatted without blkid, unmarked",
      device: { look: "empty", content: { kind: "empty" } },
      fsType: "xfs",
      steps: ["mark", "mkfs.xfs", "unmark"],
      result: { kind: "formatted" },
    },
    {
      what: "xfs on a zero head asks blkid before the mark goes on",
      device: { look: "zero-head", content: { kind: "empty" } },
      fsType: "xfs",
      steps: ["blkid", "mark", "mkfs.xfs", "unmark"],
      result: { kind: "formatted" },
    },
    {
      what: "xfs on a zero head with a signature: blkid names it, nothing marked or formatted",
      device: { look: "zero-head", content: { kind: "filesystem", fsType: "iso9660" } },
      fsType: "xfs",
      steps: ["blkid"],
      result: { kind: "filesystem", fsType: "iso9660" },
    },
    {
      what: "ext4 on a zero head asks blkid first",
      device: { look: "zero-head", content: { kind: "empty" } },
      fsType: "ext4",
      steps: ["blkid", "mark", "mkfs.ext4", "unmark"],
      result: { kind: "formatted" },
    },
    {
      what: "data at the head of an unmarked volume is never formatted",
      device: { look: "data", content: { kind: "other", description: "a dos partition table" } },
      fsType: "xfs",
      steps: ["blkid"],
      result: { kind: "other", description: "a dos partition table" },
    },
    {
      what: "an existing filesystem is kept",
      device: { look: "data", content: { kind: "filesystem", fsType: "ext4" } },
      fsType: "ext4",
      steps: ["blkid"],
      result: { kind: "filesystem", fsType: "ext4" },
    },
    {
      what: "a marked volume with a partial head (mkfs interrupted) is wiped and formatted again, then unmarked",
      device: { look: "data", content: { kind: "other", description: "half an xfs" }, marked: true },
      fsType: "xfs",
      steps: ["wipefs", "mkfs.xfs (forced)", "unmark"],
      result: { kind: "formatted" },
    },
    {
      what: "a marked volume still empty (stopped between the mark and mkfs) is formatted, no wipe needed",
      device: { look: "empty", content: { kind: "empty" }, marked: true },
      fsType: "xfs",
      steps: ["mkfs.xfs (forced)", "unmark"],
      result: { kind: "formatted" },
    },
    {
      what: "a marked volume with a whole filesystem (stopped between mkfs and the unmark) is formatted again as asked",
      device: { look: "data", content: { kind: "filesystem", fsType: "xfs" }, marked: true },
      fsType: "ext4",
      steps: ["wipefs", "mkfs.ext4 (forced)", "unmark"],
      result: { kind: "formatted" },
    },
  ];

for (const { what, device, fsType, steps, result } of cases) {
  test(`prepareFilesystem: ${what}`, async () => {
    const standIn = standInHost(device);
    assert.deepEqual(await prepareFilesystem(standIn.host, "/dev/vg/lv", fsType, standIn.mark), result);
    assert.deepEqual(standIn.steps, steps);
  });
}

test("prepareFilesystem: mkfs failing for its own reason rejects with its error and leaves the mark, so a retry formats again", async () => {
  const device: StandInDevice = {
    look: "zero-head",
    content: { kind: "empty" },
    mkfsFails: "agsize must be larger than 300MB",
  };
  const standIn = standInHost(device);
  await assert.rejects(prepareFilesystem(standIn.host, "/dev/vg/lv", "xfs", standIn.mark), /must be larger than 300MB/);
  assert.deepEqual(standIn.steps, ["blkid", "mark", "mkfs.xfs"]);
  assert.equal(device.marked, true);
});

test("stageMountFlags: xfs gets nouuid once; ext4 is left as asked", () => {
  assert.deepEqual(stageMountFlags("xfs", ["noatime"]), ["noatime", "nouuid"]);
  assert.deepEqual(stageMountFlags("xfs", ["nouuid"]), ["nouuid"]);
  assert.deepEqual(stageMountFlags("ext4", ["noatime"]), ["noatime"]);
});

test("hostFailure: mkfs's size refusal is FAILED_PRECONDITION, another exit INTERNAL naming the step, a timeout DEADLINE_EXCEEDED", () => {
  const small = hostFailure(new HostCommandError(["mkfs.xfs"], 1, "agsize must be larger than 300MB\n"), "making xfs");
  assert.ok(small instanceof VolumeError && small.kind === "failed-precondition");
  assert.equal(
    small.message,
    "making xfs failed: agsize must be larger than 300MB (ask for a larger volume or fs_type ext4)",
  );
  const other = hostFailure(new HostCommandError(["mount"], 32, "wrong fs type"), "mounting");
  assert.ok(other instanceof VolumeError && other.kind === "internal");
  assert.equal(other.message, "mounting failed: mount exited 32: wrong fs type");
  const timeout = hostFailure(new CommandTimeoutError(["mount"], 1000, ""), "mounting");
  assert.deepEqual(
    [timeout.kind, timeout.message],
    ["deadline-exceeded", "mounting failed: mount did not finish within 1000 ms and was killed"],
  );
  const abort = Object.assign(new Error("stop"), { name: "AbortError" });
  assert.equal(hostFailure(abort, "mounting").kind, "aborted");
});

test("hostFailure: a request path that changed after its check is ABORTED, naming the path (issue 13, item 1)", () => {
  const error = hostFailure(
    new PathChangedError("/k/pods/p/vol/globalmount", "/k/pods/p/vol/globalmount changed after it was checked"),
    "mounting volume v at /k/pods/p/vol/globalmount",
  );
  assert.ok(error instanceof VolumeError && error.kind === "aborted");
  assert.match(error.message, /^mounting volume v at \S+ was refused: \/k\/pods\/p\/vol\/globalmount changed/);
});
