/**
 * The schema of the node configuration (config.json and the flags of `loam node`), in zod:
 * every field with what is allowed, the device classes with their type-dependent rules.
 * docs/schema/config.schema.json is generated from it (scripts/schemas.mjs) and a test keeps
 * it current. Messages carry the value and what is allowed; the path is added by the caller.
 */
import { z } from "zod";
import { isValidLvName, isValidVgName } from "../lvm/names.js";
import { DEFAULT_THRESHOLD_PERCENT, MAX_MIRRORS, MAX_STRIPES } from "../volumes/device-classes.js";
import { DEVICE_CLASS_NAME, DNS_SUBDOMAIN, LABEL_KEY } from "../volumes/names.js";
import { isValidStripeSize, parseStripeSize, STRIPE_SIZE_RULES } from "../volumes/size.js";
import { LOG_LEVELS } from "../log.js";
import { parseListenAddress } from "../metrics/http.js";
import { GC_MODES } from "../cluster/gc-modes.js";

/** An etcd client URL: http(s)://host:port. */
export const ETCD_ENDPOINT = /^https?:\/\/[^\s/@]+(:[0-9]{1,5})?\/?$/;
export const UNIX_ENDPOINT = /^unix:\/\/(\/.+)$/;
const NODE_ID = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;
const MAX_OVERPROVISION_RATIO = 100;

const shown = (value: unknown): string => (typeof value === "string" ? `"${value}"` : String(JSON.stringify(value)));

/** A string (matching `pattern`, when given) that `ok` accepts; anything else gets `"<value>" <rule>`. */
function text(ok: (value: string) => boolean, rule: string, pattern?: RegExp) {
  const error = (i: { input: unknown }): string =>
    typeof i.input === "string" ? `"${i.input}" ${rule}` : "must be a string";
  const string = z.string({ error });
  return (pattern ? string.regex(pattern, { error }) : string).refine(ok, { error }).describe(rule);
}

/** A device class number from min to max; anything else gets `<value> is out of range; allowed: ...`. */
function numberIn(min: number, max: number, integer: boolean) {
  const error = (i: { input: unknown }): string =>
    `${shown(i.input)} is out of range; allowed: ${integer ? "a whole number " : ""}from ${min} to ${max}`;
  const base = integer ? z.int({ error }) : z.number({ error });
  return base.min(min, { error }).max(max, { error });
}

const CLASS_TYPES = ["thick", "thin"] as const;

/** One entry of deviceClasses, as written; the type-dependent rules are checked after the fields. */
export const DEVICE_CLASS_SCHEMA = z
  .strictObject({
    name: text(
      (v) => DEVICE_CLASS_NAME.test(v),
      "must be 1-63 lowercase letters, digits or '-' (it is the StorageClass's loam.csi.dev/deviceClass)",
      DEVICE_CLASS_NAME,
    ),
    volumeGroup: text(isValidVgName, "must be an LVM volume group name (letters, digits, '+', '_', '.', '-')"),
    type: z
      .enum(CLASS_TYPES, { error: (i) => `${shown(i.input)} is not a class type; allowed: thick, thin` })
      .optional(),
    thinPool: z
      .string()
      .optional()
      .describe("thin classes: the thin pool LV in volumeGroup (required for thin classes)"),
    overprovisionRatio: numberIn(1, MAX_OVERPROVISION_RATIO, false)
      .optional()
      .describe("thin classes: virtual sizes may reach pool size × this"),
    spareBytes: numberIn(0, Number.MAX_SAFE_INTEGER, true)
      .optional()
      .describe("bytes kept free (VG extents, or pool data)"),
    stripes: numberIn(1, MAX_STRIPES, true).optional().describe("thick classes: default stripes"),
    stripeSize: z
      .union([z.number(), z.string()], {
        error: (i) => `${shown(i.input)} must be ${STRIPE_SIZE_RULES}, or a number of bytes`,
      })
      .refine((v) => isValidStripeSize(typeof v === "number" ? v : (parseStripeSize(v) ?? NaN)), {
        error: (i) => `${shown(i.input)} must be ${STRIPE_SIZE_RULES}, or a number of bytes`,
      })
      .optional()
      .describe("thick classes: default stripe size"),
    mirrors: numberIn(0, MAX_MIRRORS, true).optional().describe("thick classes: default mirrors (raid1)"),
    dataThresholdPercent: numberIn(1, 100, false)
      .optional()
      .describe(`thin classes: refuse new volumes at this pool data use (default ${DEFAULT_THRESHOLD_PERCENT})`),
    metadataThresholdPercent: numberIn(1, 100, false)
      .optional()
      .describe(`thin classes: refuse new volumes at this pool metadata use (default ${DEFAULT_THRESHOLD_PERCENT})`),
    default: z.boolean({ error: "must be true or false" }).optional(),
  })
  .superRefine((c, context) => {
    const type = c.type ?? "thick";
    const issue = (key: keyof typeof c, message: string): void =>
      void context.addIssue({ code: "custom", path: [key], message });
    const onlyFor = (key: keyof typeof c, harmless: unknown, forType: string): void => {
      if (c[key] !== undefined && c[key] !== harmless)
        issue(key, `applies to ${forType} classes only; class "${c.name}" is ${type}`);
    };
    if (type === "thin") {
      if (c.thinPool === undefined || !isValidLvName(c.thinPool)) {
        issue(
          "thinPool",
          `${shown(c.thinPool)} must name the thin pool LV in ${c.volumeGroup} (required for thin classes)`,
        );
      }
      onlyFor("stripes", 1, "thick");
      onlyFor("mirrors", 0, "thick");
      onlyFor("stripeSize", undefined, "thick");
    } else {
      onlyFor("thinPool", undefined, "thin");
      onlyFor("overprovisionRatio", 1, "thin");
      onlyFor("dataThresholdPercent", undefined, "thin");
      onlyFor("metadataThresholdPercent", undefined, "thin");
      const stripes = c.stripes ?? 1;
      const mirrors = c.mirrors ?? 0;
      if (stripes > 1 && mirrors > 0)
        issue("mirrors", `${mirrors} with stripes ${stripes}: a class is striped or raid1, not both`);
    }
  });

export type DeviceClassInput = z.input<typeof DEVICE_CLASS_SCHEMA>;

const rangeOf = (min: number, max: number) => {
  const error = (i: { input: unknown; code?: string }): string =>
    typeof i.input !== "number" || !Number.isSafeInteger(i.input)
      ? "must be an integer"
      : `${i.input} is out of range; allowed: ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};

/**
 * Every setting of config.json (and of `loam node`'s flags), in the order they are checked.
 * All are optional in the file: defaults and flags fill in the rest.
 */
export const NODE_CONFIG_SCHEMA = z.strictObject({
  endpoint: text((v) => !v.includes("\0"), "must be unix:///absolute/path/to/csi.sock", UNIX_ENDPOINT).optional(),
  nodeId: text(
    (v) => NODE_ID.test(v),
    "must be 1-128 letters, digits, '.', '_' or '-' (usually the Kubernetes node name)",
    NODE_ID,
  ).optional(),
  volumeGroup: z
    .string({ error: "must be a string" })
    .optional()
    .describe("shorthand for one default thick class on this LVM volume group; not together with deviceClasses"),
  deviceClasses: z
    .array(DEVICE_CLASS_SCHEMA, { error: "must be a list of device class objects" })
    .optional()
    .describe("the device classes this node offers; exactly one has default: true when there are several"),
  driverName: text(
    (v) => v.length <= 63,
    "must be a domain-style name of at most 63 characters, e.g. loam.csi.dev",
    DNS_SUBDOMAIN,
  ).optional(),
  topologyKey: text(
    (v) => v.length <= 253,
    "must be a Kubernetes label key, e.g. topology.loam.csi.dev/node",
    LABEL_KEY,
  ).optional(),
  kubeletDir: text((v) => v.startsWith("/") && !v.includes("\0"), "must be an absolute path").optional(),
  socketMode: text(
    (v) => parseSocketMode(v) !== undefined,
    "must be 0600, 0640 or 0660 (read-write for the owner, read or read-write for the group, nothing for others: whoever can write the socket can mount and delete volumes)",
    /^0?6[046]0$/,
  ).optional(),
  maxVolumesPerNode: rangeOf(0, 1_000_000).optional(),
  lvmTimeoutSeconds: rangeOf(1, 3600).optional(),
  shutdownGraceSeconds: rangeOf(0, 3600).optional(),
  logLevel: z
    .enum(LOG_LEVELS as [string, ...string[]], {
      error: (i) => `${shown(i.input)} is not a log level; allowed: ${LOG_LEVELS.join(", ")}`,
    })
    .optional(),
  metricsAddress: text(
    (v) => v === "" || parseListenAddress(v) !== undefined,
    'must be host:port, [ipv6]:port or :port (port 0-65535), or "" to turn the listener off',
  ).optional(),
  lvmCommandPrefix: z
    .array(
      z
        .string({ error: "must be a list of strings" })
        .min(1, "must be a non-empty word")
        .refine((w) => !w.includes("\0"), "must be a non-empty word"),
      {
        error: "must be a list of strings",
      },
    )
    .optional()
    .describe('words put before every LVM command, e.g. ["nsenter", "--target=1", "--mount", "--"]'),
  clusterEtcdEndpoints: z
    .array(
      text((v) => ETCD_ENDPOINT.test(v), "must be an etcd client URL, http(s)://host:port", ETCD_ENDPOINT),
      { error: "must be a list of etcd client URLs" },
    )
    .max(16)
    .optional()
    .describe(
      "cluster mode: etcd's client URLs; the node then serves Identity and Node and works as an agent of loam controller",
    ),
  etcdCa: text((v) => v === "" || (v.startsWith("/") && !v.includes("\0")), "must be an absolute path").optional(),
  etcdCert: text((v) => v === "" || (v.startsWith("/") && !v.includes("\0")), "must be an absolute path").optional(),
  etcdKey: text((v) => v === "" || (v.startsWith("/") && !v.includes("\0")), "must be an absolute path").optional(),
  gc: z
    .enum(GC_MODES, {
      error: (i) => `${shown(i.input)} is not a garbage collection mode; allowed: ${GC_MODES.join(", ")}`,
    })
    .optional()
    .describe(
      "cluster mode: report (log, metrics, loam status) orphan LVs and dangling records, or also delete orphan LVs (never an LV without loam's tags)",
    ),
  gcGraceSeconds: rangeOf(0, 30 * 86_400)
    .optional()
    .describe("cluster mode: how long a garbage collection finding must persist before it is reported or acted on"),
  disksConfig: text((v) => v === "" || (v.startsWith("/") && !v.includes("\0")), "must be an absolute path")
    .optional()
    .describe(
      "disks.json (docs/disks.md): find this node's local disks and make its volume group at start, before serving",
    ),
  clusterResyncSeconds: rangeOf(1, 3600)
    .optional()
    .describe(
      "cluster mode: how often the agent lists its registry prefix again, reports its room and sweeps for garbage (a missed watch event waits at most this long)",
    ),
});

export function parseSocketMode(text: string): number | undefined {
  // Whoever can write the socket can mount and delete volumes: never others, never execute bits.
  return /^0?6[046]0$/.test(text) ? parseInt(text, 8) : undefined;
}

/** `deviceClasses[0].name` from a zod path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`))
    .join("");
}

/** The JSON Schema of config.json, as written to docs/schema/config.schema.json. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(NODE_CONFIG_SCHEMA, { io: "input", unrepresentable: "any" }),
    $id: "https://loam.csi.dev/schema/config.schema.json",
    title: "loam node configuration (config.json)",
  };
}
