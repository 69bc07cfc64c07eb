/**
 * Physical volumes LVM cannot find, and what they mean for loam: the one place that says
 * which PVs of a volume group are missing, which LVs have extents on them, that the group
 * cannot allocate, and what the operator does about it. GetCapacity and the room checks
 * (class-capacity.ts), the volume conditions (volume.ts), the LVM failure translation
 * (errors.ts), metrics, `loam status` and `loam doctor` all take their answer from here.
 *
 * With a PV missing, LVM refuses every allocation in the VG, on any PV ("Cannot change VG
 * <vg> while PVs are missing"), so the whole group has no room; LVs with extents on the PV
 * have lost those blocks (LVM reports them "partial" and will not activate them again).
 */
import type { LogicalVolume, PhysicalVolume, VolumeGroupReport } from "../lvm/report.js";

/** A PV LVM cannot find, and the LVs (public ones and thin pools) with extents on it, their own or their thin pool's. */
export interface MissingPv {
  uuid: string;
  lvs: string[];
}

export function missingPvs(report: VolumeGroupReport): MissingPv[] {
  const missing = report.pvs.filter((pv) => pv.missing);
  if (missing.length === 0) return [];
  const under = report.lvs
    .filter((lv) => !lv.internal || lv.segType === "thin-pool")
    .map((lv) => ({ name: lv.name, pvs: pvsUnder(report, lv) }));
  return missing.map((pv) => ({
    uuid: pv.uuid,
    lvs: under
      .filter((lv) => lv.pvs.has(pv.uuid))
      .map((lv) => lv.name)
      .sort(),
  }));
}

/** The missing PVs that hold extents of this LV (or of its thin pool). */
export function missingUnder(report: VolumeGroupReport, lv: LogicalVolume): PhysicalVolume[] {
  if (!report.pvs.some((pv) => pv.missing)) return [];
  const under = pvsUnder(report, lv);
  return report.pvs.filter((pv) => pv.missing && under.has(pv.uuid));
}

/** How a missing PV is named to the operator: its uuid is what `pvs -o +pv_uuid` and LVM's warnings show. */
export const pvLabel = (pv: { uuid: string }): string => `physical volume ${pv.uuid}`;

/** What the operator does about missing PVs of `vg`. */
export function repairAdvice(vg: string): string {
  return (
    `if the disk is back, \`vgextend --restoremissing ${vg} DEVICE\` (a disk whose label was wiped first needs ` +
    `\`pvcreate --uuid UUID --restorefile /etc/lvm/backup/${vg} DEVICE\` and \`vgcfgrestore ${vg}\`); if it is lost, ` +
    `replace it (\`vgextend ${vg} NEWDISK\`) and drop it with \`vgreduce --removemissing ${vg}\` ` +
    `(volumes with extents on it lose those blocks: delete them first, or add --force)`
  );
}

/**
 * Why the VG cannot allocate now, or undefined when it can: a sentence naming the missing
 * PVs, the LVs on them and the fix.
 */
export function cannotAllocate(report: VolumeGroupReport): string | undefined {
  const missing = missingPvs(report);
  if (missing.length === 0) return undefined;
  const vg = report.vg.name;
  return (
    `volume group ${vg} cannot allocate: ${describeMissing(missing)}, and LVM refuses every change to ${vg} until it is repaired; ` +
    repairAdvice(vg)
  );
}

/** "LVM cannot find physical volume <uuid> (holding a, b); ..." */
export function describeMissing(missing: readonly MissingPv[]): string {
  const one = (pv: MissingPv): string =>
    `${pvLabel(pv)} (${pv.lvs.length === 0 ? "no logical volumes on it" : `holding ${pv.lvs.join(", ")}`})`;
  return `LVM cannot find ${missing.map(one).join("; ")}`;
}

/** The uuids of every PV under an LV: its own extents and its sub-LVs' (the report joins those), and for a thin LV its pool's. */
function pvsUnder(report: VolumeGroupReport, lv: LogicalVolume): Set<string> {
  const found = new Set(lv.pvUuids);
  if (lv.segType === "thin" && lv.poolLv !== "") {
    const pool = report.lvs.find((candidate) => candidate.name === lv.poolLv);
    for (const uuid of pool?.pvUuids ?? []) found.add(uuid);
  }
  return found;
}
