/**
 * Domain errors. Each kind says what went wrong in words the operator can act on;
 * the CSI layer maps kinds to gRPC status codes at the service boundary and nowhere else.
 * LVM's failures become domain errors here too (`lvmFailure`) and nowhere else in the domain.
 */
import { CommandCancelledError, CommandError, CommandTimeoutError } from "../exec/index.js";
import {
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LvmLockContentionError,
  MissingPhysicalVolumesError,
  PartialLogicalVolumeError,
  VolumeGroupNotFoundError,
} from "../lvm/errors.js";
import { repairAdvice } from "./missing-pvs.js";
export type VolumeErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "out-of-range"
  | "resource-exhausted"
  | "failed-precondition"
  | "aborted"
  | "deadline-exceeded"
  | "unavailable"
  | "internal";

export class VolumeError extends Error {
  constructor(
    readonly kind: VolumeErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "VolumeError";
  }
}

export const invalidArgument = (message: string): VolumeError => new VolumeError("invalid-argument", message);
export const notFound = (message: string): VolumeError => new VolumeError("not-found", message);
export const alreadyExists = (message: string): VolumeError => new VolumeError("already-exists", message);
export const outOfRange = (message: string): VolumeError => new VolumeError("out-of-range", message);
export const resourceExhausted = (message: string): VolumeError => new VolumeError("resource-exhausted", message);
export const failedPrecondition = (message: string): VolumeError => new VolumeError("failed-precondition", message);
export const aborted = (message: string): VolumeError => new VolumeError("aborted", message);
export const deadlineExceeded = (message: string): VolumeError => new VolumeError("deadline-exceeded", message);
export const unavailable = (message: string, cause?: unknown): VolumeError =>
  new VolumeError("unavailable", message, { cause });

/**
 * What an operation says for the LVM failures that mean something particular to it; any
 * other failure is INTERNAL with LVM's own words. Each function gets LVM's message, trimmed.
 */
export interface LvmFailureWords {
  /** Not enough free extents (or PVs) for the change: RESOURCE_EXHAUSTED. */
  noSpace?: (lvmSays: string) => string;
  /** The LV is open (mounted, or a copy reads it): FAILED_PRECONDITION. */
  inUse?: (lvmSays: string) => string;
  /** A volume group cannot be read: UNAVAILABLE. */
  unreadable?: (lvmSays: string) => string;
  /**
   * LVM refused because a PV of the VG is missing: FAILED_PRECONDITION, or what the operation
   * answers when its own check finds the same (class-capacity.ts checkAllocatable), so a PV
   * lost between that check and the command gets the same code.
   */
  missingPvs?: "resource-exhausted" | "failed-precondition";
}

/**
 * The one translation of LVM's failures (and of LVM commands that could not start, timed out
 * or were cancelled) into domain errors; VolumeErrors pass through. `doing` says what was
 * being done, as in "creating <id>".
 */
export function lvmFailure(error: unknown, doing: string, words: LvmFailureWords = {}): VolumeError {
  if (error instanceof VolumeError) return error;
  if (error instanceof InsufficientSpaceError && words.noSpace)
    return resourceExhausted(words.noSpace(error.message.trim()));
  if (error instanceof LogicalVolumeInUseError && words.inUse)
    return failedPrecondition(words.inUse(error.message.trim()));
  if (error instanceof VolumeGroupNotFoundError && words.unreadable) {
    return unavailable(words.unreadable(error.message.trim()), error);
  }
  if (error instanceof MissingPhysicalVolumesError) {
    const vg = /Cannot change VG (\S+) while/.exec(error.stderr)?.[1] ?? "VG";
    const uuids = error.missingPvUuids;
    return new VolumeError(
      words.missingPvs ?? "failed-precondition",
      `${doing} failed: volume group ${vg} has a missing physical volume${uuids.length > 0 ? ` (${uuids.join(", ")})` : ""} ` +
        `and LVM refuses to change it until it is repaired; ${repairAdvice(vg)}`,
      { cause: error },
    );
  }
  if (error instanceof PartialLogicalVolumeError) {
    const uuids = error.missingPvUuids;
    return failedPrecondition(
      `${doing} failed: the volume has extents on a missing physical volume` +
        `${uuids.length > 0 ? ` (${uuids.join(", ")})` : ""} and LVM will not activate it with blocks missing; ` +
        `bring the disk back (\`vgextend --restoremissing\`) and retry, or, if it is lost for good, ` +
        `recover the data from a backup and delete the volume`,
    );
  }
  const kind = failureKind(error);
  const said = error instanceof CommandError ? error.message.trim() : String(error);
  if (error instanceof LvmLockContentionError) {
    return new VolumeError(
      "aborted",
      `${doing} failed: ${said} (another LVM command held the volume group's lock; retry)`,
      { cause: error },
    );
  }
  if (kind === "aborted") {
    return new VolumeError("aborted", `${doing} was cancelled${error instanceof CommandError ? `: ${said}` : ""}`, {
      cause: error,
    });
  }
  if (kind === "deadline-exceeded") {
    return new VolumeError("deadline-exceeded", `${doing} failed: ${said}`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${said}`, { cause: error });
}

/**
 * The kind any failure has when nothing more particular is known: a command that ran past its
 * deadline is DEADLINE_EXCEEDED, a cancelled one (the caller went away) or one that found the
 * volume group locked is ABORTED (all three may be retried; a killed command may have
 * committed, which the retry finds), anything else INTERNAL.
 */
function failureKind(error: unknown): VolumeErrorKind {
  if (error instanceof VolumeError) return error.kind;
  if (error instanceof CommandTimeoutError) return "deadline-exceeded";
  if (error instanceof CommandCancelledError || error instanceof LvmLockContentionError) return "aborted";
  if (error instanceof Error && error.name === "AbortError") return "aborted";
  return "internal";
}

/**
 * Any error as a domain error, in its own words: what the service boundary answers for a failure
 * that reached it without a translation (VolumeErrors pass through).
 */
export function asVolumeError(error: unknown): VolumeError {
  if (error instanceof VolumeError) return error;
  const message = error instanceof Error ? error.message.trim() : String(error);
  return new VolumeError(failureKind(error), message, { cause: error });
}

/** LVM said the LV already exists (made behind loam's back, or by a run that crashed). */
export const lvAlreadyExists = (error: unknown): boolean => error instanceof LogicalVolumeExistsError;

/** LVM said the LV does not exist: for a removal, it is already done. */
export const lvAlreadyGone = (error: unknown): boolean => error instanceof LogicalVolumeNotFoundError;
