/**
 * What the node side of the domain needs from the machine it runs on: device probes, mkfs,
 * wipefs, mount, bind and umount, filesystem growth, statfs, the mount table and a few file
 * operations. The domain owns this interface; src/host implements it (HostOperations)
 * without importing it, and tests can stand in for it with plain async functions.
 *
 * Every method takes resolved, already confined paths, and acts on the object found at exactly
 * that path: a path that changed since it was checked (a directory on the way moved or
 * replaced by a symlink) rejects with PathChangedError (ABORTED) and leaves nothing done there
 * (src/host/paths.ts). A command that runs and exits
 * non-zero rejects with a HostCommandError (src/host/errors.ts; its stderr is read: mkfs.xfs's
 * "must be larger than" becomes FAILED_PRECONDITION, anything else INTERNAL naming the step);
 * one that cannot start, times out or is cancelled rejects with src/exec's CommandError
 * (INTERNAL, DEADLINE_EXCEEDED or ABORTED, naming the step); an error named AbortError becomes
 * ABORTED; any other error becomes INTERNAL naming the step.
 */
import { CommandError, CommandExitError } from "../exec/index.js";
import type { DeviceContent, FirstLook } from "../host/blkid.js";
import type { LuksFormatSettings, MappingStatus } from "../host/crypt.js";
import { PathChangedError } from "../host/errors.js";
import type { FilesystemUsage } from "../host/filesystem.js";
import type { MountEntry } from "../host/mountinfo.js";
import type { PathInfo } from "../host/operations.js";
import type { FsType } from "./capabilities.js";
import type { VolumeEngine } from "./engine.js";
import type { Volume } from "./volume.js";
import { VolumeError, alreadyExists, failedPrecondition, lvmFailure } from "./errors.js";
import { PER_MOUNT_FLAGS } from "./capabilities.js";

/** One line of the kernel's mount table, as much of it as the node's decisions read. */
export type HostMount = Pick<
  MountEntry,
  "id" | "majorMinor" | "root" | "mountPoint" | "mountOptions" | "fsType" | "source" | "superOptions"
>;

export type { DeviceContent, FilesystemUsage, FirstLook, LuksFormatSettings, MappingStatus, PathInfo };

export interface HostCallOptions {
  signal?: AbortSignal;
}

export interface HostMountOptions extends HostCallOptions {
  readonly?: boolean;
}

/**
 * How a format runs: with a timeout and never with a caller's signal (a format stopped half
 * way leaves a device that is neither empty nor usable; see staging.ts).
 */
export interface HostFormatOptions {
  timeoutMs: number;
  /** Write over the signatures the device holds (mkfs.xfs -f, mkfs.ext4 -F). */
  force?: boolean;
}

export interface NodeHost {
  /** The kernel's mount table for loam's mount namespace, in the kernel's order (a later entry stacks on an earlier one). */
  mounts(): Promise<HostMount[]>;
  /** Resolves with what `path` is; rejects with the filesystem's error (ENOENT, ...) when it cannot be looked at. */
  stat(path: string): Promise<PathInfo>;
  /** Resolves with `path` with every symlink resolved; rejects when it does not exist. */
  realpath(path: string): Promise<string>;
  /** Makes a directory and its missing parents (mode 0750); resolves when it exists. */
  makeDirectory(path: string): Promise<void>;
  /** Makes an empty file (mode 0640); resolves when it exists, also when it already did. */
  makeFile(path: string): Promise<void>;
  /** Removes an empty directory: true when it is gone (or was never there), false when it holds entries. */
  removeDirectory(path: string): Promise<boolean>;
  /** Removes a file or device node; resolves when it is gone (or was never there). */
  removeFile(path: string): Promise<void>;

  /** Reads the device's edges; never rejects (an unreadable device is "data"). */
  firstLook(device: string): Promise<FirstLook>;
  /**
   * Asks a signature probe what the device holds. `look`, when given, is a first look
   * already taken (an "empty" one answers without starting a process). Rejects with a
   * HostCommandError when the probe itself fails.
   */
  probe(device: string, options?: HostCallOptions, look?: FirstLook): Promise<DeviceContent>;
  /**
   * Runs mkfs on the device, with a force flag only when `options.force` says so; rejects with
   * a HostCommandError when mkfs refuses or fails.
   */
  makeFilesystem(device: string, fsType: FsType, options: HostFormatOptions): Promise<void>;
  /** Erases every signature on the device (wipefs -a); rejects with a HostCommandError when wipefs fails. */
  wipeSignatures(device: string, options: HostFormatOptions): Promise<void>;
  /**
   * Grows a mounted filesystem to fill its device (xfs through mountPoint, ext* through
   * device); a no-op when it already does; rejects for a filesystem type it cannot grow.
   */
  growFilesystem(
    target: { fsType: string; device: string; mountPoint: string },
    options?: HostCallOptions,
  ): Promise<void>;
  /** statfs of a mounted filesystem. */
  filesystemUsage(path: string): Promise<FilesystemUsage>;

  /** Mounts a filesystem read-write, or read-only with `readonly`, with these (already allowed) flags. */
  mountFilesystem(
    device: string,
    target: string,
    fsType: string,
    flags: readonly string[],
    options?: HostMountOptions,
  ): Promise<void>;
  /**
   * Bind-mounts source (a directory or a device node) onto target, then applies readonly
   * and the per-mount flags; when that second step fails the bind is undone before it rejects.
   */
  bindMount(
    source: string,
    target: string,
    perMountFlags: readonly string[],
    options?: HostMountOptions,
  ): Promise<void>;
  /**
   * Unmounts the mount on top at target if it is mount `mountId` (mountinfo's id), one layer;
   * resolves false and unmounts nothing when another mount, or none, is on top there. Rejects
   * with a HostCommandError when umount fails.
   */
  unmount(target: string, mountId: number, options?: HostCallOptions): Promise<boolean>;

  /** Whether the device starts with a LUKS header. */
  isLuks(device: string, options?: HostCallOptions): Promise<boolean>;
  /** Writes a new LUKS2 header (cryptsetup luksFormat); the passphrase goes to its standard input. */
  luksFormat(
    device: string,
    passphrase: Uint8Array,
    settings: LuksFormatSettings,
    options: HostFormatOptions,
  ): Promise<void>;
  /** Opens the LUKS device as /dev/mapper/<name>; a wrong passphrase rejects with exit code 2. */
  luksOpen(device: string, name: string, passphrase: Uint8Array, options?: HostCallOptions): Promise<void>;
  /** Closes /dev/mapper/<name>: false when it was not open; a busy one rejects with exit code 5. */
  luksClose(name: string, options?: HostCallOptions): Promise<boolean>;
  /** Grows the open mapping to its device's size (the passphrase, when given, on standard input). */
  luksResize(name: string, passphrase: Uint8Array | undefined, options?: HostCallOptions): Promise<void>;
  /** cryptsetup status of /dev/mapper/<name>. */
  mappingStatus(name: string, options?: HostCallOptions): Promise<MappingStatus>;
}

/** The part of the volume engine the node uses; its per-volume lock is the engine's (one lock map for both services). */
export type NodeEngine = Pick<
  VolumeEngine,
  | "ensureActive"
  | "getVolume"
  | "listVolumes"
  | "expandVolume"
  | "withVolumeLock"
  | "markFormatting"
  | "clearFormatting"
>;

/** "major:minor" of the volume's device node; FAILED_PRECONDITION when it is missing or not a device. */
export async function deviceNumber(host: NodeHost, volume: Pick<Volume, "id" | "devicePath">): Promise<string> {
  let found: PathInfo;
  try {
    found = await host.stat(volume.devicePath);
  } catch (error) {
    throw failedPrecondition(
      `device ${volume.devicePath} of volume ${volume.id} is missing: ${(error as Error).message}`,
    );
  }
  if (found.type !== "block-device") throw failedPrecondition(`${volume.devicePath} is not a block device`);
  return found.device;
}

/** Flags that mountinfo shows by name when set, so a repeated request can be compared with them. */
const VISIBLE_PER_MOUNT_FLAGS = PER_MOUNT_FLAGS.filter((flag) => flag !== "strictatime");

/** ALREADY_EXISTS when a mount lacks a flag the request asks for (one mountinfo would show). */
export function checkFlagsMatch(mount: HostMount, flags: readonly string[], where: string): void {
  const missing = flags.filter((flag) => VISIBLE_PER_MOUNT_FLAGS.includes(flag) && !mount.mountOptions.includes(flag));
  if (missing.length > 0) {
    throw alreadyExists(
      `${where} with mount options ${mount.mountOptions.join(",")}; this request also asks for ${missing.join(",")}`,
    );
  }
}

/** Runs one host step; a failure becomes a VolumeError that says what was being done. */
export async function hostStep<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw hostFailure(error, doing);
  }
}

/**
 * A host step's failure in the domain's words, named with the step. VolumeErrors pass through;
 * a command that exited non-zero is read here; one that could not start, timed out
 * (DEADLINE_EXCEEDED) or was cancelled (ABORTED), and LVM's errors, go through lvmFailure.
 */
export function hostFailure(error: unknown, doing: string): VolumeError {
  if (error instanceof VolumeError) return error;
  if (error instanceof PathChangedError) {
    // ABORTED, not FAILED_PRECONDITION: the check-then-act sequence was overtaken by a
    // concurrent change, which gRPC's guide answers with "retry at a higher level". A retry
    // judges the path again from the start: refused (INVALID_ARGUMENT) if it now leads out of
    // kubelet's directory, done if it leads to a directory that may be used.
    return new VolumeError("aborted", `${doing} was refused: ${error.message}; nothing was left mounted there`, {
      cause: error,
    });
  }
  if (error instanceof CommandError && !(error instanceof CommandExitError)) return lvmFailure(error, doing);
  if (error instanceof CommandExitError) {
    if (/must be larger than/.test(error.stderr)) {
      return failedPrecondition(`${doing} failed: ${error.stderr.trim()} (ask for a larger volume or fs_type ext4)`);
    }
    return new VolumeError("internal", `${doing} failed: ${error.message}`, { cause: error });
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new VolumeError("aborted", `${doing} was cancelled`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}

/**
 * A volume's format-in-progress mark (metadata.ts, FORMATTING_TAG) as prepareFilesystem uses
 * it: whether the volume carries it, and how to add and remove it.
 */
export interface FormatMark {
  readonly marked: boolean;
  add(): Promise<void>;
  clear(): Promise<void>;
}

/**
 * The longest a wipe or an mkfs may run. Not the caller's deadline: a format the caller gave
 * up on runs to its end (a retry waits on the volume's lock and finds it done); this only
 * stops one that hangs, and the mark it leaves makes the next stage format again.
 */
export const FORMAT_TIMEOUT_MS = 600_000;
