/**
 * LV and VG names. LV names are derived from the CSI name so a retried CreateVolume finds the
 * LV its first attempt made; the hash makes them unique, the readable prefix helps operators.
 */
import { createHash } from "node:crypto";

/** LVM's NAME_LEN is 128 including the terminating NUL. */
export const MAX_LVM_NAME_LENGTH = 127;
const PREFIX_LENGTH = 40;
const HASH_HEX = 16;

const CHARSET = /^[A-Za-z0-9+_.-]+$/;
const RESERVED_LV_PREFIXES = ["snapshot", "pvmove"];
// LVM's reserved infixes for internal LVs, the 2.03 list and its later additions.
const RESERVED_LV_INFIXES = [
  "_cdata",
  "_cmeta",
  "_corig",
  "_cpool",
  "_cvol",
  "_imeta",
  "_iorig",
  "_mimage",
  "_mlog",
  "_pmspare",
  "_rimage",
  "_rmeta",
  "_tdata",
  "_tmeta",
  "_vdata",
  "_vorigin",
  "_wcorig",
];

function isValidLvmName(s: string): boolean {
  return (
    s.length > 0 &&
    s.length <= MAX_LVM_NAME_LENGTH &&
    CHARSET.test(s) &&
    !s.startsWith("-") && // LVM joins vg-lv with a hyphen
    s !== "." &&
    s !== ".."
  );
}

export function isValidVgName(s: string): boolean {
  return isValidLvmName(s);
}

export function isValidLvName(s: string): boolean {
  return (
    isValidLvmName(s) &&
    !RESERVED_LV_PREFIXES.some((prefix) => s.startsWith(prefix)) &&
    !RESERVED_LV_INFIXES.some((infix) => s.includes(infix))
  );
}

/**
 * The LV name of a CSI snapshot. CSI names of snapshots and of volumes are separate
 * namespaces, so the hash covers a kind prefix and the readable part starts with "snap-":
 * a snapshot and a volume with the same CSI name never collide.
 */
export function snapshotLvNameFor(csiName: string): string {
  const hash = createHash("sha256").update(`snapshot\0${csiName}`, "utf8").digest("hex").slice(0, HASH_HEX);
  const readable = readablePart(csiName)
    .slice(0, PREFIX_LENGTH - 5)
    .replace(/-+$/, "");
  return readable === "" ? `snap-${hash}` : `snap-${readable}-${hash}`;
}

function readablePart(csiName: string): string {
  return csiName
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, PREFIX_LENGTH)
    .replace(/^-+|-+$/g, "");
}

export function lvNameFor(csiName: string): string {
  const hash = createHash("sha256").update(csiName, "utf8").digest("hex").slice(0, HASH_HEX);
  let readable = readablePart(csiName);
  if (RESERVED_LV_PREFIXES.some((prefix) => readable.startsWith(prefix)))
    readable = `lv-${readable}`.slice(0, PREFIX_LENGTH).replace(/-+$/, "");
  return readable === "" ? `lv-${hash}` : `${readable}-${hash}`;
}
