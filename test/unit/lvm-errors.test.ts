import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  classifyLvmFailure,
  ComponentActiveError,
  InsufficientPhysicalVolumesError,
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LogicalVolumeShrinkError,
  LogicalVolumeSizeUnchangedError,
  LvmError,
  LvmLockContentionError,
  LvmUsageError,
  MissingPhysicalVolumesError,
  VolumeGroupNotFoundError,
} from "../../src/lvm/index.js";
import { CommandStartError } from "../../src/exec/index.js";

interface Fixture {
  argv: string[];
  stdout: string;
  stderr: string;
  exitCode: number;
}

const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(new URL(`../../../test/fixtures/lvm/${name}.json`, import.meta.url), "utf8")) as Fixture;

const classify = (name: string): LvmError => {
  const f = fixture(name);
  return classifyLvmFailure(f.argv, f);
};

const cases: Array<[string, new (...args: never[]) => LvmError]> = [
  ["fail-fullreport-vg-not-found", VolumeGroupNotFoundError],
  ["fail-vgs-vg-not-found", VolumeGroupNotFoundError],
  ["fail-lvcreate-vg-not-found", VolumeGroupNotFoundError],
  ["fail-lvremove-vg-not-found", VolumeGroupNotFoundError],
  ["fail-lvremove-lv-not-found", LogicalVolumeNotFoundError],
  ["fail-lvextend-lv-not-found", LogicalVolumeNotFoundError],
  ["fail-lvchange-addtag-lv-not-found", LogicalVolumeNotFoundError],
  ["fail-lvcreate-exists", LogicalVolumeExistsError],
  ["fail-lvcreate-insufficient-space", InsufficientSpaceError],
  ["fail-lvcreate-striped-insufficient", InsufficientSpaceError],
  ["fail-lvextend-insufficient-space", InsufficientSpaceError],
  ["fail-lvcreate-stripes-exceed-pvs", InsufficientPhysicalVolumesError],
  ["fail-lvextend-same-size", LogicalVolumeSizeUnchangedError],
  ["fail-lvextend-smaller", LogicalVolumeShrinkError],
  ["fail-lvcreate-invalid-name", LvmUsageError],
  ["fail-lvcreate-reserved-name", LvmUsageError],
  ["fail-lvcreate-name-128", LvmUsageError],
  ["fail-lvcreate-invalid-tag", LvmUsageError],
  ["fail-lvcreate-size-not-sector-multiple", LvmUsageError],
  ["fail-lvcreate-missing-pv", MissingPhysicalVolumesError],
  ["fail-lvcreate-component-active", ComponentActiveError],
];

test("a refusal for missing PVs names them from LVM's warnings", () => {
  const error = classify("fail-lvcreate-missing-pv");
  assert.ok(error instanceof MissingPhysicalVolumesError);
  assert.deepEqual(error.missingPvUuids, [/is missing PV (\S+)/.exec(fixture("fail-lvcreate-missing-pv").stderr)?.[1]]);
  assert.match(error.message, /Cannot change VG loamfx while PVs are missing/);
});

for (const [name, Kind] of cases) {
  test(`real LVM failure ${name} is classified as ${Kind.name}`, () => {
    const error = classify(name);
    assert.equal(error.constructor, Kind);
    assert.equal(error.name, Kind.name);
    assert.ok(error instanceof LvmError);
    const f = fixture(name);
    assert.deepEqual(error.argv, f.argv);
    assert.equal(error.exitCode, f.exitCode);
    assert.equal(error.stderr, f.stderr);
  });
}

test("a pool component left active on its own is ComponentActiveError naming the component (vg/lv)", () => {
  const error = classify("fail-lvcreate-component-active");
  assert.ok(error instanceof ComponentActiveError);
  assert.equal(error.component, "t/p_tmeta");
  const data = classifyLvmFailure(["lvchange"], {
    stdout: "",
    stderr: "  Activation of logical volume t/a is prohibited while logical volume t/p_tdata is active.\n",
    exitCode: 5,
  });
  assert.ok(data instanceof ComponentActiveError);
  assert.equal(data.component, "t/p_tdata");
});

test("an unrecognised LVM failure (name too long with its VG) stays a plain LvmError", () => {
  const error = classify("fail-lvcreate-name-127");
  assert.equal(error.constructor, LvmError);
  assert.match(error.message, /length 136 is not supported/);
});

test("insufficient space errors carry LVM's extent numbers in both message forms", () => {
  const create = classify("fail-lvcreate-insufficient-space") as InsufficientSpaceError;
  assert.equal(create.neededExtents, 2560);
  assert.equal(create.availableExtents, 463);
  const extend = classify("fail-lvextend-insufficient-space") as InsufficientSpaceError;
  assert.equal(extend.neededExtents, 2556);
  assert.equal(extend.availableExtents, 459);
  assert.match(create.message, /463 extents.*2560 required/);
});

test("the message names the command and LVM's sentence without the activation warning", () => {
  const error = classify("fail-lvcreate-exists");
  assert.equal(
    error.message,
    'lvcreate failed with exit code 5: Logical Volume "blocker" already exists in volume group "loamfx"',
  );
  assert.equal(
    classify("fail-fullreport-vg-not-found").message.startsWith("lvm fullreport failed with exit code 5:"),
    true,
  );
});

test("classification needs the exit code as well as the sentence", () => {
  const f = fixture("fail-lvcreate-exists");
  assert.equal(classifyLvmFailure(f.argv, { ...f, exitCode: 1 }).constructor, LvmError);
  assert.equal(classifyLvmFailure(f.argv, { ...f, exitCode: 5 }).constructor, LogicalVolumeExistsError);
  const usage = fixture("fail-lvcreate-invalid-name");
  assert.equal(classifyLvmFailure(usage.argv, { ...usage, exitCode: 5 }).constructor, LvmError);
});

test("LVs held open are LogicalVolumeInUseError (LVM's wording for lvremove of a mounted LV)", () => {
  const argv = ["lvremove", "--yes", "vg0/data"];
  for (const stderr of [
    "  Logical volume vg0/data contains a filesystem in use.\n",
    "  Logical volume vg0/data in use.\n",
    '  Can\'t remove open logical volume "data"\n',
  ]) {
    assert.equal(classifyLvmFailure(argv, { stdout: "", stderr, exitCode: 5 }).constructor, LogicalVolumeInUseError);
  }
});

test("a volume group locked by another command or host is LvmLockContentionError, even when 'not found' follows", () => {
  const argv = ["lvm", "lvcreate", "vg0"];
  for (const stderr of [
    "  Can't get lock for vg0\n",
    '  Can\'t get lock for vg0.\n  Volume group "vg0" not found\n',
    "  VG vg0 lock failed: held by other host.\n",
    "  Cannot access VG vg0 due to failed lock.\n",
  ]) {
    const error = classifyLvmFailure(argv, { stdout: "", stderr, exitCode: 5 });
    assert.equal(error.constructor, LvmLockContentionError, stderr);
    assert.match(error.message, /^lvm lvcreate failed with exit code 5: /);
  }
});

test("a prefix that cannot execute LVM (exit 127 from nsenter) is a CommandStartError", () => {
  const error = classifyLvmFailure(["lvm", "fullreport"], {
    stdout: "",
    stderr: "nsenter: failed to execute lvm: No such file or directory\n",
    exitCode: 127,
  });
  assert.ok(error instanceof CommandStartError);
});
