/**
 * The gRPC servers: a node's (Identity, Controller and Node on one Unix socket; without
 * Controller for a node agent of cluster mode) and cluster mode's central controller's
 * (Identity and Controller, on a Unix socket and optionally TCP with TLS).
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { Controller, Identity, Node } from "../gen/csi/v1/csi_pb.js";
import type { VolumeEngine } from "../volumes/engine.js";
import type { NodeHost } from "../volumes/node-host.js";
import type { VolumeIoLimiter } from "../volumes/io-limiting.js";
import { CommandRunner } from "../exec/index.js";
import type { Logger } from "../log.js";
import { type CallRecord, type ServiceHandlers, addService } from "./service.js";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { identityService } from "./identity.js";
import { controllerService } from "./controller.js";
import { type WriteGuard, clusterControllerService } from "./cluster-controller.js";
import type { ClusterController } from "../cluster/controller.js";
import { nodeService } from "./node.js";
import type { NodeTopology } from "./validate.js";

export interface ServerOptions {
  /** Filesystem path of the socket (the endpoint without `unix://`). */
  socketPath: string;
  socketMode: number;
  driverName: string;
  version: string;
  node: NodeTopology;
  maxVolumesPerNode: number;
  engine: VolumeEngine;
  /** kubelet's directory; staging and target paths must lie below it. Default /var/lib/kubelet. */
  kubeletDir?: string;
  /** Runner for mount, mkfs and friends; a plain runner (no LVM prefix) when not given. */
  hostRunner?: CommandRunner;
  /** The Node service's devices, filesystems and mounts; HostOperations over hostRunner when not given. */
  host?: NodeHost;
  /** IO limits through cgroups (docs/iolimits.md); none are applied when not given. */
  ioLimiter?: VolumeIoLimiter;
  logger: Logger;
  onCall?: (record: CallRecord) => void;
  /** false: a node agent of cluster mode, which serves Identity and Node only. Default true. */
  controller?: boolean;
}

export interface RunningServer {
  /** Stops taking new calls, waits for in-flight ones up to graceMs, then closes the socket. */
  stop(graceMs: number): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const serving = new Serving(options.logger, options.onCall);
  const controller = options.controller !== false;
  serving.add(
    Identity,
    identityService({
      driverName: options.driverName,
      version: options.version,
      probe: (signal) => options.engine.probe({ signal }),
      controller,
    }),
  );
  if (controller) serving.add(Controller, controllerService(options));
  serving.add(
    Node,
    nodeService({
      ...options,
      kubeletDir: options.kubeletDir ?? "/var/lib/kubelet",
      hostRunner: options.hostRunner ?? new CommandRunner(),
    }),
  );
  await serving.bindUnix(options.socketPath, options.socketMode);
  options.logger.info("serving", { endpoint: `unix://${options.socketPath}`, driver: options.driverName });
  return serving;
}

export interface ClusterControllerServerOptions {
  /** The Unix socket; undefined to serve on TCP only. */
  socketPath?: string;
  socketMode: number;
  /** A TCP listener (TLS credentials from the CLI), for orchestrators whose controller plugin runs elsewhere. */
  tcp?: { address: string; credentials: ServerCredentials };
  driverName: string;
  version: string;
  controller: ClusterController;
  /** Refuses metadata-changing calls while etcd cannot take writes (the quorum watch). */
  writes?: WriteGuard;
  logger: Logger;
  onCall?: (record: CallRecord) => void;
}

/** Cluster mode's central controller: Identity and Controller over the etcd registry. */
export async function startClusterControllerServer(options: ClusterControllerServerOptions): Promise<RunningServer> {
  const serving = new Serving(options.logger, options.onCall);
  serving.add(
    Identity,
    identityService({
      driverName: options.driverName,
      version: options.version,
      probe: (signal) => options.controller.probe(signal),
      controller: true,
    }),
  );
  serving.add(
    Controller,
    clusterControllerService({
      controller: options.controller,
      ...(options.writes ? { writes: options.writes } : {}),
    }),
  );
  if (options.socketPath) {
    await serving.bindUnix(options.socketPath, options.socketMode);
    options.logger.info("serving", { endpoint: `unix://${options.socketPath}`, driver: options.driverName });
  }
  if (options.tcp) {
    const port = await serving.bind(options.tcp.address, options.tcp.credentials);
    options.logger.info("serving", { endpoint: options.tcp.address, port, driver: options.driverName });
  }
  return serving;
}

/** One gRPC server: its services, the interceptor hooks, its listeners, and a graceful stop. */
class Serving implements RunningServer {
  private stopping = false;
  private readonly server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  private readonly sockets: string[] = [];
  private readonly hooks;

  constructor(
    private readonly logger: Logger,
    onCall: ((record: CallRecord) => void) | undefined,
  ) {
    this.hooks = { logger, isStopping: () => this.stopping, ...(onCall ? { onCall } : {}) };
  }

  add<M extends GenServiceMethods>(service: GenService<M>, handlers: ServiceHandlers<M>): void {
    addService(this.server, service, handlers, this.hooks);
  }

  bind(address: string, credentials: ServerCredentials): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port)));
    });
  }

  async bindUnix(socketPath: string, socketMode: number): Promise<void> {
    await prepareSocketPath(socketPath);
    // Create the socket with no group/other access at all, then set the configured mode.
    const previousUmask = process.umask(0o177);
    try {
      await this.bind(`unix://${socketPath}`, ServerCredentials.createInsecure());
    } finally {
      process.umask(previousUmask);
    }
    await chmod(socketPath, socketMode);
    this.sockets.push(socketPath);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn("shutdown grace period over; cancelling calls still running", { graceMs });
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await Promise.all(this.sockets.map((path) => unlink(path).catch(() => undefined)));
  }
}

/** Makes the socket's directory and removes a stale socket; refuses to delete anything that is not a socket. */
async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const existing = await lstat(path).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) throw new Error(`endpoint ${path} exists and is not a socket; refusing to replace it`);
  await unlink(path);
}
