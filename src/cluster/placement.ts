/**
 * Placement: which node gets a new volume. A pure function of the registry as read at one
 * revision; the controller then reserves the choice in one transaction that compares the
 * chosen node's ledger revision (controller.ts), and decides again when it lost a race.
 *
 * Rules, in order:
 * 1. A clone or restore goes to its source's node (and class): nothing else can copy it.
 * 2. The node must be alive (its info key exists, under its lease), have the device class
 *    asked for (or a default class when none is asked), and match one of the requisite
 *    topologies when there are any (a topology matches a node whose segments include all of
 *    its key/values).
 * 3. Free = what the node last reported for the class − Σ reservations not yet reported done;
 *    the size, rounded up to the class's extent, must fit in free and in the class's maximum.
 * 4. Order: nodes matching the first preferred topology, then the second, ..., then the rest;
 *    within each group `spread` puts the most free first and `binpack` the least free that
 *    fits (ties by node id, so a decision is reproducible).
 */
import type { ClassRoom, Ledger, NodeInfo } from "./records.js";

export type PlacementPolicy = "spread" | "binpack";
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ["spread", "binpack"];

export type Segments = Readonly<Record<string, string>>;

export interface Candidate {
  info: NodeInfo;
  ledger: Ledger | undefined;
  /** The ledger key's mod revision (0 when it does not exist yet). */
  ledgerRevision: string;
}

export interface PlacementRequest {
  /** The device class asked for; the node's default class when undefined. */
  deviceClass: string | undefined;
  /** The size wanted before rounding; `sizeOn` rounds it per node. */
  sizeOn: (room: ClassRoom) => number;
  requisite: readonly Segments[];
  preferred: readonly Segments[];
  policy: PlacementPolicy;
  /** A clone or restore: only this node. */
  pinnedNode?: string;
}

export interface Choice {
  candidate: Candidate;
  deviceClass: string;
  sizeBytes: number;
  freeBytes: number;
}

export type Placement =
  | { ok: true; choices: Choice[] }
  | { ok: false; reason: string; best?: { node: string; deviceClass: string; freeBytes: number } };

export function matches(topology: Segments, node: Segments): boolean {
  return Object.entries(topology).every(([key, value]) => node[key] === value);
}

export function reservedFor(ledger: Ledger | undefined, deviceClass: string): number {
  if (!ledger) return 0;
  let sum = 0;
  for (const reservation of Object.values(ledger.reservations)) {
    if (reservation.deviceClass === deviceClass) sum += reservation.bytes;
  }
  return sum;
}

/** What a node's class can still promise: its last report minus what is reserved and not yet reported. */
export function freeBytes(ledger: Ledger | undefined, deviceClass: string): number {
  const room = ledger?.classes[deviceClass];
  if (!room) return 0;
  return Math.max(0, room.availableBytes - reservedFor(ledger, deviceClass));
}

/** The class a request means on this node, or undefined when the node has none such. */
export function classOn(info: NodeInfo, asked: string | undefined): string | undefined {
  if (asked !== undefined) return info.classes.some((c) => c.name === asked) ? asked : undefined;
  return info.classes.find((c) => c.default)?.name;
}

export function place(candidates: readonly Candidate[], request: PlacementRequest): Placement {
  const wanted =
    request.deviceClass === undefined ? "the default device class" : `device class "${request.deviceClass}"`;
  let pool = [...candidates];
  if (request.pinnedNode !== undefined) {
    pool = pool.filter((c) => c.info.nodeId === request.pinnedNode);
    if (pool.length === 0) {
      return {
        ok: false,
        reason: `the source's node ${request.pinnedNode} is not registered (its agent is not running)`,
      };
    }
  }
  if (request.requisite.length > 0) {
    pool = pool.filter((c) => request.requisite.some((t) => matches(t, c.info.segments)));
    if (pool.length === 0) {
      return { ok: false, reason: `no registered node matches the requisite topology ${describe(request.requisite)}` };
    }
  }
  const withClass = pool.flatMap((candidate) => {
    const deviceClass = classOn(candidate.info, request.deviceClass);
    return deviceClass === undefined ? [] : [{ candidate, deviceClass }];
  });
  if (withClass.length === 0) {
    return { ok: false, reason: `no registered node in the requested topology has ${wanted}` };
  }
  const fitting: Choice[] = [];
  let best: { node: string; deviceClass: string; freeBytes: number } | undefined;
  for (const { candidate, deviceClass } of withClass) {
    const room = candidate.ledger?.classes[deviceClass];
    const free = freeBytes(candidate.ledger, deviceClass);
    if (!best || free > best.freeBytes) best = { node: candidate.info.nodeId, deviceClass, freeBytes: free };
    if (!room) continue;
    const size = request.sizeOn(room);
    if (size <= free && size <= room.maximumVolumeBytes)
      fitting.push({ candidate, deviceClass, sizeBytes: size, freeBytes: free });
  }
  if (fitting.length === 0) {
    const reason = `no node has room for the volume in ${wanted}`;
    return best ? { ok: false, reason, best } : { ok: false, reason };
  }
  const rank = (choice: Choice): number => {
    const index = request.preferred.findIndex((t) => matches(t, choice.candidate.info.segments));
    return index < 0 ? request.preferred.length : index;
  };
  fitting.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (request.policy === "spread" ? b.freeBytes - a.freeBytes : a.freeBytes - b.freeBytes) ||
      a.candidate.info.nodeId.localeCompare(b.candidate.info.nodeId),
  );
  return { ok: true, choices: fitting };
}

export function describe(topologies: readonly Segments[]): string {
  return topologies.map((t) => JSON.stringify(t)).join(" or ");
}
