import { test } from "node:test";
import assert from "node:assert/strict";
import { KnobError, readKnobs } from "../../tools/bench/knobs.js";

const defaults = { loam: "/repo/dist/loam.mjs", out: "/repo/bench/results.json" };

test("bench knobs default to every section, 200 churn cycles at 1/8/32, scales 10 and 1000 with 20 samples", () => {
  const knobs = readKnobs({}, defaults);
  assert.deepEqual(knobs.sections, ["mounted", "churn", "rpc", "scale"]);
  assert.equal(knobs.churnCycles, 200);
  assert.deepEqual(knobs.churnConcurrency, [1, 8, 32]);
  assert.deepEqual(knobs.scales, [10, 1000]);
  assert.equal(knobs.scaleSamples, 20);
  assert.equal(knobs.listSamples, 5);
  assert.equal(knobs.listPageSize, 100);
  assert.equal(knobs.rpcConcurrency, 32);
  assert.equal(knobs.rpcSeconds, 5);
  assert.equal(knobs.loam, defaults.loam);
  assert.equal(knobs.out, defaults.out);
  assert.equal(knobs.gitCommit, undefined);
  assert.equal(knobs.logFile, undefined);
  assert.equal(knobs.profileDir, undefined);
});

test("LOAM_BENCH_LOG and LOAM_BENCH_PROFILE ask for loam's debug log and a CPU profile", () => {
  const knobs = readKnobs(
    { LOAM_BENCH_LOG: "/repo/.cache/loam.log", LOAM_BENCH_PROFILE: "/repo/.cache/prof" },
    defaults,
  );
  assert.equal(knobs.logFile, "/repo/.cache/loam.log");
  assert.equal(knobs.profileDir, "/repo/.cache/prof");
});

test("LOAM_BENCH_SECTIONS selects sections and runs them in the fixed order, scale last", () => {
  const knobs = readKnobs({ LOAM_BENCH_SECTIONS: "scale, mounted" }, defaults);
  assert.deepEqual(knobs.sections, ["mounted", "scale"]);
});

test("an unknown section or a non-positive count is refused with the variable's name", () => {
  assert.throws(
    () => readKnobs({ LOAM_BENCH_SECTIONS: "mounted,speed" }, defaults),
    (e: unknown) => e instanceof KnobError && /speed/.test(e.message),
  );
  assert.throws(() => readKnobs({ LOAM_BENCH_CHURN: "0" }, defaults), /LOAM_BENCH_CHURN/);
  assert.throws(() => readKnobs({ LOAM_BENCH_SCALES: "10,ten" }, defaults), /LOAM_BENCH_SCALES/);
});

test("LOAM_BENCH_LOAM, LOAM_BENCH_OUT and LOAM_BENCH_GIT name another build, another results file and its commit", () => {
  const knobs = readKnobs(
    { LOAM_BENCH_LOAM: "/before/loam.mjs", LOAM_BENCH_OUT: "/tmp/before.json", LOAM_BENCH_GIT: "f662320" },
    defaults,
  );
  assert.equal(knobs.loam, "/before/loam.mjs");
  assert.equal(knobs.out, "/tmp/before.json");
  assert.equal(knobs.gitCommit, "f662320");
});

test("scales are sampled in ascending order whatever order they are given in", () => {
  assert.deepEqual(readKnobs({ LOAM_BENCH_SCALES: "1000,10" }, defaults).scales, [10, 1000]);
});
