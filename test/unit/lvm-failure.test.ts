/**
 * lvmFailure: the one translation of LVM's failures into domain errors (src/volumes/errors.ts).
 * The words each operation passes are used only for their own kind of failure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandCancelledError, CommandStartError, CommandTimeoutError } from "../../src/exec/index.js";
import {
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LvmLockContentionError,
  VolumeGroupNotFoundError,
} from "../../src/lvm/errors.js";
import { VolumeError, lvAlreadyExists, lvAlreadyGone, lvmFailure, notFound } from "../../src/volumes/errors.js";

const ARGV = ["lvcreate", "vg"];
const words = {
  noSpace: (lvmSays: string) => `no room (${lvmSays})`,
  inUse: (lvmSays: string) => `in use (${lvmSays})`,
  unreadable: (lvmSays: string) => `unreadable (${lvmSays})`,
};

const rows: Array<{ name: string; error: unknown; kind: string; message: string }> = [
  {
    name: "no space with words",
    error: new InsufficientSpaceError("  Insufficient free space \n", ARGV, 5, ""),
    kind: "resource-exhausted",
    message: "no room (Insufficient free space)",
  },
  {
    name: "in use with words",
    error: new LogicalVolumeInUseError("open", ARGV, 5, ""),
    kind: "failed-precondition",
    message: "in use (open)",
  },
  {
    name: "unreadable volume group with words",
    error: new VolumeGroupNotFoundError('Volume group "vg" not found', ARGV, 5, ""),
    kind: "unavailable",
    message: 'unreadable (Volume group "vg" not found)',
  },
  {
    name: "other LVM failure",
    error: new LogicalVolumeExistsError("exists ", ARGV, 5, ""),
    kind: "internal",
    message: "creating x failed: exists",
  },
  {
    name: "a command that timed out",
    error: new CommandTimeoutError(ARGV, 1000, ""),
    kind: "deadline-exceeded",
    message: "creating x failed: lvcreate did not finish within 1000 ms and was killed",
  },
  {
    name: "a command cancelled because the caller went away",
    error: new CommandCancelledError(ARGV, ""),
    kind: "aborted",
    message: "creating x was cancelled: lvcreate was cancelled and killed",
  },
  {
    name: "LVM's lock held by another command",
    error: new LvmLockContentionError("lvcreate failed with exit code 5: Can't get lock for vg", ARGV, 5, ""),
    kind: "aborted",
    message:
      "creating x failed: lvcreate failed with exit code 5: Can't get lock for vg (another LVM command held the volume group's lock; retry)",
  },
  {
    name: "a command that could not start",
    error: new CommandStartError("nsenter: failed to execute lvm", ["nsenter"], null, ""),
    kind: "internal",
    message: "creating x failed: nsenter: failed to execute lvm",
  },
  {
    name: "a cancelled call",
    error: new DOMException("gone", "AbortError"),
    kind: "aborted",
    message: "creating x was cancelled",
  },
  { name: "anything else", error: "boom", kind: "internal", message: "creating x failed: boom" },
];

for (const row of rows) {
  test(`lvmFailure: ${row.name} is ${row.kind}`, () => {
    const translated = lvmFailure(row.error, "creating x", words);
    assert.equal(translated.kind, row.kind);
    assert.equal(translated.message, row.message);
  });
}

test("lvmFailure: without words, no space and in use are INTERNAL with LVM's words", () => {
  const noSpace = lvmFailure(new InsufficientSpaceError("Insufficient free space", ARGV, 5, ""), "growing x");
  assert.deepEqual([noSpace.kind, noSpace.message], ["internal", "growing x failed: Insufficient free space"]);
  const inUse = lvmFailure(new LogicalVolumeInUseError("open", ARGV, 5, ""), "deleting x");
  assert.deepEqual([inUse.kind, inUse.message], ["internal", "deleting x failed: open"]);
});

test("lvmFailure: a VolumeError passes through unchanged", () => {
  const error = notFound("gone");
  assert.equal(lvmFailure(error, "anything", words), error);
  assert.ok(lvmFailure(new Error("x"), "doing") instanceof VolumeError);
});

test("lvAlreadyExists and lvAlreadyGone recognise only their own failure", () => {
  assert.equal(lvAlreadyExists(new LogicalVolumeExistsError("exists", ARGV, 5, "")), true);
  assert.equal(lvAlreadyExists(new LogicalVolumeNotFoundError("missing", ARGV, 5, "")), false);
  assert.equal(lvAlreadyGone(new LogicalVolumeNotFoundError("missing", ARGV, 5, "")), true);
  assert.equal(lvAlreadyGone(new Error("missing")), false);
});
