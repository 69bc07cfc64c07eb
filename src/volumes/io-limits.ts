/**
 * IO limits of a volume (docs/iolimits.md): what its StorageClass (or a later
 * ControllerModifyVolume) asked for, as the node reads it back from the LV's parameter tag,
 * and the limits in force for a given size (the per-GiB keys scale with the volume, rounded
 * up, so an expansion raises them). The cgroup files are written by src/host/cgroup.ts.
 */
import { PARAMETER_KEYS } from "./parameters.js";

/** The four limits the kernel knows; an absent one is unlimited. */
export interface IoLimits {
  readIops?: number;
  writeIops?: number;
  readBytesPerSecond?: number;
  writeBytesPerSecond?: number;
}

export const IO_LIMIT_NAMES: ReadonlyArray<keyof IoLimits> = [
  "readIops",
  "writeIops",
  "readBytesPerSecond",
  "writeBytesPerSecond",
];

export type MissingCgroupPolicy = "fail" | "warn";

export interface IoLimitSpec {
  /** For each limit, an absolute value or a value per GiB of the volume's size. */
  limits: { [K in keyof IoLimits]?: { absolute: number } | { perGiB: number } };
  missingCgroup: MissingCgroupPolicy;
}

const KEYS: Record<keyof IoLimits, { absolute: string; perGiB: string }> = {
  readIops: { absolute: PARAMETER_KEYS.readIOPS, perGiB: PARAMETER_KEYS.readIOPSPerGiB },
  writeIops: { absolute: PARAMETER_KEYS.writeIOPS, perGiB: PARAMETER_KEYS.writeIOPSPerGiB },
  readBytesPerSecond: {
    absolute: PARAMETER_KEYS.readBytesPerSecond,
    perGiB: PARAMETER_KEYS.readBytesPerSecondPerGiB,
  },
  writeBytesPerSecond: {
    absolute: PARAMETER_KEYS.writeBytesPerSecond,
    perGiB: PARAMETER_KEYS.writeBytesPerSecondPerGiB,
  },
};

/** The IO limits a set of validated shaping parameters asks for, or undefined when it sets none. */
export function ioLimitSpecOf(shaping: Readonly<Record<string, string>>): IoLimitSpec | undefined {
  const spec: IoLimitSpec = {
    limits: {},
    missingCgroup: shaping[PARAMETER_KEYS.ioLimitsMissingCgroup] === "warn" ? "warn" : "fail",
  };
  for (const name of IO_LIMIT_NAMES) {
    const absolute = shaping[KEYS[name].absolute];
    const perGiB = shaping[KEYS[name].perGiB];
    if (absolute !== undefined) spec.limits[name] = { absolute: Number(absolute) };
    else if (perGiB !== undefined) spec.limits[name] = { perGiB: Number(perGiB) };
  }
  return Object.keys(spec.limits).length > 0 ? spec : undefined;
}

/** The shaping parameters recorded in an LV's parameter tag (parameters.ts fingerprint()); {} when it does not parse. */
export function shapingOfFingerprint(text: string): Record<string, string> {
  let pairs: unknown;
  try {
    pairs = JSON.parse(text);
  } catch {
    return {};
  }
  const shaping: Record<string, string> = {};
  if (!Array.isArray(pairs)) return shaping;
  for (const pair of pairs) {
    if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string") shaping[pair[0]] = pair[1];
  }
  return shaping;
}

const GIB = 1024 ** 3;

/** The limits in force for a volume of `sizeBytes`: per-GiB values times the size in GiB, rounded up. */
export function limitsFor(spec: IoLimitSpec, sizeBytes: number): IoLimits {
  const limits: IoLimits = {};
  for (const name of IO_LIMIT_NAMES) {
    const wanted = spec.limits[name];
    if (!wanted) continue;
    limits[name] = "absolute" in wanted ? wanted.absolute : Math.max(1, Math.ceil((wanted.perGiB * sizeBytes) / GIB));
  }
  return limits;
}

/** "riops=100 wbps=1048576" — the limits as one short text, for logs and `loam status`. */
export function describeLimits(limits: IoLimits): string {
  const short: Record<keyof IoLimits, string> = {
    readIops: "riops",
    writeIops: "wiops",
    readBytesPerSecond: "rbps",
    writeBytesPerSecond: "wbps",
  };
  const parts = IO_LIMIT_NAMES.filter((n) => limits[n] !== undefined).map((n) => `${short[n]}=${limits[n]}`);
  return parts.length > 0 ? parts.join(" ") : "none";
}
