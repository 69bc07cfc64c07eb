import { test } from "node:test";
import assert from "node:assert/strict";
import { KnobError, needsLvm, readKnobs } from "../../tools/bench/knobs.js";

const defaults = { loam: "/repo/dist/loam.mjs", out: "/repo/bench/results.json" };

test("bench knobs default to every section, a storm of 32, 200 churn cycles at 1/8/32, scales 10, 1000 and 5000 with 20 samples", () => {
  const knobs = readKnobs({}, defaults);
  assert.equal(knobs.stormVolumes, 32);
  assert.equal(readKnobs({ LOAM_BENCH_STORM: "8" }, defaults).stormVolumes, 8);
  assert.deepEqual(knobs.sections, [
    "mounted",
    "storm",
    "churn",
    "rpc",
    "native",
    "throughput",
    "cluster-burst",
    "scale",
  ]);
  assert.equal(knobs.churnCycles, 200);
  assert.deepEqual(knobs.churnConcurrency, [1, 8, 32]);
  assert.deepEqual(knobs.scales, [10, 1000, 5000]);
  assert.equal(knobs.scaleSamples, 20);
  assert.equal(knobs.listSamples, 5);
  assert.equal(knobs.listPageSize, 100);
  assert.equal(knobs.rpcConcurrency, 32);
  assert.equal(knobs.rpcSeconds, 5);
  assert.equal(knobs.nativeRounds, 3);
  assert.equal(knobs.nativeSeconds, 15);
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

test("cluster-burst defaults: 100 nodes, 2,000 creates, 64 clients, 2 replicas, 1 etcd member, 20 ms per change, 85 % capacity, spread", () => {
  assert.deepEqual(readKnobs({}, defaults).cluster, {
    nodes: 100,
    creates: 2000,
    clients: 64,
    replicas: 2,
    etcdMembers: 1,
    delayMs: 20,
    capacityPercent: 85,
    placement: "spread",
  });
  const knobs = readKnobs(
    {
      LOAM_BENCH_SECTIONS: "cluster-burst",
      LOAM_BENCH_CLUSTER_ETCD_MEMBERS: "3",
      LOAM_BENCH_CLUSTER_REPLICAS: "4",
      LOAM_BENCH_CLUSTER_DELAY_MS: "0",
      LOAM_BENCH_CLUSTER_PLACEMENT: "binpack",
    },
    defaults,
  );
  assert.deepEqual(knobs.sections, ["cluster-burst"]);
  assert.equal(knobs.out, "/repo/bench/cluster-burst.json", "never over the LVM sections' results");
  assert.equal(needsLvm(knobs.sections), false, "the cluster burst alone needs no LVM");
  assert.equal(needsLvm(["cluster-burst", "churn"]), true);
  assert.equal(knobs.cluster.etcdMembers, 3);
  assert.equal(knobs.cluster.replicas, 4);
  assert.equal(knobs.cluster.delayMs, 0);
  assert.equal(knobs.cluster.placement, "binpack");
});

test("cluster-burst knobs refuse an etcd of 2 members, a negative delay and an unknown placement", () => {
  assert.throws(() => readKnobs({ LOAM_BENCH_CLUSTER_ETCD_MEMBERS: "2" }, defaults), /not 1 or 3/);
  assert.throws(() => readKnobs({ LOAM_BENCH_CLUSTER_DELAY_MS: "-1" }, defaults), /LOAM_BENCH_CLUSTER_DELAY_MS/);
  assert.throws(
    () => readKnobs({ LOAM_BENCH_CLUSTER_PLACEMENT: "random" }, defaults),
    /LOAM_BENCH_CLUSTER_PLACEMENT="random" is not one of spread, binpack/,
  );
});

test("the native section alone needs no LVM and writes native.json beside the LVM results", () => {
  const knobs = readKnobs({ LOAM_BENCH_SECTIONS: "native", LOAM_BENCH_NATIVE_ROUNDS: "2" }, defaults);
  assert.deepEqual(knobs.sections, ["native"]);
  assert.equal(needsLvm(knobs.sections), false);
  assert.equal(needsLvm(["native", "rpc"]), true);
  assert.equal(knobs.out, "/repo/bench/native.json");
  assert.equal(knobs.nativeRounds, 2);
  assert.throws(() => readKnobs({ LOAM_BENCH_NATIVE_SECONDS: "0" }, defaults), /LOAM_BENCH_NATIVE_SECONDS/);
  assert.equal(knobs.nativeV8Flags, undefined, "loam runs with the deployed flags unless told");
  assert.deepEqual(readKnobs({ LOAM_BENCH_NATIVE_V8_FLAGS: "none" }, defaults).nativeV8Flags, []);
  assert.deepEqual(readKnobs({ LOAM_BENCH_NATIVE_V8_FLAGS: " --a=1  --b " }, defaults).nativeV8Flags, ["--a=1", "--b"]);
});
