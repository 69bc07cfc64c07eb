/**
 * Controller failover with real processes on a real three-member etcd: two `loam controller`
 * replicas, one node agent over the in-memory engine stand-in. The replica holding the
 * background-work election is SIGKILLed while a CreateVolume it accepted is in flight (held by
 * the agent's hook once the spec is in etcd). The client sees the connection drop (UNAVAILABLE,
 * which the external-provisioner retries), retries the same request on the other replica and
 * finds the same volume: one volume, one engine create. The other replica takes the election
 * over once the dead one's lease ends; the time is printed (docs/reliability.md has the figure).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { NodeAgent } from "../../src/cluster/agent.js";
import { CsiClient } from "../../src/csi/client.js";
import { Controller, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { GiB } from "../../src/volumes/size.js";
import { Etcd3 } from "etcd3";
import { Registry } from "../../src/cluster/registry.js";
import { TOPOLOGY_KEY } from "../support/cluster.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";
import { parseExposition } from "../support/exposition.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));
const LEASE_SECONDS = 2;

interface Replica {
  name: string;
  process: ChildProcess;
  client: CsiClient;
  metricsPort: number;
}

let etcd: EtcdCluster;
let dir: string;
before(async () => {
  etcd = await EtcdCluster.start(3);
  dir = await mkdtemp(join(tmpdir(), "loam-failover-"));
});
after(async () => {
  await etcd.stop();
  await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startReplica(name: string): Promise<Replica> {
  const socket = join(dir, `${name}.sock`);
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      "controller",
      "--etcd-endpoints",
      etcd.endpoints.join(","),
      "--endpoint",
      `unix://${socket}`,
      "--metrics-address",
      `127.0.0.1:${metricsPort}`,
      "--election-lease-seconds",
      String(LEASE_SECONDS),
      "--node-timeout-seconds",
      "30",
      "--log-level",
      "error",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const client = new CsiClient(`unix://${socket}`);
  for (let i = 0; i < 150; i++) {
    try {
      await client.call(Identity, "probe", {}, { timeoutMs: 1000 });
      return { name, process: child, client, metricsPort };
    } catch {
      if (child.exitCode !== null) throw new Error(`replica ${name} exited with ${child.exitCode}`);
      await sleep(100);
    }
  }
  throw new Error(`replica ${name} did not answer`);
}

async function leads(replica: Replica): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`);
    const { samples } = parseExposition(await response.text());
    return samples.some((s) => s.name === "loam_cluster_controller_leader" && s.value === 1);
  } catch {
    return false;
  }
}

async function until(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

test(
  "a replica killed while leading and serving a CreateVolume: the client's retry on another replica finds the same volume, and the election moves",
  { timeout: 90_000 },
  async () => {
    // This file's own etcd, so the registry's default root as `loam controller` uses it.
    const etcdClient = new Etcd3({ hosts: etcd.endpoints });
    const registry = new Registry(etcdClient);
    const engine = new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes: 8 * GiB }]);
    let specInEtcd!: () => void;
    const specSeen = new Promise<void>((resolve) => (specInEtcd = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const agent = new NodeAgent({
      registry,
      nodeId: "node-a",
      segments: { [TOPOLOGY_KEY]: "node-a" },
      engine,
      version: "test",
      beforeAct: async (work) => {
        if (work.kind !== "volume") return;
        specInEtcd();
        await released;
      },
    });
    await agent.start();
    const replicas: Replica[] = [];
    try {
      replicas.push(await startReplica("r1"));
      await until(() => leads(replicas[0]), 20_000, "the first replica leads");
      replicas.push(await startReplica("r2"));
      const [leader, heir] = replicas as [Replica, Replica];
      assert.equal(await leads(heir), false, "one leader at a time");

      const request = {
        name: "in-flight-at-the-kill",
        capacityRange: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        volumeCapabilities: [
          {
            accessType: { case: "mount" as const, value: { fsType: "xfs", mountFlags: [], volumeMountGroup: "" } },
            accessMode: { mode: 1 },
          },
        ],
        parameters: {},
      };
      const first = leader.client.call(Controller, "createVolume", request, { timeoutMs: 30_000 }).then(
        () => "answered",
        (error: { code: number }) => error.code,
      );
      await specSeen;
      const killedAt = Date.now();
      leader.process.kill("SIGKILL");
      // The connection drops: UNAVAILABLE, a code the external-provisioner retries.
      assert.equal(await first, status.UNAVAILABLE);

      const retry = heir.client.call(Controller, "createVolume", request, { timeoutMs: 30_000 });
      release();
      const answer = await retry;
      await until(() => leads(heir), 20_000, "the surviving replica takes the election");
      const takeoverMs = Date.now() - killedAt;
      console.log(`# election taken over ${takeoverMs} ms after SIGKILL (lease ${LEASE_SECONDS} s)`);

      assert.equal(answer.volume?.capacityBytes, BigInt(GiB));
      assert.deepEqual([...engine.volumes.keys()], [answer.volume?.volumeId], "one volume in the engine");
      assert.deepEqual(
        engine.calls.filter((c) => c.startsWith("create")),
        ["create in-flight-at-the-kill"],
        "the engine made it once",
      );
      const again = await heir.client.call(Controller, "createVolume", request);
      assert.equal(again.volume?.volumeId, answer.volume?.volumeId, "a later retry finds it too");
      // The lease cannot have ended sooner than its time to live after the last keep-alive.
      assert.ok(takeoverMs >= (LEASE_SECONDS * 1000) / 3, `took over after ${takeoverMs} ms`);
    } finally {
      release();
      for (const r of replicas) {
        r.client.close();
        if (r.process.exitCode === null && r.process.signalCode === null) {
          const gone = new Promise((resolve) => r.process.once("exit", resolve));
          r.process.kill("SIGTERM");
          await gone;
        }
      }
      await agent.stop();
      etcdClient.close();
    }
  },
);
