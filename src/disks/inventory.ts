/**
 * The block devices of this host, as `loam disks` sees them: identity from sysfs (size, model,
 * vendor, serial, rotational, partitions, holders) and udev's database (/run/udev/data: the
 * /dev/disk/by-id names and ID_* properties), content from `blkid -p` (argument vectors only),
 * use from mountinfo and /proc/swaps. Only whole disks backed by a device (sysfs `device`
 * link) are listed: loop, dm, md, zram and ram devices are not disks to give to LVM.
 *
 * Without udev (a minimal host, the test VM) there are no by-id names; identity then comes
 * from sysfs alone.
 */
import { parseMountInfo } from "../host/mountinfo.js";
import { parseExport } from "../host/blkid.js";
import type { CommandRunner } from "../exec/index.js";
import type { HostFiles } from "./files.js";

export interface BlockDevice {
  /** Kernel name, e.g. nvme1n1. */
  name: string;
  path: string;
  majorMinor: string;
  sizeBytes: number;
  model: string;
  vendor: string;
  serial: string;
  wwid: string;
  /** nvme, virtio, sata, scsi, usb, ... ("" when unknown). */
  transport: string;
  rotational: boolean;
  removable: boolean;
  readOnly: boolean;
  /** Names under /dev/disk/by-id. */
  byId: string[];
  /** Every udev link of the disk, relative to /dev (disk/by-id/..., disk/by-path/..., disk/azure/...). */
  links: string[];
  /** Partition names (nvme0n1p1, ...). */
  partitions: string[];
  /** Devices stacked on the disk or its partitions (dm-0, md127). */
  holders: string[];
  /** What blkid finds on the disk and its partitions, in words ("gpt partition table", "xfs filesystem on nvme0n1p1"). */
  signatures: string[];
  /** Mount points of the disk, its partitions or what is stacked on them. */
  mounts: string[];
  /** Swap areas on it. */
  swaps: string[];
  /** "/" or "/boot" (or /boot/efi, /usr) when the system lives on this disk. */
  system: string[];
  /** The LVM2 label blkid found on the whole disk (the VG comes from LVM, lvm-state.ts). */
  lvmLabel: boolean;
}

/** What blkid -p -o export says of a device (KEY=value), or undefined when it finds nothing. */
export type Probe = (devicePath: string) => Promise<ReadonlyMap<string, string> | undefined>;

/** blkid's low-level probe, without its cache: exit 2 means no signature at all. */
export function blkidProbe(runner: CommandRunner): Probe {
  return async (path) => {
    const argv = ["blkid", "-p", "-o", "export", path];
    const result = await runner.run(argv);
    if (result.exitCode === 2) return undefined;
    if (result.exitCode === 8) return new Map([["TYPE", "ambivalent (several conflicting signatures)"]]);
    if (result.exitCode !== 0)
      throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.trim() || "(no message)"}`);
    return parseExport(result.stdout);
  };
}

/** Mount points whose loss would take the system down: the disk under them is never used. */
export const SYSTEM_MOUNTS = ["/", "/boot", "/boot/efi", "/usr"];

interface Node {
  name: string;
  majorMinor: string;
  /** For a partition its disk; for dm/md the devices under it (slaves). */
  parents: string[];
}

const line = (text: string | undefined): string => (text ?? "").trim();

export interface InventoryOptions {
  files: HostFiles;
  probe: Probe;
  /** Defaults: /sys, /run/udev/data, /proc/1/mountinfo (the host's, where PID 1 is the host's init), /proc/swaps. */
  sys?: string;
  udev?: string;
  mountInfo?: string;
  swaps?: string;
}

export async function readInventory(options: InventoryOptions): Promise<BlockDevice[]> {
  const { files, probe } = options;
  const sys = options.sys ?? "/sys";
  const udev = options.udev ?? "/run/udev/data";
  const nodes = new Map<string, Node>();
  const disks: string[] = [];
  const partitionsOf = new Map<string, string[]>();
  for (const name of await files.list(`${sys}/block`)) {
    const base = `${sys}/block/${name}`;
    const slaves = await files.list(`${base}/slaves`);
    nodes.set(name, { name, majorMinor: line(await files.read(`${base}/dev`)), parents: slaves });
    const entries = await files.list(base);
    const partitions: string[] = [];
    for (const entry of entries) {
      if (!entry.startsWith(name) || (await files.read(`${base}/${entry}/partition`)) === undefined) continue;
      partitions.push(entry);
      nodes.set(entry, { name: entry, majorMinor: line(await files.read(`${base}/${entry}/dev`)), parents: [name] });
    }
    partitionsOf.set(name, partitions);
    if (entries.includes("device") && !/^(loop|ram|zram|dm-|md|sr|fd)/.test(name)) disks.push(name);
  }
  // Every device → the disks it lives on (through partitions, dm and md).
  const disksUnder = (name: string, seen = new Set<string>()): string[] => {
    if (seen.has(name)) return [];
    seen.add(name);
    if (disks.includes(name)) return [name];
    return (nodes.get(name)?.parents ?? []).flatMap((p) => disksUnder(p, seen));
  };
  const byMajorMinor = new Map([...nodes.values()].map((n) => [n.majorMinor, n.name]));
  const mountsOf = new Map<string, string[]>();
  const systemOf = new Map<string, string[]>();
  const mountText = await files.read(options.mountInfo ?? "/proc/1/mountinfo");
  for (const mount of mountText ? parseMountInfo(mountText) : []) {
    const device =
      byMajorMinor.get(mount.majorMinor) ??
      (mount.source.startsWith("/dev/") ? mount.source.slice(5).replace(/^mapper\//, "") : undefined);
    if (device === undefined) continue;
    // A /dev/mapper source whose device number was not matched is not followed further.
    const name = nodes.has(device) ? device : undefined;
    for (const disk of name ? disksUnder(name) : []) {
      push(mountsOf, disk, mount.mountPoint);
      if (SYSTEM_MOUNTS.includes(mount.mountPoint)) push(systemOf, disk, mount.mountPoint);
    }
  }
  const swapsOf = new Map<string, string[]>();
  for (const row of line(await files.read(options.swaps ?? "/proc/swaps"))
    .split("\n")
    .slice(1)
    .filter(Boolean)) {
    const source = row.split(/\s+/)[0] ?? "";
    const name = source.startsWith("/dev/") ? source.slice(5) : "";
    for (const disk of nodes.has(name) ? disksUnder(name) : []) push(swapsOf, disk, source);
  }

  const devices: BlockDevice[] = [];
  for (const name of disks) {
    const base = `${sys}/block/${name}`;
    const node = nodes.get(name) as Node;
    const udevData = parseUdevData(await files.read(`${udev}/b${node.majorMinor}`));
    const partitions = partitionsOf.get(name) ?? [];
    const holders = [
      ...(await files.list(`${base}/holders`)),
      ...(await Promise.all(partitions.map((p) => files.list(`${base}/${p}/holders`)))).flat(),
    ];
    const signatures: string[] = [];
    let lvmLabel = false;
    for (const part of [name, ...partitions]) {
      const found = await probe(`/dev/${part}`);
      if (found === undefined) continue;
      const words = describeSignature(found);
      if (words) signatures.push(part === name ? words : `${words} on ${part}`);
      if (part === name && found.get("TYPE") === "LVM2_member") lvmLabel = true;
    }
    const sysModel = line(await files.read(`${base}/device/model`));
    const links = udevData.links;
    devices.push({
      name,
      path: `/dev/${name}`,
      majorMinor: node.majorMinor,
      sizeBytes: Number(line(await files.read(`${base}/size`)) || "0") * 512,
      model: sysModel || (udevData.env.get("ID_MODEL") ?? "").replace(/_/g, " "),
      vendor: line(await files.read(`${base}/device/vendor`)) || (udevData.env.get("ID_VENDOR") ?? ""),
      serial:
        line(await files.read(`${base}/device/serial`)) ||
        line(await files.read(`${base}/serial`)) ||
        (udevData.env.get("ID_SERIAL_SHORT") ?? ""),
      wwid: line(await files.read(`${base}/wwid`)) || line(await files.read(`${base}/device/wwid`)),
      transport: await transportOf(name, base, files, udevData.env),
      rotational: line(await files.read(`${base}/queue/rotational`)) === "1",
      removable: line(await files.read(`${base}/removable`)) === "1",
      readOnly: line(await files.read(`${base}/ro`)) === "1",
      byId: links.filter((l) => l.startsWith("disk/by-id/")).map((l) => l.slice("disk/by-id/".length)),
      links,
      partitions,
      holders,
      signatures,
      mounts: mountsOf.get(name) ?? [],
      swaps: swapsOf.get(name) ?? [],
      system: systemOf.get(name) ?? [],
      lvmLabel,
    });
  }
  return devices;
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key) ?? [];
  if (!list.includes(value)) list.push(value);
  map.set(key, list);
}

/** udev's database entry of a device: `S:` lines are links under /dev, `E:` lines properties. */
export function parseUdevData(text: string | undefined): { links: string[]; env: Map<string, string> } {
  const links: string[] = [];
  const env = new Map<string, string>();
  for (const raw of (text ?? "").split("\n")) {
    if (raw.startsWith("S:")) links.push(raw.slice(2));
    else if (raw.startsWith("E:")) {
      const eq = raw.indexOf("=");
      if (eq > 2) env.set(raw.slice(2, eq), raw.slice(eq + 1));
    }
  }
  return { links: links.sort(), env };
}

function describeSignature(found: ReadonlyMap<string, string>): string | undefined {
  const type = found.get("TYPE");
  const usage = found.get("USAGE");
  const table = found.get("PTTYPE");
  const words: string[] = [];
  if (table) words.push(`${table} partition table`);
  if (type) words.push(usage === "filesystem" ? `${type} filesystem` : usage ? `${type} (${usage})` : type);
  return words.length > 0 ? words.join(", ") : undefined;
}

async function transportOf(
  name: string,
  base: string,
  files: HostFiles,
  env: ReadonlyMap<string, string>,
): Promise<string> {
  if (name.startsWith("nvme")) return "nvme";
  if (name.startsWith("vd")) return "virtio";
  const bus = env.get("ID_BUS");
  const path = env.get("ID_PATH") ?? "";
  if (bus === "usb" || path.includes("-usb-")) return "usb";
  if (bus === "ata" || path.includes("-ata-")) return "sata";
  if (bus === "scsi" || name.startsWith("sd")) return "scsi";
  if (name.startsWith("xvd")) return "xen";
  if (name.startsWith("mmcblk")) return "mmc";
  return (await files.read(`${base}/device/transport`))?.trim() ?? "";
}
