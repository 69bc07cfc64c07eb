/**
 * A typed view of `lvm fullreport --reportformat json --units b --nosuffix`. One fullreport
 * gives per VG separate "vg", "pv", "lv", "pvseg" and "seg" lists; segments point at their
 * LV only through lv_uuid, so we ask for that column and join on it. Every value arrives as
 * a string ("" when LVM has nothing to say); sizes are bytes because of --units b --nosuffix.
 */

export interface PhysicalVolume {
  name: string;
  vgName: string;
  uuid: string;
  sizeBytes: number;
  freeBytes: number;
  /**
   * LVM cannot find the device (pv_missing "missing"; the same PV has 'm' as the 3rd pv_attr
   * letter and counts in vg_missing_pv_count, and its VG has 'p', partial, as the 4th
   * vg_attr letter). Its name is then "[unknown]"; the uuid still names it. LVM refuses
   * every allocation in the VG ("Cannot change VG ... while PVs are missing") until the
   * PV is restored or removed.
   */
  missing: boolean;
}

export interface VolumeGroup {
  name: string;
  uuid: string;
  sizeBytes: number;
  freeBytes: number;
  extentSizeBytes: number;
  extentCount: number;
  freeExtentCount: number;
  pvCount: number;
  lvCount: number;
  tags: string[];
  /**
   * The smallest metadata area in use and what is left of it (LVM's vg_mda_size and
   * vg_mda_free). Absent from reports taken without those columns.
   */
  metadataAreaBytes?: number;
  metadataFreeBytes?: number;
}

export interface LogicalVolume {
  name: string;
  vgName: string;
  uuid: string;
  sizeBytes: number;
  attr: string;
  active: boolean;
  /** Type of the first segment: "linear", "striped", "raid1", "thin", "thin-pool", ... */
  segType: string;
  stripes: number;
  /** Stripe size of the first segment; 0 when not striped. */
  stripeSizeBytes: number;
  segmentCount: number;
  poolLv: string;
  origin: string;
  dataPercent: number | null;
  metadataPercent: number | null;
  tags: string[];
  devicePath: string;
  healthStatus: string;
  copyPercent: number | null;
  /** LVM's lv_role words, e.g. ["public"] or ["private","thin","pool","data"]. */
  roles: string[];
  /** Internal LVs (pool data/metadata, raid images) that only LVM itself should touch. */
  internal: boolean;
  /**
   * Thin pools, when read from device-mapper (Lvm.thinPoolStatuses) rather than this report:
   * the metadata needs checking (lv_check_needed), and what writes do when the pool is full
   * (lv_when_full: "error" or "queue").
   */
  checkNeeded?: boolean;
  whenFull?: string;
  /**
   * uuids of the PVs that hold this LV's extents or its sub-LVs' (a pool's [pool_tdata] and
   * [pool_tmeta], a raid LV's images), from the pvseg rows. Thin LVs hold none: their pool does.
   */
  pvUuids: string[];
}

export interface VolumeGroupReport {
  vg: VolumeGroup;
  pvs: PhysicalVolume[];
  lvs: LogicalVolume[];
}

export class ReportParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReportParseError";
  }
}

const VG_COLUMNS = [
  "vg_name",
  "vg_uuid",
  "vg_size",
  "vg_free",
  "vg_extent_size",
  "vg_extent_count",
  "vg_free_count",
  "pv_count",
  "lv_count",
  "vg_tags",
  "vg_mda_size",
  "vg_mda_free",
];
const PV_COLUMNS = ["pv_name", "pv_uuid", "pv_size", "pv_free", "pv_missing"];
const LV_COLUMNS = [
  "lv_uuid",
  "lv_name",
  "lv_attr",
  "lv_size",
  "lv_active",
  "lv_role",
  "lv_layout",
  "pool_lv",
  "origin",
  "data_percent",
  "metadata_percent",
  "copy_percent",
  "lv_tags",
  "lv_path",
  "lv_health_status",
];
const SEG_COLUMNS = ["lv_uuid", "segtype", "stripes", "stripe_size", "seg_start"];
// pvseg rows say which LV holds each run of a PV's extents (lv_name "" for free ones, a hidden
// sub-LV's name in brackets): what tells the volumes on a missing PV.
const PVSEG_COLUMNS = ["pv_uuid", "lv_name"];

/** The fullreport arguments after the subcommand: format, units and the columns parseFullReport reads. */
export const FULLREPORT_ARGS: readonly string[] = [
  "--reportformat",
  "json",
  "--units",
  "b",
  "--nosuffix",
  "--configreport",
  "vg",
  "-o",
  VG_COLUMNS.join(","),
  "--configreport",
  "pv",
  "-o",
  PV_COLUMNS.join(","),
  "--configreport",
  "lv",
  "-o",
  LV_COLUMNS.join(","),
  "--configreport",
  "seg",
  "-o",
  SEG_COLUMNS.join(","),
  "--configreport",
  "pvseg",
  "-o",
  PVSEG_COLUMNS.join(","),
];

type Row = Record<string, unknown>;

export function parseFullReport(json: string): VolumeGroupReport[] {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch (error) {
    throw new ReportParseError(`fullreport output is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(document) || !Array.isArray(document.report)) {
    throw new ReportParseError('fullreport output has no "report" list');
  }
  return document.report.map((entry: unknown, index: number) => parseEntry(entry, index));
}

function parseEntry(entry: unknown, index: number): VolumeGroupReport {
  if (!isObject(entry)) throw new ReportParseError(`report[${index}] is not an object`);
  const vgRows = rows(entry, "vg", index);
  if (vgRows.length !== 1) throw new ReportParseError(`report[${index}] has ${vgRows.length} vg rows; expected 1`);
  const vg = parseVg(vgRows[0]);
  const pvs = rows(entry, "pv", index).map((row) => parsePv(row, vg.name));

  // Segments in LE order per LV; the first one says what the LV is.
  const segments = new Map<string, Row[]>();
  for (const seg of optionalRows(entry, "seg", index)) {
    const uuid = str(seg, "lv_uuid");
    const list = segments.get(uuid) ?? [];
    list.push(seg);
    segments.set(uuid, list);
  }
  for (const list of segments.values())
    list.sort((a, b) => optionalBytes(a, "seg_start") - optionalBytes(b, "seg_start"));

  // The PVs under each top-level LV; the report lists no hidden sub-LV, so their extents go to their owner.
  const pvsOfLv = new Map<string, Set<string>>();
  for (const pvseg of optionalRows(entry, "pvseg", index)) {
    const owner = topLevelName(optionalStr(pvseg, "lv_name"));
    if (owner === "") continue;
    const set = pvsOfLv.get(owner) ?? new Set<string>();
    set.add(optionalStr(pvseg, "pv_uuid"));
    pvsOfLv.set(owner, set);
  }

  const lvs = rows(entry, "lv", index).map((row) =>
    parseLv(row, vg.name, segments.get(str(row, "lv_uuid")) ?? [], [...(pvsOfLv.get(str(row, "lv_name")) ?? [])]),
  );
  return { vg, pvs, lvs };
}

function parseVg(row: Row): VolumeGroup {
  return {
    name: str(row, "vg_name"),
    uuid: str(row, "vg_uuid"),
    sizeBytes: int(row, "vg_size"),
    freeBytes: int(row, "vg_free"),
    extentSizeBytes: int(row, "vg_extent_size"),
    extentCount: int(row, "vg_extent_count"),
    freeExtentCount: int(row, "vg_free_count"),
    pvCount: int(row, "pv_count"),
    lvCount: int(row, "lv_count"),
    tags: list(row, "vg_tags"),
    ...(row.vg_mda_size === undefined ? {} : { metadataAreaBytes: int(row, "vg_mda_size") }),
    ...(row.vg_mda_free === undefined ? {} : { metadataFreeBytes: int(row, "vg_mda_free") }),
  };
}

function parsePv(row: Row, vgName: string): PhysicalVolume {
  return {
    name: str(row, "pv_name"),
    vgName,
    uuid: optionalStr(row, "pv_uuid"),
    sizeBytes: int(row, "pv_size"),
    freeBytes: int(row, "pv_free"),
    missing: optionalStr(row, "pv_missing") === "missing",
  };
}

function parseLv(row: Row, vgName: string, segments: Row[], pvUuids: string[]): LogicalVolume {
  const first = segments[0];
  const attr = str(row, "lv_attr");
  const roles = list(row, "lv_role");
  return {
    name: str(row, "lv_name"),
    vgName,
    uuid: str(row, "lv_uuid"),
    sizeBytes: int(row, "lv_size"),
    attr,
    // The 5th attr letter is 'a' for an active LV; lv_active says "active" (or "local
    // exclusive" on shared VGs), and "unknown" when LVM could not ask the kernel.
    active: attr.charAt(4) === "a" || isActive(optionalStr(row, "lv_active")),
    segType: first ? str(first, "segtype") : "",
    stripes: first ? int(first, "stripes") : 0,
    stripeSizeBytes: first ? int(first, "stripe_size") : 0,
    segmentCount: segments.length,
    poolLv: optionalStr(row, "pool_lv"),
    origin: optionalStr(row, "origin"),
    dataPercent: percent(row, "data_percent"),
    metadataPercent: percent(row, "metadata_percent"),
    tags: list(row, "lv_tags"),
    devicePath: optionalStr(row, "lv_path"),
    healthStatus: optionalStr(row, "lv_health_status"),
    copyPercent: percent(row, "copy_percent"),
    roles,
    internal: roles.includes("private") || /^\[.*\]$/.test(str(row, "lv_name")),
    pvUuids,
  };
}

/**
 * The top-level LV a hidden sub-LV belongs to, by LVM's naming: "[pool_tdata]" → "pool",
 * "[rp_tdata_rimage_0]" → "rp". LVM refuses these suffixes in LV names, so the first one
 * found ends the owner's name. A top-level name comes back as it is; "" stays "".
 */
export function topLevelName(lvName: string): string {
  const bare = lvName.replace(/^\[(.*)\]$/, "$1");
  const match =
    /^(.+?)_(?:tdata|tmeta|rimage|rmeta|mimage|mlog|cdata|cmeta|cpool|corig|cvol|vdata|vpool|wcorig)(?:_|$)/.exec(bare);
  return match?.[1] ?? bare;
}

function isActive(lvActive: string): boolean {
  return lvActive === "active" || lvActive.startsWith("local");
}

function isObject(value: unknown): value is Row {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalRows(entry: Row, section: string, index: number): Row[] {
  const value = entry[section];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isObject)) {
    throw new ReportParseError(`report[${index}].${section} is not a list of objects`);
  }
  return value;
}

function rows(entry: Row, section: string, index: number): Row[] {
  if (entry[section] === undefined) throw new ReportParseError(`report[${index}] has no "${section}" section`);
  return optionalRows(entry, section, index);
}

function str(row: Row, key: string): string {
  const value = row[key];
  if (typeof value !== "string") throw new ReportParseError(`column ${key} is missing or not a string`);
  return value;
}

function optionalStr(row: Row, key: string): string {
  const value = row[key];
  return typeof value === "string" ? value : "";
}

const DIGITS = /^\d+$/;

function int(row: Row, key: string): number {
  const text = str(row, key);
  if (!DIGITS.test(text)) throw new ReportParseError(`column ${key} is "${text}"; expected a whole number`);
  const value = Number(text);
  // Sizes above 2^53 bytes (8 PiB) would lose bytes as JS numbers; refuse rather than round.
  if (!Number.isSafeInteger(value)) throw new ReportParseError(`column ${key} is ${text}, beyond exact JS numbers`);
  return value;
}

function optionalBytes(row: Row, key: string): number {
  return row[key] === undefined ? 0 : int(row, key);
}

function percent(row: Row, key: string): number | null {
  const text = optionalStr(row, key);
  if (text === "") return null;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new ReportParseError(`column ${key} is "${text}"; expected a percentage`);
  return value;
}

/** LVM lists tags and roles comma-separated in "json"; "json_std" (LVM 2.03.17+) gives arrays. */
function list(row: Row, key: string): string[] {
  const value = row[key];
  if (value === undefined || value === "") return [];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return [...value];
  if (typeof value === "string") return value.split(",").filter((v) => v !== "");
  throw new ReportParseError(`column ${key} is neither a string nor a list of strings`);
}
