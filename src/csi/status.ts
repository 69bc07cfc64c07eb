/**
 * The service boundary: domain errors become gRPC status codes here and nowhere else.
 */
import { status } from "@grpc/grpc-js";
import { VolumeError, type VolumeErrorKind } from "../volumes/errors.js";
import { LvmError } from "../lvm/errors.js";

const CODES: Record<VolumeErrorKind, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "not-found": status.NOT_FOUND,
  "already-exists": status.ALREADY_EXISTS,
  "out-of-range": status.OUT_OF_RANGE,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  "failed-precondition": status.FAILED_PRECONDITION,
  aborted: status.ABORTED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

export interface StatusError {
  code: status;
  message: string;
}

export function toStatus(error: unknown): StatusError {
  if (error instanceof VolumeError) return { code: CODES[error.kind], message: error.message };
  if (error instanceof LvmError) return { code: status.INTERNAL, message: error.message.trim() };
  if (error instanceof Error) return { code: status.INTERNAL, message: error.message };
  return { code: status.INTERNAL, message: String(error) };
}

/** A call answered with this error is a deliberate "not supported", not a failure of ours. */
export class UnimplementedError extends Error {
  constructor(method: string) {
    super(`${method} is not implemented by loam`);
    this.name = "UnimplementedError";
  }
}

export function codeName(code: status): string {
  return status[code] ?? String(code);
}
