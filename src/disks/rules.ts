/**
 * Which disks a rule of disks.json selects: cloud presets, by-id and udev link globs,
 * model/vendor/serial patterns, size bounds and transports. A rule's criteria all have to
 * match; the first rule that matches a disk is the one that selects it. For a disk no rule
 * matches, each rule's first failed criterion is the answer to "why not".
 */
import type { BlockDevice } from "./inventory.js";

export interface Criteria {
  /** Globs over the names in /dev/disk/by-id (any one of them). */
  byId?: string[];
  /** Globs over any udev link of the disk, relative to /dev (disk/azure/resource, ...). */
  links?: string[];
  /** Glob over the model (as sysfs says it, trimmed). */
  model?: string;
  vendor?: string;
  serial?: string;
  /** Any of these transports (nvme, virtio, sata, scsi, usb, ...). */
  transport?: string[];
  minSizeBytes?: number;
  maxSizeBytes?: number;
}

export interface Rule extends Criteria {
  /** The rule's name in plans and logs (its preset's name, or rules[N]). */
  name: string;
  preset?: PresetName;
  /** Wipe a disk this rule selects that holds something (with the other two opt-ins). */
  wipe: boolean;
}

/**
 * The clouds' local disks, by the names their documentation gives:
 * - AWS instance store NVMe: model "Amazon EC2 NVMe Instance Storage" (EBS volumes are
 *   "Amazon Elastic Block Store");
 * - GCP local SSD: udev names google-local-nvme-ssd-N (NVMe) and google-local-ssd-blockN (SCSI),
 *   from Google's guest udev rules;
 * - Azure: the NVMe direct (local) disks, model "Microsoft NVMe Direct Disk" (v1) and
 *   "Microsoft NVMe Direct Disk v2", and the SCSI temporary resource disk, /dev/disk/azure/resource
 *   from Azure's udev rules (vendor "Msft", model "Virtual Disk").
 */
export const PRESETS = {
  "aws-instance-store": { model: "Amazon EC2 NVMe Instance Storage", transport: ["nvme"] },
  "gcp-local-ssd": { byId: ["google-local-nvme-ssd-*", "google-local-ssd-block*"] },
  "azure-nvme-direct": { model: "Microsoft NVMe Direct Disk*", transport: ["nvme"] },
  "azure-resource-disk": { links: ["disk/azure/resource"], transport: ["scsi"] },
} as const satisfies Record<string, Criteria>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** A shell-style glob (`*`, `?`, `[...]`) as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) source += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        source += `[${body.startsWith("!") ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

const matches = (glob: string, value: string): boolean => globToRegExp(glob).test(value);
const bytes = (n: number): string => `${n} bytes (${(n / 2 ** 30).toFixed(1)} GiB)`;

/** The first criterion of `criteria` the disk fails, in words, or undefined when all match. */
export function mismatch(criteria: Criteria, disk: BlockDevice): string | undefined {
  const { byId, links, model, vendor, serial, transport, minSizeBytes, maxSizeBytes } = criteria;
  if (byId && !disk.byId.some((name) => byId.some((glob) => matches(glob, name))))
    return disk.byId.length === 0
      ? `has no /dev/disk/by-id name (wanted ${byId.join(" or ")})`
      : `by-id names ${disk.byId.join(", ")} match none of ${byId.join(", ")}`;
  if (links && !disk.links.some((link) => links.some((glob) => matches(glob, link))))
    return `has no udev link matching ${links.join(" or ")}`;
  if (model !== undefined && !matches(model, disk.model)) return `model "${disk.model}" is not "${model}"`;
  if (vendor !== undefined && !matches(vendor, disk.vendor)) return `vendor "${disk.vendor}" is not "${vendor}"`;
  if (serial !== undefined && !matches(serial, disk.serial)) return `serial "${disk.serial}" is not "${serial}"`;
  if (transport && !transport.includes(disk.transport))
    return `transport "${disk.transport || "unknown"}" is not ${transport.join(" or ")}`;
  if (minSizeBytes !== undefined && disk.sizeBytes < minSizeBytes)
    return `size ${bytes(disk.sizeBytes)} is below the minimum ${bytes(minSizeBytes)}`;
  if (maxSizeBytes !== undefined && disk.sizeBytes > maxSizeBytes)
    return `size ${bytes(disk.sizeBytes)} is above the maximum ${bytes(maxSizeBytes)}`;
  return undefined;
}

/** A rule's criteria with its preset's put first (a rule may narrow a preset, e.g. by size). */
export function criteriaOf(rule: Rule): Criteria {
  return rule.preset ? { ...PRESETS[rule.preset], ...withoutUndefined(rule) } : rule;
}

function withoutUndefined(rule: Rule): Criteria {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rule))
    if (value !== undefined && key !== "name" && key !== "preset" && key !== "wipe") out[key] = value;
  return out;
}

export type RuleMatch = { rule: Rule; whyNot?: undefined } | { rule?: undefined; whyNot: string[] };

/** The first rule that matches the disk, or each rule's reason for not matching. */
export function matchRules(rules: readonly Rule[], disk: BlockDevice): RuleMatch {
  const whyNot: string[] = [];
  for (const rule of rules) {
    const failed = mismatch(criteriaOf(rule), disk);
    if (failed === undefined) return { rule };
    whyNot.push(`${rule.name}: ${failed}`);
  }
  return { whyNot };
}
