/**
 * The controllers' background work over real etcd: one replica at a time holds the election
 * and does it, another takes over when the holder resigns or its lease ends, and the sweep
 * removes only reservations no pending work explains.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { BackgroundWork } from "../../src/cluster/background.js";
import { withReservation } from "../../src/cluster/controller.js";
import { LedgerSchema, VolumeSpecSchema } from "../../src/cluster/records.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { GiB } from "../../src/volumes/size.js";
import { TestCluster } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";

const HOLDER = fileURLToPath(new URL("../support/election-holder.js", import.meta.url));

let etcd: EtcdCluster;
before(async () => {
  etcd = await EtcdCluster.start(1);
});
after(async () => {
  await etcd.stop();
});

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(20);
  }
}

test("one replica holds the election at a time; another takes over when it resigns", async () => {
  const cluster = TestCluster.create(etcd.endpoints);
  const changes: string[] = [];
  const replicas = ["r1", "r2", "r3"].map(
    (identity) =>
      new BackgroundWork({
        registry: cluster.registry,
        identity,
        leaseSeconds: 2,
        onLeadership: (leader) => changes.push(`${identity}:${leader}`),
      }),
  );
  try {
    replicas.forEach((r) => r.start());
    await until(() => replicas.some((r) => r.leader));
    await sleep(300);
    assert.equal(replicas.filter((r) => r.leader).length, 1, "exactly one leader");
    const first = replicas.find((r) => r.leader)!;
    const started = Date.now();
    await first.stop();
    await until(() => replicas.some((r) => r !== first && r.leader));
    const takeover = Date.now() - started;
    assert.equal(replicas.filter((r) => r.leader).length, 1);
    assert.ok(takeover < 5000, `took over in ${takeover} ms`);
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await cluster.close();
  }
});

test("a replica killed while holding the election is replaced once its lease expires", async () => {
  const cluster = TestCluster.create(etcd.endpoints);
  const holder = spawn(process.execPath, [HOLDER, etcd.endpoints.join(","), cluster.registry.keys.root, "doomed"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const heir = new BackgroundWork({ registry: cluster.registry, identity: "heir", leaseSeconds: 2 });
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("leader") && resolve());
      holder.once("exit", () => reject(new Error("the holder exited before it was elected")));
    });
    heir.start();
    await sleep(300);
    assert.equal(heir.leader, false, "the holder still leads");
    const killed = Date.now();
    holder.kill("SIGKILL");
    await until(() => heir.leader, 15_000);
    const takeover = Date.now() - killed;
    // The lease is 2 s: the heir cannot lead before it ends, and leads soon after.
    assert.ok(takeover >= 1000 && takeover < 6000, `took over ${takeover} ms after the kill`);
  } finally {
    holder.kill("SIGKILL");
    await heir.stop();
    await cluster.close();
  }
});

test("a replica that lost the election while etcd was gone, and campaigned again, exits on SIGTERM once etcd is back", async () => {
  const cluster = TestCluster.create(etcd.endpoints);
  const holder = spawn(process.execPath, [HOLDER, etcd.endpoints.join(","), cluster.registry.keys.root, "outlived"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  holder.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => holder.once("exit", (code) => resolve(code)));
  const count = (line: string): number => out.split("\n").filter((l) => l === line).length;
  try {
    await until(() => count("leader") === 1, 15_000);
    // etcd gone for longer than the 2 s lease: leadership is lost, and every new campaign fails
    // while it stays gone (the holder campaigns again each second).
    await etcd.killMember(0);
    await until(() => count("lost") === 1, 15_000);
    await sleep(4000);
    await etcd.startMember(0);
    await etcd.waitHealthy();
    await until(() => count("leader") === 2, 30_000);
    // One candidate key: the campaigns that failed while etcd was gone left no live lease behind.
    const candidates = await cluster.registry.client
      .getAll()
      .prefix(`${cluster.registry.keys.root}/controller/`)
      .keys();
    assert.equal(candidates.length, 1, `one campaign in the election, not ${candidates.join(", ")}`);
    holder.kill("SIGTERM");
    const code = await Promise.race([exited, sleep(10_000).then(() => "still running" as const)]);
    assert.equal(code, 0, `the holder exits on SIGTERM by itself (output: ${out.trim().split("\n").join(", ")})`);
    assert.ok(out.includes("stopped"));
  } finally {
    holder.kill("SIGKILL");
    await cluster.close();
  }
});

test("the sweep removes a reservation no pending work explains, after its grace, and keeps the others", async () => {
  const cluster = TestCluster.create(etcd.endpoints);
  try {
    await cluster.addNode("a");
    const v = await cluster.controller.createVolume({
      name: "kept",
      range: { requiredBytes: BigInt(GiB), limitBytes: 0n },
      parameters: parseParameters({}),
      requisite: [],
      preferred: [],
    });
    const keys = cluster.registry.keys;
    // Stop the agent so a pending spec stays pending, then plant: an orphan reservation (no spec),
    // and a pending one (a spec the agent has not acted on).
    await cluster.node("a").agent.stop(false);
    const spec = (await cluster.registry.read(VolumeSpecSchema, keys.volume("a", v.id))).value!;
    await cluster.client
      .put(keys.volume("a", v.id))
      .value(
        cluster.registry.encode(VolumeSpecSchema, { ...spec, sizeBytes: 2 * GiB, generation: spec.generation + 1 }),
      );
    const old = new Date(Date.now() - 3600_000).toISOString();
    const ledger = (await cluster.registry.read(LedgerSchema, keys.ledger("a"))).value;
    let planted = withReservation(ledger, "volume:orphan-1", "default", GiB, old);
    planted = withReservation(planted, `expand:${v.id}`, "default", GiB, old);
    planted = withReservation(planted, "volume:young-1", "default", GiB, new Date().toISOString());
    await cluster.client.put(keys.ledger("a")).value(cluster.registry.encode(LedgerSchema, planted));
    const work = new BackgroundWork({ registry: cluster.registry, identity: "t", graceSeconds: 60 });
    assert.equal(await work.sweepOnce(), 1);
    const after = (await cluster.registry.read(LedgerSchema, keys.ledger("a"))).value!;
    assert.deepEqual(Object.keys(after.reservations).sort(), [`expand:${v.id}`, "volume:young-1"].sort());
  } finally {
    await cluster.close();
  }
});
