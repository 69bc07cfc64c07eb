/**
 * Writes LVs straight into a volume group's text metadata (the format vgcfgbackup writes and
 * vgcfgrestore reads), so the scale benchmark can have 1,000 real, inactive LVs in one
 * metadata commit instead of 1,000 lvcreates (over ten minutes under emulation). Each LV is
 * one linear extent carrying exactly the tags loam's own CreateVolume writes.
 */
import { randomBytes } from "node:crypto";

export interface GeneratedLv {
  name: string;
  tags: readonly string[];
  /** The PV's key in the metadata ("pv0"), not its device path. */
  pv: string;
  startExtent: number;
}

export interface FreeSegment {
  pv: string;
  start: number;
  size: number;
}

// LVM's id alphabet; ids are 32 characters written in groups of 6-4-4-4-4-4-6.
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ID_GROUPS = [6, 4, 4, 4, 4, 4, 6];

export function lvmId(random: (n: number) => Uint8Array = randomBytes): string {
  const bytes = random(32);
  const chars = Array.from(bytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]);
  const groups: string[] = [];
  let at = 0;
  for (const size of ID_GROUPS) {
    groups.push(chars.slice(at, at + size).join(""));
    at += size;
  }
  return groups.join("-");
}

const quote = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

export function lvSection(lv: GeneratedLv, options: { id: string; creationTime: number; host: string }): string {
  const t = "\t\t";
  return [
    `${t}${lv.name} {`,
    `${t}\tid = ${quote(options.id)}`,
    `${t}\tstatus = ["READ", "WRITE", "VISIBLE"]`,
    `${t}\tflags = []`,
    `${t}\ttags = [${lv.tags.map(quote).join(", ")}]`,
    `${t}\tcreation_time = ${options.creationTime}`,
    `${t}\tcreation_host = ${quote(options.host)}`,
    `${t}\tsegment_count = 1`,
    "",
    `${t}\tsegment1 {`,
    `${t}\t\tstart_extent = 0`,
    `${t}\t\textent_count = 1`,
    "",
    `${t}\t\ttype = "striped"`,
    `${t}\t\tstripe_count = 1`,
    "",
    `${t}\t\tstripes = [`,
    `${t}\t\t\t${quote(lv.pv)}, ${lv.startExtent}`,
    `${t}\t\t]`,
    `${t}\t}`,
    `${t}}`,
  ].join("\n");
}

/** Index just past the brace that closes the block whose opening brace is at `open`; quotes and comments are skipped. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "{") {
      depth++;
    } else if (c === "}") {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error("unbalanced braces in volume group metadata");
}

/** The metadata with the LVs added to the volume group's logical_volumes section (made if missing). */
export function addLogicalVolumes(
  metadata: string,
  lvs: readonly GeneratedLv[],
  options: { creationTime: number; host: string; id?: () => string },
): string {
  const id = options.id ?? (() => lvmId());
  const sections = lvs
    .map((lv) => lvSection(lv, { id: id(), creationTime: options.creationTime, host: options.host }))
    .join("\n\n");
  const header = /^\tlogical_volumes \{$/m.exec(metadata);
  if (header) {
    const end = closingBrace(metadata, header.index + header[0].length - 1);
    return `${metadata.slice(0, end)}\n${sections}\n\t${metadata.slice(end)}`;
  }
  const vg = /^[A-Za-z0-9+_.-]+ \{$/m.exec(metadata);
  if (!vg) throw new Error("no volume group block in the metadata");
  const end = closingBrace(metadata, vg.index + vg[0].length - 1);
  return `${metadata.slice(0, end)}\n\tlogical_volumes {\n\n${sections}\n\t}\n${metadata.slice(end)}`;
}

/** Device path → PV key ("pv0") from the physical_volumes section. */
export function pvKeys(metadata: string): Map<string, string> {
  const keys = new Map<string, string>();
  const pattern = /^\t\t(pv\d+) \{\n(?:[^}]*?\n)?\t\t\tdevice = "([^"]+)"/gm;
  for (const match of metadata.matchAll(pattern)) if (match[1] && match[2]) keys.set(match[2], match[1]);
  return keys;
}

/** One extent per LV from the free segments, in order; throws when they run out. */
export function allocateExtents(
  free: readonly FreeSegment[],
  count: number,
): Array<{ pv: string; startExtent: number }> {
  const out: Array<{ pv: string; startExtent: number }> = [];
  for (const segment of free) {
    for (let e = 0; e < segment.size && out.length < count; e++)
      out.push({ pv: segment.pv, startExtent: segment.start + e });
    if (out.length === count) return out;
  }
  throw new Error(`only ${out.length} free extents for ${count} volumes`);
}
