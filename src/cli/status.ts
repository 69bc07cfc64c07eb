/**
 * `loam status`: what loam's volume groups hold — size and use of each group, its thin
 * pools, loam's volumes and snapshots with the claims they serve — read from LVM alone
 * (LVM is the source of truth; a running driver is not needed).
 */
import { parseArgs } from "node:util";
import { CommandRunner } from "../exec/index.js";
import { Lvm } from "../lvm/lvm.js";
import { type ReportSource, type VolumeGroupSummary, summarize } from "../metrics/lvm-state.js";
import { ConfigError, DEFAULTS, hostTargets, socketPathOf } from "./config.js";
import { describe, type GcReport, reportPathOf } from "../cluster/gc.js";
import { readFile } from "node:fs/promises";
import { repairAdvice } from "../volumes/missing-pvs.js";
import { humanBytes, table } from "./csi-output.js";
import { ioLimitReportPathOf } from "../volumes/io-limiting.js";
import { readIoLimitReport, renderIoLimits } from "./status-io-limits.js";

export const STATUS_USAGE = `Usage: loam status [--config FILE] [--volume-group VG]... [--json]

Shows each volume group loam uses: size, free and allocated space, thin pools with their
data and metadata use and health (what to do when one is full or broken), and loam's volumes and snapshots with the claims they serve. In cluster mode, what the node
agent's garbage collection last found (the report it writes next to the node's socket). The IO
limits in force per published volume (the node's report, loam-io-limits.json next to its socket).

Flags:
  --config FILE                  the JSON config file of "loam node"
  --volume-group VG              a volume group to show (repeatable)
  --lvm-command-prefix "WORDS"   words put before every LVM command, as for "loam node"
  --json                         print JSON instead of tables
`;

export type StatusEntry = ({ ok: true } & VolumeGroupSummary) | { ok: false; name: string; error: string };

export async function collectStatus(source: ReportSource, volumeGroups: readonly string[]): Promise<StatusEntry[]> {
  return Promise.all(
    volumeGroups.map(async (vg): Promise<StatusEntry> => {
      try {
        return { ok: true, ...summarize(await source.report(vg)) };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return { ok: false, name: vg, error: message.trim().split("\n")[0] ?? "" };
      }
    }),
  );
}

const percent = (ratio: number | null): string => (ratio === null ? "-" : `${(ratio * 100).toFixed(1)}%`);

/** The node agent's last garbage collection report, when the file exists and reads as one. */
export async function readGcReport(path: string): Promise<GcReport | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as GcReport;
    return parsed.schema === 1 && Array.isArray(parsed.findings) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function renderGc(report: GcReport): string {
  const out = [
    `Garbage collection on node ${report.nodeId} (mode ${report.mode}, grace ${report.graceSeconds} s), last sweep ${report.sweptAt}; removed so far: ${report.removed.volumes} volume LV(s), ${report.removed.snapshots} snapshot LV(s)`,
  ];
  if (report.findings.length === 0) return `${out[0]}: nothing found\n`;
  out.push(
    "",
    table(
      ["FINDING", "ID", "NAME", "FIRST SEEN", "STATE"],
      report.findings.map((f) => [
        f.kind,
        f.volumeGroup ? `${f.volumeGroup}/${f.id}` : f.id,
        f.name,
        f.firstSeen,
        f.removalFailed
          ? `removal failed: ${f.removalFailed.split("\n")[0]}`
          : f.reported
            ? "reported"
            : "within grace period",
      ]),
    ),
  );
  for (const f of report.findings) if (f.reported) out.push(describe(f, report.nodeId));
  return `${out.join("\n")}\n`;
}

export function renderStatus(entries: readonly StatusEntry[]): string {
  const out: string[] = [];
  out.push(
    table(
      ["VOLUME GROUP", "SIZE", "FREE", "ALLOCATED", "USED", "POOLS", "VOLUMES", "SNAPSHOTS"],
      entries.map((e) =>
        e.ok
          ? [
              e.name,
              humanBytes(e.sizeBytes),
              humanBytes(e.freeBytes),
              humanBytes(e.allocatedBytes),
              percent(e.sizeBytes > 0 ? e.allocatedBytes / e.sizeBytes : null),
              String(e.pools.length),
              String(e.volumes.length),
              String(e.snapshots.length),
            ]
          : [e.name, `cannot be read: ${e.error}`, "", "", "", "", "", ""],
      ),
    ),
  );
  const readable = entries.filter((e): e is { ok: true } & VolumeGroupSummary => e.ok);
  const pools = readable.flatMap((e) => e.pools.map((p) => ({ vg: e.name, ...p })));
  if (pools.length > 0) {
    out.push(
      "",
      table(
        ["THIN POOL", "SIZE", "DATA", "METADATA", "PROVISIONED", "OVERCOMMIT", "HEALTH"],
        pools.map((p) => [
          `${p.vg}/${p.name}`,
          humanBytes(p.sizeBytes),
          percent(p.dataUsage),
          percent(p.metadataUsage),
          humanBytes(p.provisionedBytes),
          p.sizeBytes > 0 ? `${(p.provisionedBytes / p.sizeBytes).toFixed(2)}x` : "-",
          p.health || "ok",
        ]),
      ),
    );
    // What to do about each pool in trouble, as the volume conditions say it.
    for (const p of pools) if (p.problem) out.push(p.problem);
  }
  const missing = readable.flatMap((e) => e.missingPvs.map((pv) => ({ vg: e.name, ...pv })));
  if (missing.length > 0) {
    out.push(
      "",
      table(
        ["MISSING PV", "VOLUME GROUP", "LOGICAL VOLUMES ON IT"],
        missing.map((pv) => [pv.uuid, pv.vg, pv.lvs.length > 0 ? pv.lvs.join(", ") : "-"]),
      ),
      "",
      ...[...new Set(missing.map((pv) => pv.vg))].map(
        (vg) => `${vg} allocates nothing until it is repaired (GetCapacity is 0): ${repairAdvice(vg)}`,
      ),
    );
  }
  for (const [title, key] of [
    ["VOLUME", "volumes"],
    ["SNAPSHOT", "snapshots"],
  ] as const) {
    const rows = readable.flatMap((e) =>
      e[key].map((v) => [
        `${e.name}/${v.id}`,
        v.name,
        v.pvcName ? `${v.pvcNamespace}/${v.pvcName}` : "-",
        humanBytes(v.sizeBytes),
        v.segType + (v.pool ? ` (${v.pool})` : ""),
        percent(v.dataUsage),
        v.active ? "yes" : "no",
        v.deviceClass || "-",
        v.source || "-",
      ]),
    );
    if (rows.length === 0) continue;
    const header = [title, "CSI NAME", "CLAIM", "SIZE", "TYPE", "DATA", "ACTIVE", "CLASS", "SOURCE"];
    out.push("", table(header, rows));
  }
  return `${out.join("\n")}\n`;
}

export async function runStatus(
  args: string[],
  write: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: "string" },
        "volume-group": { type: "string", multiple: true },
        "lvm-command-prefix": { type: "string" },
        json: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new ConfigError("flags", `${(error as Error).message}\n\n${STATUS_USAGE}`);
  }
  const values = parsed.values;
  const { file, volumeGroups, prefix } = await hostTargets(values);
  if (volumeGroups.length === 0)
    throw new ConfigError("volumeGroup", "name a volume group with --volume-group VG or --config FILE");
  const lvm = new Lvm(new CommandRunner({ prefix, defaultTimeoutMs: 60_000 }));
  const entries = await collectStatus(lvm, volumeGroups);
  const socketPath = socketPathOf(file.endpoint ?? DEFAULTS.endpoint);
  const gc = await readGcReport(reportPathOf(socketPath));
  const io = await readIoLimitReport(ioLimitReportPathOf(socketPath));
  if (values.json) {
    const extra = { ...(gc ? { garbageCollection: gc } : {}), ...(io ? { ioLimits: io } : {}) };
    write(`${JSON.stringify({ volumeGroups: entries, ...extra }, null, 2)}\n`);
  } else write(renderStatus(entries) + (gc ? `\n${renderGc(gc)}` : "") + (io ? `\n${renderIoLimits(io)}` : ""));
  return entries.every((e) => e.ok) ? 0 : 1;
}
