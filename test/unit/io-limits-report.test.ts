/**
 * What IO limits show (issue 17): the report the node writes for `loam status` and its table,
 * the /metrics gauges of the limits in force, and `loam doctor`'s io controller check over
 * described hosts (stand-ins: v2 with and without io, v1 blkio, neither). The limiter writes to
 * a recording stand-in for the cgroup files; the kernel's are io-limits-blkio.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CgroupHierarchy, Workload } from "../../src/host/cgroup.js";
import { type CgroupAccess, VolumeIoLimiter, ioLimitReportPathOf } from "../../src/volumes/io-limiting.js";
import { ioLimitSpecOf } from "../../src/volumes/io-limits.js";
import { PARAMETER_KEYS, parseParameters } from "../../src/volumes/parameters.js";
import type { Volume } from "../../src/volumes/volume.js";
import { readIoLimitReport, renderIoLimits } from "../../src/cli/status-io-limits.js";
import { LoamMetrics } from "../../src/metrics/metrics.js";
import { checkIoController } from "../../src/cli/doctor/cgroups.js";
import type { HostProbe } from "../../src/cli/doctor/findings.js";

const UID = "5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222";
const TARGET = `/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~csi/pvc-1/mount`;

const standInCgroups: CgroupAccess = {
  hierarchy: (): Promise<CgroupHierarchy> => Promise.resolve({ version: 2, root: "/stand-in" }),
  workloadCgroups: (_h, w: Workload) => Promise.resolve(w.kind === "pod" ? [`/stand-in/pod${w.uid}`] : []),
  limitTargets: (_h, c) => Promise.resolve([...c]),
  writeLimits: () => Promise.resolve(),
};

test("the report for loam status, its table, and the gauges of the limits in force", async () => {
  const dir = mkdtempSync(join(tmpdir(), "loam-io-report-"));
  try {
    const path = ioLimitReportPathOf(join(dir, "csi.sock"));
    assert.equal(path, join(dir, "loam-io-limits.json"));
    const limiter = new VolumeIoLimiter(standInCgroups, undefined, path);
    const metrics = new LoamMetrics({ version: "test" });
    metrics.watchIoLimits(limiter);
    const volume = {
      id: "pvc-1",
      sizeBytes: 10 * 1024 ** 3,
      ioLimits: ioLimitSpecOf(
        parseParameters({ [PARAMETER_KEYS.writeIOPSPerGiB]: "7", [PARAMETER_KEYS.readBytesPerSecond]: "4096" }).shaping,
      ),
    } as Volume;
    await limiter.apply(volume, "253:300", TARGET);
    const report = await readIoLimitReport(path);
    assert.ok(report);
    assert.deepEqual(report.inForce[0]?.limits, { writeIops: 70, readBytesPerSecond: 4096 });
    const text = renderIoLimits(report);
    assert.match(text, /pvc-1 +pod 5d2e8f40-7c1a-4b6e-8e3d-91a0c4f7b222 +253:300 +wiops=70 rbps=4096 +1/);
    const { body } = await metrics.scrape();
    assert.match(body, /loam_volume_io_limit\{volume_id="pvc-1",limit="write_iops"\} 70/);
    assert.match(body, /loam_volume_io_limit\{volume_id="pvc-1",limit="read_bytes_per_second"\} 4096/);
    assert.match(body, /loam_volume_io_limit_cgroups\{volume_id="pvc-1"\} 1/);

    await limiter.remove(TARGET);
    const after = await readIoLimitReport(path);
    assert.ok(after);
    assert.deepEqual(after.inForce, []);
    assert.match(renderIoLimits(after), /IO limits in force .*: none/);
    assert.doesNotMatch((await metrics.scrape()).body, /loam_volume_io_limit\{/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loam doctor's io controller check: v2 with io ok, v2 without it or not delegated warn, v1 blkio ok, neither warn", async () => {
  const host = (files: Record<string, string>): HostProbe =>
    ({
      readText: (p: string) => Promise.resolve(files[p]),
      exists: (p: string) => Promise.resolve(p in files),
    }) as unknown as HostProbe;
  const v2 = await checkIoController(
    host({ "/r/cgroup.controllers": "cpu io memory\n", "/r/cgroup.subtree_control": "cpu io memory\n" }),
    "/r",
  );
  assert.equal(v2.status, "ok");
  assert.match(v2.detail, /io.max/);
  const noIo = await checkIoController(host({ "/r/cgroup.controllers": "cpu memory\n" }), "/r");
  assert.equal(noIo.status, "warn");
  assert.match(noIo.detail, /lacks io: volumes whose StorageClass sets IO limits/);
  const notDelegated = await checkIoController(
    host({ "/r/cgroup.controllers": "cpu io\n", "/r/cgroup.subtree_control": "cpu\n" }),
    "/r",
  );
  assert.equal(notDelegated.status, "warn");
  assert.match(notDelegated.fix, /\+io/);
  const v1 = await checkIoController(host({ "/r/blkio/blkio.throttle.write_bps_device": "" }), "/r");
  assert.equal(v1.status, "ok");
  assert.match(v1.detail, /buffered writes are not throttled on v1/);
  assert.equal((await checkIoController(host({}), "/r")).status, "warn");
});
