/**
 * disks.json, the configuration of `loam disks` and `loam node --disks-config`: the volume
 * group to make, the rules that select its disks, and what to make on it. Validated with zod
 * (docs/schema/disks.schema.json is generated from this schema by `npm run schemas`); the
 * first problem is reported with its field path, the value and what is allowed.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { isValidLvName, isValidVgName } from "../lvm/names.js";
import { SIZE_RULES, tryParseQuantity } from "../volumes/quantity.js";
import { PRESET_NAMES, type PresetName, type Rule } from "./rules.js";

/** The answer a config must give before any disk is wiped (the second of the three opt-ins). */
export const WIPE_CONFIRMATION = "destroy-data-on-matching-disks";
export const FILESYSTEMS = ["xfs", "ext4"] as const;

export class DisksConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "DisksConfigError";
  }
}

const shown = (value: unknown): string => (typeof value === "string" ? `"${value}"` : String(JSON.stringify(value)));
const size = z
  .string({ error: (i) => `${shown(i.input)} must be a size string; allowed: ${SIZE_RULES}` })
  .refine((v) => tryParseQuantity(v) !== undefined, {
    error: (i) => `${shown(i.input)} is not a size; allowed: ${SIZE_RULES}`,
  });
const glob = z.string({ error: "must be a string (a glob: * ? [...])" }).min(1, "must not be empty");
const globs = z.array(glob, { error: "must be a list of globs" }).min(1, "must list at least one glob");
const absolute = z
  .string({ error: "must be an absolute path" })
  .refine((v) => v.startsWith("/") && !v.includes("\0") && !v.split("/").includes(".."), {
    error: (i) => `${shown(i.input)} must be an absolute path without ..`,
  });
const percent = z
  .int({ error: (i) => `${shown(i.input)} must be a whole percentage from 1 to 100` })
  .min(1, { error: (i) => `${shown(i.input)} must be a whole percentage from 1 to 100` })
  .max(100, { error: (i) => `${shown(i.input)} must be a whole percentage from 1 to 100` });
const lvName = z.string({ error: "must be an LV name" }).refine(isValidLvName, {
  error: (i) => `${shown(i.input)} must be an LVM LV name (letters, digits, '+', '_', '.', '-')`,
});

export const RULE_SCHEMA = z
  .strictObject({
    preset: z
      .enum(PRESET_NAMES as [PresetName, ...PresetName[]], {
        error: (i) => `${shown(i.input)} is not a preset; allowed: ${PRESET_NAMES.join(", ")}`,
      })
      .optional()
      .describe("a cloud's local disks by their documented names; other criteria narrow it"),
    byId: globs.optional().describe("globs over the disk's /dev/disk/by-id names"),
    links: globs.optional().describe("globs over the disk's udev links relative to /dev, e.g. disk/azure/resource"),
    model: glob.optional().describe("glob over the model"),
    vendor: glob.optional().describe("glob over the vendor"),
    serial: glob.optional().describe("glob over the serial number"),
    transport: z
      .array(
        z
          .string({ error: "must be a string" })
          .regex(/^[a-z0-9]+$/, "must be a transport such as nvme, virtio, sata, scsi, usb"),
        {
          error: "must be a list of transports",
        },
      )
      .min(1, "must list at least one transport")
      .optional(),
    minSize: size.optional().describe("the smallest disk to select"),
    maxSize: size.optional().describe("the largest disk to select"),
    wipe: z
      .boolean({ error: "must be true or false" })
      .optional()
      .describe(
        `wipe a selected disk that holds a partition table, signature or another VG's label; also needs wipeConfirm "${WIPE_CONFIRMATION}" and no record of an earlier wipe of the disk on this node`,
      ),
  })
  .refine((r) => Object.keys(r).some((k) => k !== "wipe"), {
    error: "must have at least one criterion (preset, byId, links, model, vendor, serial, transport, minSize, maxSize)",
  });

export const DISKS_CONFIG_SCHEMA = z.strictObject({
  volumeGroup: z
    .string({ error: "must be a string" })
    .refine(isValidVgName, {
      error: (i) => `${shown(i.input)} must be an LVM volume group name (letters, digits, '+', '_', '.', '-')`,
    })
    .describe("the volume group loam makes and keeps (loam node's volumeGroup or a device class's)"),
  rules: z
    .array(RULE_SCHEMA, { error: "must be a list of rule objects" })
    .min(1, "must hold at least one rule")
    .describe("which disks to use: the first rule that matches a disk selects it"),
  metadataSize: size.optional().describe("pvcreate --metadatasize for new PVs (default 64Mi, docs/install.md)"),
  wipeConfirm: z
    .literal(WIPE_CONFIRMATION, {
      error: (i) => `${shown(i.input)} is not the confirmation; to allow wiping write "${WIPE_CONFIRMATION}"`,
    })
    .optional()
    .describe("the second opt-in for wiping disks a rule with wipe: true selects"),
  thinPool: z
    .strictObject({
      name: lvName,
      sizePercent: percent.describe("of the volume group"),
    })
    .optional()
    .describe("a thin pool to make in the VG (for a thin device class)"),
  aggregate: z
    .strictObject({
      name: lvName,
      sizePercent: percent.describe("of the volume group"),
      filesystem: z.enum(FILESYSTEMS, { error: (i) => `${shown(i.input)} is not a filesystem; allowed: xfs, ext4` }),
      mountPoint: absolute,
    })
    .optional()
    .describe("one LV striped across all the VG's disks, formatted and mounted with a systemd mount unit (nofail)"),
  stateDir: absolute.optional().describe("where the node keeps its record of wiped disks (default /var/lib/loam)"),
  lvmBackupDir: absolute
    .optional()
    .describe("LVM's metadata backups, read to list lost volumes (default /etc/lvm/backup)"),
  systemdDir: absolute.optional().describe("where the aggregate's mount unit is written (default /etc/systemd/system)"),
  hostRoot: absolute
    .optional()
    .describe(
      'where the host\'s files are seen (default /; "/proc/1/root" in a container with hostPID): udev data, LVM backups, the wipe record, the mount unit and the mount point',
    ),
});

export interface DisksConfig {
  volumeGroup: string;
  rules: Rule[];
  metadataSizeBytes: number;
  wipeConfirmed: boolean;
  thinPool?: { name: string; sizePercent: number };
  aggregate?: { name: string; sizePercent: number; filesystem: (typeof FILESYSTEMS)[number]; mountPoint: string };
  stateDir: string;
  lvmBackupDir: string;
  systemdDir: string;
  hostRoot: string;
}

const field = (path: readonly PropertyKey[]): string =>
  path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("") || "(top)";
const bytesOf = (text: string | undefined): number | undefined =>
  text === undefined ? undefined : Number(tryParseQuantity(text));

/** Validates a parsed disks.json; throws DisksConfigError for the first problem. */
export function parseDisksConfig(input: unknown): DisksConfig {
  const result = DISKS_CONFIG_SCHEMA.safeParse(input);
  const issue = result.error?.issues[0];
  if (issue) {
    if (issue.code === "unrecognized_keys") {
      const known = issue.path.length === 0 ? DISKS_CONFIG_SCHEMA.shape : RULE_SCHEMA.shape;
      throw new DisksConfigError(
        field([...issue.path, issue.keys[0] ?? ""]),
        `unknown setting; known settings: ${Object.keys(known).join(", ")}`,
      );
    }
    throw new DisksConfigError(field(issue.path), issue.message);
  }
  const c = result.data as z.output<typeof DISKS_CONFIG_SCHEMA>;
  const rules = c.rules.map((r, i): Rule => {
    const minSizeBytes = bytesOf(r.minSize);
    const maxSizeBytes = bytesOf(r.maxSize);
    if (minSizeBytes !== undefined && maxSizeBytes !== undefined && minSizeBytes > maxSizeBytes)
      throw new DisksConfigError(`rules[${i}].minSize`, `"${r.minSize}" is above maxSize "${r.maxSize}"`);
    const rule: Rule = { name: r.preset ?? `rules[${i}]`, wipe: r.wipe ?? false };
    if (r.preset) rule.preset = r.preset;
    if (r.byId) rule.byId = r.byId;
    if (r.links) rule.links = r.links;
    if (r.model !== undefined) rule.model = r.model;
    if (r.vendor !== undefined) rule.vendor = r.vendor;
    if (r.serial !== undefined) rule.serial = r.serial;
    if (r.transport) rule.transport = r.transport;
    if (minSizeBytes !== undefined) rule.minSizeBytes = minSizeBytes;
    if (maxSizeBytes !== undefined) rule.maxSizeBytes = maxSizeBytes;
    return rule;
  });
  if (c.thinPool && c.aggregate) {
    if (c.thinPool.name === c.aggregate.name)
      throw new DisksConfigError("aggregate.name", `"${c.aggregate.name}" is the thin pool's name too`);
    if (c.thinPool.sizePercent + c.aggregate.sizePercent > 100)
      throw new DisksConfigError(
        "aggregate.sizePercent",
        `${c.aggregate.sizePercent} with the thin pool's ${c.thinPool.sizePercent} is over 100% of the volume group`,
      );
  }
  const config: DisksConfig = {
    volumeGroup: c.volumeGroup,
    rules,
    metadataSizeBytes: bytesOf(c.metadataSize) ?? 64 * 2 ** 20,
    wipeConfirmed: c.wipeConfirm === WIPE_CONFIRMATION,
    stateDir: c.stateDir ?? "/var/lib/loam",
    lvmBackupDir: c.lvmBackupDir ?? "/etc/lvm/backup",
    systemdDir: c.systemdDir ?? "/etc/systemd/system",
    hostRoot: c.hostRoot ?? "/",
  };
  if (c.thinPool) config.thinPool = c.thinPool;
  if (c.aggregate) config.aggregate = c.aggregate;
  return config;
}

export async function readDisksConfig(path: string): Promise<DisksConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new DisksConfigError("config", `cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DisksConfigError("config", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseDisksConfig(parsed);
}

/** The JSON Schema of disks.json, as written to docs/schema/disks.schema.json. */
export function disksJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(DISKS_CONFIG_SCHEMA, { io: "input", unrepresentable: "any" }),
    $id: "https://loam.csi.dev/schema/disks.schema.json",
    title: "loam disks configuration (disks.json)",
  };
}

/** A host path as this process sees it (under hostRoot). */
export const onHost = (config: Pick<DisksConfig, "hostRoot">, path: string): string =>
  config.hostRoot === "/" ? path : `${config.hostRoot.replace(/\/+$/, "")}${path}`;
