/**
 * The node agent of cluster mode: registers the node under a lease, reports what its device
 * classes can still take, watches its own prefix of the registry, makes the LVM changes asked
 * of it with the node's VolumeEngine, and writes each outcome back.
 *
 * LVM stays the truth on the node. Work is keyed by the spec's generation: an agent acts on a
 * spec whose status is older than it, and the engine's own idempotence (deterministic LV names,
 * adoption of a half-made LV) makes acting twice harmless. So a restart simply lists its prefix
 * and acts on whatever is behind, then watches from the revision it listed at (watch.ts: the
 * watch resumes after a lost connection and lists again after a compaction, so no spec put is
 * missed). A periodic resync lists the prefix again and reports the room.
 *
 * One piece of work at a time, in arrival order. That keeps the ledger exact: the room the
 * agent reports is read after the work finished and before the next starts, and the same
 * transaction drops the reservations of that work (and writes its status), so at no instant
 * does the ledger promise bytes that LVM has already given away.
 *
 * Why ~450 lines: the work loop, the registration it depends on and the outcome reports share
 * the agent's state (lease, queue, stopped). The seam for a split is registration (register,
 * the first attempts in start, registerAgain after a lost lease) into a small class of its own
 * that the agent asks for "registered" and "stop".
 */
import type { Lease } from "etcd3";
import type { Logger } from "../log.js";
import { VolumeError, type VolumeErrorKind } from "../volumes/errors.js";
import type { ContentSource } from "../volumes/metadata.js";
import { PARAMETER_KEYS, type VolumeParameters } from "../volumes/parameters.js";
import type { CapacityRange } from "../volumes/size.js";
import type { Capacity, CapacityOptions, CallOptions, Snapshot, Volume } from "../volumes/volume.js";
import type { Segments } from "./placement.js";
import {
  type ClassRoom,
  type Ledger,
  LedgerSchema,
  type NodeInfo,
  NodeInfoSchema,
  type SnapshotSpec,
  SnapshotSpecSchema,
  type SnapshotStatus,
  SnapshotStatusSchema,
  type VolumeSpec,
  VolumeSpecSchema,
  type VolumeStatus,
  VolumeStatusSchema,
} from "./records.js";
import type { Registry } from "./registry.js";
import { type PrefixChange, PrefixWatch } from "./watch.js";

/** What the agent needs of a node's engine: VolumeEngine has it; the tests' stand-in engine too. */
export interface AgentEngine {
  readonly classes: {
    readonly all: readonly { name: string; type: "thick" | "thin"; default: boolean }[];
    readonly defaultClass: { name: string };
  };
  createVolume(
    request: {
      name: string;
      /** The LV name the controller chose (a name's later incarnation differs from lvNameFor(name)). */
      id?: string;
      range: CapacityRange | undefined;
      parameters: VolumeParameters;
      contentSource?: ContentSource;
    },
    options?: CallOptions,
  ): Promise<Volume>;
  deleteVolume(id: string, options?: CallOptions): Promise<void>;
  expandVolume(id: string, range: CapacityRange, options?: CallOptions): Promise<Volume>;
  /** ControllerModifyVolume's parameters recorded on the LV; false when it had them (absent: the tests' stand-in). */
  setShaping?(id: string, shaping: Readonly<Record<string, string>>, options?: CallOptions): Promise<boolean>;
  getVolume(id: string, options?: CallOptions): Promise<Volume | undefined>;
  capacity(options?: CapacityOptions): Promise<Capacity>;
  createSnapshot(request: { name: string; sourceVolumeId: string }, options?: CallOptions): Promise<Snapshot>;
  deleteSnapshot(id: string, options?: CallOptions): Promise<void>;
}

export interface NodeAgentOptions {
  registry: Registry;
  nodeId: string;
  segments: Segments;
  engine: AgentEngine;
  version: string;
  logger?: Logger;
  /** The registration lease's time to live; the node counts as gone this long after the agent stops answering. */
  leaseSeconds?: number;
  /** How often the agent reports its room again and re-checks its whole prefix, besides the watch. */
  resyncSeconds?: number;
  /** After a volume's parameters changed (ControllerModifyVolume): the node applies its IO limits now. */
  onVolumeModified?: (id: string) => Promise<void>;
  /** Test hook: runs before the agent acts on a spec (a test stops or kills the agent there). */
  beforeAct?: (work: Work) => Promise<void>;
  /** Test hook: runs between a listing and the watch from its revision (a test compacts there). */
  beforeWatch?: () => Promise<void>;
  /** Garbage collection (gc.ts): swept after each resync, as one piece of the agent's work. */
  gc?: { sweep(): Promise<unknown> };
}

export interface Work {
  /** "room": report the classes' room again (on start and each resync); "gc": a garbage collection sweep. */
  kind: "volume" | "snapshot" | "room" | "gc";
  id: string;
}

/** Backoff of registering again after a lost lease. */
const REGISTER_FIRST_DELAY_MS = 250;
const REGISTER_MAX_DELAY_MS = 10_000;
/** Attempts at the first registration before start() gives up (0.25 + 0.5 + 1 + 2 s between them). */
const START_REGISTER_ATTEMPTS = 5;

/** Failures a later attempt can get past: the agent tries again (backing off) instead of reporting them. */
const TRANSIENT: readonly VolumeErrorKind[] = ["aborted", "deadline-exceeded", "unavailable"];

export class NodeAgent {
  private readonly registry: Registry;
  private readonly keys: Registry["keys"];
  private readonly engine: AgentEngine;
  private readonly logger: Logger | undefined;
  private readonly queue = new Map<string, Work>();
  private lease: Lease | undefined;
  private watch: PrefixWatch | undefined;
  private draining: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly retryDelays = new Map<string, number>();
  private registering = false;
  private registerDelayMs = REGISTER_FIRST_DELAY_MS;
  /** Pieces of work done (for tests and the benchmark). */
  readonly stats = { acted: 0, failed: 0, retried: 0 };

  constructor(private readonly options: NodeAgentOptions) {
    this.registry = options.registry;
    this.keys = options.registry.keys;
    this.engine = options.engine;
    this.logger = options.logger;
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** Registers, reports the room, acts on whatever is behind (the watch's first listing), and watches. */
  async start(): Promise<void> {
    this.stopped = false;
    // The first registration is retried here (a lease that expired before its put on a slow
    // machine, etcd restarting); a lost lease's own retry stays out of the way meanwhile.
    this.registering = true;
    try {
      for (let attempt = 1, delay = REGISTER_FIRST_DELAY_MS; ; attempt++, delay *= 2) {
        try {
          await this.register();
          break;
        } catch (error) {
          if (attempt >= START_REGISTER_ATTEMPTS || this.stopped) throw error;
          this.logger?.warn("registering failed; will retry", { attempt, delayMs: delay, error: String(error) });
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } finally {
      this.registering = false;
    }
    await this.reportRoom([]);
    const watch = await this.registry.call("watching the node's prefix", () =>
      PrefixWatch.start({
        client: this.registry.client,
        prefix: this.keys.node(this.options.nodeId),
        onChange: (change) => this.onChange(change),
        ...(this.logger ? { logger: this.logger } : {}),
        ...(this.options.beforeWatch ? { beforeWatch: this.options.beforeWatch } : {}),
      }),
    );
    if (this.stopped) await watch.stop();
    else this.watch = watch;
    // Garbage collection after the work the first listing queued, then after each resync.
    if (this.options.gc) this.enqueue({ kind: "gc", id: "" });
    const every = (this.options.resyncSeconds ?? 60) * 1000;
    this.resyncTimer = setInterval(() => {
      void this.resync().catch((error: unknown) => this.logger?.warn("agent resync failed", { error: String(error) }));
    }, every);
    this.resyncTimer.unref();
  }

  /** Stops watching and working; `revoke` also ends the lease at once (a clean shutdown) instead of letting it expire. */
  async stop(revoke = true): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.watch?.stop();
    this.watch = undefined;
    await this.draining?.catch(() => undefined);
    if (revoke) await this.lease?.revoke().catch(() => undefined);
    else this.lease?.release();
    this.lease = undefined;
  }

  private async register(): Promise<void> {
    const lease = this.registry.client.lease(this.options.leaseSeconds ?? 10);
    lease.on("lost", (error) => {
      // etcd3 also says "lost" when the grant itself failed; only the current lease's loss counts.
      if (this.stopped || (this.lease !== undefined && this.lease !== lease)) return;
      this.lease = undefined;
      this.logger?.warn("registration lease lost; registering again", { error: String(error) });
      this.registerAgain();
    });
    const info: NodeInfo = {
      schema: 1,
      nodeId: this.options.nodeId,
      segments: { ...this.options.segments },
      classes: this.engine.classes.all.map((c) => ({
        name: c.name,
        type: c.type,
        default: c === this.engine.classes.defaultClass,
      })),
      agentVersion: this.options.version,
      startedAt: new Date().toISOString(),
    };
    await this.registry.call("registering the node", () =>
      lease.put(this.keys.info(this.options.nodeId)).value(this.registry.encode(NodeInfoSchema, info)).exec(),
    );
    this.lease = lease;
    this.registerDelayMs = REGISTER_FIRST_DELAY_MS;
  }

  /**
   * Registers again after a lost lease, backing off while etcd cannot grant one (no quorum,
   * every member down), until it can or the agent stops. One attempt at a time.
   */
  private registerAgain(): void {
    if (this.stopped || this.registering) return;
    this.registering = true;
    const delay = this.registerDelayMs;
    this.registerDelayMs = Math.min(delay * 2, REGISTER_MAX_DELAY_MS);
    setTimeout(() => {
      this.register().then(
        () => {
          this.registering = false;
          this.logger?.info("registered again", { nodeId: this.options.nodeId });
        },
        (error: unknown) => {
          this.registering = false;
          this.logger?.warn("registering again failed; will retry", { error: String(error) });
          this.registerAgain();
        },
      );
    }, delay).unref();
  }

  /** Lists the node's prefix again and queues what is behind, and a report of the room. */
  private async resync(): Promise<void> {
    if (this.stopped) return;
    const { kvs } = await this.registry.range(this.keys.node(this.options.nodeId));
    for (const kv of kvs) this.queueFor(kv.key.toString());
    this.enqueue({ kind: "room", id: "" });
    if (this.options.gc) this.enqueue({ kind: "gc", id: "" });
  }

  /** A spec put under the node's prefix is work; statuses, deletions and the rest are not. */
  private onChange(change: PrefixChange): void {
    if (change.type === "put") this.queueFor(change.key);
  }

  private queueFor(key: string): void {
    const parsed = this.keys.parseNodeKey(key);
    if (parsed?.kind === "volumes") this.enqueue({ kind: "volume", id: parsed.id });
    if (parsed?.kind === "snapshots") this.enqueue({ kind: "snapshot", id: parsed.id });
  }

  private enqueue(work: Work): void {
    if (this.stopped) return;
    this.queue.set(`${work.kind}:${work.id}`, work);
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.size > 0 && !this.stopped) this.enqueue([...this.queue.values()][0]);
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const next = this.queue.entries().next();
      if (next.done) return;
      const [key, work] = next.value;
      this.queue.delete(key);
      try {
        if (work.kind === "room") await this.reportRoom([]);
        else if (work.kind === "gc") await this.options.gc?.sweep();
        else if (work.kind === "volume") await this.actOnVolume(work.id);
        else await this.actOnSnapshot(work.id);
        this.retryDelays.delete(key);
      } catch (error) {
        if (this.stopped) return;
        // Registry unreachable or a transient engine failure: try again later, backing off.
        const delay = Math.min((this.retryDelays.get(key) ?? 250) * 2, 30_000);
        this.retryDelays.set(key, delay);
        this.stats.retried++;
        this.logger?.warn("agent work will be retried", { work: key, delayMs: delay, error: String(error) });
        setTimeout(() => this.enqueue(work), delay).unref();
      }
    }
  }

  private async actOnVolume(id: string): Promise<void> {
    const specKey = this.keys.volume(this.options.nodeId, id);
    const spec = await this.registry.read(VolumeSpecSchema, specKey);
    if (!spec.value) {
      if (spec.problem) this.logger?.warn("volume spec fails validation; not acting on it", { ...spec.problem });
      return;
    }
    const status = await this.registry.read(VolumeStatusSchema, this.keys.volumeStatus(this.options.nodeId, id));
    if (status.value && status.value.generation >= spec.value.generation) return;
    await this.options.beforeAct?.({ kind: "volume", id });
    const outcome = await this.makeVolume(spec.value);
    this.stats.acted++;
    if (outcome.failure) this.stats.failed++;
    await this.reportRoom(
      [`volume:${id}`, `expand:${id}`],
      [this.keys.volumeStatus(this.options.nodeId, id), this.registry.encode(VolumeStatusSchema, outcome)],
    );
  }

  /** Does what the spec asks and says what LVM now has; a transient failure is thrown (retried), not reported. */
  private async makeVolume(spec: VolumeSpec): Promise<VolumeStatus> {
    const at = (): string => new Date().toISOString();
    const base = { schema: 1 as const, id: spec.id, generation: spec.generation };
    const existing = await this.engine.getVolume(spec.id);
    try {
      if (spec.deleting) {
        await this.engine.deleteVolume(spec.id);
        return {
          ...base,
          state: "deleted",
          sizeBytes: 0,
          condition: { abnormal: false, message: "deleted" },
          at: at(),
        };
      }
      let volume: Volume;
      if (!existing || !existing.ready) {
        volume = await this.engine.createVolume({
          name: spec.name,
          id: spec.id,
          range: { requiredBytes: BigInt(spec.sizeBytes), limitBytes: BigInt(spec.limitBytes) },
          parameters: {
            shaping: { ...spec.shaping, [PARAMETER_KEYS.deviceClass]: spec.deviceClass },
            metadata: spec.metadata,
          },
          ...(spec.contentSource ? { contentSource: spec.contentSource } : {}),
        });
      } else if (existing.sizeBytes < spec.sizeBytes) {
        volume = await this.engine.expandVolume(spec.id, { requiredBytes: BigInt(spec.sizeBytes), limitBytes: 0n });
      } else {
        volume = existing;
      }
      // ControllerModifyVolume: the spec's parameters (IO limits) recorded on the LV, then applied by the node.
      const shaping = { ...spec.shaping, [PARAMETER_KEYS.deviceClass]: spec.deviceClass };
      if (volume.ready && this.engine.setShaping && (await this.engine.setShaping(spec.id, shaping))) {
        await this.options.onVolumeModified?.(spec.id);
      }
      return { ...base, state: "ready", sizeBytes: volume.sizeBytes, condition: volume.condition, at: at() };
    } catch (error) {
      const failure = failureOf(error);
      if (TRANSIENT.includes(failure.code as VolumeErrorKind)) throw error;
      this.logger?.warn("volume work failed", { id: spec.id, generation: spec.generation, ...failure });
      const after = await this.engine.getVolume(spec.id).catch(() => existing);
      return after
        ? { ...base, state: "ready", sizeBytes: after.sizeBytes, condition: after.condition, failure, at: at() }
        : {
            ...base,
            state: "failed",
            sizeBytes: 0,
            condition: { abnormal: true, message: failure.message },
            failure,
            at: at(),
          };
    }
  }

  private async actOnSnapshot(id: string): Promise<void> {
    const spec = await this.registry.read(SnapshotSpecSchema, this.keys.snapshot(this.options.nodeId, id));
    if (!spec.value) {
      if (spec.problem) this.logger?.warn("snapshot spec fails validation; not acting on it", { ...spec.problem });
      return;
    }
    const status = await this.registry.read(SnapshotStatusSchema, this.keys.snapshotStatus(this.options.nodeId, id));
    if (status.value && status.value.generation >= spec.value.generation) return;
    await this.options.beforeAct?.({ kind: "snapshot", id });
    const outcome = await this.makeSnapshot(spec.value);
    this.stats.acted++;
    if (outcome.failure) this.stats.failed++;
    await this.reportRoom(
      [`snapshot:${id}`],
      [this.keys.snapshotStatus(this.options.nodeId, id), this.registry.encode(SnapshotStatusSchema, outcome)],
    );
  }

  private async makeSnapshot(spec: SnapshotSpec): Promise<SnapshotStatus> {
    const at = new Date().toISOString();
    const base = { schema: 1 as const, id: spec.id, generation: spec.generation, at };
    try {
      if (spec.deleting) {
        await this.engine.deleteSnapshot(spec.id);
        return { ...base, state: "deleted", sizeBytes: 0, createdAt: spec.createdAt, readyToUse: false };
      }
      const snapshot = await this.engine.createSnapshot({ name: spec.name, sourceVolumeId: spec.sourceVolumeId });
      return {
        ...base,
        state: "ready",
        sizeBytes: snapshot.sizeBytes,
        createdAt: snapshot.createdAt.toISOString(),
        readyToUse: snapshot.readyToUse,
      };
    } catch (error) {
      const failure = failureOf(error);
      if (TRANSIENT.includes(failure.code as VolumeErrorKind)) throw error;
      this.logger?.warn("snapshot work failed", { id: spec.id, generation: spec.generation, ...failure });
      return {
        ...base,
        state: spec.deleting ? "ready" : "failed",
        sizeBytes: 0,
        createdAt: spec.createdAt,
        readyToUse: false,
        failure,
      };
    }
  }

  /**
   * Writes the room of every class as LVM has it now, drops the named reservations (work that
   * is finished) and puts `status` ([key, value]) in the same transaction; compares the
   * ledger's revision and tries again on a concurrent reservation.
   */
  private async reportRoom(done: readonly string[], status?: [string, string]): Promise<void> {
    const classes: Record<string, ClassRoom> = {};
    for (const deviceClass of this.engine.classes.all) {
      const capacity = await this.engine.capacity({
        parameters: { shaping: { [PARAMETER_KEYS.deviceClass]: deviceClass.name }, metadata: {} },
      });
      classes[deviceClass.name] = {
        availableBytes: capacity.availableBytes,
        maximumVolumeBytes: capacity.maximumVolumeBytes,
        minimumVolumeBytes: capacity.minimumVolumeBytes,
        extentBytes: Math.max(1, capacity.minimumVolumeBytes),
      };
    }
    const key = this.keys.ledger(this.options.nodeId);
    for (;;) {
      const current = await this.registry.read(LedgerSchema, key);
      const reservations = { ...(current.value?.reservations ?? {}) };
      for (const name of done) delete reservations[name];
      const ledger: Ledger = { schema: 1, classes, reportedAt: new Date().toISOString(), reservations };
      const client = this.registry.client;
      const puts = [client.put(key).value(this.registry.encode(LedgerSchema, ledger))];
      if (status) puts.push(client.put(status[0]).value(status[1]));
      const result = await this.registry.call("reporting the node's room", () =>
        client
          .if(key, "Mod", "==", current.modRevision)
          .then(...puts)
          .commit(),
      );
      if (result.succeeded) return;
    }
  }
}

function failureOf(error: unknown): { code: string; message: string } {
  if (error instanceof VolumeError) return { code: error.kind, message: error.message.slice(0, 4000) };
  return { code: "internal", message: (error instanceof Error ? error.message : String(error)).slice(0, 4000) };
}
