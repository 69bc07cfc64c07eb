/**
 * cluster-burst (issue 14): a burst of CreateVolumes against cluster mode's placement. Real
 * etcd (test/support/etcd.ts: 1 member, or 3), `nodes` simulated nodes — real NodeAgents over
 * InMemoryEngineStandIn engines whose every change takes `delayMs` (standing for lvcreate) —
 * with capacity for only part of what is asked, and `creates` CreateVolumes of mixed sizes from
 * `clients` concurrent clients spread over `replicas` ClusterControllers in this process, each
 * with its own etcd client. No LVM: it runs on the host (scripts/bench) or in the guest.
 *
 * Figures: over-commits (goal 0), refusals although a node had room (goal 0), CreateVolume
 * latency and throughput, lost reservation races, and the registry's size per volume twice:
 * the live keys and values under the root, and the growth of etcd's database.
 */
import { randomUUID } from "node:crypto";
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { ClusterController } from "../../src/cluster/controller.js";
import { DEFAULT_ROOT, Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";
import { VolumeError } from "../../src/volumes/errors.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { InMemoryEngineStandIn } from "../../test/support/engine-stand-in.js";
import { EtcdCluster } from "../../test/support/etcd.js";
import {
  type OvercommitFigures,
  type RegistryBytes,
  burstPlan,
  overcommitFigures,
  refusedAlthoughRoom,
  registryBytes,
} from "./cluster-plan.js";
import type { ClusterKnobs } from "./knobs.js";
import { say } from "./lab.js";
import { type Distribution, distribution } from "./stats.js";

export const TOPOLOGY_KEY = "topology.loam.csi.dev/node";

export interface EtcdSize {
  /** etcd's maintenance Status of member 0: the database file and the part of it in use. */
  dbSizeBytes: number;
  dbSizeInUseBytes: number;
}

export interface ClusterBurstResult {
  knobs: ClusterKnobs;
  requestedBytes: number;
  capacityBytes: number;
  created: number;
  /** RESOURCE_EXHAUSTED answers. */
  refused: number;
  /** Any other failure, by kind (none expected), with the first few messages. */
  otherErrors: Record<string, number>;
  otherErrorSamples: string[];
  overcommits: OvercommitFigures;
  refusedAlthoughRoom: number;
  /** The smallest refused request, to read beside mostFreeOnANodeAfter (0 when none was refused). */
  smallestRefusedBytes: number;
  /** Free bytes left on all nodes together after the burst, and on the emptiest node. */
  freeBytesAfter: number;
  mostFreeOnANodeAfter: number;
  latency: { created: Distribution; refused: Distribution };
  createsPerSecond: number;
  answersPerSecond: number;
  reservationConflicts: number;
  placements: number;
  etcd: {
    /** The fresh etcd, compacted and defragmented, before any agent registered. */
    empty: EtcdSize;
    /** After the agents registered, before the burst. */
    before: EtcdSize;
    /** Right after the burst: the live data and every earlier revision (etcd keeps history until compacted). */
    after: EtcdSize;
    /** After compacting at the last revision and defragmenting: the live data only. */
    afterCompaction: EtcdSize;
    /** Growth of the size in use over the burst / volumes created, history included. */
    inUseBytesPerVolume: number;
    /** (database file after the burst − the empty one), both compacted and defragmented, / volumes created; includes the nodes' members and ledgers. */
    bytesPerVolumeAfterCompaction: number;
  };
  registry: RegistryBytes & { volumeBytesPerVolume: number; totalBytesPerVolume: number };
  seconds: { setup: number; burst: number; total: number };
}

async function etcdSize(client: Etcd3): Promise<EtcdSize> {
  const status = await client.maintenance.status();
  return { dbSizeBytes: Number(status.dbSize), dbSizeInUseBytes: Number(status.dbSizeInUse) };
}

/**
 * Compacts the history at the current revision and defragments member 0, then reads its size:
 * what the live data alone takes. (Compaction without defragmentation leaves bbolt's pages
 * half empty, so the size in use barely moves.)
 */
async function compacted(client: Etcd3): Promise<EtcdSize> {
  const { header } = await client.get("/").exec();
  await client.kv.compact({ revision: header.revision, physical: true });
  await client.maintenance.defragment({});
  return etcdSize(client);
}

/** The parameters external-provisioner sends with --extra-create-metadata (loam records them in the spec). */
function claim(name: string, i: number): Record<string, string> {
  return {
    "csi.storage.k8s.io/pvc/name": `data-burst-${i}`,
    "csi.storage.k8s.io/pvc/namespace": "bench",
    "csi.storage.k8s.io/pv/name": name,
  };
}

export async function clusterBurst(knobs: ClusterKnobs): Promise<ClusterBurstResult> {
  const t0 = performance.now();
  const plan = burstPlan(knobs.creates, knobs.nodes, knobs.capacityPercent);
  const etcd = await EtcdCluster.start(knobs.etcdMembers);
  const clients: Etcd3[] = [];
  const agents: NodeAgent[] = [];
  const newClient = (hosts: string[]): Etcd3 => {
    const client = new Etcd3({ hosts });
    clients.push(client);
    return client;
  };
  try {
    const keys = new Keys(DEFAULT_ROOT);
    // Member 0 alone answers the size questions, so before and after are the same database.
    const sizer = newClient([etcd.endpoints[0]]);
    // Compacted and defragmented while nobody watches. A compaction just after the agents open
    // their watches makes etcd cancel those still catching up; the agent cancels them again, and
    // etcd3 throws an uncaught "Failed to find watcher for IWatchResponse" from its stream handler.
    const empty = await compacted(sizer);
    // The agents share one client (one process); each replica has its own, as separate processes would.
    const agentRegistry = new Registry(newClient(etcd.endpoints), keys);
    const engines = plan.capacities.map(
      (totalBytes) =>
        new InMemoryEngineStandIn([{ name: "default", type: "thick", default: true, totalBytes }], knobs.delayMs),
    );
    const nodeIds = engines.map((_, i) => `node-${String(i + 1).padStart(3, "0")}`);
    for (let i = 0; i < engines.length; i += 20) {
      const batch = engines.slice(i, i + 20).map((engine, j) => {
        const nodeId = nodeIds[i + j];
        const agent = new NodeAgent({
          registry: agentRegistry,
          nodeId,
          segments: { [TOPOLOGY_KEY]: nodeId },
          engine,
          version: "bench",
        });
        agents.push(agent);
        return agent.start();
      });
      await Promise.all(batch);
    }
    const replicas = Array.from(
      { length: knobs.replicas },
      () =>
        new ClusterController({
          registry: new Registry(newClient(etcd.endpoints), keys),
          policy: knobs.placement,
          nodeTimeoutMs: 60_000,
        }),
    );
    const before = await etcdSize(sizer);
    const tSetup = performance.now();
    say(
      `   ${knobs.nodes} nodes (${(plan.capacityBytes / 1024 ** 3).toFixed(0)} GiB) for ${knobs.creates} requests (${(plan.requestedBytes / 1024 ** 3).toFixed(0)} GiB); set up in ${((tSetup - t0) / 1000).toFixed(1)} s`,
    );

    const createdMs: number[] = [];
    const refusedMs: number[] = [];
    const refusedSizes: number[] = [];
    const otherErrors: Record<string, number> = {};
    const otherErrorSamples: string[] = [];
    let next = 0;
    const client = async (c: number): Promise<void> => {
      const controller = replicas[c % replicas.length];
      while (next < plan.sizes.length) {
        const i = next++;
        const size = plan.sizes[i];
        const name = `pvc-${randomUUID()}`;
        const start = performance.now();
        try {
          await controller.createVolume({
            name,
            range: { requiredBytes: BigInt(size), limitBytes: 0n },
            parameters: parseParameters(claim(name, i)),
            requisite: [],
            preferred: [],
          });
          createdMs.push(performance.now() - start);
        } catch (error) {
          const kind = error instanceof VolumeError ? error.kind : "unexpected";
          if (kind === "resource-exhausted") {
            refusedMs.push(performance.now() - start);
            refusedSizes.push(size);
          } else {
            otherErrors[kind] = (otherErrors[kind] ?? 0) + 1;
            if (otherErrorSamples.length < 5)
              otherErrorSamples.push(error instanceof Error ? error.message : String(error));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: knobs.clients }, (_, c) => client(c)));
    const tBurst = performance.now();
    const burstSeconds = (tBurst - tSetup) / 1000;

    const outcomes = engines.map((engine, i) => ({
      id: nodeIds[i],
      totalBytes: plan.capacities[i],
      usedBytes: engine.usedBytes("default"),
      overcommitted: engine.overcommitted,
    }));
    const free = outcomes.map((n) => n.totalBytes - n.usedBytes);
    const after = await etcdSize(sizer);
    // The agents stop watching, and keep their registrations (not revoked) for the count below.
    await Promise.all(agents.map((a) => a.stop(false)));
    const live = await sizer.getAll().prefix(`${keys.root}/`).exec();
    const registry = registryBytes(
      keys,
      live.kvs.map((kv) => ({ key: kv.key.toString(), valueBytes: kv.value.length })),
    );
    const afterCompaction = await compacted(sizer);
    const created = createdMs.length;
    const perVolume = (bytes: number): number => (created ? bytes / created : Number.NaN);
    return {
      knobs,
      requestedBytes: plan.requestedBytes,
      capacityBytes: plan.capacityBytes,
      created,
      refused: refusedMs.length,
      otherErrors,
      otherErrorSamples,
      overcommits: overcommitFigures(outcomes),
      refusedAlthoughRoom: refusedAlthoughRoom(refusedSizes, free),
      smallestRefusedBytes: refusedSizes.length ? Math.min(...refusedSizes) : 0,
      freeBytesAfter: free.reduce((a, b) => a + b, 0),
      mostFreeOnANodeAfter: Math.max(0, ...free),
      latency: { created: distribution(createdMs), refused: distribution(refusedMs) },
      createsPerSecond: created / burstSeconds,
      answersPerSecond: (created + refusedMs.length) / burstSeconds,
      reservationConflicts: replicas.reduce((sum, r) => sum + r.stats.reservationConflicts, 0),
      placements: replicas.reduce((sum, r) => sum + r.stats.placements, 0),
      etcd: {
        empty,
        before,
        after,
        afterCompaction,
        inUseBytesPerVolume: perVolume(after.dbSizeInUseBytes - before.dbSizeInUseBytes),
        bytesPerVolumeAfterCompaction: perVolume(afterCompaction.dbSizeBytes - empty.dbSizeBytes),
      },
      registry: {
        ...registry,
        volumeBytesPerVolume: perVolume(registry.volumeBytes),
        totalBytesPerVolume: perVolume(registry.totalBytes),
      },
      seconds: { setup: (tSetup - t0) / 1000, burst: burstSeconds, total: (performance.now() - t0) / 1000 },
    };
  } finally {
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    for (const c of clients) c.close();
    await etcd.stop();
  }
}
