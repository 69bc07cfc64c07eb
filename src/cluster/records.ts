/**
 * The registry's values: versioned JSON, one schema per kind, validated on every read. A value
 * that fails validation is never trusted and never crashes a reader: `decode` answers a
 * RecordProblem, which the controller reports as an abnormal volume and the agent logs.
 *
 * Sizes are JSON numbers of bytes (below 2^53: MAX_VOLUME_BYTES is 4 PiB). Every record
 * carries `schema: 1`; a later version adds a schema number and reads both.
 */
import { z } from "zod";

const bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const name = z.string().min(1).max(253);
const segments = z.record(z.string().min(1).max(316), z.string().max(63));
const contentSource = z.strictObject({ kind: z.enum(["snapshot", "volume"]), id: name });
const failure = z.strictObject({ code: z.string().min(1).max(40), message: z.string().max(4096) });

/** `nodes/<node>/info`, written by the agent under its lease: the node is alive while it exists. */
export const NodeInfoSchema = z.strictObject({
  schema: z.literal(1),
  nodeId: name,
  segments,
  classes: z.array(z.strictObject({ name, type: z.enum(["thick", "thin"]), default: z.boolean() })).max(64),
  agentVersion: z.string().max(64),
  startedAt: z.string().max(40),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const ClassRoomSchema = z.strictObject({
  /** What one more volume of the class can get, as the node's engine computed it (GetCapacity). */
  availableBytes: bytes,
  maximumVolumeBytes: bytes,
  minimumVolumeBytes: bytes,
  /** The allocation unit (the VG's extent size): sizes are rounded up to it. */
  extentBytes: bytes.min(1),
});
export type ClassRoom = z.infer<typeof ClassRoomSchema>;

export const ReservationSchema = z.strictObject({ deviceClass: name, bytes, at: z.string().max(40) });
export type Reservation = z.infer<typeof ReservationSchema>;

/**
 * `nodes/<node>/ledger`: the capacity ledger. The agent writes `classes` (LVM's view after the
 * work it finished); the controller adds `reservations` for work it asked for and the agent has
 * not yet reported done. Free for placement = availableBytes − Σ reservations of the class.
 * Both write it in transactions that compare its mod revision, so neither overwrites the other.
 */
export const LedgerSchema = z.strictObject({
  schema: z.literal(1),
  classes: z.record(name, ClassRoomSchema),
  reportedAt: z.string().max(40),
  reservations: z.record(z.string().min(1).max(300), ReservationSchema),
});
export type Ledger = z.infer<typeof LedgerSchema>;

/** `nodes/<node>/volumes/<id>`, written by the controller: what the volume should be. */
export const VolumeSpecSchema = z.strictObject({
  schema: z.literal(1),
  id: name,
  name,
  node: name,
  deviceClass: name,
  shaping: z.record(z.string().max(63 + 253), z.string().max(253)),
  metadata: z.record(z.string().max(63 + 253), z.string().max(253)),
  /** The request's range as asked, compared on retries; the size the controller chose. */
  requiredBytes: bytes,
  limitBytes: bytes,
  sizeBytes: bytes,
  contentSource: contentSource.optional(),
  /** Raised on every change the agent must act on; the status says which generation it did. */
  generation: z.number().int().positive(),
  deleting: z.boolean(),
  createdAt: z.string().max(40),
});
export type VolumeSpec = z.infer<typeof VolumeSpecSchema>;

/** `nodes/<node>/volume-status/<id>`, written by the agent: what LVM has. */
export const VolumeStatusSchema = z.strictObject({
  schema: z.literal(1),
  id: name,
  generation: z.number().int().nonnegative(),
  state: z.enum(["ready", "failed", "deleted"]),
  sizeBytes: bytes,
  condition: z.strictObject({ abnormal: z.boolean(), message: z.string().max(4096) }),
  failure: failure.optional(),
  at: z.string().max(40),
});
export type VolumeStatus = z.infer<typeof VolumeStatusSchema>;

/** `nodes/<node>/snapshots/<id>`, written by the controller. */
export const SnapshotSpecSchema = z.strictObject({
  schema: z.literal(1),
  id: name,
  name,
  node: name,
  sourceVolumeId: name,
  deviceClass: name,
  sizeBytes: bytes,
  generation: z.number().int().positive(),
  deleting: z.boolean(),
  createdAt: z.string().max(40),
});
export type SnapshotSpec = z.infer<typeof SnapshotSpecSchema>;

/** `nodes/<node>/snapshot-status/<id>`, written by the agent. */
export const SnapshotStatusSchema = z.strictObject({
  schema: z.literal(1),
  id: name,
  generation: z.number().int().nonnegative(),
  state: z.enum(["ready", "failed", "deleted"]),
  sizeBytes: bytes,
  createdAt: z.string().max(40),
  readyToUse: z.boolean(),
  failure: failure.optional(),
  at: z.string().max(40),
});
export type SnapshotStatus = z.infer<typeof SnapshotStatusSchema>;

/** `volumes/<id>` and `snapshots/<id>`: where an id lives, for calls that name only the id. */
export const PlacementIndexSchema = z.strictObject({ schema: z.literal(1), node: name });
export type PlacementIndex = z.infer<typeof PlacementIndexSchema>;

/**
 * `lost/<node>`, written by the controller doing the background work when a node's registration
 * (its lease) is gone while its ledger stays, and removed when the node registers again.
 * `since`: when the controller found the registration gone; `lastReport`: the ledger's
 * `reportedAt`, the last time the node's agent is known to have worked.
 */
export const LostNodeSchema = z.strictObject({
  schema: z.literal(1),
  node: name,
  since: z.string().max(40),
  lastReport: z.string().max(40).optional(),
});
export type LostNode = z.infer<typeof LostNodeSchema>;

/**
 * `incarnations/<first id>`: a volume name whose volume was deleted by tombstone (its node
 * lost) gets a new id for its next volume, so the tombstone's LV, removed when that node
 * returns, never shares an id with a live volume. `current` 0 is `lvNameFor(name)`.
 */
export const IncarnationSchema = z.strictObject({
  schema: z.literal(1),
  name,
  current: z.number().int().nonnegative().max(1_000_000),
});
export type Incarnation = z.infer<typeof IncarnationSchema>;

/** A value that did not pass its schema: where, and why, in words for a log line or a condition. */
export interface RecordProblem {
  key: string;
  problem: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; problem: RecordProblem };

export function decode<T>(schema: z.ZodType<T>, key: string, text: string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: { key, problem: `not JSON (${text.length} bytes)` } };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const first = parsed.error.issues[0];
  const where = first?.path.length ? first.path.join(".") : "value";
  return { ok: false, problem: { key, problem: `${where}: ${first?.message ?? "invalid"}` } };
}

export function encode<T>(schema: z.ZodType<T>, value: T): string {
  // Validate what is written, too: a bug here must not plant a value every reader refuses.
  return JSON.stringify(schema.parse(value));
}
