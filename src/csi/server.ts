/**
 * The gRPC server on one Unix socket, serving Identity, Controller and Node together.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { Controller, Identity, Node } from "../gen/csi/v1/csi_pb.js";
import type { VolumeEngine } from "../volumes/engine.js";
import type { NodeHost } from "../volumes/node-host.js";
import { CommandRunner } from "../exec/index.js";
import type { Logger } from "../log.js";
import { type CallRecord, addService } from "./service.js";
import { identityService } from "./identity.js";
import { controllerService } from "./controller.js";
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
  logger: Logger;
  onCall?: (record: CallRecord) => void;
}

export interface RunningServer {
  /** Stops taking new calls, waits for in-flight ones up to graceMs, then closes the socket. */
  stop(graceMs: number): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  let stopping = false;
  const server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  const hooks = {
    logger: options.logger,
    isStopping: () => stopping,
    ...(options.onCall ? { onCall: options.onCall } : {}),
  };
  addService(server, Identity, identityService(options), hooks);
  addService(server, Controller, controllerService(options), hooks);
  addService(
    server,
    Node,
    nodeService({
      ...options,
      kubeletDir: options.kubeletDir ?? "/var/lib/kubelet",
      hostRunner: options.hostRunner ?? new CommandRunner(),
    }),
    hooks,
  );

  await prepareSocketPath(options.socketPath);
  // Create the socket with no group/other access at all, then set the configured mode.
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<number>((resolve, reject) => {
      server.bindAsync(`unix://${options.socketPath}`, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      );
    });
  } finally {
    process.umask(previousUmask);
  }
  await chmod(options.socketPath, options.socketMode);
  options.logger.info("serving", { endpoint: `unix://${options.socketPath}`, driver: options.driverName });

  return {
    stop: async (graceMs) => {
      stopping = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn("shutdown grace period over; cancelling calls still running", { graceMs });
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
}

/** Makes the socket's directory and removes a stale socket; refuses to delete anything that is not a socket. */
async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const existing = await lstat(path).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) throw new Error(`endpoint ${path} exists and is not a socket; refusing to replace it`);
  await unlink(path);
}
