/**
 * lvmFailure: the one translation of LVM's failures into domain errors (src/volumes/errors.ts).
 * The words each operation passes are used only for their own kind of failure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandTimeoutError } from "../../src/exec/index.js";
import {
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
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
    kind: "internal",
    message: `creating x failed: ${new CommandTimeoutError(ARGV, 1000, "").message.trim()}`,
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
