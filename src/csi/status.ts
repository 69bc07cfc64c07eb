/**
 * The service boundary: domain errors become gRPC status codes here and nowhere else.
 */
import { status } from "@grpc/grpc-js";
import { type VolumeErrorKind, asVolumeError } from "../volumes/errors.js";

const CODES: Record<VolumeErrorKind, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "not-found": status.NOT_FOUND,
  "already-exists": status.ALREADY_EXISTS,
  "out-of-range": status.OUT_OF_RANGE,
  "resource-exhausted": status.RESOURCE_EXHAUSTED,
  "failed-precondition": status.FAILED_PRECONDITION,
  aborted: status.ABORTED,
  "deadline-exceeded": status.DEADLINE_EXCEEDED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

export interface StatusError {
  code: status;
  message: string;
}

/** Any error, translated to a domain error first (src/volumes/errors.ts asVolumeError): csi maps only domain kinds. */
export function toStatus(error: unknown): StatusError {
  const failure = asVolumeError(error);
  return { code: CODES[failure.kind], message: failure.message };
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
