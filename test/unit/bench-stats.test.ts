import { test } from "node:test";
import assert from "node:assert/strict";
import { distribution, median, percentile } from "../../tools/bench/stats.js";

test("percentile is nearest-rank: p50 of 1..20 is 10 and p99 of 20 samples is the maximum", () => {
  const values = Array.from({ length: 20 }, (_, i) => 20 - i);
  assert.equal(percentile(values, 50), 10);
  assert.equal(percentile(values, 99), 20);
  assert.equal(percentile(values, 100), 20);
  assert.equal(percentile(values, 1), 1);
});

test("percentile of 200 samples: p99 is the 198th smallest, not the maximum", () => {
  const values = Array.from({ length: 200 }, (_, i) => i + 1);
  assert.equal(percentile(values, 99), 198);
});

test("median averages the two middle samples of an even count and ignores input order", () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, 1, 3]), 3);
});

test("statistics of no samples are NaN, not zero", () => {
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.ok(Number.isNaN(median([])));
  assert.equal(distribution([]).samples, 0);
});

test("distribution reports count, p50, p99 and mean of the samples", () => {
  assert.deepEqual(distribution([10, 20, 30, 40]), { samples: 4, p50Ms: 20, p99Ms: 40, meanMs: 25 });
});
