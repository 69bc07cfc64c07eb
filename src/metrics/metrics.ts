/**
 * loam's Prometheus metrics. Counters and histograms are fed by the CSI service (one
 * observation per RPC) and the LVM runner (one per command); volume group figures are read
 * when a scrape asks for them, through the shared LVM state sampler, so they are never stale by
 * more than its cache period and an idle node runs no LVM for metrics.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CommandObservation } from "../exec/index.js";
import type { GcReport } from "../cluster/gc.js";
import type { VolumeIoLimiter } from "../volumes/io-limiting.js";
import { watchIoLimits } from "./io-limits.js";
import { type LvmStateSampler, type VolumeGroupReading, summarize } from "./lvm-state.js";

/** What the CSI service reports for each call (a subset of its CallRecord). */
export interface CallObservation {
  method: string;
  code: string;
  durationMs: number;
}

const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const ETCD_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LVM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

export interface MetricsOptions {
  version: string;
  /** Absent: no volume group gauges (e.g. a process that only serves Identity). */
  lvmState?: LvmStateSampler;
}

export class LoamMetrics {
  readonly registry = new Registry();
  private readonly rpcDuration: Histogram<"method" | "code">;
  private readonly rpcErrors: Counter<"method" | "code">;
  private readonly lvmDuration: Histogram<"command">;
  private readonly lvmFailures: Counter<"command">;
  private refreshGauges: (() => Promise<void>) | undefined;
  private scrapeRefresh: Promise<void> | undefined;

  private readonly controllerLeader: Gauge;
  private readonly metadataWritable: Gauge;
  private readonly etcdDuration: Histogram<"operation">;
  private readonly etcdFailures: Counter<"operation">;
  private readonly registryKeys: Gauge<"prefix">;
  private readonly registryBytes: Gauge<"prefix">;
  private readonly lostNodes: Gauge;
  private readonly gcOrphans: Gauge<"kind">;
  private readonly gcDangling: Gauge<"kind">;
  private readonly gcPending: Gauge;
  private readonly gcRemoved: Counter<"kind">;

  /** Cluster mode's garbage collection (src/cluster/gc.ts): what the last sweep reported. */
  observeGcSweep(report: GcReport): void {
    for (const kind of ["volume", "snapshot"] as const) {
      const reported = report.findings.filter((f) => f.reported);
      this.gcOrphans.set({ kind }, reported.filter((f) => f.kind === `orphan-${kind}`).length);
      this.gcDangling.set({ kind }, reported.filter((f) => f.kind === `dangling-${kind}`).length);
    }
    this.gcPending.set(report.findings.filter((f) => !f.reported).length);
  }

  observeGcRemoved(kind: "volume" | "snapshot"): void {
    this.gcRemoved.inc({ kind });
  }

  /** Cluster mode: whether this controller replica holds the election. */
  setControllerLeader(leader: boolean): void {
    this.controllerLeader.set(leader ? 1 : 0);
  }

  /** Cluster mode: whether the etcd registry takes writes (the quorum watch, src/cluster/quorum.ts). */
  setMetadataWritable(writable: boolean): void {
    this.metadataWritable.set(writable ? 1 : 0);
  }

  /** Cluster mode: one etcd request, as the registry ran it. */
  observeEtcdRequest(request: { operation: string; seconds: number; failed: boolean }): void {
    this.etcdDuration.observe({ operation: request.operation }, request.seconds);
    if (request.failed) this.etcdFailures.inc({ operation: request.operation });
  }

  /** Cluster mode: the registry's size per prefix; undefined on a replica that does not sample it. */
  setRegistrySizes(sizes: readonly { prefix: string; keys: number; bytes: number }[] | undefined): void {
    this.registryKeys.reset();
    this.registryBytes.reset();
    for (const size of sizes ?? []) {
      this.registryKeys.set({ prefix: size.prefix }, size.keys);
      this.registryBytes.set({ prefix: size.prefix }, size.bytes);
    }
  }

  /** Cluster mode: nodes marked lost (set by the replica doing the background work, 0 on the others). */
  setLostNodes(count: number): void {
    this.lostNodes.set(count);
  }

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    new Gauge({
      name: "loam_build_info",
      help: "Always 1; the labels say which loam and which Node.js runtime are running.",
      labelNames: ["version", "nodejs_version"],
      registers,
    }).set({ version: options.version, nodejs_version: process.versions.node }, 1);

    this.controllerLeader = new Gauge({
      name: "loam_cluster_controller_leader",
      help: "Cluster mode's loam controller: 1 while this replica holds the election and does the background work, else 0.",
      registers,
    });
    this.lostNodes = new Gauge({
      name: "loam_cluster_lost_nodes",
      help: "Cluster mode's loam controller: nodes whose agent's lease expired while their ledger stays (marked lost); set by the replica doing the background work, 0 on the others.",
      registers,
    });

    this.metadataWritable = new Gauge({
      name: "loam_cluster_metadata_writable",
      help: "Cluster mode: 1 while the etcd registry takes writes (a linearizable read answered and no alarm is raised), 0 while metadata calls answer UNAVAILABLE (no quorum, NOSPACE).",
      registers,
    });
    this.etcdDuration = new Histogram({
      name: "loam_etcd_request_duration_seconds",
      help: "Cluster mode: time of each etcd request the registry made, by operation (reading, listing, reserving, writing, ...), failed ones included.",
      labelNames: ["operation"],
      buckets: ETCD_BUCKETS,
      registers,
    });
    this.etcdFailures = new Counter({
      name: "loam_etcd_request_failures_total",
      help: "Cluster mode: etcd requests that failed (no answer, no quorum, refused), by operation.",
      labelNames: ["operation"],
      registers,
    });
    this.registryKeys = new Gauge({
      name: "loam_cluster_registry_keys",
      help: "Cluster mode: keys in the etcd registry per prefix (members, ledgers, nodes, volumes, snapshots); sampled every minute by the controller replica that holds the election.",
      labelNames: ["prefix"],
      registers,
    });
    this.registryBytes = new Gauge({
      name: "loam_cluster_registry_bytes",
      help: "Cluster mode: bytes of keys and values in the etcd registry per prefix; sampled with loam_cluster_registry_keys.",
      labelNames: ["prefix"],
      registers,
    });
    this.gcOrphans = new Gauge({
      name: "loam_cluster_gc_orphan_lvs",
      help: "Cluster mode's node agent: LVs with loam's tags and no registry record, found for longer than the grace period, by kind (volume, snapshot).",
      labelNames: ["kind"],
      registers,
    });
    this.gcDangling = new Gauge({
      name: "loam_cluster_gc_dangling_records",
      help: "Cluster mode's node agent: registry records that say ready while their LV does not exist, found for longer than the grace period, by kind.",
      labelNames: ["kind"],
      registers,
    });
    this.gcPending = new Gauge({
      name: "loam_cluster_gc_pending_findings",
      help: "Cluster mode's node agent: orphan LVs and dangling records seen but still within the grace period.",
      registers,
    });
    this.gcRemoved = new Counter({
      name: "loam_cluster_gc_removed_lvs_total",
      help: "Cluster mode's node agent: orphan LVs garbage collection removed (--gc=delete), by kind.",
      labelNames: ["kind"],
      registers,
    });

    this.rpcDuration = new Histogram({
      name: "loam_csi_rpc_duration_seconds",
      help: "Time loam took to answer a CSI call, by method and gRPC status code.",
      labelNames: ["method", "code"],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.rpcErrors = new Counter({
      name: "loam_csi_rpc_errors_total",
      help: "CSI calls answered with a status other than OK, by method and gRPC status code.",
      labelNames: ["method", "code"],
      registers,
    });
    this.lvmDuration = new Histogram({
      name: "loam_lvm_command_duration_seconds",
      help: "Run time of LVM commands loam started, by command (lvcreate, fullreport, ...).",
      labelNames: ["command"],
      buckets: LVM_BUCKETS,
      registers,
    });
    this.lvmFailures = new Counter({
      name: "loam_lvm_command_failures_total",
      help: "LVM commands that exited non-zero, timed out, were cancelled or could not start, by command.",
      labelNames: ["command"],
      registers,
    });
    if (options.lvmState) this.watchVolumeGroups(options.lvmState);
  }

  observeCall(call: CallObservation): void {
    const labels = { method: call.method, code: call.code };
    this.rpcDuration.observe(labels, call.durationMs / 1000);
    if (call.code !== "OK") this.rpcErrors.inc(labels);
  }

  observeCommand(observation: CommandObservation): void {
    const command = commandLabel(observation.argv);
    this.lvmDuration.observe({ command }, observation.durationMs / 1000);
    if (observation.failed) this.lvmFailures.inc({ command });
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const refresh = this.refreshGauges?.();
    this.scrapeRefresh = refresh;
    try {
      // Counters are read the moment the registry serializes them: wait for the report
      // first, so its own command (and a failure of it) is in this scrape, not the next.
      await refresh;
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      if (this.scrapeRefresh === refresh) this.scrapeRefresh = undefined;
    }
  }

  /** Adds the gauges of the IO limits in force (src/metrics/io-limits.ts). Call once. */
  watchIoLimits(limiter: VolumeIoLimiter): void {
    watchIoLimits(this.registry, limiter);
  }

  /** Adds the volume group gauges, read from the LVM state sampler at each scrape. Call once. */
  watchVolumeGroups(lvmState: LvmStateSampler): void {
    // A scrape refreshes once and every gauge's collect awaits that one refresh, so a
    // scrape runs one report per volume group whatever the LVM state sampler's cache period.
    const collect = (): Promise<void> => this.scrapeRefresh ?? refresh();
    const registers = [this.registry];
    const vg = (name: string, help: string): Gauge<"volume_group"> =>
      new Gauge({ name, help, labelNames: ["volume_group"], registers, collect });
    const pool = (name: string, help: string): Gauge<"volume_group" | "thin_pool"> =>
      new Gauge({ name, help, labelNames: ["volume_group", "thin_pool"], registers, collect });
    const g: VolumeGroupGauges = {
      up: vg(
        "loam_volume_group_up",
        "1 when the last report of the volume group succeeded, 0 when it could not be read.",
      ),
      size: vg("loam_volume_group_size_bytes", "Size of the volume group."),
      free: vg(
        "loam_volume_group_free_bytes",
        "Unallocated space in the volume group (what new thick volumes and pools can use).",
      ),
      allocated: vg(
        "loam_volume_group_allocated_bytes",
        "Space in the volume group allocated to logical volumes of any kind.",
      ),
      metadataFree: vg(
        "loam_volume_group_metadata_free_bytes",
        "Room left in the volume group's smallest metadata area in use; every volume's LVM description must fit there.",
      ),
      missingPvs: vg(
        "loam_volume_group_missing_physical_volumes",
        "Physical volumes of the volume group LVM cannot find; above 0 LVM allocates nothing in the group (loam status names them and the volumes on them).",
      ),
      volumes: vg("loam_volumes", "Number of loam volumes (not snapshots) in the volume group."),
      snapshots: vg("loam_snapshots", "Number of loam snapshots in the volume group."),
      poolSize: pool("loam_thin_pool_size_bytes", "Data size of a thin pool."),
      poolData: pool("loam_thin_pool_data_usage_ratio", "Fraction (0 to 1) of a thin pool's data space in use."),
      poolMeta: pool(
        "loam_thin_pool_metadata_usage_ratio",
        "Fraction (0 to 1) of a thin pool's metadata space in use.",
      ),
      poolHealthy: pool(
        "loam_thin_pool_healthy",
        "1 when the thin pool is healthy; 0 when LVM reports it out of data space, with read-only metadata or failed, or its data or metadata is 100% used.",
      ),
      poolProvisioned: pool(
        "loam_thin_pool_provisioned_bytes",
        "Sum of the virtual sizes of the thin volumes in a pool; above the pool size means overcommitted.",
      ),
      provisioned: new Gauge({
        name: "loam_volume_provisioned_bytes",
        help: "Size of each loam volume (virtual size for thin volumes), with the claim it serves when known.",
        labelNames: ["volume_group", "volume_id", "pvc_namespace", "pvc_name"],
        registers,
        collect,
      }),
      abnormal: new Gauge({
        name: "loam_volume_abnormal",
        help: "1 when the volume's condition, as ControllerGetVolume reports it, is abnormal (extents on a missing physical volume, not active, LVM health), else 0.",
        labelNames: ["volume_group", "volume_id"],
        registers,
        collect,
      }),
    };
    const refresh = async (): Promise<void> => {
      const readings = await lvmState.read();
      for (const gauge of [g.up, g.size, g.free, g.allocated, g.metadataFree, g.missingPvs, g.volumes, g.snapshots])
        gauge.reset();
      for (const gauge of [g.poolSize, g.poolData, g.poolMeta, g.poolHealthy, g.poolProvisioned]) gauge.reset();
      g.provisioned.reset();
      g.abnormal.reset();
      for (const reading of readings) setFrom(g, reading);
    };
    this.refreshGauges = refresh;
  }
}

interface VolumeGroupGauges {
  up: Gauge<"volume_group">;
  size: Gauge<"volume_group">;
  free: Gauge<"volume_group">;
  allocated: Gauge<"volume_group">;
  metadataFree: Gauge<"volume_group">;
  missingPvs: Gauge<"volume_group">;
  volumes: Gauge<"volume_group">;
  snapshots: Gauge<"volume_group">;
  poolSize: Gauge<"volume_group" | "thin_pool">;
  poolData: Gauge<"volume_group" | "thin_pool">;
  poolMeta: Gauge<"volume_group" | "thin_pool">;
  poolHealthy: Gauge<"volume_group" | "thin_pool">;
  poolProvisioned: Gauge<"volume_group" | "thin_pool">;
  provisioned: Gauge<"volume_group" | "volume_id" | "pvc_namespace" | "pvc_name">;
  abnormal: Gauge<"volume_group" | "volume_id">;
}

function setFrom(g: VolumeGroupGauges, reading: VolumeGroupReading): void {
  const volume_group = reading.volumeGroup;
  g.up.set({ volume_group }, reading.ok ? 1 : 0);
  if (!reading.ok) return;
  const summary = summarize(reading.report);
  g.size.set({ volume_group }, summary.sizeBytes);
  g.free.set({ volume_group }, summary.freeBytes);
  g.allocated.set({ volume_group }, summary.allocatedBytes);
  if (summary.metadataFreeBytes !== undefined) g.metadataFree.set({ volume_group }, summary.metadataFreeBytes);
  g.missingPvs.set({ volume_group }, summary.missingPvs.length);
  g.volumes.set({ volume_group }, summary.volumes.length);
  g.snapshots.set({ volume_group }, summary.snapshots.length);
  for (const pool of summary.pools) {
    const labels = { volume_group, thin_pool: pool.name };
    g.poolSize.set(labels, pool.sizeBytes);
    g.poolProvisioned.set(labels, pool.provisionedBytes);
    g.poolHealthy.set(labels, pool.problem === "" ? 1 : 0);
    if (pool.dataUsage !== null) g.poolData.set(labels, pool.dataUsage);
    if (pool.metadataUsage !== null) g.poolMeta.set(labels, pool.metadataUsage);
  }
  for (const volume of summary.volumes) {
    g.provisioned.set(
      { volume_group, volume_id: volume.id, pvc_namespace: volume.pvcNamespace, pvc_name: volume.pvcName },
      volume.sizeBytes,
    );
    g.abnormal.set({ volume_group, volume_id: volume.id }, volume.abnormal === "" ? 0 : 1);
  }
}

const COMMAND_WORD = /^[a-z][a-z0-9_.-]{0,31}$/;

/**
 * The command's name for a label: the LVM subcommand for `lvm <sub>`, else the program's
 * base name. Anything unusual becomes "other" so a label never grows without bound.
 */
export function commandLabel(argv: readonly string[]): string {
  const program = (argv[0] ?? "").split("/").pop() ?? "";
  const word = program === "lvm" && argv[1] !== undefined ? argv[1] : program;
  return COMMAND_WORD.test(word) ? word : "other";
}
