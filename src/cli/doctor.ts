/**
 * `loam doctor`: checks that this host can run loam and says how to fix what it cannot.
 * Every check is a small function of a HostProbe, so the same checks run against the real
 * host and, in tests, against a described one. This file reads the flags, runs the checks
 * and prints them; the checks live by subject in doctor/: kernel.ts (device-mapper and its
 * targets), lvm.ts (lvm2, thin tools, lvm.conf), filesystems.ts, volume-groups.ts and
 * metadata-area.ts, directories.ts (kubelet and socket directories), cgroups.ts (the io
 * controller IO limits need); doctor/host.ts is the
 * real host.
 */
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, DEFAULTS, hostTargets, socketPathOf } from "./config.js";
import { table } from "./csi-output.js";
import { checkKubeletDir, checkSocketDir } from "./doctor/directories.js";
import { checkFilesystemTools } from "./doctor/filesystems.js";
import type { CheckStatus, Finding, HostProbe } from "./doctor/findings.js";
import { realHost } from "./doctor/host.js";
import { checkDeviceMapper, checkTargets } from "./doctor/kernel.js";
import { checkIoController } from "./doctor/cgroups.js";
import { checkLvmConf, checkLvmVersion, checkThinTools } from "./doctor/lvm.js";
import { checkVolumeGroups } from "./doctor/volume-groups.js";

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
export async function runChecks(options: DoctorOptions, host: HostProbe): Promise<Finding[]> {
  const findings: Finding[] = [];
  const dm = await checkDeviceMapper(host);
  findings.push(...dm);
  findings.push(
    ...(await checkTargets(
      host,
      dm.every((f) => f.status === "ok"),
    )),
  );
  findings.push(await checkLvmVersion(host));
  findings.push(await checkThinTools(host));
  findings.push(...(await checkFilesystemTools(host)));
  findings.push(...(await checkLvmConf(host)));
  findings.push(...(await checkVolumeGroups(host, options.volumeGroups)));
  findings.push(await checkKubeletDir(host, options.kubeletDir));
  findings.push(await checkSocketDir(host, options.socketDir));
  findings.push(await checkIoController(host));
  return findings;
}

export async function loadDoctorOptions(
  args: string[],
): Promise<{ options: DoctorOptions; prefix: string[]; json: boolean }> {
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

export async function runDoctor(
  args: string[],
  write: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const { options, prefix, json } = await loadDoctorOptions(args);
  const findings = await runChecks(options, realHost(prefix));
  const blocked = findings.some((f) => f.status === "fail");
  if (json) {
    write(`${JSON.stringify({ ok: !blocked, findings }, null, 2)}\n`);
  } else {
    write(
      `${table(
        ["CHECK", "STATUS", "DETAIL", "FIX"],
        findings.map((f) => [f.check, f.status, f.detail, f.fix]),
      )}\n`,
    );
    const counts = (s: CheckStatus): number => findings.filter((f) => f.status === s).length;
    write(
      `\n${counts("ok")} ok, ${counts("warn")} warning(s), ${counts("fail")} failure(s): ${blocked ? "loam cannot run here until the failures are fixed" : "loam can run here"}\n`,
    );
  }
  return blocked ? 1 : 0;
}
