/**
 * What device-mapper says about thin pools (`dmsetup status --target thin-pool`), in the
 * words and figures LVM's report would use: device-mapper names, the status line's usage and
 * health, and lvs' rounding of percentages. Pure parsing; the command runs in lvm.ts.
 */
import { ReportParseError } from "./report.js";

export interface ThinPoolUsage {
  dataPercent: number;
  metadataPercent: number;
}

/**
 * A thin pool's state as device-mapper reports it now, in the words LVM's report uses for
 * it (LVM derives its pool columns from the same status line).
 */
export interface ThinPoolStatus {
  /** null when device-mapper gives no figures (a failed pool). */
  dataPercent: number | null;
  metadataPercent: number | null;
  /** lv_health_status: "" when healthy, else "out_of_data", "metadata_read_only" or "failed". */
  healthStatus: string;
  /** lv_check_needed: the pool's metadata must be checked and repaired (lvconvert --repair). */
  checkNeeded: boolean;
  /** lv_when_full: "error" or "queue" (writes to a full pool fail at once, or wait up to 60 s); "" unknown. */
  whenFull: string;
}

/** device-mapper's name for an LV (or one of its layers): dashes in names are doubled. */
export function dmName(vg: string, lv: string, layer?: string): string {
  const escape = (name: string): string => name.replaceAll("-", "--");
  return `${escape(vg)}-${escape(lv)}${layer ? `-${layer}` : ""}`;
}

/** `dmsetup status --target thin-pool`: "<dm name>: <status>" per line ("No devices found" when none). */
export function thinPoolTargets(text: string): Map<string, string> {
  const targets = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(": ");
    if (colon > 0) targets.set(line.slice(0, colon), line.slice(colon + 2));
  }
  return targets;
}

/**
 * A pool's status line: LVM activates a pool no thin volume uses as <vg>-<pool> itself and
 * puts the target in a <vg>-<pool>-tpool layer once one does, so either name is taken.
 */
export function poolTarget(targets: ReadonlyMap<string, string>, vg: string, pool: string): string | undefined {
  return targets.get(dmName(vg, pool, "tpool")) ?? targets.get(dmName(vg, pool));
}

/**
 * "<start> <length> thin-pool <transaction> <used>/<total metadata blocks> <used>/<total data blocks> ..."
 */
export function parseThinPoolStatus(text: string, pool: string): ThinPoolUsage {
  const fields = text.trim().split(/\s+/);
  const ratio = (field: string | undefined): [number, number] => {
    const match = /^(\d+)\/(\d+)$/.exec(field ?? "");
    if (!match)
      throw new ReportParseError(
        `thin pool ${pool}: unexpected dmsetup status ${JSON.stringify(text.trim().slice(0, 200))}`,
      );
    return [Number(match[1]), Number(match[2])];
  };
  if (fields[2] !== "thin-pool")
    throw new ReportParseError(
      `thin pool ${pool}: dmsetup status is not a thin-pool target: ${JSON.stringify(text.trim().slice(0, 200))}`,
    );
  const [metadataUsed, metadataTotal] = ratio(fields[4]);
  const [dataUsed, dataTotal] = ratio(fields[5]);
  return { dataPercent: lvmPercent(dataUsed, dataTotal), metadataPercent: lvmPercent(metadataUsed, metadataTotal) };
}

/**
 * The whole thin-pool status line: usage, and after it "<held root> rw|ro|out_of_data_space
 * [no_]discard_passdown error_if_no_space|queue_if_no_space needs_check|- ...". A failed pool's
 * line is just "Fail" (or "Error" when the kernel could not give its status).
 */
export function parseThinPoolHealth(text: string, pool: string): ThinPoolStatus {
  const fields = text.trim().split(/\s+/);
  if (fields[2] === "thin-pool" && (fields[3] === "Fail" || fields[3] === "Error"))
    return { dataPercent: null, metadataPercent: null, healthStatus: "failed", checkNeeded: false, whenFull: "" };
  const usage = parseThinPoolStatus(text, pool);
  const flags = fields.slice(6);
  const healthStatus = flags.includes("out_of_data_space")
    ? "out_of_data"
    : flags.includes("ro")
      ? "metadata_read_only"
      : "";
  const whenFull = flags.includes("error_if_no_space") ? "error" : flags.includes("queue_if_no_space") ? "queue" : "";
  return { ...usage, healthStatus, checkNeeded: flags.includes("needs_check"), whenFull };
}

/**
 * A usage ratio as lvs prints it (two decimals), so figures from device-mapper and from a
 * report agree to the last digit: libdevmapper keeps percentages as integers in millionths,
 * never rounds a partly used pool to 0.00 or a not quite full one to 100.00, and printf rounds
 * an exact tie to even.
 */
export function lvmPercent(used: number, total: number): number {
  const ONE = 1_000_000;
  const HUNDRED = 100 * ONE;
  let percent: number;
  if (total === 0 || used === total) percent = HUNDRED;
  else if (used === 0) percent = 0;
  else {
    percent = Math.trunc(HUNDRED * (used / total));
    if (percent === HUNDRED) percent = HUNDRED - 1;
    if (percent === 0) percent = 1;
  }
  const hundredth = Math.fround(0.01);
  let value = Math.fround(Math.fround(percent) / ONE);
  const edge = ONE * hundredth;
  if (percent < edge && percent > 0) value = hundredth;
  else if (percent > HUNDRED - edge && percent < HUNDRED) value = Math.fround(100 - hundredth);
  return Number(toFixedHalfEven(value, 2));
}

function toFixedHalfEven(value: number, digits: number): string {
  const scaled = value * 10 ** digits;
  const floor = Math.floor(scaled);
  // Only values exactly halfway in binary are ties; toFixed would round those up.
  if (scaled - floor === 0.5) return ((floor % 2 === 0 ? floor : floor + 1) / 10 ** digits).toFixed(digits);
  return value.toFixed(digits);
}
