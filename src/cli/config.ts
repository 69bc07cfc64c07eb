/**
 * The node configuration: defaults, then a JSON config file, then command-line flags.
 * Every value is checked at start, and an error names the field and says what is allowed,
 * so a bad DaemonSet fails at once instead of at the first volume.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { isAbsolute } from "node:path";
import { isValidVgName } from "../lvm/names.js";
import { LOG_LEVELS, type LogLevel } from "../log.js";
import { parseListenAddress } from "../metrics/http.js";

export interface NodeConfig {
  /** `unix:///path/to/csi.sock` */
  endpoint: string;
  nodeId: string;
  volumeGroup: string;
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

type FieldKind = "string" | "integer" | "string-list";
const FIELDS: Record<keyof NodeConfig, FieldKind> = {
  endpoint: "string",
  nodeId: "string",
  volumeGroup: "string",
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
          : Array.isArray(value) && value.every((v) => typeof v === "string");
    if (!ok) throw new ConfigError(key, `must be ${kind === "string-list" ? "a list of strings" : kind === "integer" ? "an integer" : "a string"} in ${path}`);
    result[key] = value;
  }
  return result;
}

/** Converts a flag's text to the field's type. */
export function flagValue(field: keyof NodeConfig, text: string): NodeConfig[keyof NodeConfig] {
  const kind = FIELDS[field];
  if (kind === "integer") {
    if (!/^-?[0-9]{1,15}$/.test(text)) throw new ConfigError(field, `must be a whole number (got "${text}")`);
    return Number(text);
  }
  if (kind === "string-list") return text === "" ? [] : text.split(/\s+/);
  return text;
}

const DNS_LABELS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NODE_ID = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;
const TOPOLOGY_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Merges and checks a configuration; throws ConfigError naming the first bad field. */
export function resolveConfig(...layers: Array<Partial<NodeConfig>>): NodeConfig {
  const config: NodeConfig = { ...DEFAULTS, nodeId: hostname() };
  for (const layer of layers) Object.assign(config, layer);

  socketPathOf(config.endpoint);
  if (!NODE_ID.test(config.nodeId)) {
    throw new ConfigError("nodeId", `"${config.nodeId}" must be 1-128 letters, digits, '.', '_' or '-' (usually the Kubernetes node name)`);
  }
  if (config.volumeGroup === "") throw new ConfigError("volumeGroup", "is required (the LVM volume group loam carves volumes from)");
  if (!isValidVgName(config.volumeGroup)) {
    throw new ConfigError("volumeGroup", `"${config.volumeGroup}" is not a valid LVM volume group name (letters, digits, '+', '_', '.', '-')`);
  }
  if (config.driverName.length > 63 || !DNS_LABELS.test(config.driverName)) {
    throw new ConfigError("driverName", `"${config.driverName}" must be a domain-style name of at most 63 characters, e.g. loam.csi.dev`);
  }
  if (config.topologyKey.length > 253 || !TOPOLOGY_KEY.test(config.topologyKey)) {
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
