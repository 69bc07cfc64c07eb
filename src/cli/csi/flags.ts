/**
 * The flags of `loam csi`: their specs, the readers every subcommand uses, and the flags
 * that build a VolumeCapability. A bad flag is a UsageError (exit status 2).
 */
import { readFile } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { VolumeCapability_AccessMode_Mode, type VolumeCapabilitySchema } from "../../gen/csi/v1/csi_pb.js";
import { parseQuantity, QuantityError } from "../../volumes/quantity.js";

export const DEFAULT_CSI_ENDPOINT = "unix:///run/loam/csi.sock";

/** A flag of one subcommand. */
export interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  help: string;
}

export type Flags = Record<string, string | boolean | string[] | undefined>;

export class UsageError extends Error {}

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  endpoint: { type: "string", help: `CSI socket (default $CSI_ENDPOINT or ${DEFAULT_CSI_ENDPOINT})` },
  json: { type: "boolean", help: "print the reply as protobuf JSON" },
  timeout: { type: "string", help: "seconds until the call's deadline (default 120)" },
  help: { type: "boolean", help: "show this subcommand's flags" },
};

export const CAPABILITY_FLAGS: Record<string, FlagSpec> = {
  "fs-type": { type: "string", help: "filesystem of a mount volume (xfs, ext4; empty: the driver's default)" },
  "mount-flag": { type: "string", multiple: true, help: "mount option, repeatable" },
  block: { type: "boolean", help: "a raw block volume instead of a mounted filesystem" },
  "access-mode": { type: "string", help: `one of ${accessModeNames().join(", ")} (default single-node-writer)` },
};

export const PAGING_FLAGS: Record<string, FlagSpec> = {
  "max-entries": { type: "string", help: "entries per page; every page is fetched unless --single-page" },
  "starting-token": { type: "string", help: "start from this page token" },
  "single-page": { type: "boolean", help: "fetch one page and print its next token" },
};

export function text(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === "string" ? value : undefined;
}

export function requiredFlag(flags: Flags, name: string): string {
  const value = text(flags, name);
  if (value === undefined || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

function list(flags: Flags, name: string): string[] {
  const value = flags[name];
  return Array.isArray(value) ? value : [];
}

export function bool(flags: Flags, name: string): boolean {
  return flags[name] === true;
}

/** Repeated `--flag key=value` into a map; a key given twice is refused. */
export function keyValueMap(flags: Flags, name: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const item of list(flags, name)) {
    const at = item.indexOf("=");
    if (at <= 0) throw new UsageError(`--${name} "${item}" must be key=value`);
    const key = item.slice(0, at);
    if (key in map) throw new UsageError(`--${name} gives "${key}" twice`);
    map[key] = item.slice(at + 1);
  }
  return map;
}

/**
 * The request's secrets from a JSON file of string values (`{"encryptionPassphrase": "..."}`):
 * a file, not a flag, so a passphrase never shows in argv. Empty without the flag.
 */
export async function secretsFile(flags: Flags, name = "secrets-file"): Promise<Record<string, string>> {
  const path = text(flags, name);
  if (path === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--${name} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--${name} ${path} must hold a JSON object of string values`);
  }
  const secrets: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "string") throw new UsageError(`--${name} ${path}: the value of "${key}" is not a string`);
    secrets[key] = value;
  }
  return secrets;
}

/** A size flag in the size grammar of src/volumes/quantity.ts (Kubernetes quantities). */
export function parseSize(value: string, flag = "size"): bigint {
  try {
    return parseQuantity(value);
  } catch (error) {
    if (error instanceof QuantityError) throw new UsageError(`--${flag} ${error.message}`);
    throw error;
  }
}

export function optionalSize(flags: Flags, name: string): bigint | undefined {
  const value = text(flags, name);
  return value === undefined ? undefined : parseSize(value, name);
}

export function wholeNumber(flags: Flags, name: string, max = 2 ** 31 - 1): number | undefined {
  const value = text(flags, name);
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) > max)
    throw new UsageError(`--${name} "${value}" must be a whole number from 0 to ${max}`);
  return Number(value);
}

function accessModeNames(): string[] {
  return Object.keys(VolumeCapability_AccessMode_Mode)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNKNOWN")
    .map((k) => k.toLowerCase().replaceAll("_", "-"));
}

function accessMode(flags: Flags): VolumeCapability_AccessMode_Mode {
  const name = text(flags, "access-mode") ?? "single-node-writer";
  const key = name.toUpperCase().replaceAll("-", "_") as keyof typeof VolumeCapability_AccessMode_Mode;
  const mode = VolumeCapability_AccessMode_Mode[key] as VolumeCapability_AccessMode_Mode | undefined;
  if (mode === undefined || key === "UNKNOWN") {
    throw new UsageError(`--access-mode "${name}" is not one of ${accessModeNames().join(", ")}`);
  }
  return mode;
}

export function capability(flags: Flags): MessageInitShape<typeof VolumeCapabilitySchema> {
  const fsType = text(flags, "fs-type");
  const mountFlags = list(flags, "mount-flag");
  if (bool(flags, "block") && (fsType !== undefined || mountFlags.length > 0)) {
    throw new UsageError("--block cannot be combined with --fs-type or --mount-flag");
  }
  return {
    accessType: bool(flags, "block")
      ? { case: "block", value: {} }
      : { case: "mount", value: { fsType: fsType ?? "", mountFlags } },
    accessMode: { mode: accessMode(flags) },
  };
}

export function flagHelp(flags: Record<string, FlagSpec>): string {
  const rows = Object.entries(flags).map(([name, spec]) => [
    `--${name}${spec.type === "string" ? " VALUE" : ""}`,
    spec.help,
  ]);
  const width = Math.max(...rows.map(([left]) => (left ?? "").length));
  return rows.map(([left, help]) => `  ${(left ?? "").padEnd(width)}  ${help}`).join("\n");
}
