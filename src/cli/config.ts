/**
 * The node configuration: defaults, then a JSON config file, then command-line flags.
 * Every value is checked at start, and an error names the field and says what is allowed,
 * so a bad DaemonSet fails at once instead of at the first volume.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { isValidVgName } from "../lvm/names.js";
import { type DeviceClass, DEFAULT_THRESHOLD_PERCENT, singleThickClass } from "../volumes/device-classes.js";
import { parseStripeSize } from "../volumes/size.js";
import type { LogLevel } from "../log.js";
import { DEFAULT_GC_GRACE_SECONDS, type GcMode } from "../cluster/gc-modes.js";
import {
  DEVICE_CLASS_SCHEMA,
  type DeviceClassInput,
  fieldPath,
  NODE_CONFIG_SCHEMA,
  UNIX_ENDPOINT,
} from "./config-schema.js";

export interface NodeConfig {
  /** `unix:///path/to/csi.sock` */
  endpoint: string;
  nodeId: string;
  /**
   * Shorthand for one default thick class named "default" on this VG. Once resolved, it is
   * the default class's volume group whichever way the classes were given.
   */
  volumeGroup: string;
  /** The device classes this node offers (resolved: never empty, exactly one default). */
  deviceClasses: DeviceClass[];
  driverName: string;
  topologyKey: string;
  kubeletDir: string;
  /** Octal text such as "0600". */
  socketMode: string;
  maxVolumesPerNode: number;
  logLevel: LogLevel;
  /** Prepended to every LVM command, e.g. ["nsenter", "--target=1", "--mount", "--"]. */
  lvmCommandPrefix: string[];
  lvmTimeoutSeconds: number;
  shutdownGraceSeconds: number;
  /** "host:port" of the /metrics, /healthz and /readyz listener; "" turns it off. */
  metricsAddress: string;
  /** Cluster mode: etcd's client URLs; the node then runs as an agent of `loam controller`. Empty: not in a cluster. */
  clusterEtcdEndpoints: string[];
  /** Cluster mode TLS: etcd's CA, a client certificate and its key ("" for none). */
  etcdCa: string;
  etcdCert: string;
  etcdKey: string;
  /** Cluster mode's garbage collection (src/cluster/gc.ts): report only, or also delete orphan LVs. */
  gc: GcMode;
  gcGraceSeconds: number;
  /** disks.json (src/disks): plan and apply it at start, before serving ("" for none). */
  disksConfig: string;
  /** Cluster mode: the agent's resync period (seconds), which also paces garbage collection sweeps. */
  clusterResyncSeconds: number;
}

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "ConfigError";
  }
}

export const DEFAULTS: NodeConfig = {
  endpoint: "unix:///run/loam/csi.sock",
  nodeId: "",
  volumeGroup: "",
  deviceClasses: [],
  driverName: "loam.csi.dev",
  topologyKey: "topology.loam.csi.dev/node",
  kubeletDir: "/var/lib/kubelet",
  socketMode: "0600",
  maxVolumesPerNode: 0,
  logLevel: "info",
  lvmCommandPrefix: [],
  lvmTimeoutSeconds: 120,
  shutdownGraceSeconds: 30,
  metricsAddress: "127.0.0.1:9975",
  clusterEtcdEndpoints: [],
  etcdCa: "",
  etcdCert: "",
  etcdKey: "",
  gc: "report",
  gcGraceSeconds: DEFAULT_GC_GRACE_SECONDS,
  disksConfig: "",
  clusterResyncSeconds: 60,
};

export const CONFIG_FIELDS = Object.keys(NODE_CONFIG_SCHEMA.shape) as Array<keyof NodeConfig>;

/** Reads a JSON config file into a partial config, checked against NODE_CONFIG_SCHEMA. */
export async function readConfigFile(path: string): Promise<Partial<NodeConfig>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError("config", `cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("config", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError("config", `${path} must hold a JSON object`);
  }
  checked(parsed, ` in ${path}`);
  return parsed;
}

/** Throws ConfigError for the first thing NODE_CONFIG_SCHEMA refuses, naming its field path. */
function checked(input: unknown, where = ""): void {
  const result = NODE_CONFIG_SCHEMA.safeParse(input);
  const issue = result.error?.issues[0];
  if (!issue) return;
  if (issue.code === "unrecognized_keys") {
    const field = fieldPath([...issue.path, issue.keys[0] ?? ""]);
    if (issue.path.length === 0)
      throw new ConfigError(field, `unknown setting${where}; known settings: ${CONFIG_FIELDS.join(", ")}`);
    throw new ConfigError(
      field,
      `unknown device class setting; known settings: ${Object.keys(DEVICE_CLASS_SCHEMA.shape).join(", ")}`,
    );
  }
  // A device class that is not an object is refused at the entry, not at its (absent) fields.
  throw new ConfigError(
    fieldPath(issue.path),
    `${issue.code === "invalid_type" && issue.expected === "object" ? "must be an object" : issue.message}${where}`,
  );
}

/** Converts a flag's text to the field's type. */
export function flagValue(field: keyof NodeConfig, text: string): NodeConfig[keyof NodeConfig] {
  if (field === "deviceClasses") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(field, `must be a JSON list of device classes: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new ConfigError(field, "must be a JSON list of device classes");
    return parsed as DeviceClass[];
  }
  if (
    field === "maxVolumesPerNode" ||
    field === "lvmTimeoutSeconds" ||
    field === "shutdownGraceSeconds" ||
    field === "gcGraceSeconds" ||
    field === "clusterResyncSeconds"
  ) {
    if (!/^-?[0-9]{1,15}$/.test(text)) throw new ConfigError(field, `must be a whole number (got "${text}")`);
    return Number(text);
  }
  if (field === "lvmCommandPrefix") return text === "" ? [] : text.split(/\s+/);
  if (field === "clusterEtcdEndpoints") return text.split(",").filter((e) => e !== "");
  return text;
}

/** Merges and checks a configuration; throws ConfigError naming the first bad field. */
export function resolveConfig(...layers: Array<Partial<NodeConfig>>): NodeConfig {
  const config: NodeConfig = { ...DEFAULTS, nodeId: hostname() };
  for (const layer of layers) Object.assign(config, layer);

  checked(config);
  config.deviceClasses = resolveDeviceClasses(config.volumeGroup, config.deviceClasses);
  const defaultClass = config.deviceClasses.find((c) => c.default) ?? config.deviceClasses[0];
  if (defaultClass) config.volumeGroup = defaultClass.volumeGroup;
  return config;
}

export function socketPathOf(endpoint: string): string {
  const match = UNIX_ENDPOINT.exec(endpoint);
  if (!match?.[1] || match[1].includes("\0")) {
    throw new ConfigError("endpoint", `"${endpoint}" must be unix:///absolute/path/to/csi.sock`);
  }
  return match[1];
}

/**
 * The device classes from `volumeGroup` (one default thick class) or `deviceClasses` (the
 * config file's list), never both: two answers to "where do volumes go" is a mistake.
 */
function resolveDeviceClasses(volumeGroup: string, raw: unknown): DeviceClass[] {
  const listed = Array.isArray(raw) ? (raw as unknown[]) : [];
  if (listed.length === 0) {
    if (volumeGroup === "") {
      throw new ConfigError(
        "volumeGroup",
        "is required (the LVM volume group loam carves volumes from), unless deviceClasses is set",
      );
    }
    if (!isValidVgName(volumeGroup)) {
      throw new ConfigError(
        "volumeGroup",
        `"${volumeGroup}" is not a valid LVM volume group name (letters, digits, '+', '_', '.', '-')`,
      );
    }
    return [singleThickClass(volumeGroup)];
  }
  if (volumeGroup !== "") {
    throw new ConfigError(
      "volumeGroup",
      `"${volumeGroup}" is set together with deviceClasses; set one: volumeGroup is shorthand for a single thick class, deviceClasses lists them all`,
    );
  }
  const classes = (listed as DeviceClassInput[]).map(deviceClassOf);
  const seen = new Set<string>();
  for (const [i, c] of classes.entries()) {
    if (seen.has(c.name))
      throw new ConfigError(
        `deviceClasses[${i}].name`,
        `"${c.name}" is used by an earlier class; names must be unique`,
      );
    seen.add(c.name);
  }
  const defaults = classes.filter((c) => c.default);
  if (classes.length === 1 && defaults.length === 0) classes[0] = { ...classes[0], default: true };
  else if (defaults.length !== 1) {
    throw new ConfigError(
      "deviceClasses",
      `exactly one class must have "default": true (found ${defaults.length}: ${defaults.map((c) => c.name).join(", ") || "none"})`,
    );
  }
  return classes;
}

/**
 * A device class as written, with its defaults filled in. DEVICE_CLASS_SCHEMA has checked it,
 * so a setting of the other type of class is absent or harmless (stripes 1, mirrors 0, ratio 1).
 */
function deviceClassOf(raw: DeviceClassInput): DeviceClass {
  const result: DeviceClass = {
    name: raw.name,
    volumeGroup: raw.volumeGroup,
    type: raw.type ?? "thick",
    overprovisionRatio: raw.overprovisionRatio ?? 1,
    spareBytes: raw.spareBytes ?? 0,
    stripes: raw.stripes ?? 1,
    mirrors: raw.mirrors ?? 0,
    dataThresholdPercent: raw.dataThresholdPercent ?? DEFAULT_THRESHOLD_PERCENT,
    metadataThresholdPercent: raw.metadataThresholdPercent ?? DEFAULT_THRESHOLD_PERCENT,
    default: raw.default ?? false,
  };
  if (raw.thinPool !== undefined) result.thinPool = raw.thinPool;
  if (raw.stripeSize !== undefined) {
    result.stripeSizeBytes = typeof raw.stripeSize === "number" ? raw.stripeSize : parseStripeSize(raw.stripeSize);
  }
  return result;
}

/** The volume groups a node config names: its volumeGroup, or those of its device classes. */
export function volumeGroupsOf(file: Partial<Record<string, unknown>>): string[] {
  const found = new Set<string>();
  if (typeof file.volumeGroup === "string" && file.volumeGroup !== "") found.add(file.volumeGroup);
  if (Array.isArray(file.deviceClasses)) {
    for (const entry of file.deviceClasses as unknown[]) {
      const vg =
        typeof entry === "object" && entry !== null ? (entry as { volumeGroup?: unknown }).volumeGroup : undefined;
      if (typeof vg === "string" && vg !== "") found.add(vg);
    }
  }
  return [...found];
}

/**
 * What the host commands (`loam doctor`, `loam status`) look at: volume groups and the LVM
 * command prefix from their flags, else from the node's config file, each name checked.
 */
export async function hostTargets(flags: {
  config?: string | undefined;
  "volume-group"?: string[] | undefined;
  "lvm-command-prefix"?: string | undefined;
}): Promise<{ file: Partial<NodeConfig>; volumeGroups: string[]; prefix: string[] }> {
  const file = flags.config ? await readConfigFile(flags.config) : {};
  const volumeGroups = flags["volume-group"] ?? volumeGroupsOf(file);
  for (const vg of volumeGroups) {
    if (!isValidVgName(vg)) throw new ConfigError("volumeGroup", `"${vg}" is not a valid LVM volume group name`);
  }
  const prefixText = flags["lvm-command-prefix"];
  const prefix = prefixText !== undefined ? prefixText.split(/\s+/).filter(Boolean) : (file.lvmCommandPrefix ?? []);
  return { file, volumeGroups, prefix };
}
