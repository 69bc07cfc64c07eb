/** Doctor's LVM checks: the lvm2 version, thin-provisioning-tools, and lvm.conf settings that need udev. */
import { join } from "node:path";
import { firstLine, type Finding, type HostProbe, ok } from "./findings.js";

const MIN_LVM = [2, 3, 0];

export async function checkLvmVersion(host: HostProbe): Promise<Finding> {
  const result = await host.run(["lvm", "version"], { viaPrefix: true });
  const match = /LVM version:\s*([0-9]+)\.([0-9]+)\.([0-9]+)/.exec(result?.stdout ?? "");
  if (!result || !match) {
    return {
      check: "lvm2",
      status: "fail",
      detail: result
        ? `\`lvm version\` did not print a version (exit ${result.exitCode})`
        : "the lvm command is not installed",
      fix: "install lvm2 (apt-get install lvm2 / dnf install lvm2)",
    };
  }
  const version = [Number(match[1]), Number(match[2]), Number(match[3])];
  const text = `${match[1]}.${match[2]}.${match[3]}`;
  if (compare(version, MIN_LVM) < 0) {
    return {
      check: "lvm2",
      status: "warn",
      detail: `LVM ${text} is older than 2.03, the oldest series loam is tested with`,
      fix: "upgrade lvm2",
    };
  }
  return ok("lvm2", `LVM ${text}`);
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export async function checkThinTools(host: HostProbe): Promise<Finding> {
  const result = await host.run(["thin_check", "-V"], { viaPrefix: true });
  if (result?.exitCode === 0)
    return ok("thin-provisioning-tools", `thin_check ${result.stdout.trim() || result.stderr.trim()}`);
  return {
    check: "thin-provisioning-tools",
    status: "warn",
    detail: "thin_check is missing: LVM refuses to activate thin pools without it",
    fix: "install thin-provisioning-tools (device-mapper-persistent-data on Fedora/RHEL)",
  };
}

/** lvm.conf settings that wait for, or depend on, a udev that a container does not have. */
export async function checkLvmConf(host: HostProbe): Promise<Finding[]> {
  const keys = [
    "activation/udev_sync",
    "activation/udev_rules",
    "devices/obtain_device_list_from_udev",
    "devices/use_devicesfile",
    "devices/devicesfile",
  ];
  const result = await host.run(["lvm", "lvmconfig", "--type", "full", ...keys], { viaPrefix: true });
  if (!result || result.exitCode !== 0) {
    return [
      {
        check: "lvm.conf",
        status: "warn",
        detail: `cannot read the effective LVM configuration (lvmconfig ${result ? `exit ${result.exitCode}: ${firstLine(result.stderr)}` : "not found"})`,
        fix: "install lvm2 and check /etc/lvm/lvm.conf parses (`lvmconfig --validate`)",
      },
    ];
  }
  const settings = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const match = /^\s*([a-z_]+)\s*=\s*"?([^"]*)"?\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) settings.set(match[1], match[2]);
  }
  const udevRunning = await host.exists("/run/udev/control");
  const findings: Finding[] = [];
  const udevWaits = ["udev_sync", "udev_rules"].filter((key) => settings.get(key) === "1");
  if (udevWaits.length > 0 && !udevRunning) {
    findings.push({
      check: "lvm.conf udev",
      status: "warn",
      detail: `${udevWaits.map((k) => `activation/${k}=1`).join(", ")} but no udev is running here (/run/udev/control missing): LVM may wait for udev events that never come`,
      fix: "set activation { udev_sync = 0 udev_rules = 0 } in the lvm.conf loam's LVM commands read",
    });
  } else {
    findings.push(ok("lvm.conf udev", udevWaits.length > 0 ? "udev sync on, and udev is running" : "udev sync off"));
  }
  if (settings.get("obtain_device_list_from_udev") === "1" && !udevRunning) {
    findings.push({
      check: "lvm.conf device list",
      status: "warn",
      detail: "devices/obtain_device_list_from_udev=1 but no udev is running here: LVM may miss disks",
      fix: "set devices { obtain_device_list_from_udev = 0 }",
    });
  } else {
    findings.push(
      ok("lvm.conf device list", `obtain_device_list_from_udev=${settings.get("obtain_device_list_from_udev") ?? "?"}`),
    );
  }
  const devicesFile = settings.get("devicesfile") || "system.devices";
  const devicesPath = join("/etc/lvm/devices", devicesFile);
  if (settings.get("use_devicesfile") === "1" && (await host.exists(devicesPath))) {
    findings.push({
      check: "lvm.conf devices file",
      status: "warn",
      detail: `devices/use_devicesfile=1 and ${devicesPath} exists: LVM sees only the disks listed there, and a container's copy goes stale`,
      fix: `add loam's disks with \`lvmdevices --adddev DEVICE\` on the host, or run loam's LVM with --config 'devices{use_devicesfile=0}'`,
    });
  } else {
    findings.push(
      ok(
        "lvm.conf devices file",
        settings.get("use_devicesfile") === "1" ? `use_devicesfile=1 but ${devicesPath} absent` : "use_devicesfile=0",
      ),
    );
  }
  return findings;
}
