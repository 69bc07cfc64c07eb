/**
 * What LVM knows that `loam disks` needs: every PV of the host and its VG (`pvs`), the managed
 * VG's report (its missing PVs and the LVs on them), and, when the VG is gone altogether, the
 * volumes its last metadata backup (/etc/lvm/backup/<vg>) listed: the volumes lost with it.
 */
import type { CommandRunner } from "../exec/index.js";
import { encodeTag } from "../lvm/tags.js";
import type { VolumeGroupReport } from "../lvm/report.js";
import { metadataOf } from "../volumes/metadata.js";
import { missingPvs } from "../volumes/missing-pvs.js";

/** The tag that makes a VG loam's to manage (vgcreate --addtag). */
export const MANAGED_VG_TAG = encodeTag("disks", "managed");

export interface PvRow {
  device: string;
  vg: string;
  uuid: string;
  missing: boolean;
}

export const PVS_ARGV = [
  "pvs",
  "--reportformat",
  "json",
  "--units",
  "b",
  "--nosuffix",
  "-o",
  "pv_name,vg_name,pv_uuid,pv_missing",
] as const;

export function parsePvs(json: string): PvRow[] {
  const parsed = JSON.parse(json) as { report?: { pv?: Record<string, string>[] }[] };
  return (parsed.report ?? []).flatMap((r) =>
    (r.pv ?? []).map((pv) => ({
      device: pv.pv_name ?? "",
      vg: pv.vg_name ?? "",
      uuid: pv.pv_uuid ?? "",
      missing: (pv.pv_missing ?? "") !== "",
    })),
  );
}

export async function readPvs(runner: CommandRunner): Promise<PvRow[]> {
  const result = await runner.run(PVS_ARGV);
  if (result.exitCode !== 0 && result.stdout.trim() === "")
    throw new Error(`${PVS_ARGV.join(" ")} exited ${result.exitCode}: ${result.stderr.trim()}`);
  return parsePvs(result.stdout);
}

export interface VolumeName {
  /** The CSI volume's name (loam's name tag), or the LV's name for an LV loam did not make. */
  name: string;
  lv: string;
}

const volumeOf = (lv: { name: string; tags: readonly string[] }): VolumeName => ({
  name: metadataOf(lv)?.name ?? lv.name,
  lv: lv.name,
});

export interface MissingDisk {
  uuid: string;
  /** Every LV with extents on it, thin volumes of a pool on it included. */
  volumes: VolumeName[];
}

/** The VG's missing PVs with the volumes that lose blocks with each. */
export function missingDisks(report: VolumeGroupReport): MissingDisk[] {
  return missingPvs(report).map((pv) => {
    const names = new Set(pv.lvs);
    for (const lv of report.lvs) if (lv.segType === "thin" && names.has(lv.poolLv)) names.add(lv.name);
    return {
      uuid: pv.uuid,
      volumes: report.lvs
        .filter((lv) => names.has(lv.name))
        .map(volumeOf)
        .sort((a, b) => a.lv.localeCompare(b.lv)),
    };
  });
}

export interface LvmBackup {
  vg: string;
  tags: string[];
  lvs: { name: string; tags: string[] }[];
}

/**
 * An LVM text-format metadata backup: the VG's tags and each LV's name and tags. Sections are
 * `name {` ... `}` lines; arrays may span lines until their `]`.
 */
export function parseLvmBackup(text: string): LvmBackup | undefined {
  const stack: string[] = [];
  let backup: LvmBackup | undefined;
  let pending = "";
  for (const raw of text.split("\n")) {
    const lineText = (pending + raw.replace(/#.*$/, "")).trim();
    if (lineText.includes("[") && !lineText.includes("]")) {
      pending = `${lineText} `;
      continue;
    }
    pending = "";
    const open = /^([A-Za-z0-9_.+-]+)\s*\{$/.exec(lineText);
    if (open) {
      stack.push(open[1]);
      if (stack.length === 1) backup = { vg: open[1], tags: [], lvs: [] };
      if (stack.length === 3 && stack[1] === "logical_volumes") backup?.lvs.push({ name: open[1], tags: [] });
      continue;
    }
    if (lineText === "}") {
      stack.pop();
      continue;
    }
    const tags = /^tags\s*=\s*\[(.*)\]$/.exec(lineText);
    if (!tags || !backup) continue;
    const values = [...tags[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
    if (stack.length === 1) backup.tags = values;
    else if (stack.length === 3 && stack[1] === "logical_volumes") {
      const lv = backup.lvs[backup.lvs.length - 1];
      if (lv) lv.tags = values;
    }
  }
  return backup;
}

/** The volumes a backup lists (public LVs: not pool components, which LVM names with _t/_tmeta/_tdata/_pmspare). */
export function volumesInBackup(backup: LvmBackup): VolumeName[] {
  return backup.lvs
    .filter((lv) => !/_(tdata|tmeta|pmspare|rimage_\d+|rmeta_\d+)$/.test(lv.name) && lv.name !== "lvol0_pmspare")
    .map(volumeOf)
    .sort((a, b) => a.lv.localeCompare(b.lv));
}
