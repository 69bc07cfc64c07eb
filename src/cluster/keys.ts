/**
 * The registry's key layout (docs/cluster.md draws it). Everything a node's agent must act on
 * lives under that node's prefix, so an agent watches one prefix and nothing else; the members
 * and the ledgers have prefixes of their own, so placement reads two short ranges:
 *
 *   <root>/members/<node>                      NodeInfo       agent, under its lease
 *   <root>/ledgers/<node>                      Ledger         agent (room) + controller (reservations)
 *   <root>/nodes/<node>/volumes/<id>           VolumeSpec     controller
 *   <root>/nodes/<node>/volume-status/<id>     VolumeStatus   agent
 *   <root>/nodes/<node>/snapshots/<id>         SnapshotSpec   controller
 *   <root>/nodes/<node>/snapshot-status/<id>   SnapshotStatus agent
 *   <root>/volumes/<id>                        PlacementIndex controller, in the spec's transaction
 *   <root>/snapshots/<id>                      PlacementIndex controller, in the spec's transaction
 *   <root>/controller/election                 the controllers' election (background work)
 *   <root>/lost/<node>                         LostNode       leader's background work (liveness.ts)
 *   <root>/incarnations/<id>                   Incarnation    controller, when a tombstone frees a name (tombstones.ts)
 *
 * Node ids and volume ids never contain "/" (ids are LV names; node ids are checked by
 * the node's configuration, src/cli/config-schema.ts), so a key splits back into its parts unambiguously.
 */

export const DEFAULT_ROOT = "/loam/v1";

export type NodeKeyKind = "volumes" | "volume-status" | "snapshots" | "snapshot-status";

export class Keys {
  constructor(readonly root: string = DEFAULT_ROOT) {}

  get nodes(): string {
    return `${this.root}/nodes/`;
  }
  node(node: string): string {
    return `${this.root}/nodes/${node}/`;
  }
  get members(): string {
    return `${this.root}/members/`;
  }
  info(node: string): string {
    return `${this.members}${node}`;
  }
  get ledgers(): string {
    return `${this.root}/ledgers/`;
  }
  ledger(node: string): string {
    return `${this.ledgers}${node}`;
  }
  volume(node: string, id: string): string {
    return `${this.node(node)}volumes/${id}`;
  }
  volumeStatus(node: string, id: string): string {
    return `${this.node(node)}volume-status/${id}`;
  }
  snapshot(node: string, id: string): string {
    return `${this.node(node)}snapshots/${id}`;
  }
  snapshotStatus(node: string, id: string): string {
    return `${this.node(node)}snapshot-status/${id}`;
  }
  get volumeIndexes(): string {
    return `${this.root}/volumes/`;
  }
  volumeIndex(id: string): string {
    return `${this.volumeIndexes}${id}`;
  }
  get snapshotIndexes(): string {
    return `${this.root}/snapshots/`;
  }
  snapshotIndex(id: string): string {
    return `${this.snapshotIndexes}${id}`;
  }
  /** Nodes the leader found without a registration (lease expired) while their ledger stays. */
  get lostNodes(): string {
    return `${this.root}/lost/`;
  }
  lost(node: string): string {
    return `${this.lostNodes}${node}`;
  }
  /** Keyed by the id a volume name has first (lvNameFor(name)): which incarnation of the name is current. */
  get incarnations(): string {
    return `${this.root}/incarnations/`;
  }
  incarnation(firstId: string): string {
    return `${this.incarnations}${firstId}`;
  }
  get election(): string {
    return `${this.root}/controller/election`;
  }

  /** The parts of a key under `nodes/`, or undefined for any other key. */
  parseNodeKey(key: string): { node: string; kind: NodeKeyKind; id: string } | undefined {
    if (!key.startsWith(this.nodes)) return undefined;
    const [node, kind, id, extra] = key.slice(this.nodes.length).split("/");
    if (!node || !kind || extra !== undefined) return undefined;
    if ((kind === "volumes" || kind === "volume-status" || kind === "snapshots" || kind === "snapshot-status") && id) {
      return { node, kind, id };
    }
    return undefined;
  }
}
