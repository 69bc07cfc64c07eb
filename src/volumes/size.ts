/**
 * Capacity arithmetic for CreateVolume and expansion: the CSI capacity_range rules
 * (required_bytes is a floor, limit_bytes a ceiling, 0 means unset) combined with
 * LVM's extent granularity. Sizes are JS numbers; anything beyond MAX_VOLUME_BYTES is
 * refused before it can lose precision.
 */
import { invalidArgument, outOfRange } from "./errors.js";
import { tryParseQuantity } from "./quantity.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
export const PiB = 1024 * TiB;

/** The largest volume we accept: far above any real node, far below 2^53. */
export const MAX_VOLUME_BYTES = 4 * PiB;
/** What a volume gets when the request names no size. */
export const DEFAULT_VOLUME_BYTES = GiB;

export interface CapacityRange {
  requiredBytes: bigint;
  limitBytes: bigint;
}

/**
 * The size to give a volume: the smallest multiple of the extent size that is at least
 * required_bytes and at most limit_bytes. Throws OUT_OF_RANGE when no such size exists.
 */
export function sizeForRange(range: CapacityRange | undefined, extentBytes: number): number {
  const required = checkedBytes(range?.requiredBytes ?? 0n, "capacity_range.required_bytes");
  const limit = checkedBytes(range?.limitBytes ?? 0n, "capacity_range.limit_bytes");
  if (limit > 0 && required > limit) {
    throw outOfRange(
      `capacity_range.required_bytes (${required}) is larger than capacity_range.limit_bytes (${limit})`,
    );
  }
  const wanted = required > 0 ? required : limit > 0 ? Math.min(DEFAULT_VOLUME_BYTES, limit) : DEFAULT_VOLUME_BYTES;
  let size = roundUp(Math.max(wanted, extentBytes), extentBytes);
  if (limit > 0 && size > limit) {
    // Rounding up overshot the ceiling; the largest whole-extent size under it may still satisfy the floor.
    size = Math.floor(limit / extentBytes) * extentBytes;
    if (size === 0 || size < required) {
      throw outOfRange(
        `no size in [required_bytes=${required}, limit_bytes=${limit}] is a multiple of the extent size ${extentBytes}`,
      );
    }
  }
  if (size > MAX_VOLUME_BYTES) {
    throw outOfRange(`requested ${size} bytes; the largest volume loam creates is ${MAX_VOLUME_BYTES} bytes`);
  }
  return size;
}

export function roundUp(bytes: number, unit: number): number {
  return Math.ceil(bytes / unit) * unit;
}

function checkedBytes(value: bigint, field: string): number {
  if (value < 0n) throw invalidArgument(`${field} must not be negative (got ${value})`);
  if (value > BigInt(MAX_VOLUME_BYTES)) {
    throw outOfRange(`${field} is ${value} bytes; the largest volume loam creates is ${MAX_VOLUME_BYTES} bytes`);
  }
  return Number(value);
}

export const MIN_STRIPE_SIZE = 4 * KiB;
export const MAX_STRIPE_SIZE = GiB;

/**
 * A stripe size in bytes, written in the size grammar (src/volumes/quantity.ts): "65536",
 * "64Ki", "1Mi". Returns undefined when the text is not a size; isValidStripeSize says
 * whether LVM takes it.
 */
export function parseStripeSize(text: string): number | undefined {
  const bytes = tryParseQuantity(text);
  return bytes === undefined ? undefined : Number(bytes);
}

/** What stripe sizes are allowed, for error messages. */
export const STRIPE_SIZE_RULES = "a power of two from 4Ki to 1Gi, in bytes or with Ki/Mi/Gi (e.g. 64Ki)";

export function isValidStripeSize(bytes: number): boolean {
  return (
    Number.isSafeInteger(bytes) && bytes >= MIN_STRIPE_SIZE && bytes <= MAX_STRIPE_SIZE && (bytes & (bytes - 1)) === 0
  );
}
