/** `loam status`: the IO limits in force, from the report the node writes next to its socket (docs/iolimits.md). */
import { readFile } from "node:fs/promises";
import { describeLimits } from "../volumes/io-limits.js";
import type { IoLimitReport } from "../volumes/io-limiting.js";
import { table } from "./csi-output.js";

export async function readIoLimitReport(path: string): Promise<IoLimitReport | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as IoLimitReport;
    return parsed.schema === 1 && Array.isArray(parsed.inForce) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function renderIoLimits(report: IoLimitReport): string {
  const head = `IO limits in force (the node's report of ${report.writtenAt})`;
  const missing =
    report.missingCgroups > 0
      ? `\n${report.missingCgroups} publish(es) went on without their limits: no cgroup found and ioLimitsMissingCgroup is warn`
      : "";
  if (report.inForce.length === 0) return `${head}: none${missing}\n`;
  const rows = report.inForce.map((e) => [
    e.volumeId,
    e.workload.kind === "pod" ? `pod ${e.workload.uid}` : `nomad ${e.workload.alloc}`,
    e.device,
    describeLimits(e.limits),
    e.cgroups.length > 0 ? String(e.cgroups.length) : "none found",
  ]);
  return `${head}\n\n${table(["VOLUME", "WORKLOAD", "DEVICE", "LIMITS", "CGROUPS"], rows)}${missing}\n`;
}
