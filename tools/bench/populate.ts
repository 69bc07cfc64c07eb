/**
 * Fills the VG with loam volumes in one metadata commit: vgcfgbackup, add LV sections with
 * the tags loam's CreateVolume writes (from loam's own tagsFor() and lvNameFor()), then
 * vgcfgrestore. The LVs are real and inactive; loam lists them like any volume it made.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { lvNameFor } from "../../src/lvm/names.js";
import { tagsFor } from "../../src/volumes/metadata.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { must, VG } from "./lab.js";
import { createParameters } from "./requests.js";
import { addLogicalVolumes, allocateExtents, type FreeSegment, type GeneratedLv, pvKeys } from "./vg-metadata.js";

export interface PopulateResult {
  added: number;
  seconds: number;
  metadataBytesBefore: number;
  metadataBytesAfter: number;
  /** Text metadata one more loam volume costs (with PVC name, namespace and PV name tags). */
  metadataBytesPerVolume: number;
  metadataAreaBytes: number;
  metadataAreaFreeBytesBefore: number;
  metadataAreaFreeBytes: number;
  /** The same cost as the metadata area sees it (LVM stores the text without comments). */
  metadataAreaBytesPerVolume: number;
}

/** The CSI name of the i-th pre-made volume. */
export const scaleVolumeName = (i: number): string => `bench-existing-${String(i).padStart(5, "0")}`;

async function backup(dir: string, name: string): Promise<string> {
  const file = join(dir, name);
  await must(["vgcfgbackup", "-f", file, VG]);
  return readFile(file, "utf8");
}

interface PvSegmentRow {
  pv_name: string;
  pvseg_start: string;
  pvseg_size: string;
  lv_name: string;
}

async function freeSegments(keys: Map<string, string>): Promise<FreeSegment[]> {
  const json = await must([
    "pvs",
    "--segments",
    "--reportformat",
    "json",
    "-o",
    "pv_name,pvseg_start,pvseg_size,lv_name",
    "--select",
    `vg_name=${VG}`,
  ]);
  const rows = (JSON.parse(json) as { report: Array<{ pvseg?: PvSegmentRow[] }> }).report.flatMap((r) => r.pvseg ?? []);
  return rows
    .filter((row) => row.lv_name === "")
    .map((row) => {
      const pv = keys.get(row.pv_name);
      if (!pv) throw new Error(`PV ${row.pv_name} is not in ${VG}'s metadata`);
      return { pv, start: Number(row.pvseg_start), size: Number(row.pvseg_size) };
    });
}

async function metadataArea(): Promise<{ size: number; free: number }> {
  const out = await must(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_mda_size,vg_mda_free", VG]);
  const [size, free] = out.trim().split(/\s+/).map(Number);
  return { size: size ?? 0, free: free ?? 0 };
}

/** Adds loam volumes number `from` .. `from + count - 1` to the VG. */
export async function populate(from: number, count: number): Promise<PopulateResult> {
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "loam-bench-vg-"));
  try {
    const before = await backup(dir, "before.vg");
    const areaBefore = await metadataArea();
    const extents = allocateExtents(await freeSegments(pvKeys(before)), count);
    const lvs: GeneratedLv[] = extents.map((at, k) => {
      const name = scaleVolumeName(from + k);
      const parameters = parseParameters(createParameters("thick", name));
      const lvName = lvNameFor(name);
      return { name: lvName, tags: tagsFor(name, lvName, parameters, { deviceClass: "thick" }), ...at };
    });
    const edited = addLogicalVolumes(before, lvs, { creationTime: Math.floor(Date.now() / 1000), host: hostname() });
    await writeFile(join(dir, "edited.vg"), edited);
    // --force: the VG holds a thin pool, whose kernel metadata vgcfgrestore cannot check; the
    // pool and its volumes are untouched, only plain linear LVs are added.
    await must(["vgcfgrestore", "--force", "-y", "-f", join(dir, "edited.vg"), VG]);
    const after = await backup(dir, "after.vg");
    const area = await metadataArea();
    return {
      added: count,
      seconds: (performance.now() - t0) / 1000,
      metadataBytesBefore: Buffer.byteLength(before),
      metadataBytesAfter: Buffer.byteLength(after),
      metadataBytesPerVolume: (Buffer.byteLength(after) - Buffer.byteLength(before)) / count,
      metadataAreaBytes: area.size,
      metadataAreaFreeBytesBefore: areaBefore.free,
      metadataAreaFreeBytes: area.free,
      metadataAreaBytesPerVolume: (areaBefore.free - area.free) / count,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
