/**
 * The node configuration: defaults, then a JSON config file, then command-line flags.
 * Every value is checked at start, and an error names the field and says what is allowed,
 * so a bad DaemonSet fails at once instead of at the first volume.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { isAbsolute } from "node:path";
import { isValidLvName, isValidVgName } from "../lvm/names.js";
import {
  type DeviceClass,
  DEFAULT_THRESHOLD_PERCENT,
  MAX_MIRRORS,
  MAX_STRIPES,
  singleThickClass,
} from "../volumes/device-classes.js";
import { DEVICE_CLASS_NAME, DNS_SUBDOMAIN, LABEL_KEY } from "../volumes/names.js";
import { isValidStripeSize, parseStripeSize, STRIPE_SIZE_RULES } from "../volumes/size.js";
import { LOG_LEVELS, type LogLevel } from "../log.js";
import { parseListenAddress } from "../metrics/http.js";

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
};

type FieldKind = "string" | "integer" | "string-list" | "device-classes";
const FIELDS: Record<keyof NodeConfig, FieldKind> = {
  endpoint: "string",
  nodeId: "string",
  volumeGroup: "string",
  deviceClasses: "device-classes",
  driverName: "string",
  topologyKey: "string",
  kubeletDir: "string",
  socketMode: "string",
  maxVolumesPerNode: "integer",
  logLevel: "string",
  lvmCommandPrefix: "string-list",
  lvmTimeoutSeconds: "integer",
  shutdownGraceSeconds: "integer",
  metricsAddress: "string",
};
export const CONFIG_FIELDS = Object.keys(FIELDS) as Array<keyof NodeConfig>;

/** Reads a JSON config file into a partial config, refusing unknown keys and wrong types. */
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
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const kind = FIELDS[key as keyof NodeConfig] as FieldKind | undefined;
    if (!kind) throw new ConfigError(key, `unknown setting in ${path}; known settings: ${CONFIG_FIELDS.join(", ")}`);
    const ok =
      kind === "string"
        ? typeof value === "string"
        : kind === "integer"
          ? Number.isSafeInteger(value)
          : kind === "device-classes"
            ? Array.isArray(value)
            : Array.isArray(value) && value.every((v) => typeof v === "string");
    if (!ok) throw new ConfigError(key, `must be ${KIND_WORDS[kind]} in ${path}`);
    result[key] = value;
  }
  return result;
}

const KIND_WORDS: Record<FieldKind, string> = {
  string: "a string",
  integer: "an integer",
  "string-list": "a list of strings",
  "device-classes": "a list of device class objects",
};

/** Converts a flag's text to the field's type. */
export function flagValue(field: keyof NodeConfig, text: string): NodeConfig[keyof NodeConfig] {
  const kind = FIELDS[field];
  if (kind === "device-classes") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(field, `must be a JSON list of device classes: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new ConfigError(field, "must be a JSON list of device classes");
    return parsed as DeviceClass[];
  }
  if (kind === "integer") {
    if (!/^-?[0-9]{1,15}$/.test(text)) throw new ConfigError(field, `must be a whole number (got "${text}")`);
    return Number(text);
  }
  if (kind === "string-list") return text === "" ? [] : text.split(/\s+/);
  return text;
}

const NODE_ID = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;

/** Merges and checks a configuration; throws ConfigError naming the first bad field. */
export function resolveConfig(...layers: Array<Partial<NodeConfig>>): NodeConfig {
  const config: NodeConfig = { ...DEFAULTS, nodeId: hostname() };
  for (const layer of layers) Object.assign(config, layer);

  socketPathOf(config.endpoint);
  if (!NODE_ID.test(config.nodeId)) {
    throw new ConfigError("nodeId", `"${config.nodeId}" must be 1-128 letters, digits, '.', '_' or '-' (usually the Kubernetes node name)`);
  }
  config.deviceClasses = resolveDeviceClasses(config.volumeGroup, config.deviceClasses);
  const defaultClass = config.deviceClasses.find((c) => c.default) ?? config.deviceClasses[0];
  if (defaultClass) config.volumeGroup = defaultClass.volumeGroup;
  if (config.driverName.length > 63 || !DNS_SUBDOMAIN.test(config.driverName)) {
    throw new ConfigError("driverName", `"${config.driverName}" must be a domain-style name of at most 63 characters, e.g. loam.csi.dev`);
  }
  if (config.topologyKey.length > 253 || !LABEL_KEY.test(config.topologyKey)) {
    throw new ConfigError("topologyKey", `"${config.topologyKey}" must be a Kubernetes label key, e.g. topology.loam.csi.dev/node`);
  }
  if (!isAbsolute(config.kubeletDir) || config.kubeletDir.includes("\0")) {
    throw new ConfigError("kubeletDir", `"${config.kubeletDir}" must be an absolute path`);
  }
  const mode = parseSocketMode(config.socketMode);
  if (mode === undefined) throw new ConfigError("socketMode", `"${config.socketMode}" must be an octal mode between 0600 and 0777, e.g. 0600`);
  integerIn(config, "maxVolumesPerNode", 0, 1_000_000);
  integerIn(config, "lvmTimeoutSeconds", 1, 3600);
  integerIn(config, "shutdownGraceSeconds", 0, 3600);
  if (!LOG_LEVELS.includes(config.logLevel)) {
    throw new ConfigError("logLevel", `"${String(config.logLevel)}" is not a log level; allowed: ${LOG_LEVELS.join(", ")}`);
  }
  if (config.metricsAddress !== "" && !parseListenAddress(config.metricsAddress)) {
    throw new ConfigError("metricsAddress", `"${config.metricsAddress}" must be host:port, [ipv6]:port or :port (port 0-65535), or "" to turn the listener off`);
  }
  for (const [i, word] of config.lvmCommandPrefix.entries()) {
    if (word === "" || word.includes("\0")) throw new ConfigError(`lvmCommandPrefix[${i}]`, "must be a non-empty word");
  }
  return config;
}

export function socketPathOf(endpoint: string): string {
  const match = /^unix:\/\/(\/.+)$/.exec(endpoint);
  if (!match?.[1] || match[1].includes("\0")) {
    throw new ConfigError("endpoint", `"${endpoint}" must be unix:///absolute/path/to/csi.sock`);
  }
  return match[1];
}

export function parseSocketMode(text: string): number | undefined {
  if (!/^0?[0-7]{3}$/.test(text)) return undefined;
  const mode = parseInt(text, 8);
  return (mode & 0o600) === 0o600 ? mode : undefined;
}

function integerIn(config: NodeConfig, field: "maxVolumesPerNode" | "lvmTimeoutSeconds" | "shutdownGraceSeconds", min: number, max: number): void {
  const value = config[field];
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `${value} is out of range; allowed: ${min} to ${max}`);
  }
}

const CLASS_KEYS = [
  "name", "volumeGroup", "type", "thinPool", "overprovisionRatio", "spareBytes", "stripes", "stripeSize", "mirrors",
  "dataThresholdPercent", "metadataThresholdPercent", "default",
] as const;
const MAX_OVERPROVISION_RATIO = 100;

/**
 * The device classes from `volumeGroup` (one default thick class) or `deviceClasses` (the
 * config file's list), never both: two answers to "where do volumes go" is a mistake.
 */
function resolveDeviceClasses(volumeGroup: string, raw: unknown): DeviceClass[] {
  const listed = Array.isArray(raw) ? (raw as unknown[]) : [];
  if (listed.length === 0) {
    if (volumeGroup === "") {
      throw new ConfigError("volumeGroup", "is required (the LVM volume group loam carves volumes from), unless deviceClasses is set");
    }
    if (!isValidVgName(volumeGroup)) {
      throw new ConfigError("volumeGroup", `"${volumeGroup}" is not a valid LVM volume group name (letters, digits, '+', '_', '.', '-')`);
    }
    return [singleThickClass(volumeGroup)];
  }
  if (volumeGroup !== "") {
    throw new ConfigError(
      "volumeGroup",
      `"${volumeGroup}" is set together with deviceClasses; set one: volumeGroup is shorthand for a single thick class, deviceClasses lists them all`,
    );
  }
  const classes = listed.map((entry, i) => parseDeviceClass(entry, `deviceClasses[${i}]`));
  const seen = new Set<string>();
  for (const [i, c] of classes.entries()) {
    if (seen.has(c.name)) throw new ConfigError(`deviceClasses[${i}].name`, `"${c.name}" is used by an earlier class; names must be unique`);
    seen.add(c.name);
  }
  const defaults = classes.filter((c) => c.default);
  if (classes.length === 1 && defaults.length === 0) classes[0] = { ...classes[0], default: true };
  else if (defaults.length !== 1) {
    throw new ConfigError("deviceClasses", `exactly one class must have "default": true (found ${defaults.length}: ${defaults.map((c) => c.name).join(", ") || "none"})`);
  }
  return classes;
}

function parseDeviceClass(entry: unknown, at: string): DeviceClass {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new ConfigError(at, "must be an object");
  const raw = entry as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(CLASS_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(`${at}.${key}`, `unknown device class setting; known settings: ${CLASS_KEYS.join(", ")}`);
    }
  }
  const field = (key: (typeof CLASS_KEYS)[number]): string => `${at}.${key}`;
  const name = raw.name;
  if (typeof name !== "string" || !DEVICE_CLASS_NAME.test(name)) {
    throw new ConfigError(field("name"), `${JSON.stringify(name)} must be 1-63 lowercase letters, digits or '-' (it is the StorageClass's loam.csi.dev/deviceClass)`);
  }
  const volumeGroup = raw.volumeGroup;
  if (typeof volumeGroup !== "string" || !isValidVgName(volumeGroup)) {
    throw new ConfigError(field("volumeGroup"), `${JSON.stringify(volumeGroup)} must be an LVM volume group name (letters, digits, '+', '_', '.', '-')`);
  }
  const type = raw.type ?? "thick";
  if (type !== "thick" && type !== "thin") throw new ConfigError(field("type"), `${JSON.stringify(type)} is not a class type; allowed: thick, thin`);
  const thin = type === "thin";

  const onlyFor = (key: (typeof CLASS_KEYS)[number], harmless: unknown, forType: string): void => {
    if (raw[key] !== undefined && raw[key] !== harmless) throw new ConfigError(field(key), `applies to ${forType} classes only; class "${name}" is ${type}`);
  };
  const number = (key: (typeof CLASS_KEYS)[number], fallback: number, min: number, max: number, integer: boolean): number => {
    const value = raw[key] ?? fallback;
    const ok = typeof value === "number" && (integer ? Number.isSafeInteger(value) : Number.isFinite(value)) && value >= min && value <= max;
    if (!ok) throw new ConfigError(field(key), `${JSON.stringify(value)} is out of range; allowed: ${integer ? "a whole number " : ""}from ${min} to ${max}`);
    return value;
  };

  const result: DeviceClass = {
    name,
    volumeGroup,
    type,
    overprovisionRatio: 1,
    spareBytes: number("spareBytes", 0, 0, Number.MAX_SAFE_INTEGER, true),
    stripes: 1,
    mirrors: 0,
    dataThresholdPercent: DEFAULT_THRESHOLD_PERCENT,
    metadataThresholdPercent: DEFAULT_THRESHOLD_PERCENT,
    default: false,
  };
  if (raw.default !== undefined) {
    if (typeof raw.default !== "boolean") throw new ConfigError(field("default"), "must be true or false");
    result.default = raw.default;
  }
  if (thin) {
    if (typeof raw.thinPool !== "string" || !isValidLvName(raw.thinPool)) {
      throw new ConfigError(field("thinPool"), `${JSON.stringify(raw.thinPool)} must name the thin pool LV in ${volumeGroup} (required for thin classes)`);
    }
    result.thinPool = raw.thinPool;
    result.overprovisionRatio = number("overprovisionRatio", 1, 1, MAX_OVERPROVISION_RATIO, false);
    result.dataThresholdPercent = number("dataThresholdPercent", DEFAULT_THRESHOLD_PERCENT, 1, 100, false);
    result.metadataThresholdPercent = number("metadataThresholdPercent", DEFAULT_THRESHOLD_PERCENT, 1, 100, false);
    onlyFor("stripes", 1, "thick");
    onlyFor("mirrors", 0, "thick");
    onlyFor("stripeSize", undefined, "thick");
  } else {
    onlyFor("thinPool", undefined, "thin");
    onlyFor("overprovisionRatio", 1, "thin");
    onlyFor("dataThresholdPercent", undefined, "thin");
    onlyFor("metadataThresholdPercent", undefined, "thin");
    result.stripes = number("stripes", 1, 1, MAX_STRIPES, true);
    result.mirrors = number("mirrors", 0, 0, MAX_MIRRORS, true);
    if (result.stripes > 1 && result.mirrors > 0) {
      throw new ConfigError(field("mirrors"), `${result.mirrors} with stripes ${result.stripes}: a class is striped or raid1, not both`);
    }
    if (raw.stripeSize !== undefined) {
      const bytes = typeof raw.stripeSize === "number" ? raw.stripeSize : typeof raw.stripeSize === "string" ? parseStripeSize(raw.stripeSize) : undefined;
      if (bytes === undefined || !isValidStripeSize(bytes)) {
        throw new ConfigError(field("stripeSize"), `${JSON.stringify(raw.stripeSize)} must be ${STRIPE_SIZE_RULES}, or a number of bytes`);
      }
      result.stripeSizeBytes = bytes;
    }
  }
  return result;
}

/** The volume groups a node config names: its volumeGroup, or those of its device classes. */
export function volumeGroupsOf(file: Partial<Record<string, unknown>>): string[] {
  const found = new Set<string>();
  if (typeof file.volumeGroup === "string" && file.volumeGroup !== "") found.add(file.volumeGroup);
  if (Array.isArray(file.deviceClasses)) {
    for (const entry of file.deviceClasses as unknown[]) {
      const vg = typeof entry === "object" && entry !== null ? (entry as { volumeGroup?: unknown }).volumeGroup : undefined;
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
