/** Doctor's kernel checks: device-mapper and the device-mapper targets loam's layouts use. */
import { type CheckStatus, type Finding, type HostProbe, ok } from "./findings.js";

/** Device-mapper targets loam uses, the kernel module that provides each, and what is lost without it. */
const TARGETS: Array<{ target: string; module: string; status: CheckStatus; loss: string }> = [
  {
    target: "striped",
    module: "dm-mod",
    status: "fail",
    loss: "no volume can be created (linear and striped LVs use it)",
  },
  {
    target: "thin-pool",
    module: "dm-thin-pool",
    status: "warn",
    loss: "thin device classes, thin snapshots and clones cannot be used",
  },
  {
    target: "snapshot",
    module: "dm-snapshot",
    status: "warn",
    loss: "copy-on-write snapshots of thick volumes cannot be used",
  },
  { target: "raid", module: "dm-raid", status: "warn", loss: "raid1/raid10 (mirrored) device classes cannot be used" },
  { target: "mirror", module: "dm-mirror", status: "warn", loss: "LVM's mirror log and pvmove cannot be used" },
  {
    target: "crypt",
    module: "dm-crypt",
    status: "warn",
    loss: "encrypted (loam.csi.dev/encryption: luks2) volumes cannot be staged",
  },
];

export async function checkDeviceMapper(host: HostProbe): Promise<Finding[]> {
  const misc = (await host.readText("/proc/misc")) ?? "";
  const inKernel = /\bdevice-mapper\b/.test(misc) || (await host.exists("/sys/class/misc/device-mapper"));
  if (!inKernel) {
    return [
      {
        check: "device-mapper",
        status: "fail",
        detail:
          "the kernel has no device-mapper (not in /proc/misc nor /sys/class/misc): LVM cannot activate any volume",
        fix: "load it with `modprobe dm-mod` (package kmod; the module ships with the distribution kernel), or use a kernel built with CONFIG_BLK_DEV_DM",
      },
    ];
  }
  if (!(await host.exists("/dev/mapper/control"))) {
    return [
      {
        check: "device-mapper",
        status: "fail",
        detail: "the kernel has device-mapper but /dev/mapper/control is missing here",
        fix: "in a container, mount the host's /dev (hostPath /dev); on a host, run `dmsetup mknodes`",
      },
    ];
  }
  return [ok("device-mapper", "in the kernel; /dev/mapper/control present")];
}

export async function checkTargets(host: HostProbe, dmPresent: boolean): Promise<Finding[]> {
  const listed = new Set<string>();
  const result = dmPresent ? await host.run(["dmsetup", "targets"]) : undefined;
  if (result?.exitCode === 0) {
    for (const line of result.stdout.split("\n")) {
      const name = line.trim().split(/\s+/)[0];
      if (name) listed.add(name);
    }
  }
  const findings: Finding[] = [];
  for (const t of TARGETS) {
    const check = `dm target ${t.target}`;
    if (listed.has(t.target)) {
      findings.push(ok(check, "registered in the kernel"));
      continue;
    }
    // Targets register when their module loads, which the kernel does on first use.
    const modinfo = await host.run(["modinfo", "-F", "filename", t.module]);
    const where = modinfo?.exitCode === 0 ? (modinfo.stdout.trim().split("\n")[0] ?? "") : "";
    if (where !== "" && dmPresent) {
      findings.push(ok(check, `module ${t.module} available (${where}); the kernel loads it on first use`));
      continue;
    }
    findings.push({
      check,
      status: t.status,
      detail: dmPresent
        ? `not registered and module ${t.module} not found: ${t.loss}`
        : `unavailable without device-mapper: ${t.loss}`,
      fix: dmPresent
        ? `install the kernel's modules (e.g. linux-modules-extra) or \`modprobe ${t.module}\``
        : "fix device-mapper first",
    });
  }
  return findings;
}
