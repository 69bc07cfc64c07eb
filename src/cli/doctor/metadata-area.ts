/** Doctor's metadata area check: how many more volumes a VG's LVM metadata area holds. */
import type { VolumeGroupReport } from "../../lvm/report.js";
import { humanBytes } from "../csi-output.js";
import { type Finding, ok } from "./findings.js";

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
export function metadataAreaFinding(vg: string, group: VolumeGroupReport["vg"]): Finding | undefined {
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
