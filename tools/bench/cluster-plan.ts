/**
 * The pure parts of the cluster-burst scenario (cluster-burst.ts runs it): the requests and the
 * node capacities, made from a seed so every run asks the same; and the figures computed from
 * what happened: over-commits, requests refused although a node had room, and the registry's
 * bytes by kind of key. Nothing here talks to etcd; test/unit/bench-cluster.test.ts checks it.
 */
import { Keys } from "../../src/cluster/keys.js";
import { GiB, MiB } from "../../src/volumes/size.js";
import { seeded } from "../../test/support/seeded.js";

/** The stand-in engine's allocation unit (test/support/engine-stand-in.ts rounds to it). */
export const PLAN_EXTENT = 4 * MiB;

/** Request sizes and how often each is asked for (weights sum to 100): a mix of small and large claims. */
export const SIZE_MIX: ReadonlyArray<{ bytes: number; weight: number }> = [
  { bytes: 256 * MiB, weight: 30 },
  { bytes: 512 * MiB, weight: 25 },
  { bytes: GiB, weight: 20 },
  { bytes: 2 * GiB, weight: 15 },
  { bytes: 4 * GiB, weight: 10 },
];

/** Node sizes relative to each other, cycled over the nodes: small, medium and large nodes. */
const NODE_SHAPES = [0.5, 1, 1.5] as const;

export interface BurstPlan {
  /** Request i's size in bytes (a multiple of PLAN_EXTENT). */
  sizes: number[];
  /** Node i's capacity in bytes (a multiple of PLAN_EXTENT). */
  capacities: number[];
  requestedBytes: number;
  capacityBytes: number;
}

/**
 * `creates` sizes drawn from SIZE_MIX, and `nodes` capacities that add up to `capacityPercent` of
 * the bytes asked for (rounded down to the extent per node), so that the burst cannot all fit.
 */
export function burstPlan(creates: number, nodes: number, capacityPercent: number, seed = 14): BurstPlan {
  const random = seeded(seed);
  const total = SIZE_MIX.reduce((sum, s) => sum + s.weight, 0);
  const sizes = Array.from({ length: creates }, () => {
    let pick = random() * total;
    for (const s of SIZE_MIX) {
      pick -= s.weight;
      if (pick < 0) return s.bytes;
    }
    return SIZE_MIX[SIZE_MIX.length - 1].bytes;
  });
  const requestedBytes = sizes.reduce((a, b) => a + b, 0);
  const shapes = Array.from({ length: nodes }, (_, i) => NODE_SHAPES[i % NODE_SHAPES.length]);
  const shapeSum = shapes.reduce((a, b) => a + b, 0);
  const target = (requestedBytes * capacityPercent) / 100;
  const capacities = shapes.map((s) => Math.floor((target * s) / shapeSum / PLAN_EXTENT) * PLAN_EXTENT);
  return { sizes, capacities, requestedBytes, capacityBytes: capacities.reduce((a, b) => a + b, 0) };
}

export interface NodeOutcome {
  id: string;
  totalBytes: number;
  usedBytes: number;
  /** Creations the node's engine refused because the controller asked for more than it had. */
  overcommitted: number;
}

export interface OvercommitFigures {
  /** Σ over the nodes of the engine's refusals for want of room: the controller promised too much. */
  overcommits: number;
  /** Nodes whose engine holds more than its capacity (never possible with the stand-in; checked anyway). */
  nodesOverCapacity: string[];
}

export function overcommitFigures(nodes: readonly NodeOutcome[]): OvercommitFigures {
  return {
    overcommits: nodes.reduce((sum, n) => sum + n.overcommitted, 0),
    nodesOverCapacity: nodes.filter((n) => n.usedBytes > n.totalBytes).map((n) => n.id),
  };
}

/**
 * How many RESOURCE_EXHAUSTED refusals a node could still have taken: the refused size (rounded
 * up to the extent, as the node would round it) is at most some node's free bytes after the
 * burst. Nothing is deleted during the burst, so a node's free bytes only shrink: room left
 * at the end was room at the moment of the refusal too. (Room that existed then and was given
 * to a later request is not counted: that refusal was first come, first served, not a stale
 * picture.)
 */
export function refusedAlthoughRoom(
  refusedSizes: readonly number[],
  freeBytesAfter: readonly number[],
  extentBytes = PLAN_EXTENT,
): number {
  const most = freeBytesAfter.reduce((a, b) => Math.max(a, b), 0);
  return refusedSizes.filter((size) => Math.ceil(size / extentBytes) * extentBytes <= most).length;
}

export type RegistryKind = "volume spec" | "volume status" | "volume index" | "ledger" | "member" | "other";

export interface RegistryBytes {
  /** Key + value bytes by kind of key. */
  byKind: Record<RegistryKind, { keys: number; bytes: number }>;
  /** Key + value bytes of the records one volume has (spec, status, index), summed. */
  volumeBytes: number;
  /** Everything under the root: the volumes plus the nodes' members and ledgers. */
  totalBytes: number;
}

/** Sorts the live keys under the registry root by kind and sums their key and value bytes. */
export function registryBytes(keys: Keys, kvs: ReadonlyArray<{ key: string; valueBytes: number }>): RegistryBytes {
  const kinds: RegistryKind[] = ["volume spec", "volume status", "volume index", "ledger", "member", "other"];
  const byKind = Object.fromEntries(kinds.map((k) => [k, { keys: 0, bytes: 0 }])) as RegistryBytes["byKind"];
  for (const { key, valueBytes } of kvs) {
    const parsed = keys.parseNodeKey(key);
    const kind: RegistryKind =
      parsed?.kind === "volumes"
        ? "volume spec"
        : parsed?.kind === "volume-status"
          ? "volume status"
          : key.startsWith(keys.volumeIndexes)
            ? "volume index"
            : key.startsWith(keys.ledgers)
              ? "ledger"
              : key.startsWith(keys.members)
                ? "member"
                : "other";
    byKind[kind].keys++;
    byKind[kind].bytes += Buffer.byteLength(key) + valueBytes;
  }
  const volumeBytes = byKind["volume spec"].bytes + byKind["volume status"].bytes + byKind["volume index"].bytes;
  const totalBytes = kinds.reduce((sum, k) => sum + byKind[k].bytes, 0);
  return { byKind, volumeBytes, totalBytes };
}
