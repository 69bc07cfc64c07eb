/**
 * The one size grammar loam reads, wherever a person writes a size: `loam csi` flags, the
 * node config, deploy/values.json and the StorageClass parameter stripeSize. It is the
 * Kubernetes quantity as `resource.Quantity` reads it, restricted to whole bytes:
 *
 *   1073741824   plain bytes
 *   1Gi 512Mi    binary suffixes Ki Mi Gi Ti Pi Ei (powers of 1024)
 *   1G 500M 64k  decimal suffixes k M G T P E (powers of 1000; lowercase k, as in Kubernetes)
 *   1e9 1E3      a decimal exponent
 *   1.5Gi .5Ki   a fraction, when the result is a whole number of bytes
 *
 * What Quantity refuses is refused here too ("K", "kb", "1 Gi", "GiB"), as are negative
 * sizes, the sub-unit suffixes m, u and n, fractions of a byte, and anything above int64.
 */

/** What the grammar allows, for error messages. */
export const SIZE_RULES =
  "bytes as a whole number (e.g. 1073741824), or with a suffix: Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) " +
  "or k, M, G, T, P, E (powers of 1000), or with an exponent (e.g. 1e9); " +
  "a fraction such as 1.5Gi is allowed when it comes to whole bytes";

export const MAX_QUANTITY_BYTES = 0x7fffffffffffffffn;

export class QuantityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QuantityError";
  }
}

const MULTIPLIERS: Readonly<Record<string, bigint>> = {
  "": 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
};

/** Sign, digits with an optional fraction, then a suffix or an exponent (as in apimachinery's parser). */
const QUANTITY = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$/;

/** Reads a size in bytes; throws QuantityError saying what is wrong and what is allowed. */
export function parseQuantity(text: string): bigint {
  const match = QUANTITY.exec(text);
  if (!match) throw new QuantityError(`"${text}" is not a size; allowed: ${SIZE_RULES}`);
  const [, sign, number = "", suffix, exponentText] = match;
  if (sign === "-") throw new QuantityError(`"${text}" is negative; a size must be 0 or more`);
  const [whole = "", fraction = ""] = number.split(".");
  const digits = BigInt(`${whole}${fraction}` || "0");
  if (digits === 0n) return 0n;
  // The value is digits × multiplier × 10^scale: above 10^40 it is past int64, and a scale far
  // below the digits' own length cannot come to whole bytes; neither needs the arithmetic.
  const scale = (exponentText === undefined ? 0 : Number(exponentText)) - fraction.length;
  if (scale > 40) throw tooLarge(text);
  if (scale < -(String(digits).length + 40)) throw notWhole(text);
  const numerator = digits * (MULTIPLIERS[suffix ?? ""] ?? 1n) * 10n ** BigInt(Math.max(scale, 0));
  const denominator = 10n ** BigInt(Math.max(-scale, 0));
  if (numerator % denominator !== 0n) throw notWhole(text);
  const bytes = numerator / denominator;
  if (bytes > MAX_QUANTITY_BYTES) throw tooLarge(text);
  return bytes;
}

/** The size, or undefined when the text is not one (for callers with their own message). */
export function tryParseQuantity(text: string): bigint | undefined {
  try {
    return parseQuantity(text);
  } catch (error) {
    if (error instanceof QuantityError) return undefined;
    throw error;
  }
}

function notWhole(text: string): QuantityError {
  return new QuantityError(`"${text}" is not a whole number of bytes; allowed: ${SIZE_RULES}`);
}

function tooLarge(text: string): QuantityError {
  return new QuantityError(`"${text}" is larger than an int64 (at most ${MAX_QUANTITY_BYTES} bytes)`);
}
