/**
 * A cheap "has this volume group changed?" test that needs no LVM command.
 *
 * Every metadata commit (lvcreate, lvremove, lvextend, a tag change, vgextend ...) writes the
 * new metadata text into the circular metadata area of each physical volume and then points
 * that area's header at it: offset, size and checksum of the current text. Reading the PV
 * label (first 2 KiB) and the header of each metadata area (512 bytes) therefore says whether
 * the metadata is the one we last read, in about a millisecond where `lvm fullreport` costs a
 * process start and a device scan. Kernel-only state (activation, thin pool usage) is not in
 * the metadata and is not covered.
 *
 * On-disk layout (LVM2 text format, little-endian): a label sector among the first four
 * starts with "LABELONE" and gives the offset of the PV header; the PV header holds the PV
 * uuid (32), the device size (8), then a zero-terminated list of data areas and a
 * zero-terminated list of metadata areas, each {offset, size} (8 + 8). A metadata area starts
 * with its header: checksum (4), magic (16), version (4), start (8), size (8), then the
 * location of the current text {offset, size, checksum, flags} (8 + 8 + 4 + 4).
 */
import { open } from "node:fs/promises";

const SECTOR = 512;
const LABEL_SCAN_BYTES = 4 * SECTOR;
const LABEL_ID = "LABELONE";
const LABEL_TYPE = "LVM2 001";
const MDA_MAGIC = " LVM2 x[5A%r0N*>";
const PV_UUID_BYTES = 32;
const MAX_AREAS = 16;

export class MetadataAreaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MetadataAreaError";
  }
}

/**
 * The stamp of one physical volume: where its metadata areas' current text lies and its
 * checksum, e.g. "4096:1536+1202#2404683233". Changes with every metadata commit.
 */
export async function metadataStamp(device: string): Promise<string> {
  const handle = await open(device, "r");
  try {
    const label = Buffer.alloc(LABEL_SCAN_BYTES);
    await handle.read(label, 0, label.length, 0);
    const areas = metadataAreasOf(label, device);
    const stamps: string[] = [];
    for (const offset of areas) {
      const header = Buffer.alloc(SECTOR);
      const { bytesRead } = await handle.read(header, 0, SECTOR, offset);
      stamps.push(`${offset}:${currentText(header.subarray(0, bytesRead), device, offset)}`);
    }
    return stamps.join(",");
  } finally {
    await handle.close();
  }
}

/** Stamps of several physical volumes in one string; the order of `devices` is kept. */
export async function volumeGroupStamp(devices: readonly string[]): Promise<string> {
  const stamps = await Promise.all(devices.map(async (device) => `${device}=${await metadataStamp(device)}`));
  return stamps.join(";");
}

/** Offsets of the metadata areas listed in the PV header. */
export function metadataAreasOf(label: Buffer, device = "device"): number[] {
  for (let sector = 0; sector + SECTOR <= label.length; sector += SECTOR) {
    if (label.toString("latin1", sector, sector + 8) !== LABEL_ID) continue;
    if (label.toString("latin1", sector + 24, sector + 32) !== LABEL_TYPE) {
      throw new MetadataAreaError(`${device}: LVM label of an unknown type`);
    }
    let at = sector + label.readUInt32LE(sector + 20) + PV_UUID_BYTES + 8;
    const lists: number[][] = [[], []];
    for (const list of lists) {
      for (;;) {
        if (at + 16 > label.length || list.length > MAX_AREAS)
          throw new MetadataAreaError(`${device}: PV header runs past the label`);
        const offset = label.readBigUInt64LE(at);
        at += 16;
        if (offset === 0n) break;
        list.push(Number(offset));
      }
    }
    return lists[1];
  }
  throw new MetadataAreaError(`${device}: no LVM label in the first ${LABEL_SCAN_BYTES} bytes`);
}

/** "offset+size#checksum" of the current metadata text named by a metadata area header. */
export function currentText(header: Buffer, device = "device", at = 0): string {
  if (header.length < 64 || header.toString("latin1", 4, 20) !== MDA_MAGIC) {
    throw new MetadataAreaError(`${device}: no metadata area header at byte ${at}`);
  }
  const offset = header.readBigUInt64LE(40);
  const size = header.readBigUInt64LE(48);
  const checksum = header.readUInt32LE(56);
  return `${offset}+${size}#${checksum}`;
}
