/** Doctor's volume group checks: each VG can be read, its metadata area's room, its thin pools' usage. */
import type { VolumeGroupReport } from "../../lvm/report.js";
import { humanBytes } from "../csi-output.js";
import { firstLine, type Finding, type HostProbe, ok } from "./findings.js";
import { metadataAreaFinding } from "./metadata-area.js";
import { describeMissing, missingPvs, repairAdvice } from "../../volumes/missing-pvs.js";

export async function checkVolumeGroups(host: HostProbe, volumeGroups: readonly string[]): Promise<Finding[]> {
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
      ok(
        check,
        `size ${humanBytes(report.vg.sizeBytes)}, free ${humanBytes(report.vg.freeBytes)}, ${report.pvs.length} PV(s), ${report.lvs.filter((lv) => !lv.internal).length} LV(s)`,
      ),
    );
    const missing = missingPvs(report);
    if (missing.length > 0) {
      findings.push({
        check: `physical volumes of ${vg}`,
        status: "fail",
        detail: `${describeMissing(missing)}: LVM allocates nothing in ${vg} until it is repaired`,
        fix: repairAdvice(vg),
      });
    }
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
