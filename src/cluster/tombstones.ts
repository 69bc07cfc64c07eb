/**
 * Tombstones: DeleteVolume and DeleteSnapshot of something on a lost node (liveness.ts) do not
 * wait for an agent that is not there. One transaction marks the spec deleting (a new
 * generation), removes the id's index, and, for a volume, moves its name to the next
 * incarnation, so a new CreateVolume of the same name makes a new volume with a new id on a
 * live node. The spec left under the lost node's prefix, deleting and with no index pointing at
 * it, is the tombstone: when the node returns, its agent's resync finds it, removes the LV and
 * writes status `deleted`, and the controller doing the background work (`sweepTombstones`)
 * deletes the spec and the status. A delete the node refuses (its LV still open, say) is asked
 * again, one generation later, after `retryAfterMs`.
 *
 * Incarnation records (`incarnations/<first id>`) stay: one small key per name that was ever
 * deleted by tombstone, so a retried CreateVolume of that name keeps finding the same id.
 */
import { lvNameFor } from "../lvm/names.js";
import type { Logger } from "../log.js";
import { failedPrecondition } from "../volumes/errors.js";
import {
  IncarnationSchema,
  PlacementIndexSchema,
  type SnapshotSpec,
  SnapshotSpecSchema,
  SnapshotStatusSchema,
  type VolumeSpec,
  VolumeSpecSchema,
  VolumeStatusSchema,
} from "./records.js";
import { livenessOf, tombstoneDue } from "./liveness.js";
import { type Registry, type Stored, stored } from "./registry.js";

/** The volume id of a name's incarnation: the first is lvNameFor(name), as on a node. */
export function volumeIdFor(name: string, incarnation: number): string {
  return incarnation === 0 ? lvNameFor(name) : lvNameFor(`${name}\u0000${incarnation}`);
}

/** The current id of a volume name, and the revision of its incarnation record ("0": none) for the create's transaction. */
export async function currentVolumeId(
  registry: Registry,
  name: string,
): Promise<{ id: string; incarnationKey: string; revision: string }> {
  const incarnationKey = registry.keys.incarnation(lvNameFor(name));
  const record = await registry.read(IncarnationSchema, incarnationKey);
  // A record that fails validation must not send the name back to an id a tombstone holds.
  if (record.problem) {
    throw failedPrecondition(
      `volume "${name}"'s incarnation record fails validation (${record.problem.key}: ${record.problem.problem}); an operator must repair it`,
    );
  }
  return { id: volumeIdFor(name, record.value?.current ?? 0), incarnationKey, revision: record.modRevision };
}

/** Marks the volume deleting, frees its id and name; false when the spec changed meanwhile (read again). */
export async function tombstoneVolume(
  registry: Registry,
  spec: VolumeSpec,
  specRevision: string,
  logger?: Logger,
  why = "deleted by tombstone: its node is lost; the node removes the LV when it returns",
): Promise<boolean> {
  const keys = registry.keys;
  const client = registry.client;
  const incarnationKey = keys.incarnation(lvNameFor(spec.name));
  const incarnation = await registry.read(IncarnationSchema, incarnationKey);
  const next = (incarnation.value?.current ?? 0) + 1;
  const target: VolumeSpec = { ...spec, deleting: true, generation: spec.generation + 1 };
  const result = await registry.call(`recording a tombstone for volume ${spec.id}`, () =>
    client
      .if(keys.volume(spec.node, spec.id), "Mod", "==", specRevision)
      .and(incarnationKey, "Mod", "==", incarnation.modRevision)
      .then(
        client.put(keys.volume(spec.node, spec.id)).value(registry.encode(VolumeSpecSchema, target)),
        client.delete().key(keys.volumeIndex(spec.id)),
        client
          .put(incarnationKey)
          .value(registry.encode(IncarnationSchema, { schema: 1, name: spec.name, current: next })),
      )
      .commit(),
  );
  if (result.succeeded) {
    logger?.warn(`volume ${why}`, {
      id: spec.id,
      name: spec.name,
      node: spec.node,
    });
  }
  return result.succeeded;
}

/**
 * A retried CreateVolume whose volume its node never reported (generation 1, no status) while
 * that node is lost: no call ever answered its id, so nothing can have been written to it. It
 * is tombstoned like a delete, and the caller places the name's next incarnation anew. True
 * when it did that; false when the volume is to be adopted as usual.
 */
export async function abandonUnreportedCreate(
  registry: Registry,
  spec: Stored<VolumeSpec>,
  nodeTimeoutMs: number,
  logger?: Logger,
): Promise<boolean> {
  const value = spec.value;
  if (!value || value.deleting || value.generation !== 1) return false;
  const status = await registry.read(VolumeStatusSchema, registry.keys.volumeStatus(value.node, value.id));
  if (status.modRevision !== "0") return false;
  if (!tombstoneDue(await livenessOf(registry, value.node), nodeTimeoutMs)) return false;
  return tombstoneVolume(
    registry,
    value,
    spec.modRevision,
    logger,
    "never made by its node, which is lost: abandoned, and the name is placed anew",
  );
}

/** Marks the snapshot deleting and frees its id; false when the spec changed meanwhile. */
export async function tombstoneSnapshot(
  registry: Registry,
  spec: SnapshotSpec,
  specRevision: string,
  logger?: Logger,
): Promise<boolean> {
  const keys = registry.keys;
  const client = registry.client;
  const target: SnapshotSpec = { ...spec, deleting: true, generation: spec.generation + 1 };
  const result = await registry.call(`recording a tombstone for snapshot ${spec.id}`, () =>
    client
      .if(keys.snapshot(spec.node, spec.id), "Mod", "==", specRevision)
      .then(
        client.put(keys.snapshot(spec.node, spec.id)).value(registry.encode(SnapshotSpecSchema, target)),
        client.delete().key(keys.snapshotIndex(spec.id)),
      )
      .commit(),
  );
  if (result.succeeded) {
    logger?.warn("snapshot deleted by tombstone: its node is lost; the node removes the LV when it returns", {
      id: spec.id,
      node: spec.node,
    });
  }
  return result.succeeded;
}

export interface TombstoneSweep {
  /** Tombstones whose LV the node removed: their records are gone now. */
  cleaned: number;
  /** Tombstones the node refused to delete, asked again. */
  retried: number;
  /** Tombstones still waiting for their node. */
  waiting: number;
}

/**
 * The leader's pass over every node's prefix: removes the records of tombstones the node
 * reported deleted, and asks again for those it reported a failure for `retryAfterMs` ago.
 */
export async function sweepTombstones(
  registry: Registry,
  retryAfterMs: number,
  logger?: Logger,
  now = Date.now(),
): Promise<TombstoneSweep> {
  const keys = registry.keys;
  const client = registry.client;
  const [nodes, volumeIndexes, snapshotIndexes] = await Promise.all([
    registry.range(keys.nodes),
    registry.range(keys.volumeIndexes),
    registry.range(keys.snapshotIndexes),
  ]);
  const indexed = new Set<string>();
  for (const [kvs, prefix, kind] of [
    [volumeIndexes.kvs, keys.volumeIndexes, "volumes"],
    [snapshotIndexes.kvs, keys.snapshotIndexes, "snapshots"],
  ] as const) {
    for (const kv of kvs) {
      const index = stored(PlacementIndexSchema, kv).value;
      // An index that fails validation protects whatever it may point at.
      const node = index?.node ?? "*";
      indexed.add(`${kind}/${node}/${kv.key.toString().slice(prefix.length)}`);
    }
  }
  const specs = new Map<string, { kv: (typeof nodes.kvs)[number]; node: string; id: string }>();
  const statuses = new Map<string, (typeof nodes.kvs)[number]>();
  for (const kv of nodes.kvs) {
    const parsed = keys.parseNodeKey(kv.key.toString());
    if (!parsed) continue;
    if (parsed.kind === "volumes" || parsed.kind === "snapshots") {
      specs.set(`${parsed.kind}/${parsed.node}/${parsed.id}`, { kv, node: parsed.node, id: parsed.id });
    } else {
      const kind = parsed.kind === "volume-status" ? "volumes" : "snapshots";
      statuses.set(`${kind}/${parsed.node}/${parsed.id}`, kv);
    }
  }
  const sweep: TombstoneSweep = { cleaned: 0, retried: 0, waiting: 0 };
  for (const [at, { kv, node, id }] of specs) {
    const volume = at.startsWith("volumes/");
    const kind = volume ? "volumes" : "snapshots";
    if (indexed.has(at) || indexed.has(`${kind}/*/${id}`)) continue;
    const spec = volume ? stored(VolumeSpecSchema, kv).value : stored(SnapshotSpecSchema, kv).value;
    if (!spec?.deleting) continue;
    const statusKv = statuses.get(at);
    const status = statusKv
      ? volume
        ? stored(VolumeStatusSchema, statusKv).value
        : stored(SnapshotStatusSchema, statusKv).value
      : undefined;
    const specKey = volume ? keys.volume(node, id) : keys.snapshot(node, id);
    const statusKey = volume ? keys.volumeStatus(node, id) : keys.snapshotStatus(node, id);
    if (status && status.generation >= spec.generation && status.state === "deleted") {
      const result = await registry.call(`removing the tombstone of ${id}`, () =>
        client
          .if(specKey, "Mod", "==", kv.mod_revision)
          .then(client.delete().key(specKey), client.delete().key(statusKey))
          .commit(),
      );
      if (result.succeeded) {
        sweep.cleaned++;
        logger?.info("tombstone done: the returned node removed the LV; its records are removed", { id, node });
      }
    } else if (
      status &&
      status.generation >= spec.generation &&
      status.failure &&
      now - Date.parse(status.at) >= retryAfterMs
    ) {
      const again = { ...spec, generation: spec.generation + 1 };
      const value = volume
        ? registry.encode(VolumeSpecSchema, again as VolumeSpec)
        : registry.encode(SnapshotSpecSchema, again as SnapshotSpec);
      const result = await registry.call(`asking again for the tombstone of ${id}`, () =>
        client.if(specKey, "Mod", "==", kv.mod_revision).then(client.put(specKey).value(value)).commit(),
      );
      if (result.succeeded) {
        sweep.retried++;
        logger?.warn("tombstone: the node refused to delete; asking again", { id, node, ...status.failure });
      }
    } else sweep.waiting++;
  }
  return sweep;
}
