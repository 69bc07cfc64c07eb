import { test } from "node:test";
import assert from "node:assert/strict";
import { checkMountFlags, checkMountGroup, parseFsType } from "../../src/volumes/capabilities.js";
import { checkVolumeName } from "../../src/volumes/names.js";
import { fingerprint, parseParameters } from "../../src/volumes/parameters.js";

test("fs_type: empty means xfs, xfs and ext4 pass, anything else names the allowed list", () => {
  assert.equal(parseFsType("", "f"), "xfs");
  assert.equal(parseFsType("ext4", "f"), "ext4");
  assert.throws(() => parseFsType("btrfs", "cap.fs_type"), /cap.fs_type "btrfs" is not supported; allowed: xfs, ext4/);
  assert.throws(() => parseFsType("xfs; rm -rf /", "f"), /not supported/);
});

test("mount flags pass an allow-list; dangerous or unknown flags are refused with the list", () => {
  assert.deepEqual(checkMountFlags(["noatime", "discard,nodev", "commit=30"], "f"), ["noatime", "discard", "nodev", "commit=30"]);
  for (const bad of ["suid", "dev", "exec", "bind", "remount", "rw", "ro", "uid=0", "commit=x", "noatime;reboot", "context=\"x\""]) {
    assert.throws(() => checkMountFlags([bad], "cap.mount_flags"), /cap.mount_flags contains .* allowed: noatime/, bad);
  }
});

test("volume_mount_group must be a numeric gid", () => {
  assert.equal(checkMountGroup("", "g"), "");
  assert.equal(checkMountGroup("2000", "g"), "2000");
  assert.throws(() => checkMountGroup("wheel", "g"), /numeric group id/);
  assert.throws(() => checkMountGroup("99999999999", "g"), /numeric group id/);
});

test("volume names: letters, digits, '.', '_' and '-' up to 128 characters", () => {
  assert.equal(checkVolumeName("pvc-3f1c2a4e-0b5d-4c7e-9a1b-2c3d4e5f6a7b"), "pvc-3f1c2a4e-0b5d-4c7e-9a1b-2c3d4e5f6a7b");
  assert.throws(() => checkVolumeName(""), /name is required/);
  assert.throws(() => checkVolumeName("x".repeat(10 * 1024)), /10240 characters long; at most 128/);
  for (const bad of ["a;b", "$(reboot)", "`id`", "a b", "../x", "-rf", "a|b", "a\nb", "ä", "a/b", "*"]) {
    assert.throws(() => checkVolumeName(bad), /characters loam does not accept/, bad);
  }
});

test("parameters: unknown keys are refused with the list of known keys", () => {
  assert.throws(() => parseParameters({ fsType: "xfs" }), /unknown key "fsType"; allowed keys: csi.storage.k8s.io\/pvc\/name/);
});

test("parameters: claim metadata is recorded and does not change the fingerprint", () => {
  const plain = parseParameters({});
  const withClaim = parseParameters({
    "csi.storage.k8s.io/pvc/name": "data-0",
    "csi.storage.k8s.io/pvc/namespace": "db",
    "csi.storage.k8s.io/pv/name": "pvc-1",
  });
  assert.equal(withClaim.metadata["csi.storage.k8s.io/pvc/namespace"], "db");
  assert.equal(fingerprint(plain), fingerprint(withClaim));
  assert.throws(() => parseParameters({ "csi.storage.k8s.io/pvc/name": "Bad Name!" }), /is not a Kubernetes object name/);
});
