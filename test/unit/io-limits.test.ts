/**
 * IO limits (issue 17) on the host: the StorageClass parameters (bounds, absolute or per GiB,
 * not both), the limits in force for a size, the spec read back from an LV's parameter tag,
 * the workload named by a target path, cgroup discovery over the trees of
 * test/fixtures/cgroups/ (kubelet's systemd and cgroupfs drivers, v1 and v2, every QoS class,
 * kind's nested root, Nomad), and the v2 io.max line. Real cgroup v1 blkio on a loop device
 * is test/unit/io-limits-blkio.test.ts; real cgroup v2 is the VM's `iolimits` group.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VolumeError } from "../../src/volumes/errors.js";
import { PARAMETER_KEYS, fingerprint, parseParameters } from "../../src/volumes/parameters.js";
import { ioLimitSpecOf, limitsFor, shapingOfFingerprint } from "../../src/volumes/io-limits.js";
import { detectHierarchy, ioMaxLine, workloadCgroups, workloadOfTargetPath } from "../../src/host/cgroup.js";
import { majorMinorOf } from "../../src/host/mountinfo.js";

const K = PARAMETER_KEYS;
const GIB = 1024 ** 3;

const refused = (parameters: Record<string, string>): string => {
  try {
    parseParameters(parameters);
  } catch (error) {
    assert.ok(error instanceof VolumeError, String(error));
    assert.equal(error.kind, "invalid-argument");
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(parameters)}`);
};

test("IO limit parameters: integers within bounds, absolute or per GiB but not both, the policy only with a limit", () => {
  const ok = parseParameters({
    [K.readIOPS]: "2000",
    [K.writeIOPSPerGiB]: "10",
    [K.readBytesPerSecond]: "104857600",
    [K.writeBytesPerSecondPerGiB]: "1048576",
    [K.ioLimitsMissingCgroup]: "warn",
  });
  assert.equal(Object.keys(ok.shaping).length, 5);
  for (const bad of ["0", "-1", "1e3", "100Mi", "01", " 5", "10000001", "2.5", ""]) {
    assert.match(refused({ [K.readIOPS]: bad }), /readIOPS.*is not allowed; allowed: an integer from 1 to 10000000/);
  }
  assert.match(refused({ [K.writeBytesPerSecond]: "4095" }), /from 4096 to 1000000000000 \(bytes per second\)/);
  assert.match(
    refused({ [K.writeIOPS]: "10", [K.writeIOPSPerGiB]: "1" }),
    /writeIOPS"\] and parameters\["loam.csi.dev\/writeIOPSPerGiB"\] are both set; set one/,
  );
  assert.match(refused({ [K.ioLimitsMissingCgroup]: "warn" }), /ioLimitsMissingCgroup"\] needs an IO limit/);
  assert.match(refused({ [K.readIOPS]: "5", [K.ioLimitsMissingCgroup]: "ignore" }), /allowed: fail or warn/);
  assert.match(refused({ readIOPS: "5" }), /did you mean "loam.csi.dev\/readIOPS"/);
});

test("the limits in force: per-GiB values times the size, rounded up; the spec survives the LV's parameter tag", () => {
  const parameters = parseParameters({ [K.readIOPSPerGiB]: "3", [K.writeBytesPerSecond]: "8388608" });
  const spec = ioLimitSpecOf(shapingOfFingerprint(fingerprint(parameters)));
  assert.ok(spec);
  assert.equal(spec.missingCgroup, "fail");
  assert.deepEqual(limitsFor(spec, 10 * GIB), { readIops: 30, writeBytesPerSecond: 8388608 });
  assert.deepEqual(limitsFor(spec, 1.5 * GIB), { readIops: 5, writeBytesPerSecond: 8388608 });
  assert.deepEqual(limitsFor(spec, 4 * 1024 * 1024), { readIops: 1, writeBytesPerSecond: 8388608 });
  assert.equal(ioLimitSpecOf(shapingOfFingerprint(fingerprint(parseParameters({})))), undefined);
  assert.equal(ioLimitSpecOf(shapingOfFingerprint("not json")), undefined);
});

test("the workload of a target path: kubelet's filesystem and block paths, Nomad's allocations", () => {
  const uid = "0b7a5e2c-1f4d-4c3e-9a8b-2d6f1e0c9a11";
  assert.deepEqual(workloadOfTargetPath(`/var/lib/kubelet/pods/${uid}/volumes/kubernetes.io~csi/pvc-1/mount`), {
    kind: "pod",
    uid,
  });
  assert.deepEqual(
    workloadOfTargetPath(`/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-1/${uid}`),
    { kind: "pod", uid },
  );
  assert.deepEqual(
    workloadOfTargetPath(`/var/lib/nomad/client/csi/node/loam/per-alloc/${uid}/vol/rw-file-system-single-node-writer`),
    { kind: "nomad", alloc: uid },
  );
  assert.equal(workloadOfTargetPath("/var/lib/kubelet/plugins/loam/staging/pvc-1"), undefined);
});

test("device numbers: minors of 256 and more (the kernel's split encoding)", () => {
  // glibc's makedev(259, 300) and makedev(7, 1048575)
  const makedev = (major: bigint, minor: bigint): bigint =>
    ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
  assert.equal(majorMinorOf(makedev(259n, 300n)), "259:300");
  assert.equal(majorMinorOf(makedev(7n, 1048575n)), "7:1048575");
  assert.equal(majorMinorOf(makedev(253n, 255n)), "253:255");
  assert.equal(majorMinorOf(makedev(253n, 256n)), "253:256");
  assert.equal(
    ioMaxLine("259:300", { writeBytesPerSecond: 1048576, readIops: 50 }),
    "259:300 riops=50 wiops=max rbps=max wbps=1048576",
  );
  assert.equal(ioMaxLine("259:300", {}), "259:300 riops=max wiops=max rbps=max wbps=max");
});

const FIXTURES = join(import.meta.dirname, "../../../test/fixtures/cgroups");
const POD = {
  guaranteed: "0b7a5e2c-1f4d-4c3e-9a8b-2d6f1e0c9a11",
  burstable: "5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222",
  besteffort: "9f3c1a7e-2b5d-4e8f-a1c6-3e7d0b9f5333",
};
const ALLOC = "3e1f0a2b-4c5d-4e6f-8a9b-0c1d2e3f4a55";

/** Makes the tree of a fixture under a fresh root: v2 roots get cgroup.controllers, v1 ones a blkio/ with the throttle file. */
function tree(name: string): { root: string; hierarchyRoot: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "loam-cgroups-"));
  const v1 = name.endsWith("-v1");
  const hierarchyRoot = v1 ? join(root, "blkio") : root;
  mkdirSync(hierarchyRoot, { recursive: true });
  if (v1) writeFileSync(join(hierarchyRoot, "blkio.throttle.write_bps_device"), "");
  else writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
  for (const line of readFileSync(join(FIXTURES, `${name}.txt`), "utf8").split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    mkdirSync(join(hierarchyRoot, line), { recursive: true });
  }
  return { root, hierarchyRoot, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

describe("cgroup discovery over the fixture trees", () => {
  const expected: Record<string, Record<keyof typeof POD, string>> = {
    "systemd-v2": {
      guaranteed: `kubepods.slice/kubepods-pod${POD.guaranteed.replaceAll("-", "_")}.slice`,
      burstable: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.burstable.replaceAll("-", "_")}.slice`,
      besteffort: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD.besteffort.replaceAll("-", "_")}.slice`,
    },
    "systemd-v1": {
      guaranteed: `kubepods.slice/kubepods-pod${POD.guaranteed.replaceAll("-", "_")}.slice`,
      burstable: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.burstable.replaceAll("-", "_")}.slice`,
      besteffort: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD.besteffort.replaceAll("-", "_")}.slice`,
    },
    "cgroupfs-v2": {
      guaranteed: `kubepods/pod${POD.guaranteed}`,
      burstable: `kubepods/burstable/pod${POD.burstable}`,
      besteffort: `kubepods/besteffort/pod${POD.besteffort}`,
    },
    "cgroupfs-v1": {
      guaranteed: `kubepods/pod${POD.guaranteed}`,
      burstable: `kubepods/burstable/pod${POD.burstable}`,
      besteffort: `kubepods/besteffort/pod${POD.besteffort}`,
    },
    "kind-v2": {
      guaranteed: `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod${POD.guaranteed.replaceAll("-", "_")}.slice`,
      burstable: `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${POD.burstable.replaceAll("-", "_")}.slice`,
      besteffort: `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${POD.besteffort.replaceAll("-", "_")}.slice`,
    },
  };
  for (const [name, pods] of Object.entries(expected)) {
    test(`${name}: each QoS class's pod, and none for an unknown pod`, async () => {
      const t = tree(name);
      try {
        const hierarchy = await detectHierarchy(t.root);
        assert.equal(hierarchy.version, name.endsWith("-v1") ? 1 : 2);
        for (const [qos, dir] of Object.entries(pods)) {
          const uid = POD[qos as keyof typeof POD];
          assert.deepEqual(await workloadCgroups(hierarchy, { kind: "pod", uid }), [join(t.hierarchyRoot, dir)], qos);
        }
        assert.deepEqual(
          await workloadCgroups(hierarchy, { kind: "pod", uid: "11111111-2222-4333-8444-555555555555" }),
          [],
        );
      } finally {
        t.cleanup();
      }
    });
  }
  for (const [name, tasks] of Object.entries({
    "nomad-v2": [`nomad.slice/share.slice/${ALLOC}.web.scope`, `nomad.slice/reserve.slice/${ALLOC}.db.scope`],
    "nomad-v1": [`nomad/${ALLOC}.web`, `nomad/${ALLOC}.db`],
  })) {
    test(`${name}: every task of the allocation, no other allocation's`, async () => {
      const t = tree(name);
      try {
        const hierarchy = await detectHierarchy(t.root);
        const found = await workloadCgroups(hierarchy, { kind: "nomad", alloc: ALLOC });
        assert.deepEqual(found.sort(), tasks.map((d) => join(t.hierarchyRoot, d)).sort());
      } finally {
        t.cleanup();
      }
    });
  }
  test("a v2 root without the io controller, and a root with neither, are reported with the reason", async () => {
    const root = mkdtempSync(join(tmpdir(), "loam-cgroups-"));
    try {
      const none = await detectHierarchy(root);
      assert.equal(none.version, "none");
      writeFileSync(join(root, "cgroup.controllers"), "cpu memory pids\n");
      const noIo = await detectHierarchy(root);
      assert.equal(noIo.version, "none");
      assert.match(noIo.version === "none" ? noIo.reason : "", /cgroup.controllers lacks io/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
