import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_QUANTITY_BYTES, parseQuantity, QuantityError, tryParseQuantity } from "../../src/volumes/quantity.js";

const Ki = 1024n;
const Mi = Ki * 1024n;
const Gi = Mi * 1024n;

// What resource.Quantity reads, restricted to whole bytes.
const ACCEPTED: Array<[string, bigint]> = [
  ["0", 0n],
  ["4096", 4096n],
  ["+4096", 4096n],
  ["9223372036854775807", MAX_QUANTITY_BYTES],
  ["1k", 1000n],
  ["1M", 1000n ** 2n],
  ["1G", 1000n ** 3n],
  ["2T", 2n * 1000n ** 4n],
  ["1P", 1000n ** 5n],
  ["1E", 1000n ** 6n],
  ["64Ki", 64n * Ki],
  ["512Mi", 512n * Mi],
  ["1Gi", Gi],
  ["2Ti", 2n * Gi * Ki],
  ["1Pi", Gi * Mi],
  ["1Ei", Gi * Gi],
  ["1e3", 1000n],
  ["1E9", 1_000_000_000n],
  ["1e+3", 1000n],
  ["20e-1", 2n],
  ["1.5Gi", 1536n * Mi],
  [".5Ki", 512n],
  ["1.Ki", Ki],
  ["0.5k", 500n],
  ["2.5e2", 250n],
  ["1000e-3", 1n],
  ["0e99", 0n],
  ["0.0", 0n],
];

const REFUSED: Array<[string, RegExp]> = [
  ["", /not a size; allowed: .*Ki, Mi, Gi/],
  ["K", /not a size/],
  ["1K", /not a size/],
  ["1kb", /not a size/],
  ["1KB", /not a size/],
  ["1GiB", /not a size/],
  ["2TiB", /not a size/],
  ["1 Gi", /not a size/],
  [" 1Gi", /not a size/],
  ["1Gi ", /not a size/],
  ["1gi", /not a size/],
  ["1g", /not a size/],
  ["1m", /not a size/],
  ["1u", /not a size/],
  ["1n", /not a size/],
  ["Gi", /not a size/],
  [".", /not a size/],
  ["1e", /not a size/],
  ["1e1.5", /not a size/],
  ["1.5e", /not a size/],
  ["0x10", /not a size/],
  ["1,000", /not a size/],
  ["-1", /negative/],
  ["-1Gi", /negative/],
  ["0.1", /not a whole number of bytes/],
  ["1.5", /not a whole number of bytes/],
  ["1e-3", /not a whole number of bytes/],
  ["0.0001Ki", /not a whole number of bytes/],
  ["9223372036854775808", /larger than an int64/],
  ["8Ei", /larger than an int64/],
  ["10E", /larger than an int64/],
  ["1e19", /larger than an int64/],
  ["1e999999", /larger than an int64/],
  ["1e-999999", /not a whole number of bytes/],
];

for (const [text, bytes] of ACCEPTED) {
  test(`size "${text}" is ${bytes} bytes`, () => {
    assert.equal(parseQuantity(text), bytes);
    assert.equal(tryParseQuantity(text), bytes);
  });
}

for (const [text, message] of REFUSED) {
  test(`size "${text}" is refused`, () => {
    assert.throws(
      () => parseQuantity(text),
      (error) => error instanceof QuantityError && message.test(error.message),
    );
    assert.equal(tryParseQuantity(text), undefined);
  });
}

test("a refusal names the size and what is allowed", () => {
  assert.throws(() => parseQuantity("1kb"), {
    message:
      /^"1kb" is not a size; allowed: .*Ki, Mi, Gi, Ti, Pi, Ei \(powers of 1024\).*k, M, G, T, P, E \(powers of 1000\).*1e9.*1\.5Gi/,
  });
});
