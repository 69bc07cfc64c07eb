/**
 * Domain errors. Each kind says what went wrong in words the operator can act on;
 * the CSI layer maps kinds to gRPC status codes at the service boundary and nowhere else.
 * LVM's failures become domain errors here too (`lvmFailure`) and nowhere else in the domain.
 */
import { CommandError } from "../exec/index.js";
import {
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  VolumeGroupNotFoundError,
} from "../lvm/errors.js";
export type VolumeErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "out-of-range"
  | "resource-exhausted"
  | "failed-precondition"
  | "aborted"
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
  if (error instanceof CommandError) {
    return new VolumeError("internal", `${doing} failed: ${error.message.trim()}`, { cause: error });
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new VolumeError("aborted", `${doing} was cancelled`, { cause: error });
  }
  return new VolumeError("internal", `${doing} failed: ${String(error)}`, { cause: error });
}

/** LVM said the LV already exists (made behind loam's back, or by a run that crashed). */
export const lvAlreadyExists = (error: unknown): boolean => error instanceof LogicalVolumeExistsError;

/** LVM said the LV does not exist: for a removal, it is already done. */
export const lvAlreadyGone = (error: unknown): boolean => error instanceof LogicalVolumeNotFoundError;
