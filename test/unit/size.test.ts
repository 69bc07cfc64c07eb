import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VOLUME_BYTES, GiB, MAX_VOLUME_BYTES, MiB, sizeForRange } from "../../src/volumes/size.js";
import { VolumeError } from "../../src/volumes/errors.js";

const extent = 4 * MiB;
const range = (required: number | bigint, limit: number | bigint) => ({
  requiredBytes: BigInt(required),
  limitBytes: BigInt(limit),
});
const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof VolumeError, String(error));
    return error.kind;
  }
  return "no error";
};

test("an unset range gets the default size", () => {
  assert.equal(sizeForRange(undefined, extent), DEFAULT_VOLUME_BYTES);
  assert.equal(sizeForRange(range(0, 0), extent), DEFAULT_VOLUME_BYTES);
});

test("required bytes are rounded up to the extent size", () => {
  assert.equal(sizeForRange(range(5 * MiB, 0), extent), 8 * MiB);
  assert.equal(sizeForRange(range(1, 0), extent), 4 * MiB);
  assert.equal(sizeForRange(range(8 * MiB, 0), extent), 8 * MiB);
});

test("a limit alone caps the default size", () => {
  assert.equal(sizeForRange(range(0, 100 * MiB), extent), 100 * MiB);
  assert.equal(sizeForRange(range(0, 2 * GiB), extent), GiB);
});

test("rounding never goes above the limit", () => {
  assert.equal(sizeForRange(range(5 * MiB, 10 * MiB), extent), 8 * MiB);
  // With only a ceiling, the largest whole-extent size under it is chosen.
  assert.equal(sizeForRange(range(0, 6 * MiB), extent), 4 * MiB);
  // With a floor whose rounded size passes the ceiling, there is no valid size.
  assert.equal(
    kindOf(() => sizeForRange(range(4 * MiB + 1, 6 * MiB), extent)),
    "out-of-range",
  );
});

test("impossible ranges are OUT_OF_RANGE", () => {
  assert.equal(
    kindOf(() => sizeForRange(range(10 * MiB, 5 * MiB), extent)),
    "out-of-range",
  );
  assert.equal(
    kindOf(() => sizeForRange(range(0, MiB), extent)),
    "out-of-range",
  );
  assert.equal(
    kindOf(() => sizeForRange(range(BigInt(MAX_VOLUME_BYTES) + 1n, 0), extent)),
    "out-of-range",
  );
  assert.equal(
    kindOf(() => sizeForRange(range(2n ** 62n, 0), extent)),
    "out-of-range",
  );
});

test("negative sizes are INVALID_ARGUMENT naming the field", () => {
  assert.throws(() => sizeForRange(range(-1, 0), extent), /capacity_range.required_bytes must not be negative/);
  assert.throws(() => sizeForRange(range(0, -5), extent), /capacity_range.limit_bytes must not be negative/);
});
