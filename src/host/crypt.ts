/**
 * LUKS2 through cryptsetup: format, open, close, resize and status of a dm-crypt mapping.
 * The passphrase goes to cryptsetup's standard input (`--key-file -`, read to its end, so its
 * bytes are the key exactly), never into argv; cryptsetup does not echo it in its messages,
 * so a HostCommandError carries nothing secret. Whether a device may be formatted is the
 * domain's decision (src/volumes/encrypted.ts); this only runs what it is told.
 */
import type { CommandRunner, RunOptions } from "../exec/index.js";
import { HostCommandError } from "./errors.js";
import { runChecked } from "./run.js";

export interface LuksFormatSettings {
  cipher: string;
  keySizeBits: number;
  pbkdf: string;
  pbkdfMemoryKiB?: number;
  iterTimeMs?: number;
}

/** cryptsetup's exit codes (cryptsetup(8), RETURN CODES). */
export const CRYPTSETUP_EXIT = {
  wrongParameters: 1,
  /** "No key available with this passphrase." */
  noPermission: 2,
  outOfMemory: 3,
  /** Also what status says of a mapping that is not active. */
  wrongDevice: 4,
  /** "Device ... is still in use." */
  busy: 5,
} as const;

export function luksFormatArgv(device: string, settings: LuksFormatSettings): string[] {
  return [
    "cryptsetup",
    "luksFormat",
    "--batch-mode",
    "--type",
    "luks2",
    "--cipher",
    settings.cipher,
    "--key-size",
    String(settings.keySizeBits),
    "--pbkdf",
    settings.pbkdf,
    ...(settings.pbkdfMemoryKiB !== undefined ? ["--pbkdf-memory", String(settings.pbkdfMemoryKiB)] : []),
    ...(settings.iterTimeMs !== undefined ? ["--iter-time", String(settings.iterTimeMs)] : []),
    "--key-file",
    "-",
    device,
  ];
}

/** Writes a LUKS2 header on the device; the volume key is new, the passphrase opens keyslot 0. */
export async function luksFormat(
  runner: CommandRunner,
  device: string,
  passphrase: Uint8Array,
  settings: LuksFormatSettings,
  options: RunOptions = {},
): Promise<void> {
  await runChecked(runner, luksFormatArgv(device, settings), { ...options, input: passphrase });
}

/** Whether the device starts with a LUKS header (cryptsetup isLuks: 0 yes, 1 no). */
export async function isLuks(runner: CommandRunner, device: string, options: RunOptions = {}): Promise<boolean> {
  const argv = ["cryptsetup", "isLuks", device];
  const result = await runner.run(argv, options);
  if (result.exitCode === 0) return true;
  if (result.exitCode === CRYPTSETUP_EXIT.wrongParameters) return false;
  throw new HostCommandError(argv, result.exitCode, result.stderr);
}

/**
 * Opens the LUKS device as /dev/mapper/<name>. A wrong passphrase rejects with a
 * HostCommandError of exit code 2 (CRYPTSETUP_EXIT.noPermission).
 */
export async function luksOpen(
  runner: CommandRunner,
  device: string,
  name: string,
  passphrase: Uint8Array,
  options: RunOptions = {},
): Promise<void> {
  await runChecked(runner, ["cryptsetup", "open", "--type", "luks", "--key-file", "-", device, name], {
    ...options,
    input: passphrase,
  });
}

/** Closes the mapping; false when it was not open. A busy one rejects with exit code 5 (CRYPTSETUP_EXIT.busy). */
export async function luksClose(runner: CommandRunner, name: string, options: RunOptions = {}): Promise<boolean> {
  const argv = ["cryptsetup", "close", name];
  const result = await runner.run(argv, options);
  if (result.exitCode === 0) return true;
  if (result.exitCode === CRYPTSETUP_EXIT.wrongDevice) return false;
  throw new HostCommandError(argv, result.exitCode, result.stderr);
}

/**
 * Grows an open mapping to fill its (grown) device. LUKS2 keeps the volume key out of the
 * table (in the kernel keyring), so cryptsetup needs the passphrase to load the table again;
 * without one it has nothing to read and fails.
 */
export async function luksResize(
  runner: CommandRunner,
  name: string,
  passphrase: Uint8Array | undefined,
  options: RunOptions = {},
): Promise<void> {
  const argv = ["cryptsetup", "resize", ...(passphrase ? ["--key-file", "-"] : []), name];
  await runChecked(runner, argv, passphrase ? { ...options, input: passphrase } : options);
}

export interface MappingStatus {
  active: boolean;
  /** cryptsetup's first line, e.g. "/dev/mapper/loam-x is active and is in use." */
  summary: string;
  /** The device it maps (as dm names it), when active. */
  device?: string;
  offsetSectors?: number;
  sizeSectors?: number;
  inUse: boolean;
}

/** cryptsetup status of a mapping: inactive when it is not open. */
export async function mappingStatus(
  runner: CommandRunner,
  name: string,
  options: RunOptions = {},
): Promise<MappingStatus> {
  const argv = ["cryptsetup", "status", name];
  const result = await runner.run(argv, options);
  if (result.exitCode === CRYPTSETUP_EXIT.wrongDevice) {
    return { active: false, summary: firstLine(result.stdout) || `${name} is inactive`, inUse: false };
  }
  if (result.exitCode !== 0) throw new HostCommandError(argv, result.exitCode, result.stderr);
  return parseMappingStatus(result.stdout);
}

export function parseMappingStatus(text: string): MappingStatus {
  const summary = firstLine(text);
  const field = (name: string): string | undefined => new RegExp(`^\\s*${name}:\\s*(.+?)\\s*$`, "m").exec(text)?.[1];
  const sectors = (name: string): number | undefined => {
    const match = /^([0-9]+) sectors$/.exec(field(name) ?? "");
    return match?.[1] ? Number(match[1]) : undefined;
  };
  const status: MappingStatus = {
    active: / is active/.test(summary),
    summary,
    inUse: / in use/.test(summary),
  };
  const device = field("device");
  if (device) status.device = device;
  const offset = sectors("offset");
  if (offset !== undefined) status.offsetSectors = offset;
  const size = sectors("size");
  if (size !== undefined) status.sizeSectors = size;
  return status;
}

function firstLine(text: string): string {
  return text.split("\n")[0]?.trim() ?? "";
}
