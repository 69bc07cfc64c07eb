/**
 * IO limits on the host's real cgroup v1 blkio controller (issue 17): a loop device whose minor
 * is above 255, a pod's cgroup tree made under a test root in /sys/fs/cgroup/blkio (kubelet's
 * cgroupfs layout, Burstable), and the limiter writing, re-applying and removing the
 * blkio.throttle.* rules; a dd with O_DIRECT in the container's cgroup is slowed to the limit.
 * The engine and the mount table of `reconcile` are stand-ins (plain objects, named so): the
 * cgroups, the device and the throttling are the kernel's.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { LoopScratch, skipWithoutLoopDevices } from "../support/loop-devices.js";
import { limitTargets, workloadCgroups, writeLimits } from "../../src/host/cgroup.js";
import { majorMinorOf } from "../../src/host/mountinfo.js";
import { type CgroupAccess, VolumeIoLimiter } from "../../src/volumes/io-limiting.js";
import { ioLimitSpecOf } from "../../src/volumes/io-limits.js";
import { PARAMETER_KEYS, parseParameters } from "../../src/volumes/parameters.js";
import { VolumeError } from "../../src/volumes/errors.js";
import type { Volume } from "../../src/volumes/volume.js";
import type { HostMount } from "../../src/volumes/node-host.js";

const BLKIO = "/sys/fs/cgroup/blkio";
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function skipWithoutBlkio(): string | false {
  const loop = skipWithoutLoopDevices();
  if (loop) return loop;
  if (existsSync(join(BLKIO, "blkio.throttle.write_bps_device")) || process.env.CI === "true") return false;
  return "no cgroup v1 blkio hierarchy at /sys/fs/cgroup/blkio";
}

const UID = "5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222";
const TARGET = `/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~csi/pvc-io/mount`;

/** Lines of a throttle file that name the device. */
const rules = (dir: string, file: string, device: string): string[] =>
  readFileSync(join(dir, `blkio.throttle.${file}`), "utf8")
    .split("\n")
    .filter((l) => l.startsWith(`${device} `));

/** Seconds a dd of `mib` MiB with O_DIRECT takes from inside cgroup `dir` (a node child joins it, then runs dd). */
function ddSecondsIn(dir: string, device: string, mib: number): number {
  const script = [
    "const fs = require('node:fs'); const cp = require('node:child_process');",
    "fs.writeFileSync(process.argv[1] + '/cgroup.procs', String(process.pid));",
    "const t = process.hrtime.bigint();",
    "cp.execFileSync('dd', ['if=/dev/zero', 'of=' + process.argv[2], 'bs=1M', 'count=' + process.argv[3], 'oflag=direct'], { stdio: 'ignore' });",
    "process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e9));",
  ].join("\n");
  const run = spawnSync(process.execPath, ["-e", script, dir, device, String(mib)], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return Number(run.stdout);
}

describe("IO limits on real cgroup v1 blkio", { skip: skipWithoutBlkio() }, () => {
  const scratch = new LoopScratch();
  const root = join(BLKIO, `loam-test-${process.pid}`);
  const pod = join(root, `kubepods/burstable/pod${UID}`);
  const first = join(pod, "c0ffee01");
  const later = join(pod, "c0ffee02");
  let loop: string;
  let device: string;
  // The kernel's files under a test root instead of the hierarchy's own root.
  const cgroups: CgroupAccess = {
    hierarchy: () => Promise.resolve({ version: 1, root }),
    workloadCgroups,
    limitTargets,
    writeLimits,
  };
  const volume = (sizeBytes: number, parameters: Record<string, string>): Volume =>
    ({
      id: "pvc-io",
      sizeBytes,
      devicePath: loop,
      ioLimits: ioLimitSpecOf(parseParameters(parameters).shaping),
    }) as Volume;

  before(() => {
    loop = scratch.loopAtOrAbove(64, 300).device;
    device = majorMinorOf(statSync(loop).rdev);
    mkdirSync(first, { recursive: true });
  });
  after(() => {
    for (const dir of [later, first, pod, join(root, "kubepods/burstable"), join(root, "kubepods"), root]) {
      if (existsSync(dir)) rmdirSync(dir);
    }
    scratch.cleanup();
  });

  test("written to the pod's cgroup and its container's for a minor above 255, enforced, re-applied, scaled, removed", async () => {
    assert.ok(Number(device.split(":")[1]) >= 256, `${loop} is ${device}`);
    const limiter = new VolumeIoLimiter(cgroups);
    const limited = volume(2 * GIB, {
      [PARAMETER_KEYS.writeBytesPerSecondPerGiB]: String(4 * MIB),
      [PARAMETER_KEYS.readIOPS]: "100",
    });
    await limiter.apply(limited, device, TARGET);
    for (const dir of [pod, first]) {
      assert.deepEqual(rules(dir, "write_bps_device", device), [`${device} ${8 * MIB}`], dir);
      assert.deepEqual(rules(dir, "read_iops_device", device), [`${device} 100`], dir);
      assert.deepEqual(rules(dir, "write_iops_device", device), []);
    }
    assert.deepEqual(
      limiter.inForce().map((e) => [e.volumeId, e.device, e.limits, e.cgroups.length]),
      [["pvc-io", device, { readIops: 100, writeBytesPerSecond: 8 * MIB }, 2]],
    );
    // 4 MiB at 8 MiB/s: half a second; unthrottled it takes milliseconds.
    const throttled = ddSecondsIn(first, loop, 4);
    assert.ok(throttled >= 0.35, `dd took ${throttled} s under an 8 MiB/s limit`);

    // A container started after the publish (v1 is not hierarchical): limited once reconciled.
    mkdirSync(later);
    assert.deepEqual(rules(later, "write_bps_device", device), []);
    const mounts = [{ mountPoint: TARGET, majorMinor: device, fsType: "xfs" } as HostMount];
    const standInHost = {
      mounts: () => Promise.resolve(mounts),
      stat: () => Promise.resolve({ type: "block-device", device } as const),
    };
    let current = limited;
    const standInEngine = { listVolumes: () => Promise.resolve([current]), getVolume: () => Promise.resolve(current) };
    assert.equal(await limiter.reconcile(standInEngine, standInHost), 1);
    assert.deepEqual(rules(later, "write_bps_device", device), [`${device} ${8 * MIB}`]);

    // Expanded to 4 GiB: the per-GiB limit follows.
    current = { ...limited, sizeBytes: 4 * GIB };
    await limiter.reconcile(standInEngine, standInHost, "pvc-io");
    for (const dir of [pod, first, later])
      assert.deepEqual(rules(dir, "write_bps_device", device), [`${device} ${16 * MIB}`]);

    await limiter.remove(TARGET);
    for (const dir of [pod, first, later]) {
      for (const file of ["read_iops_device", "write_iops_device", "read_bps_device", "write_bps_device"]) {
        assert.deepEqual(rules(dir, file, device), [], `${dir} ${file}`);
      }
    }
    assert.deepEqual(limiter.inForce(), []);
    const free = ddSecondsIn(first, loop, 4);
    assert.ok(free < 0.3, `dd took ${free} s with no limit`);
  });

  test("a pod without a cgroup: FAILED_PRECONDITION by default, a warning and a count with policy warn", async () => {
    const limiter = new VolumeIoLimiter(cgroups);
    const stranger = TARGET.replace(UID, "11111111-2222-4333-8444-555555555555");
    await assert.rejects(
      limiter.apply(volume(GIB, { [PARAMETER_KEYS.writeIOPS]: "50" }), device, stranger),
      (error: unknown) =>
        error instanceof VolumeError &&
        error.kind === "failed-precondition" &&
        /no cgroup of pod 11111111-2222-4333-8444-555555555555.*ioLimitsMissingCgroup: "warn"/.test(error.message),
    );
    await limiter.apply(
      volume(GIB, { [PARAMETER_KEYS.writeIOPS]: "50", [PARAMETER_KEYS.ioLimitsMissingCgroup]: "warn" }),
      device,
      stranger,
    );
    assert.equal(limiter.missingCgroups, 1);
    assert.deepEqual(limiter.inForce()[0]?.cgroups, []);
  });
});
