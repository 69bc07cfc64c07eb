/**
 * `loam doctor`: checks that this host can run loam and says how to fix what it cannot.
 * Every check is a small function of a HostProbe, so the same checks run against the real
 * host and, in tests, against a described one.
 */
import { access, constants, readFile, stat } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { CommandRunner, type CommandResult } from "../exec/index.js";
import { Lvm } from "../lvm/lvm.js";
import type { VolumeGroupReport } from "../lvm/report.js";
import { ConfigError, DEFAULTS, hostTargets, socketPathOf } from "./config.js";
import { humanBytes, table } from "./csi-output.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Finding {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it; empty when the check passed. */
  fix: string;
}

/** What the checks may ask of a host. */
export interface HostProbe {
  /** Runs a command (argument vector); undefined when it cannot be started. */
  run(argv: readonly string[], options?: { viaPrefix?: boolean }): Promise<CommandResult | undefined>;
  readText(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  isWritableDir(path: string): Promise<boolean>;
  /** The full path of a program on PATH (and the sbin directories), or undefined. */
  which(program: string): Promise<string | undefined>;
  report(vg: string): Promise<VolumeGroupReport>;
}

export interface DoctorOptions {
  volumeGroups: string[];
  kubeletDir: string;
  /** Directory of the CSI socket. */
  socketDir: string;
}

export const DOCTOR_USAGE = `Usage: loam doctor [--config FILE] [--volume-group VG]... [flags]

Checks this host for what loam needs and prints each finding with a fix.
Exit status: 0 when nothing blocks loam (warnings allowed), 1 when a check fails, 2 on bad flags.

Flags:
  --config FILE                  the JSON config file of "loam node" (volumeGroup, kubeletDir, endpoint, lvmCommandPrefix)
  --volume-group VG              a volume group to check (repeatable)
  --kubelet-dir DIR              kubelet's directory (default /var/lib/kubelet)
  --endpoint unix:///PATH        the CSI socket loam will serve (default unix:///run/loam/csi.sock)
  --lvm-command-prefix "WORDS"   words put before every LVM command, as for "loam node"
  --json                         print the findings as JSON
`;

/** Device-mapper targets loam uses, the kernel module that provides each, and what is lost without it. */
const TARGETS: Array<{ target: string; module: string; status: CheckStatus; loss: string }> = [
  { target: "striped", module: "dm-mod", status: "fail", loss: "no volume can be created (linear and striped LVs use it)" },
  { target: "thin-pool", module: "dm-thin-pool", status: "warn", loss: "thin device classes, thin snapshots and clones cannot be used" },
  { target: "snapshot", module: "dm-snapshot", status: "warn", loss: "copy-on-write snapshots of thick volumes cannot be used" },
  { target: "raid", module: "dm-raid", status: "warn", loss: "raid1/raid10 (mirrored) device classes cannot be used" },
  { target: "mirror", module: "dm-mirror", status: "warn", loss: "LVM's mirror log and pvmove cannot be used" },
];

const TOOLS: Array<{ program: string; status: CheckStatus; purpose: string; pkg: string }> = [
  { program: "mkfs.xfs", status: "fail", purpose: "makes xfs filesystems (the default fsType)", pkg: "xfsprogs" },
  { program: "xfs_growfs", status: "fail", purpose: "grows xfs filesystems on expansion", pkg: "xfsprogs" },
  { program: "mkfs.ext4", status: "warn", purpose: "makes ext4 filesystems", pkg: "e2fsprogs" },
  { program: "resize2fs", status: "warn", purpose: "grows ext4 filesystems on expansion", pkg: "e2fsprogs" },
  { program: "blkid", status: "fail", purpose: "finds an existing filesystem before formatting (never format over data)", pkg: "util-linux" },
];

const MIN_LVM = [2, 3, 0];

export async function runChecks(options: DoctorOptions, host: HostProbe): Promise<Finding[]> {
  const findings: Finding[] = [];
  const dm = await checkDeviceMapper(host);
  findings.push(...dm);
  findings.push(...(await checkTargets(host, dm.every((f) => f.status === "ok"))));
  findings.push(await checkLvmVersion(host));
  findings.push(await checkThinTools(host));
  for (const tool of TOOLS) findings.push(await checkTool(host, tool));
  findings.push(...(await checkLvmConf(host)));
  findings.push(...(await checkVolumeGroups(host, options.volumeGroups)));
  findings.push(await checkKubeletDir(host, options.kubeletDir));
  findings.push(await checkSocketDir(host, options.socketDir));
  return findings;
}

const ok = (check: string, detail: string): Finding => ({ check, status: "ok", detail, fix: "" });

async function checkDeviceMapper(host: HostProbe): Promise<Finding[]> {
  const misc = (await host.readText("/proc/misc")) ?? "";
  const inKernel = /\bdevice-mapper\b/.test(misc) || (await host.exists("/sys/class/misc/device-mapper"));
  if (!inKernel) {
    return [
      {
        check: "device-mapper",
        status: "fail",
        detail: "the kernel has no device-mapper (not in /proc/misc nor /sys/class/misc): LVM cannot activate any volume",
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

async function checkTargets(host: HostProbe, dmPresent: boolean): Promise<Finding[]> {
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
    const where = modinfo?.exitCode === 0 ? modinfo.stdout.trim().split("\n")[0] ?? "" : "";
    if (where !== "" && dmPresent) {
      findings.push(ok(check, `module ${t.module} available (${where}); the kernel loads it on first use`));
      continue;
    }
    findings.push({
      check,
      status: t.status,
      detail: dmPresent ? `not registered and module ${t.module} not found: ${t.loss}` : `unavailable without device-mapper: ${t.loss}`,
      fix: dmPresent ? `install the kernel's modules (e.g. linux-modules-extra) or \`modprobe ${t.module}\`` : "fix device-mapper first",
    });
  }
  return findings;
}

async function checkLvmVersion(host: HostProbe): Promise<Finding> {
  const result = await host.run(["lvm", "version"], { viaPrefix: true });
  const match = /LVM version:\s*([0-9]+)\.([0-9]+)\.([0-9]+)/.exec(result?.stdout ?? "");
  if (!result || !match) {
    return {
      check: "lvm2",
      status: "fail",
      detail: result ? `\`lvm version\` did not print a version (exit ${result.exitCode})` : "the lvm command is not installed",
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

async function checkThinTools(host: HostProbe): Promise<Finding> {
  const result = await host.run(["thin_check", "-V"], { viaPrefix: true });
  if (result?.exitCode === 0) return ok("thin-provisioning-tools", `thin_check ${result.stdout.trim() || result.stderr.trim()}`);
  return {
    check: "thin-provisioning-tools",
    status: "warn",
    detail: "thin_check is missing: LVM refuses to activate thin pools without it",
    fix: "install thin-provisioning-tools (device-mapper-persistent-data on Fedora/RHEL)",
  };
}

async function checkTool(host: HostProbe, tool: (typeof TOOLS)[number]): Promise<Finding> {
  const path = await host.which(tool.program);
  if (path) return ok(tool.program, path);
  return { check: tool.program, status: tool.status, detail: `not found on PATH; loam uses it: it ${tool.purpose}`, fix: `install ${tool.pkg}` };
}

/** lvm.conf settings that wait for, or depend on, a udev that a container does not have. */
async function checkLvmConf(host: HostProbe): Promise<Finding[]> {
  const keys = ["activation/udev_sync", "activation/udev_rules", "devices/obtain_device_list_from_udev", "devices/use_devicesfile", "devices/devicesfile"];
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
    findings.push(ok("lvm.conf device list", `obtain_device_list_from_udev=${settings.get("obtain_device_list_from_udev") ?? "?"}`));
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
    findings.push(ok("lvm.conf devices file", settings.get("use_devicesfile") === "1" ? `use_devicesfile=1 but ${devicesPath} absent` : "use_devicesfile=0"));
  }
  return findings;
}

async function checkVolumeGroups(host: HostProbe, volumeGroups: readonly string[]): Promise<Finding[]> {
  if (volumeGroups.length === 0) {
    return [
      {
        check: "volume group",
        status: "warn",
        detail: "no volume group given, so none was checked",
        fix: "pass --volume-group VG or --config FILE (the one loam node uses)",
      },
    ];
  }
  const findings: Finding[] = [];
  for (const vg of volumeGroups) {
    const check = `volume group ${vg}`;
    let report: VolumeGroupReport;
    try {
      report = await host.report(vg);
    } catch (error) {
      findings.push({
        check,
        status: "fail",
        detail: `cannot be read: ${firstLine(error instanceof Error ? error.message : String(error))}`,
        fix: `create it (\`vgcreate ${vg} /dev/DISK...\`) or name the right one; \`vgs\` lists what exists`,
      });
      continue;
    }
    findings.push(
      ok(check, `size ${humanBytes(report.vg.sizeBytes)}, free ${humanBytes(report.vg.freeBytes)}, ${report.pvs.length} PV(s), ${report.lvs.filter((lv) => !lv.internal).length} LV(s)`),
    );
    const metadata = metadataAreaFinding(vg, report.vg);
    if (metadata) findings.push(metadata);
    for (const pool of report.lvs.filter((lv) => lv.segType === "thin-pool")) {
      const data = pool.dataPercent ?? 0;
      const meta = pool.metadataPercent ?? 0;
      const detail = `size ${humanBytes(pool.sizeBytes)}, data ${data.toFixed(1)}%, metadata ${meta.toFixed(1)}%`;
      const worst = Math.max(data, meta);
      findings.push(
        worst >= 80
          ? {
              check: `thin pool ${vg}/${pool.name}`,
              status: worst >= 95 ? "fail" : "warn",
              detail,
              fix: `grow the pool (\`lvextend -L +SIZE ${vg}/${pool.name}\`, \`--poolmetadatasize +SIZE\` for metadata) or delete volumes`,
            }
          : ok(`thin pool ${vg}/${pool.name}`, detail),
      );
    }
  }
  return findings;
}

/**
 * What one more loam volume adds to a VG's metadata: about 620 bytes as stored in the
 * metadata area (730 in vgcfgbackup's commented text), measured by the benchmark's scale
 * section (docs/benchmarks.md, "LVM metadata per volume").
 */
export const METADATA_BYTES_PER_VOLUME = 620;
/** Below room for this many more volumes doctor warns; below METADATA_FAIL_VOLUMES it fails. */
const METADATA_WARN_VOLUMES = 100;
const METADATA_FAIL_VOLUMES = 10;

/** How many more volumes the VG's metadata area holds; undefined when LVM did not say. */
function metadataAreaFinding(vg: string, group: VolumeGroupReport["vg"]): Finding | undefined {
  if (group.metadataFreeBytes === undefined || group.metadataAreaBytes === undefined) return undefined;
  const room = Math.floor(group.metadataFreeBytes / METADATA_BYTES_PER_VOLUME);
  const check = `metadata area of ${vg}`;
  const detail = `${humanBytes(group.metadataFreeBytes)} free of ${humanBytes(group.metadataAreaBytes)}: room for about ${room} more volume(s)`;
  if (room >= METADATA_WARN_VOLUMES) return ok(check, detail);
  return {
    check,
    status: room < METADATA_FAIL_VOLUMES ? "fail" : "warn",
    detail,
    fix:
      "new volumes fail once it is full, and an area cannot grow in place: delete volumes, or add a PV made with " +
      "`pvcreate --metadatasize 64m` (`vgextend`) and stop writing the small areas with `pvchange --metadataignore y PV`",
  };
}

async function checkKubeletDir(host: HostProbe, dir: string): Promise<Finding> {
  const check = "kubelet directory";
  if (!(await host.exists(dir))) {
    return {
      check,
      status: "warn",
      detail: `${dir} does not exist: no kubelet here, so no volume can be published`,
      fix: "without Kubernetes this is fine; otherwise pass --kubelet-dir with kubelet's --root-dir (and mount it into the container with Bidirectional propagation)",
    };
  }
  if (!(await host.isWritableDir(dir))) {
    return { check, status: "fail", detail: `${dir} is not a writable directory`, fix: "run loam as root with the kubelet directory mounted read-write" };
  }
  return ok(check, `${dir} writable`);
}

async function checkSocketDir(host: HostProbe, dir: string): Promise<Finding> {
  const check = "socket directory";
  let existing = dir;
  while (!(await host.exists(existing))) {
    const up = dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  if (await host.isWritableDir(existing)) {
    return ok(check, existing === dir ? `${dir} writable` : `${dir} will be created under ${existing}`);
  }
  return { check, status: "fail", detail: `${existing} is not a writable directory, so ${dir} cannot hold the socket`, fix: "mount the plugin directory (e.g. /var/lib/kubelet/plugins/loam.csi.dev) read-write" };
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 300) ?? "";
}

/** The real host, with LVM commands (and LVM's helpers) behind the configured prefix. */
export function realHost(prefix: readonly string[]): HostProbe {
  const plain = new CommandRunner({ defaultTimeoutMs: 30_000 });
  const prefixed = new CommandRunner({ defaultTimeoutMs: 30_000, prefix });
  const lvm = new Lvm(prefixed);
  return {
    run: async (argv, options) => {
      try {
        return await (options?.viaPrefix ? prefixed : plain).run(argv);
      } catch {
        return undefined;
      }
    },
    readText: (path) => readFile(path, "utf8").catch(() => undefined),
    exists: (path) => stat(path).then(() => true, () => false),
    isWritableDir: async (path) => {
      const info = await stat(path).catch(() => undefined);
      if (!info?.isDirectory()) return false;
      return access(path, constants.W_OK).then(() => true, () => false);
    },
    which: async (program) => {
      const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(Boolean);
      for (const dir of dirs) {
        const path = join(dir, program);
        if (await access(path, constants.X_OK).then(() => true, () => false)) return path;
      }
      return undefined;
    },
    report: (vg) => lvm.report(vg),
  };
}

export async function loadDoctorOptions(args: string[]): Promise<{ options: DoctorOptions; prefix: string[]; json: boolean }> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: "string" },
        "volume-group": { type: "string", multiple: true },
        "kubelet-dir": { type: "string" },
        endpoint: { type: "string" },
        "lvm-command-prefix": { type: "string" },
        json: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new ConfigError("flags", `${(error as Error).message}\n\n${DOCTOR_USAGE}`);
  }
  const values = parsed.values;
  const { file, volumeGroups, prefix } = await hostTargets(values);
  return {
    options: {
      volumeGroups,
      kubeletDir: values["kubelet-dir"] ?? file.kubeletDir ?? DEFAULTS.kubeletDir,
      socketDir: dirname(socketPathOf(values.endpoint ?? file.endpoint ?? DEFAULTS.endpoint)),
    },
    prefix,
    json: values.json === true,
  };
}

export async function runDoctor(args: string[], write: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const { options, prefix, json } = await loadDoctorOptions(args);
  const findings = await runChecks(options, realHost(prefix));
  const blocked = findings.some((f) => f.status === "fail");
  if (json) {
    write(`${JSON.stringify({ ok: !blocked, findings }, null, 2)}\n`);
  } else {
    write(`${table(["CHECK", "STATUS", "DETAIL", "FIX"], findings.map((f) => [f.check, f.status, f.detail, f.fix]))}\n`);
    const counts = (s: CheckStatus): number => findings.filter((f) => f.status === s).length;
    write(`\n${counts("ok")} ok, ${counts("warn")} warning(s), ${counts("fail")} failure(s): ${blocked ? "loam cannot run here until the failures are fixed" : "loam can run here"}\n`);
  }
  return blocked ? 1 : 0;
}
