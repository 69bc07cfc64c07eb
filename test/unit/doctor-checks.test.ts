import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandResult } from "../../src/exec/index.js";
import type { LogicalVolume, VolumeGroupReport } from "../../src/lvm/report.js";
import { loadDoctorOptions, runChecks } from "../../src/cli/doctor.js";
import type { Finding, HostProbe } from "../../src/cli/doctor/findings.js";
import { logicalVolume } from "../support/lvm-objects.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));

interface Described {
  files: Record<string, string>;
  commands: Record<string, CommandResult>;
  programs: string[];
  writable: string[];
  vgs: Record<string, VolumeGroupReport>;
}

const done = (stdout: string, exitCode = 0): CommandResult => ({ stdout, stderr: "", exitCode });

/** A healthy Linux host with device-mapper, every tool and a VG "vg0", described rather than real. */
function healthy(): Described {
  return {
    files: {
      "/proc/misc": " 236 device-mapper\n 183 hw_random\n",
      "/dev/mapper/control": "",
      "/var/lib/kubelet": "",
      "/run/loam": "",
      "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "/sys/fs/cgroup/cgroup.subtree_control": "cpuset cpu io memory pids\n",
    },
    commands: {
      "dmsetup targets": done(
        "thin-pool        v1.23.0\nsnapshot         v1.16.0\nraid             v1.15.1\nmirror           v1.14.0\ncrypt            v1.24.0\nstriped          v1.6.0\nlinear           v1.4.0\n",
      ),
      "lvm version": done("  LVM version:     2.03.16(2) (2022-05-18)\n  Library version: 1.02.185\n"),
      "thin_check -V": done("0.9.0\n"),
      "lvm lvmconfig --type full activation/udev_sync activation/udev_rules devices/obtain_device_list_from_udev devices/use_devicesfile devices/devicesfile":
        done(
          'udev_sync=0\nudev_rules=0\nobtain_device_list_from_udev=0\nuse_devicesfile=0\ndevicesfile="system.devices"\n',
        ),
    },
    programs: ["mkfs.xfs", "xfs_growfs", "mkfs.ext4", "resize2fs", "blkid", "wipefs", "cryptsetup"],
    writable: ["/var/lib/kubelet", "/run/loam"],
    vgs: { vg0: report("vg0", []) },
  };
}

function report(name: string, lvs: Array<Partial<LogicalVolume>>): VolumeGroupReport {
  return {
    vg: {
      name,
      uuid: "u",
      sizeBytes: 10 * 2 ** 30,
      freeBytes: 4 * 2 ** 30,
      extentSizeBytes: 4 << 20,
      extentCount: 2560,
      freeExtentCount: 1024,
      pvCount: 1,
      lvCount: lvs.length,
      tags: [],
    },
    pvs: [
      { name: "/dev/vda", vgName: name, uuid: "p", sizeBytes: 10 * 2 ** 30, freeBytes: 4 * 2 ** 30, missing: false },
    ],
    lvs: lvs.map((lv) => logicalVolume({ vgName: name, uuid: "l", sizeBytes: 2 ** 30, ...lv })),
  };
}

/** The HostProbe over a described host (a stand-in: nothing here touches the real machine). */
function probe(d: Described): HostProbe {
  return {
    run: (argv) => Promise.resolve(d.commands[argv.join(" ")]),
    readText: (path) => Promise.resolve(d.files[path]),
    exists: (path) => Promise.resolve(path in d.files),
    isWritableDir: (path) => Promise.resolve(d.writable.includes(path)),
    which: (program) => Promise.resolve(d.programs.includes(program) ? `/usr/sbin/${program}` : undefined),
    report: (vg) => {
      const found = d.vgs[vg];
      return found ? Promise.resolve(found) : Promise.reject(new Error(`Volume group "${vg}" not found`));
    },
  };
}

const options = { volumeGroups: ["vg0"], kubeletDir: "/var/lib/kubelet", socketDir: "/run/loam" };
const byCheck = (findings: Finding[]): Record<string, Finding> => Object.fromEntries(findings.map((f) => [f.check, f]));

test("a healthy described host passes every check (stand-in probe)", async () => {
  const findings = await runChecks(options, probe(healthy()));
  assert.deepEqual(
    findings.filter((f) => f.status !== "ok"),
    [],
  );
  const checks = byCheck(findings);
  for (const name of [
    "device-mapper",
    "dm target thin-pool",
    "dm target snapshot",
    "dm target raid",
    "dm target mirror",
    "dm target crypt",
    "dm target striped",
    "lvm2",
    "thin-provisioning-tools",
    "mkfs.xfs",
    "xfs_growfs",
    "mkfs.ext4",
    "resize2fs",
    "blkid",
    "wipefs",
    "cryptsetup",
    "volume group vg0",
    "kubelet directory",
    "socket directory",
  ]) {
    assert.ok(checks[name], `missing check ${name}`);
  }
  assert.match(checks.lvm2?.detail ?? "", /LVM 2\.03\.16/);
});

test("no device-mapper in the kernel is a failure with a fix, and the targets say why they are missing", async () => {
  const host = healthy();
  host.files["/proc/misc"] = " 183 hw_random\n";
  const checks = byCheck(await runChecks(options, probe(host)));
  assert.equal(checks["device-mapper"]?.status, "fail");
  assert.match(checks["device-mapper"]?.fix ?? "", /modprobe dm-mod/);
  assert.equal(checks["dm target striped"]?.status, "fail");
  assert.equal(checks["dm target thin-pool"]?.status, "warn");
});

test("a target not yet registered counts as present when modinfo finds its module", async () => {
  const host = healthy();
  host.commands["dmsetup targets"] = done("striped v1.6.0\nlinear v1.4.0\n");
  host.commands["modinfo -F filename dm-thin-pool"] = done("/lib/modules/6.1.0/kernel/drivers/md/dm-thin-pool.ko\n");
  const checks = byCheck(await runChecks(options, probe(host)));
  assert.equal(checks["dm target thin-pool"]?.status, "ok");
  assert.match(checks["dm target thin-pool"]?.detail ?? "", /loads it on first use/);
  assert.equal(checks["dm target raid"]?.status, "warn", "no module and not registered");
});

test("lvm.conf: udev sync without udev and a devices file in use are warnings with fixes", async () => {
  const host = healthy();
  host.commands[Object.keys(host.commands).find((k) => k.startsWith("lvm lvmconfig"))!] = done(
    'udev_sync=1\nudev_rules=1\nobtain_device_list_from_udev=1\nuse_devicesfile=1\ndevicesfile="system.devices"\n',
  );
  host.files["/etc/lvm/devices/system.devices"] = "";
  const checks = byCheck(await runChecks(options, probe(host)));
  assert.equal(checks["lvm.conf udev"]?.status, "warn");
  assert.match(checks["lvm.conf udev"]?.fix ?? "", /udev_sync = 0/);
  assert.equal(checks["lvm.conf device list"]?.status, "warn");
  assert.equal(checks["lvm.conf devices file"]?.status, "warn");
  assert.match(checks["lvm.conf devices file"]?.fix ?? "", /lvmdevices --adddev/);
  host.files["/run/udev/control"] = "";
  delete host.files["/etc/lvm/devices/system.devices"];
  const withUdev = byCheck(await runChecks(options, probe(host)));
  assert.equal(withUdev["lvm.conf udev"]?.status, "ok");
  assert.equal(withUdev["lvm.conf devices file"]?.status, "ok");
});

test("missing tools, an unreadable VG, a full thin pool and a read-only kubelet dir are reported by severity", async () => {
  const host = healthy();
  host.programs = host.programs.filter((p) => p !== "mkfs.xfs" && p !== "resize2fs");
  host.writable = ["/run/loam"];
  host.vgs.vg0 = report("vg0", [{ name: "pool0", segType: "thin-pool", dataPercent: 96.5, metadataPercent: 12 }]);
  const checks = byCheck(await runChecks({ ...options, volumeGroups: ["vg0", "vgmissing"] }, probe(host)));
  assert.equal(checks["mkfs.xfs"]?.status, "fail");
  assert.equal(checks.resize2fs?.status, "warn");
  assert.equal(checks["volume group vg0"]?.status, "ok");
  assert.equal(checks["thin pool vg0/pool0"]?.status, "fail");
  assert.equal(checks["volume group vgmissing"]?.status, "fail");
  assert.match(checks["volume group vgmissing"]?.fix ?? "", /vgcreate vgmissing/);
  assert.equal(checks["kubelet directory"]?.status, "fail");
});

test("the metadata area check counts the volumes that still fit: ok with room, warn under 100, fail under 10", async () => {
  const host = healthy();
  const withFree = (free: number): VolumeGroupReport => {
    const r = report("vg0", []);
    return { ...r, vg: { ...r.vg, metadataAreaBytes: 1044480, metadataFreeBytes: free } };
  };
  const status = async (free: number): Promise<Finding | undefined> => {
    host.vgs.vg0 = withFree(free);
    return byCheck(await runChecks(options, probe(host)))["metadata area of vg0"];
  };
  const roomy = await status(518656);
  assert.equal(roomy?.status, "ok");
  assert.match(roomy?.detail ?? "", /room for about 836 more volume/);
  const tight = await status(50 * 620);
  assert.equal(tight?.status, "warn");
  assert.match(tight?.fix ?? "", /--metadatasize/);
  assert.equal((await status(5 * 620))?.status, "fail");
  host.vgs.vg0 = report("vg0", []);
  assert.equal(
    byCheck(await runChecks(options, probe(host)))["metadata area of vg0"],
    undefined,
    "no finding when LVM did not say",
  );
});

test("doctor reads volume groups, kubelet dir, endpoint and prefix from the node's config file; flags win", async () => {
  const dir = await mkdtemp(join(tmpdir(), "loam-doctor-"));
  try {
    const config = join(dir, "config.json");
    await writeFile(
      config,
      JSON.stringify({
        volumeGroup: "vgfile",
        kubeletDir: "/k",
        endpoint: "unix:///s/csi.sock",
        lvmCommandPrefix: ["nsenter", "-t", "1", "-m", "--"],
      }),
    );
    const fromFile = await loadDoctorOptions(["--config", config]);
    assert.deepEqual(fromFile.options, { volumeGroups: ["vgfile"], kubeletDir: "/k", socketDir: "/s" });
    assert.deepEqual(fromFile.prefix, ["nsenter", "-t", "1", "-m", "--"]);
    const flags = await loadDoctorOptions(["--config", config, "--volume-group", "a", "--volume-group", "b", "--json"]);
    assert.deepEqual(flags.options.volumeGroups, ["a", "b"]);
    assert.equal(flags.json, true);
    await assert.rejects(loadDoctorOptions(["--volume-group", "bad name"]), /volumeGroup/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("on this host (no device-mapper) `loam doctor --json` reports it and exits 1", () => {
  const result = spawnSync(process.execPath, [BIN, "doctor", "--json", "--volume-group", "loamnosuchvg"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(result.status, 1, result.stderr);
  const output = JSON.parse(result.stdout) as { ok: boolean; findings: Finding[] };
  assert.equal(output.ok, false);
  const dm = output.findings.find((f) => f.check === "device-mapper");
  assert.equal(dm?.status, "fail");
  assert.match(dm?.detail ?? "", /no device-mapper/);
  assert.equal(output.findings.find((f) => f.check === "volume group loamnosuchvg")?.status, "fail");
  const table = spawnSync(process.execPath, [BIN, "doctor"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(table.status, 1);
  assert.match(table.stdout, /^CHECK\s+STATUS\s+DETAIL\s+FIX/);
  assert.match(table.stdout, /device-mapper\s+fail/);
});
