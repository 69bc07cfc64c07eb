/**
 * `loam node`: the long-running CSI plugin of one node.
 */
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { CommandRunner } from "../exec/index.js";
import { Lvm } from "../lvm/lvm.js";
import { VolumeEngine } from "../volumes/engine.js";
import { createLogger } from "../log.js";
import { startServer } from "../csi/server.js";
import {
  CONFIG_FIELDS,
  ConfigError,
  type NodeConfig,
  flagValue,
  readConfigFile,
  resolveConfig,
  socketPathOf,
} from "./config.js";
import { VERSION } from "../version.js";
import { parseSocketMode } from "./config-schema.js";
import { LoamMetrics } from "../metrics/metrics.js";
import { LvmStateSampler } from "../metrics/lvm-state.js";
import { parseListenAddress, startObservabilityServer } from "../metrics/http.js";
import { HostOperations } from "../host/operations.js";
import { VolumeIoLimiter, ioLimitReportPathOf, kernelCgroups, reconcileEvery } from "../volumes/io-limiting.js";

/** How often the node re-applies IO limits (new v1 container cgroups, limits changed by ControllerModifyVolume). */
const IO_LIMIT_RECONCILE_MS = 10_000;
import type { Registry } from "../cluster/registry.js";
import type { Logger } from "../log.js";
import { untilSignalled } from "./serve.js";
import { disksAtStart } from "./disks.js";

/**
 * V8 lets the old generation grow to a multiple of what survived the last full collection, and
 * under a burst of calls each call's objects outlive the 1 MiB young generation
 * (src/deploy/node-runtime.ts), so the heap grew from 11 to 50 MiB of mostly garbage before a
 * full collection came. Growing by half at a time keeps a busy node near what it really holds
 * (82 MiB resident under the native bench's load instead of 160); no hard limit is set, so a
 * node with thousands of volumes still gets the heap it needs. It costs calls per second under
 * that load (issue 20; docs/benchmarks.md, "Native"). NODE_OPTIONS cannot carry this flag, so it
 * is set here, before the node allocates anything of note; V8 reads it at every full collection.
 */
export const HEAP_GROWING_FLAG = "--heap-growing-percent=50";

const kebab = (field: string): string => field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const NODE_USAGE = `Usage: loam node [--config FILE] [flags]

Serves CSI Identity, Controller and Node for this node's volume group on one Unix socket.

Flags (each may also be set in the JSON config file under the camelCase name):
  --endpoint unix:///PATH        socket to serve on (default unix:///run/loam/csi.sock)
  --node-id NAME                 this node's name (default: the host name)
  --volume-group VG              LVM volume group to carve volumes from (required)
  --driver-name NAME             CSI driver name (default loam.csi.dev)
  --topology-key KEY             topology label key (default topology.loam.csi.dev/node)
  --kubelet-dir DIR              kubelet's directory (default /var/lib/kubelet)
  --socket-mode MODE             socket file mode: 0600, 0640 or 0660 (default 0600)
  --max-volumes-per-node N       reported by NodeGetInfo; 0 means no limit (default 0)
  --log-level LEVEL              debug, info, warn or error (default info)
  --lvm-command-prefix "WORDS"   words put before every LVM command, e.g. "nsenter --target=1 --mount --"
  --lvm-timeout-seconds N        per LVM command (default 120)
  --shutdown-grace-seconds N     how long SIGTERM waits for calls in flight (default 30)
  --metrics-address HOST:PORT    /metrics, /healthz and /readyz listener; "" turns it off (default 127.0.0.1:9975)
  --disks-config FILE            disks.json: find this node's local disks and make its volume group
                                 before serving (loam disks apply; docs/disks.md)

Cluster mode (a central "loam controller" serves the Controller service; this node registers
in etcd and makes the volumes asked of it; it serves Identity and Node only):
  --cluster-etcd-endpoints URLS  etcd client URLs, comma-separated
  --etcd-ca FILE                 CA of etcd's server certificate (turns on TLS)
  --etcd-cert FILE               client certificate for etcd (with --etcd-key)
  --etcd-key FILE                the client certificate's key
`;

export async function loadNodeConfig(args: string[]): Promise<NodeConfig> {
  const options: Record<string, { type: "string" }> = { config: { type: "string" } };
  for (const field of CONFIG_FIELDS) options[kebab(field)] = { type: "string" };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new ConfigError("flags", `${(error as Error).message}\n\n${NODE_USAGE}`);
  }
  const values = parsed.values as Record<string, string | undefined>;
  const fromFile = values.config ? await readConfigFile(values.config) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    const text = values[kebab(field)];
    if (text !== undefined) fromFlags[field] = flagValue(field, text);
  }
  return resolveConfig(fromFile, fromFlags);
}

export async function runNode(args: string[]): Promise<number> {
  // A flag given on node's own command line wins (0 is V8's default growth).
  if (!process.execArgv.some((a) => a.startsWith("--heap-growing-percent"))) setFlagsFromString(HEAP_GROWING_FLAG);
  const config = await loadNodeConfig(args);
  const logger = createLogger(config.logLevel);
  const metrics = new LoamMetrics({ version: VERSION });
  const runner = new CommandRunner({
    prefix: config.lvmCommandPrefix,
    defaultTimeoutMs: config.lvmTimeoutSeconds * 1000,
    onCommand: (o) => {
      metrics.observeCommand(o);
      if (o.failed) logger.warn("lvm command failed", { argv: o.argv, exitCode: o.exitCode, durationMs: o.durationMs });
      else logger.debug("lvm command", { argv: o.argv, durationMs: o.durationMs });
    },
  });
  // mount, mkfs, blkid and the grow tools run in loam's own mount namespace: no prefix.
  const hostRunner = new CommandRunner({
    // Not warnings when they fail: blkid exits 2 on an empty device, and callers judge results.
    onCommand: (o) => logger.debug("host command", { argv: o.argv, exitCode: o.exitCode, durationMs: o.durationMs }),
  });
  // Before anything reads the volume group: it may not exist yet.
  if (config.disksConfig !== "")
    await disksAtStart(
      config.disksConfig,
      new CommandRunner({ prefix: config.lvmCommandPrefix, defaultTimeoutMs: 300_000 }),
      logger,
    );
  const lvm = new Lvm(runner);
  const engine = new VolumeEngine(lvm, config.deviceClasses);
  // Several device classes may share a volume group; each group is reported once per scrape.
  const lvmState = new LvmStateSampler(lvm, [...new Set(config.deviceClasses.map((c) => c.volumeGroup))]);
  metrics.watchVolumeGroups(lvmState);
  const listenAddress = config.metricsAddress === "" ? undefined : parseListenAddress(config.metricsAddress);
  const observability = listenAddress
    ? await startObservabilityServer({ address: listenAddress, metrics, lvmState, logger })
    : undefined;
  // IO limits (docs/iolimits.md): applied at publish, re-applied from the mount table at start and every 10 s.
  const host = new HostOperations(hostRunner);
  const ioLimiter = new VolumeIoLimiter(kernelCgroups(), logger, ioLimitReportPathOf(socketPathOf(config.endpoint)));
  metrics.watchIoLimits(ioLimiter);
  const reconciling = reconcileEvery(ioLimiter, engine, host, IO_LIMIT_RECONCILE_MS, logger);
  const agent =
    config.clusterEtcdEndpoints.length > 0
      ? await startAgent(config, engine, logger, metrics, (id) =>
          ioLimiter.reconcile(engine, host, id).then(() => undefined),
        )
      : undefined;
  const server = await startServer({
    socketPath: socketPathOf(config.endpoint),
    socketMode: parseSocketMode(config.socketMode) ?? 0o600,
    driverName: config.driverName,
    version: VERSION,
    node: { key: config.topologyKey, nodeId: config.nodeId },
    maxVolumesPerNode: config.maxVolumesPerNode,
    engine,
    kubeletDir: config.kubeletDir,
    hostRunner,
    host,
    ioLimiter,
    logger,
    onCall: (record) => metrics.observeCall(record),
    controller: agent === undefined,
  });
  logger.info("loam node started", { nodeId: config.nodeId, volumeGroup: config.volumeGroup, version: VERSION });

  return untilSignalled(server, config.shutdownGraceSeconds, logger, async () => {
    await reconciling.stop();
    await agent?.stop();
    agent?.registry.client.close();
    await observability?.close();
  });
}

/** Cluster mode: registers this node in etcd and starts acting on what the controller asks of it. */
async function startAgent(
  config: NodeConfig,
  engine: VolumeEngine,
  logger: Logger,
  metrics: LoamMetrics,
  onVolumeModified: (id: string) => Promise<void>,
): Promise<{ registry: Registry; stop: () => Promise<void> }> {
  // Imported here: a node outside cluster mode never loads etcd's client, its protos or the agent (issue 20).
  const [{ connectRegistry, parseEtcdEndpoints, watchQuorum }, { NodeAgent }, { GarbageCollector, reportPathOf }] =
    await Promise.all([import("./registry.js"), import("../cluster/agent.js"), import("../cluster/gc.js")]);
  const flags = {
    endpoints: parseEtcdEndpoints(config.clusterEtcdEndpoints.join(","), "clusterEtcdEndpoints"),
    ...(config.etcdCa !== "" ? { ca: config.etcdCa } : {}),
    ...(config.etcdCert !== "" ? { cert: config.etcdCert } : {}),
    ...(config.etcdKey !== "" ? { key: config.etcdKey } : {}),
  };
  const registry = connectRegistry(flags);
  registry.observe = (request) => metrics.observeEtcdRequest(request);
  // Only for the gauge and the log (so every 5 s, not every second: an agent refuses nothing);
  // the CSI Node service never reads etcd, so it never waits on it.
  const quorum = await watchQuorum(flags, registry, logger, (w) => metrics.setMetadataWritable(w), {
    reads: false,
    // Only the gauge: checked every 5 s (a quarter of the bound), so agents add little load on etcd.
    boundMs: 20_000,
  });
  const agent = new NodeAgent({
    onVolumeModified,
    registry,
    nodeId: config.nodeId,
    segments: { [config.topologyKey]: config.nodeId },
    engine,
    version: VERSION,
    logger,
    resyncSeconds: config.clusterResyncSeconds,
    gc: new GarbageCollector({
      registry,
      nodeId: config.nodeId,
      engine,
      mode: config.gc,
      graceSeconds: config.gcGraceSeconds,
      logger,
      observer: metrics,
      reportPath: reportPathOf(socketPathOf(config.endpoint)),
    }),
  });
  await agent.start();
  logger.info("registered in the cluster", { nodeId: config.nodeId, etcd: config.clusterEtcdEndpoints });
  return {
    registry,
    stop: async () => {
      quorum.stop();
      await agent.stop();
    },
  };
}
