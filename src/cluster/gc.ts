/**
 * The node agent's garbage collection: what LVM holds compared with the registry.
 *
 * - An orphan is an LV of loam's (the engine lists only LVs that carry loam's tags, in the
 *   volume groups of its device classes; an LV without them is never seen, never touched)
 *   with no spec under `nodes/<node>/volumes|snapshots/<id>` and no reservation of it in the
 *   node's ledger.
 * - A dangling record is a spec (not being deleted) whose status says ready while its LV
 *   does not exist.
 *
 * A finding is first seen at time T and reported (log line, metrics, the report file `loam
 * status` shows) only when every sweep since T still found it and T is at least the grace
 * period ago; a sweep that no longer finds it forgets it. With `mode: "delete"` a reported orphan
 * is removed through the engine's delete (which refuses an LV in use), right after a
 * linearizable read of its spec key and of the ledger found neither. Dangling records are
 * never deleted: the record is what the CO holds, and an LV that vanished is an operator's
 * matter (a restored disk brings it back); the volume's status is marked abnormal instead.
 *
 * Order of reads: LVM first, then the registry. The agent makes an LV only after its spec is
 * in the registry and removes a spec only after the LV is gone, so an LV in the listing has
 * its spec in a later registry read unless it really is an orphan. The agent runs the sweep
 * as a piece of its one-at-a-time work, so nothing of its own is half made during a sweep.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { IKeyValue } from "etcd3";
import type { z } from "zod";
import type { Logger } from "../log.js";
import type { VolumeCondition } from "../volumes/volume.js";
import {
  LedgerSchema,
  SnapshotSpecSchema,
  SnapshotStatusSchema,
  VolumeSpecSchema,
  VolumeStatusSchema,
} from "./records.js";
import { type Registry, stored } from "./registry.js";
import { DEFAULT_GC_GRACE_SECONDS, type GcMode } from "./gc-modes.js";
export { DEFAULT_GC_GRACE_SECONDS, GC_MODES, type GcMode } from "./gc-modes.js";

/** What garbage collection needs of the node's engine: VolumeEngine has it; the stand-in engine too. */
export interface GcEngine {
  listVolumes(): Promise<readonly GcLv[]>;
  listSnapshots(): Promise<readonly GcLv[]>;
  deleteVolume(id: string): Promise<void>;
  deleteSnapshot(id: string): Promise<void>;
}

export interface GcLv {
  id: string;
  name: string;
  volumeGroup: string;
  condition?: VolumeCondition;
}

export type FindingKind = "orphan-volume" | "orphan-snapshot" | "dangling-volume" | "dangling-snapshot";

export interface Finding {
  kind: FindingKind;
  /** The LV name (= the volume or snapshot id). */
  id: string;
  /** The CSI name, from the LV's tags or the spec. */
  name: string;
  volumeGroup?: string;
  firstSeen: string;
  /** Past the grace period: logged, counted in the metrics. */
  reported: boolean;
  /** Delete mode: why the last removal did not happen. */
  removalFailed?: string;
}

/** What one sweep found: the agent writes it to the report file, the metrics show its counts. */
export interface GcReport {
  schema: 1;
  nodeId: string;
  mode: GcMode;
  graceSeconds: number;
  sweptAt: string;
  findings: Finding[];
  /** Orphan LVs removed since the agent started. */
  removed: { volumes: number; snapshots: number };
}

/** Metrics: LoamMetrics implements it. */
export interface GcObserver {
  observeGcSweep(report: GcReport): void;
  observeGcRemoved(kind: "volume" | "snapshot"): void;
}

export interface GarbageCollectorOptions {
  registry: Registry;
  nodeId: string;
  engine: GcEngine;
  mode?: GcMode;
  graceSeconds?: number;
  logger?: Logger;
  observer?: GcObserver;
  /** Where each sweep's report is written for `loam status` (reportPathOf); none: not written. */
  reportPath?: string;
  /** The clock (tests move it). */
  now?: () => number;
  /** Test hook: between the LVM listing and the registry read. */
  betweenReads?: () => Promise<void>;
  /** Test hook: a removal decided, before its spec and the ledger are read again. */
  beforeRecheck?: (finding: Finding) => Promise<void>;
}

/** The condition message that says the status was marked by garbage collection. */
const DANGLING_MESSAGE = "does not exist on node";

export class GarbageCollector {
  private readonly seen = new Map<string, Finding>();
  private readonly removed = { volumes: 0, snapshots: 0 };
  private last: GcReport | undefined;
  readonly mode: GcMode;
  readonly graceSeconds: number;

  constructor(private readonly options: GarbageCollectorOptions) {
    this.mode = options.mode ?? "report";
    this.graceSeconds = options.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS;
  }

  /** The last sweep's report. */
  get report(): GcReport | undefined {
    return this.last;
  }

  /** One pass: list LVM, read the registry, update the findings, report, and in delete mode remove orphans. */
  async sweep(): Promise<GcReport> {
    const { registry, nodeId, engine, logger } = this.options;
    const keys = registry.keys;
    const now = (this.options.now ?? Date.now)();
    const volumes = await engine.listVolumes();
    const snapshots = await engine.listSnapshots();
    await this.options.betweenReads?.();
    const [{ kvs }, ledger] = await Promise.all([
      registry.range(keys.node(nodeId)),
      registry.read(LedgerSchema, keys.ledger(nodeId)),
    ]);
    const reserved = new Set(Object.keys(ledger.value?.reservations ?? {}));
    const specs = { volumes: new Map<string, string>(), snapshots: new Map<string, string>() };
    const statuses = { volumes: new Map<string, string>(), snapshots: new Map<string, string>() };
    const byKey = new Map(kvs.map((kv) => [kv.key.toString(), kv]));
    for (const kv of kvs) {
      const parsed = keys.parseNodeKey(kv.key.toString());
      if (parsed?.kind === "volumes") specs.volumes.set(parsed.id, kv.key.toString());
      if (parsed?.kind === "snapshots") specs.snapshots.set(parsed.id, kv.key.toString());
      if (parsed?.kind === "volume-status") statuses.volumes.set(parsed.id, kv.key.toString());
      if (parsed?.kind === "snapshot-status") statuses.snapshots.set(parsed.id, kv.key.toString());
    }

    const current: Omit<Finding, "firstSeen" | "reported">[] = [];
    // An LV whose key exists is never an orphan, even when its spec fails validation.
    for (const lv of volumes) {
      if (!specs.volumes.has(lv.id) && !reserved.has(`volume:${lv.id}`))
        current.push({ kind: "orphan-volume", id: lv.id, name: lv.name, volumeGroup: lv.volumeGroup });
    }
    for (const lv of snapshots) {
      if (!specs.snapshots.has(lv.id) && !reserved.has(`snapshot:${lv.id}`))
        current.push({ kind: "orphan-snapshot", id: lv.id, name: lv.name, volumeGroup: lv.volumeGroup });
    }
    // Records that say ready: a dangling one is among them when its LV is missing.
    const ready = [
      ...readyRecords("dangling-volume", specs.volumes, statuses.volumes, byKey, VolumeSpecSchema, VolumeStatusSchema),
      ...readyRecords(
        "dangling-snapshot",
        specs.snapshots,
        statuses.snapshots,
        byKey,
        SnapshotSpecSchema,
        SnapshotStatusSchema,
      ),
    ];
    // A ready status is written after its LV was made, perhaps after the listing above: a
    // record is dangling only when a listing made after the registry read lacks its LV too.
    let lvs = new Map<string, GcLv>([...volumes, ...snapshots].map((lv) => [lv.id, lv]));
    if (ready.some((r) => !lvs.has(r.id))) {
      const [again, againSnapshots] = [await engine.listVolumes(), await engine.listSnapshots()];
      lvs = new Map<string, GcLv>([...again, ...againSnapshots].map((lv) => [lv.id, lv]));
    }
    const markDangling: { id: string; statusKey: string }[] = [];
    const unmark: { lv: GcLv; statusKey: string }[] = [];
    for (const record of ready) {
      const lv = lvs.get(record.id);
      if (!lv) {
        current.push({ kind: record.kind, id: record.id, name: record.name });
        if (record.kind === "dangling-volume") markDangling.push(record);
      } else if (record.kind === "dangling-volume") {
        const status = stored(VolumeStatusSchema, byKey.get(record.statusKey)!).value;
        if (status?.condition.abnormal && status.condition.message.includes(DANGLING_MESSAGE))
          unmark.push({ lv, statusKey: record.statusKey });
      }
    }

    // Keep the first sighting of what is still found; forget what is not.
    const found = new Map<string, Finding>();
    for (const f of current) {
      const key = `${f.kind}:${f.id}`;
      const earlier = this.seen.get(key);
      const finding: Finding = earlier ?? { ...f, firstSeen: new Date(now).toISOString(), reported: false };
      const due = now - Date.parse(finding.firstSeen) >= this.graceSeconds * 1000;
      if (due && !finding.reported) {
        finding.reported = true;
        logger?.warn(`garbage collection: ${describe(finding, nodeId)}`, {
          kind: finding.kind,
          id: finding.id,
          name: finding.name,
          firstSeen: finding.firstSeen,
          mode: this.mode,
        });
      }
      found.set(key, finding);
    }
    for (const key of this.seen.keys()) if (!found.has(key)) this.seen.delete(key);
    for (const [key, finding] of found) this.seen.set(key, finding);

    for (const { id, statusKey } of markDangling) {
      if (this.seen.get(`dangling-volume:${id}`)?.reported)
        await this.setCondition(statusKey, {
          abnormal: true,
          message: `the volume's LV ${id} ${DANGLING_MESSAGE} ${nodeId}, though its record says ready (found by garbage collection)`,
        });
    }
    for (const { lv, statusKey } of unmark) {
      await this.setCondition(statusKey, lv.condition ?? { abnormal: false, message: "the LV exists again" });
    }

    if (this.mode === "delete") {
      for (const finding of [...this.seen.values()]) {
        if (!finding.reported || (finding.kind !== "orphan-volume" && finding.kind !== "orphan-snapshot")) continue;
        await this.remove(finding);
      }
    }

    const report: GcReport = {
      schema: 1,
      nodeId,
      mode: this.mode,
      graceSeconds: this.graceSeconds,
      sweptAt: new Date(now).toISOString(),
      findings: [...this.seen.values()].map((f) => ({ ...f })),
      removed: { ...this.removed },
    };
    this.last = report;
    this.options.observer?.observeGcSweep(report);
    if (this.options.reportPath) await writeReport(this.options.reportPath, report, logger);
    return report;
  }

  /** Removes an orphan LV if a linearizable read of its spec key and the ledger still finds neither. */
  private async remove(finding: Finding): Promise<void> {
    const { registry, nodeId, engine, logger } = this.options;
    const keys = registry.keys;
    const volume = finding.kind === "orphan-volume";
    await this.options.beforeRecheck?.(finding);
    const specKey = volume ? keys.volume(nodeId, finding.id) : keys.snapshot(nodeId, finding.id);
    const [spec, ledger] = await Promise.all([
      registry.call(`reading ${specKey}`, () => registry.client.get(specKey).exec()),
      registry.read(LedgerSchema, keys.ledger(nodeId)),
    ]);
    const reservation = `${volume ? "volume" : "snapshot"}:${finding.id}`;
    if (spec.kvs.length > 0 || ledger.value?.reservations[reservation]) {
      logger?.info("garbage collection: not removing an LV the registry now knows", { id: finding.id });
      this.seen.delete(`${finding.kind}:${finding.id}`);
      return;
    }
    try {
      if (volume) await engine.deleteVolume(finding.id);
      else await engine.deleteSnapshot(finding.id);
    } catch (error) {
      finding.removalFailed = error instanceof Error ? error.message : String(error);
      logger?.warn("garbage collection: removing an orphan LV failed; trying again next sweep", {
        id: finding.id,
        error: finding.removalFailed,
      });
      return;
    }
    this.seen.delete(`${finding.kind}:${finding.id}`);
    if (volume) this.removed.volumes++;
    else this.removed.snapshots++;
    this.options.observer?.observeGcRemoved(volume ? "volume" : "snapshot");
    logger?.warn("garbage collection: removed an orphan LV", {
      id: finding.id,
      name: finding.name,
      volumeGroup: finding.volumeGroup,
      firstSeen: finding.firstSeen,
    });
  }

  /** Rewrites a volume status's condition, unless the status changed since (the agent's own writes win). */
  private async setCondition(statusKey: string, condition: VolumeCondition): Promise<void> {
    const { registry } = this.options;
    const current = await registry.read(VolumeStatusSchema, statusKey);
    if (!current.value || current.value.state !== "ready") return;
    const was = current.value.condition;
    if (was.abnormal === condition.abnormal && was.message === condition.message) return;
    const value = registry.encode(VolumeStatusSchema, { ...current.value, condition });
    await registry.call(`marking ${statusKey}`, () =>
      registry.client
        .if(statusKey, "Mod", "==", current.modRevision)
        .then(registry.client.put(statusKey).value(value))
        .commit(),
    );
  }
}

/** The specs (id → key) not being deleted whose status says ready. */
function readyRecords<K extends FindingKind>(
  kind: K,
  specs: ReadonlyMap<string, string>,
  statuses: ReadonlyMap<string, string>,
  byKey: ReadonlyMap<string, IKeyValue>,
  specSchema: z.ZodType<{ name: string; deleting: boolean }>,
  statusSchema: z.ZodType<{ state: string }>,
): { kind: K; id: string; name: string; statusKey: string }[] {
  const ready: { kind: K; id: string; name: string; statusKey: string }[] = [];
  for (const [id, specKey] of specs) {
    const spec = stored(specSchema, byKey.get(specKey)!).value;
    const statusKey = statuses.get(id);
    const status = statusKey ? stored(statusSchema, byKey.get(statusKey)!).value : undefined;
    if (spec && !spec.deleting && statusKey && status?.state === "ready")
      ready.push({ kind, id, name: spec.name, statusKey });
  }
  return ready;
}

export function describe(finding: Finding, nodeId: string): string {
  switch (finding.kind) {
    case "orphan-volume":
      return `LV ${finding.volumeGroup}/${finding.id} (volume "${finding.name}") carries loam's tags but the registry has no record of it on node ${nodeId}`;
    case "orphan-snapshot":
      return `LV ${finding.volumeGroup}/${finding.id} (snapshot "${finding.name}") carries loam's tags but the registry has no record of it on node ${nodeId}`;
    case "dangling-volume":
      return `the registry's volume ${finding.id} ("${finding.name}") is ready on node ${nodeId} but its LV does not exist`;
    case "dangling-snapshot":
      return `the registry's snapshot ${finding.id} is ready on node ${nodeId} but its LV does not exist`;
  }
}

/** Where the agent writes its report: next to the node's socket, where `loam status --config` finds it. */
export function reportPathOf(socketPath: string): string {
  return `${dirname(socketPath)}/loam-gc.json`;
}

async function writeReport(path: string, report: GcReport, logger: Logger | undefined): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o644 });
    await rename(temporary, path);
  } catch (error) {
    logger?.warn("garbage collection: writing the report file failed", { path, error: String(error) });
  }
}
