import { test } from "node:test";
import assert from "node:assert/strict";
import { checkMountFlags, checkMountGroup, parseFsType } from "../../src/volumes/capabilities.js";
import { checkVolumeName } from "../../src/volumes/names.js";
import { checkSnapshotParameters, fingerprint, parseParameters } from "../../src/volumes/parameters.js";

test("fs_type: empty means xfs, xfs and ext4 pass, anything else names the allowed list", () => {
  assert.equal(parseFsType("", "f"), "xfs");
  assert.equal(parseFsType("ext4", "f"), "ext4");
  assert.throws(() => parseFsType("btrfs", "cap.fs_type"), /cap.fs_type "btrfs" is not supported; allowed: xfs, ext4/);
  assert.throws(() => parseFsType("xfs; rm -rf /", "f"), /not supported/);
});

test("mount flags pass an allow-list; dangerous or unknown flags are refused with the list", () => {
  assert.deepEqual(checkMountFlags(["noatime", "discard,nodev", "commit=30"], "f"), [
    "noatime",
    "discard",
    "nodev",
    "commit=30",
  ]);
  for (const bad of [
    "suid",
    "dev",
    "exec",
    "bind",
    "remount",
    "rw",
    "ro",
    "uid=0",
    "commit=x",
    "noatime;reboot",
    'context="x"',
    "errors=panic",
  ]) {
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
  assert.throws(
    () => parseParameters({ fsType: "xfs" }),
    /unknown key "fsType"; allowed keys: loam.csi.dev\/deviceClass, .*claim metadata csi.storage.k8s.io\/pvc\/name.*csi.storage.k8s.io\/\* keys, which loam ignores/,
  );
  // Near misses of Kubernetes' keys are not theirs: only the exact prefix and the legacy names are.
  for (const key of [
    "csi.storage.k8s.io",
    "csi.storage.k8s.io/",
    "csi.storage.k8s.iofstype",
    "fstype",
    "csiProvisionerSecret",
  ]) {
    assert.throws(() => parseParameters({ [key]: "x" }), /unknown key/, key);
  }
});

test("parameters: Kubernetes' reserved and legacy keys are accepted and ignored; they never shape the volume", () => {
  const reserved = {
    "csi.storage.k8s.io/fstype": "ext4",
    "csi.storage.k8s.io/provisioner-secret-name": "${pvc.name}",
    "csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
    "csi.storage.k8s.io/controller-publish-secret-name": "s",
    "csi.storage.k8s.io/controller-publish-secret-namespace": "ns",
    "csi.storage.k8s.io/node-stage-secret-name": "s",
    "csi.storage.k8s.io/node-stage-secret-namespace": "ns",
    "csi.storage.k8s.io/node-publish-secret-name": "s",
    "csi.storage.k8s.io/node-publish-secret-namespace": "ns",
    "csi.storage.k8s.io/controller-expand-secret-name": "s",
    "csi.storage.k8s.io/controller-expand-secret-namespace": "ns",
    "csi.storage.k8s.io/node-expand-secret-name": "s",
    "csi.storage.k8s.io/node-expand-secret-namespace": "ns",
    "csi.storage.k8s.io/secret-name": "s",
    "csi.storage.k8s.io/secret-namespace": "ns",
    "csi.storage.k8s.io/some-future-key": "anything at all",
    csiProvisionerSecretName: "s",
    csiProvisionerSecretNamespace: "ns",
    csiControllerPublishSecretName: "s",
    csiControllerPublishSecretNamespace: "ns",
    csiNodeStageSecretName: "s",
    csiNodeStageSecretNamespace: "ns",
    csiNodePublishSecretName: "s",
    csiNodePublishSecretNamespace: "ns",
  };
  const parsed = parseParameters({ ...reserved, "loam.csi.dev/deviceClass": "thin" });
  assert.deepEqual(parsed.shaping, { "loam.csi.dev/deviceClass": "thin" });
  assert.deepEqual(parsed.metadata, {});
  assert.equal(fingerprint(parsed), fingerprint(parseParameters({ "loam.csi.dev/deviceClass": "thin" })));
  // loam's own keys stay strict beside them.
  assert.throws(() => parseParameters({ ...reserved, "loam.csi.dev/stripes": "two" }), /"two" is not allowed/);
});

test("snapshot parameters: only Kubernetes' keys, which are ignored", () => {
  checkSnapshotParameters({
    "csi.storage.k8s.io/volumesnapshot/name": "snap",
    "csi.storage.k8s.io/volumesnapshot/namespace": "db",
    "csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-1",
    "csi.storage.k8s.io/snapshotter-secret-name": "s",
    "csi.storage.k8s.io/snapshotter-secret-namespace": "ns",
  });
  assert.throws(
    () => checkSnapshotParameters({ "loam.csi.dev/deviceClass": "thin" }),
    /unknown key "loam.csi.dev\/deviceClass"; loam's snapshots take no parameters/,
  );
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
  assert.throws(
    () => parseParameters({ "csi.storage.k8s.io/pvc/name": "Bad Name!" }),
    /is not a Kubernetes object name/,
  );
});
