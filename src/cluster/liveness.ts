/**
 * Lost nodes. A node is registered while its `members/<node>` key, held by its agent's lease,
 * exists; when the lease expires the key goes and the node's `ledgers/<node>` stays: the node
 * is lost. Its volumes' data is on its disks, so nothing here moves or recreates anything:
 *
 * - read time (the controller's ListVolumes, ControllerGetVolume, DeleteVolume): the member
 *   key decides, so a lost node is seen as lost before anyone marked it; `lostCondition` is
 *   the VolumeCondition its volumes report, `tombstoneDue` whether a delete stops waiting;
 * - background (the controller holding the election, background.ts): `markLostNodes` writes
 *   `lost/<node>` (since when) for each lost node and removes it when the node registers again,
 *   logging each transition; its count feeds the `loam_cluster_lost_nodes` gauge.
 */
import type { Logger } from "../log.js";
import type { VolumeCondition } from "../volumes/volume.js";
import type { Segments } from "./placement.js";
import { LedgerSchema, type LostNode, LostNodeSchema, NodeInfoSchema } from "./records.js";
import { type Registry, stored } from "./registry.js";

export interface NodeLiveness {
  node: string;
  /** Its member key exists (its agent's lease is alive). */
  registered: boolean;
  /** The registered node's topology segments. */
  segments?: Segments;
  /** The leader's mark, when it has written one. */
  lost?: LostNode;
  /** The ledger's `reportedAt`: the last time the node's agent is known to have worked. */
  lastReport?: string;
}

/** Every node that has a member key, a ledger or a lost mark. */
export async function readLiveness(registry: Registry): Promise<Map<string, NodeLiveness>> {
  const keys = registry.keys;
  const [members, ledgers, lost] = await Promise.all([
    registry.range(keys.members),
    registry.range(keys.ledgers),
    registry.range(keys.lostNodes),
  ]);
  const nodes = new Map<string, NodeLiveness>();
  const at = (node: string): NodeLiveness => {
    let entry = nodes.get(node);
    if (!entry) nodes.set(node, (entry = { node, registered: false }));
    return entry;
  };
  for (const kv of members.kvs) {
    const entry = at(kv.key.toString().slice(keys.members.length));
    entry.registered = true;
    const info = stored(NodeInfoSchema, kv).value;
    if (info) entry.segments = info.segments;
  }
  for (const kv of ledgers.kvs) {
    const entry = at(kv.key.toString().slice(keys.ledgers.length));
    const ledger = stored(LedgerSchema, kv).value;
    if (ledger) entry.lastReport = ledger.reportedAt;
  }
  for (const kv of lost.kvs) {
    const mark = stored(LostNodeSchema, kv).value;
    if (mark) at(kv.key.toString().slice(keys.lostNodes.length)).lost = mark;
  }
  return nodes;
}

/** One node's liveness (three reads). */
export async function livenessOf(registry: Registry, node: string): Promise<NodeLiveness> {
  const keys = registry.keys;
  const [member, ledger, lost] = await Promise.all([
    registry.read(NodeInfoSchema, keys.info(node)),
    registry.read(LedgerSchema, keys.ledger(node)),
    registry.read(LostNodeSchema, keys.lost(node)),
  ]);
  return {
    node,
    registered: member.modRevision !== "0",
    ...(member.value ? { segments: member.value.segments } : {}),
    ...(lost.value ? { lost: lost.value } : {}),
    ...(ledger.value ? { lastReport: ledger.value.reportedAt } : {}),
  };
}

/** The condition of every volume on a node that is not registered; undefined for a registered node. */
export function lostCondition(liveness: NodeLiveness): VolumeCondition | undefined {
  if (liveness.registered) return undefined;
  const since = liveness.lost?.since ?? liveness.lastReport;
  const renewed = since ? `has not renewed its lease since ${since}` : "has no lease";
  const report = liveness.lastReport ? ` (its last report: ${liveness.lastReport})` : "";
  return {
    abnormal: true,
    message:
      `node ${liveness.node} lost: its agent ${renewed}${report}; the data is on that node's disks ` +
      "and is not moved elsewhere; the volume is usable again when the node returns",
  };
}

/**
 * Whether a delete of something on this node records a tombstone instead of waiting for the
 * agent: the node is not registered and either the leader marked it lost or its last report
 * is older than the node timeout (or it never reported). A node that merely restarts its
 * agent (registration gone for a moment, a fresh report) is waited for as usual.
 */
export function tombstoneDue(liveness: NodeLiveness, nodeTimeoutMs: number, now = Date.now()): boolean {
  if (liveness.registered) return false;
  if (liveness.lost) return true;
  const last = liveness.lastReport ? Date.parse(liveness.lastReport) : NaN;
  return Number.isNaN(last) || now - last > nodeTimeoutMs;
}

/**
 * The leader's pass: marks each node that has a ledger and no registration as lost, and
 * unmarks each marked node that registered again. Each write compares the member key, so a
 * node registering meanwhile is never marked. Answers the number of nodes marked lost now.
 */
export async function markLostNodes(registry: Registry, logger?: Logger, now = new Date()): Promise<number> {
  const keys = registry.keys;
  const client = registry.client;
  let lost = 0;
  for (const liveness of (await readLiveness(registry)).values()) {
    const { node } = liveness;
    if (!liveness.registered && !liveness.lost) {
      if (liveness.lastReport === undefined) continue; // no ledger (or an invalid one): not a node we know
      const mark: LostNode = { schema: 1, node, since: now.toISOString(), lastReport: liveness.lastReport };
      const result = await registry.call(`marking node ${node} lost`, () =>
        client
          .if(keys.info(node), "Create", "==", 0)
          .and(keys.lost(node), "Create", "==", 0)
          .then(client.put(keys.lost(node)).value(registry.encode(LostNodeSchema, mark)))
          .commit(),
      );
      if (result.succeeded) {
        lost++;
        logger?.warn("node lost: its agent's lease expired; its volumes report an abnormal condition", {
          node,
          since: mark.since,
          lastReport: liveness.lastReport,
        });
      }
    } else if (liveness.registered && liveness.lost) {
      const result = await registry.call(`unmarking node ${node}`, () =>
        client
          .if(keys.info(node), "Create", ">", 0)
          .then(client.delete().key(keys.lost(node)))
          .commit(),
      );
      if (result.succeeded) {
        logger?.info("node returned: registered again; no longer lost", { node, lostSince: liveness.lost.since });
      } else lost++;
    } else if (liveness.lost) lost++;
  }
  return lost;
}
