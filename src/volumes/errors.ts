/**
 * Domain errors. Each kind says what went wrong in words the operator can act on;
 * the CSI layer maps kinds to gRPC status codes at the service boundary and nowhere else.
 */
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
