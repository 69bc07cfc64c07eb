/**
 * `loam controller`: cluster mode's central CSI controller (Identity + Controller) over the
 * etcd registry. Any number of replicas may run; each serves every request.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ServerCredentials } from "@grpc/grpc-js";
import { hostname } from "node:os";
import { BackgroundWork } from "../cluster/background.js";
import { ClusterController } from "../cluster/controller.js";
import { PLACEMENT_POLICIES, type PlacementPolicy } from "../cluster/placement.js";
import { startClusterControllerServer } from "../csi/server.js";
import { LOG_LEVELS, type LogLevel, createLogger } from "../log.js";
import { LoamMetrics } from "../metrics/metrics.js";
import { parseListenAddress, startObservabilityServer } from "../metrics/http.js";
import { VERSION } from "../version.js";
import { ConfigError, DEFAULTS, socketPathOf } from "./config.js";
import { parseSocketMode } from "./config-schema.js";
import { RegistrySizeSampler } from "../cluster/sizes.js";
import { connectRegistry, parseEtcdEndpoints, watchQuorum } from "./registry.js";
import { untilSignalled } from "./serve.js";

export const CONTROLLER_USAGE = `Usage: loam controller --etcd-endpoints URL[,URL...] [flags]

Serves CSI Identity and Controller for a whole cluster from the registry in etcd. Node agents
(loam node --cluster-etcd-endpoints ...) make the volumes on their nodes.

Flags:
  --etcd-endpoints URLS          etcd client URLs, comma-separated (required)
  --etcd-ca FILE                 CA of etcd's server certificate (turns on TLS)
  --etcd-cert FILE               client certificate for etcd (with --etcd-key)
  --etcd-key FILE                the client certificate's key
  --endpoint unix:///PATH        socket to serve on (default unix:///run/loam/controller.sock; "" for none)
  --socket-mode MODE             socket file mode: 0600, 0640 or 0660 (default 0600)
  --listen HOST:PORT             also serve gRPC over TCP with TLS (needs --tls-cert and --tls-key)
  --tls-cert FILE                server certificate for --listen
  --tls-key FILE                 its key
  --tls-client-ca FILE           require client certificates signed by this CA on --listen
  --driver-name NAME             CSI driver name (default loam.csi.dev)
  --placement POLICY             spread or binpack: where a new volume goes among nodes that fit (default spread)
  --node-timeout-seconds N       how long a call waits for the node's agent before DEADLINE_EXCEEDED (default 60)
  --etcd-quorum-bound-seconds N  refuse metadata changes (UNAVAILABLE) once etcd has not confirmed quorum
                                 for this long; checks run every quarter of it (1 to 60, default 4)
  --election-lease-seconds N     lease of the background-work election: a replica that dies holding it is
                                 replaced about this long after (2 to 300, default 10)
  --log-level LEVEL              debug, info, warn or error (default info)
  --metrics-address HOST:PORT    /metrics, /healthz and /readyz; "" turns it off (default 127.0.0.1:9976)
  --shutdown-grace-seconds N     how long SIGTERM waits for calls in flight (default 30)
`;

const FLAGS = [
  "etcd-endpoints",
  "etcd-ca",
  "etcd-cert",
  "etcd-key",
  "endpoint",
  "socket-mode",
  "listen",
  "tls-cert",
  "tls-key",
  "tls-client-ca",
  "driver-name",
  "placement",
  "node-timeout-seconds",
  "election-lease-seconds",
  "etcd-quorum-bound-seconds",
  "log-level",
  "metrics-address",
  "shutdown-grace-seconds",
] as const;

export interface ControllerConfig {
  etcd: { endpoints: string[]; ca?: string; cert?: string; key?: string };
  socketPath: string | undefined;
  socketMode: number;
  listen?: { address: string; cert: string; key: string; clientCa?: string };
  driverName: string;
  placement: PlacementPolicy;
  nodeTimeoutSeconds: number;
  electionLeaseSeconds: number;
  quorumBoundSeconds: number;
  logLevel: LogLevel;
  metricsAddress: string;
  shutdownGraceSeconds: number;
}

const wholeNumber = (text: string, field: string, min: number, max: number): number => {
  if (!/^[0-9]{1,7}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ConfigError(field, `must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return Number(text);
};

export function parseControllerArgs(args: string[]): ControllerConfig {
  let values: Partial<Record<(typeof FLAGS)[number], string>>;
  try {
    values = parseArgs({
      args,
      options: Object.fromEntries(FLAGS.map((f) => [f, { type: "string" as const }])),
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new ConfigError("flags", `${(error as Error).message}\n\n${CONTROLLER_USAGE}`);
  }
  if (values["etcd-endpoints"] === undefined) throw new ConfigError("etcd-endpoints", "is required");
  const endpoint = values.endpoint ?? "unix:///run/loam/controller.sock";
  const placement = values.placement ?? "spread";
  if (!PLACEMENT_POLICIES.includes(placement as PlacementPolicy)) {
    throw new ConfigError("placement", `"${placement}" is not a policy; allowed: ${PLACEMENT_POLICIES.join(", ")}`);
  }
  const logLevel = values["log-level"] ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ConfigError("log-level", `"${logLevel}" is not a log level; allowed: ${LOG_LEVELS.join(", ")}`);
  }
  const socketModeText = values["socket-mode"] ?? "0600";
  const socketMode = parseSocketMode(socketModeText);
  if (socketMode === undefined) throw new ConfigError("socket-mode", "must be 0600, 0640 or 0660");
  const metricsAddress = values["metrics-address"] ?? "127.0.0.1:9976";
  if (metricsAddress !== "" && parseListenAddress(metricsAddress) === undefined) {
    throw new ConfigError("metrics-address", 'must be host:port, [ipv6]:port or :port, or "" to turn it off');
  }
  let listen: ControllerConfig["listen"];
  if (values.listen !== undefined) {
    if (parseListenAddress(values.listen) === undefined) throw new ConfigError("listen", "must be host:port");
    if (values["tls-cert"] === undefined || values["tls-key"] === undefined) {
      throw new ConfigError("listen", "needs --tls-cert and --tls-key: loam serves TCP only with TLS");
    }
    listen = {
      address: values.listen,
      cert: values["tls-cert"],
      key: values["tls-key"],
      ...(values["tls-client-ca"] !== undefined ? { clientCa: values["tls-client-ca"] } : {}),
    };
  } else if (values["tls-cert"] !== undefined || values["tls-key"] !== undefined) {
    throw new ConfigError("tls-cert", "--tls-cert and --tls-key are for --listen, which is not set");
  }
  if (endpoint === "" && !listen)
    throw new ConfigError("endpoint", 'is "" and --listen is not set: nothing to serve on');
  return {
    etcd: {
      endpoints: parseEtcdEndpoints(values["etcd-endpoints"], "etcd-endpoints"),
      ...(values["etcd-ca"] !== undefined ? { ca: values["etcd-ca"] } : {}),
      ...(values["etcd-cert"] !== undefined ? { cert: values["etcd-cert"] } : {}),
      ...(values["etcd-key"] !== undefined ? { key: values["etcd-key"] } : {}),
    },
    socketPath: endpoint === "" ? undefined : socketPathOf(endpoint),
    socketMode,
    ...(listen ? { listen } : {}),
    driverName: values["driver-name"] ?? DEFAULTS.driverName,
    placement: placement as PlacementPolicy,
    nodeTimeoutSeconds: wholeNumber(values["node-timeout-seconds"] ?? "60", "node-timeout-seconds", 1, 3600),
    electionLeaseSeconds: wholeNumber(values["election-lease-seconds"] ?? "10", "election-lease-seconds", 2, 300),
    quorumBoundSeconds: wholeNumber(values["etcd-quorum-bound-seconds"] ?? "4", "etcd-quorum-bound-seconds", 1, 60),
    logLevel: logLevel as LogLevel,
    metricsAddress,
    shutdownGraceSeconds: wholeNumber(values["shutdown-grace-seconds"] ?? "30", "shutdown-grace-seconds", 0, 3600),
  };
}

function tlsCredentials(listen: NonNullable<ControllerConfig["listen"]>): ServerCredentials {
  const read = (path: string, field: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(field, `cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const clientCa = listen.clientCa !== undefined ? read(listen.clientCa, "tls-client-ca") : null;
  return ServerCredentials.createSsl(
    clientCa,
    [{ cert_chain: read(listen.cert, "tls-cert"), private_key: read(listen.key, "tls-key") }],
    clientCa !== null,
  );
}

export async function runController(args: string[]): Promise<number> {
  const config = parseControllerArgs(args);
  const logger = createLogger(config.logLevel);
  const registry = connectRegistry(config.etcd);
  const controller = new ClusterController({
    registry,
    policy: config.placement,
    nodeTimeoutMs: config.nodeTimeoutSeconds * 1000,
    logger,
  });
  const metrics = new LoamMetrics({ version: VERSION });
  registry.observe = (request) => metrics.observeEtcdRequest(request);
  // Metadata-changing calls are refused while etcd cannot take writes; reads fall back to one member.
  const quorum = await watchQuorum(config.etcd, registry, logger, (w) => metrics.setMetadataWritable(w), {
    reads: true,
    boundMs: config.quorumBoundSeconds * 1000,
  });
  const sizes = new RegistrySizeSampler(registry, (s) => metrics.setRegistrySizes(s), logger);
  const metricsAddress = config.metricsAddress === "" ? undefined : parseListenAddress(config.metricsAddress);
  const observability = metricsAddress
    ? await startObservabilityServer({ address: metricsAddress, metrics, logger })
    : undefined;
  const background = new BackgroundWork({
    registry,
    identity: `${hostname()}/${process.pid}`,
    leaseSeconds: config.electionLeaseSeconds,
    logger,
    onLeadership: (leader) => {
      metrics.setControllerLeader(leader);
      if (leader) sizes.start();
      else sizes.stop();
    },
    onLostNodes: (count) => metrics.setLostNodes(count),
  });
  background.start();
  const server = await startClusterControllerServer({
    ...(config.socketPath !== undefined ? { socketPath: config.socketPath } : {}),
    socketMode: config.socketMode,
    ...(config.listen ? { tcp: { address: config.listen.address, credentials: tlsCredentials(config.listen) } } : {}),
    driverName: config.driverName,
    version: VERSION,
    controller,
    writes: quorum,
    logger,
    onCall: (record) => metrics.observeCall(record),
  });
  logger.info("loam controller started", {
    etcd: config.etcd.endpoints,
    placement: config.placement,
    version: VERSION,
  });
  return untilSignalled(server, config.shutdownGraceSeconds, logger, async () => {
    await background.stop();
    sizes.stop();
    quorum.stop();
    await observability?.close();
    registry.client.close();
  });
}
