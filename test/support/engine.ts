/**
 * A VolumeEngine over the in-memory LVM stand-in, and loam's real gRPC server (Identity,
 * Controller, Node) on a temporary Unix socket over that engine, for fast tests that send
 * real CSI requests. Nothing here touches LVM, device-mapper or mounts: host commands fail
 * loudly (see `hostRunner`), so a node test reaches only the checks made before any of them.
 */
import type { VolumeIoLimiter } from "../../src/volumes/io-limiting.js";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CsiClient } from "../../src/csi/client.js";
import { type RunningServer, type ServerOptions, startServer } from "../../src/csi/server.js";
import type { CallRecord } from "../../src/csi/service.js";
import { createLogger } from "../../src/log.js";
import type { NodeHost } from "../../src/volumes/node-host.js";
import { type DeviceClass, singleThickClass } from "../../src/volumes/device-classes.js";
import { type EngineOptions, VolumeEngine } from "../../src/volumes/engine.js";
import { MiB } from "../../src/volumes/size.js";
import { InMemoryLvmStandIn, fixtureReports } from "./in-memory-lvm.js";

/** The fixture VG (fullreport-empty-vg: two PVs of 255 extents of 4 MiB, no LV). */
export const VG = "loamfx";
export const THIN_POOL = "pool";
export const EXTENT = 4 * MiB;
export const NODE_ID = "fast-node";
export const TOPOLOGY_KEY = "topology.loam.csi.dev/node";
export const DRIVER_NAME = "loam.csi.dev";

export const thickClass = (extra: Partial<DeviceClass> = {}): DeviceClass => ({
  ...singleThickClass(VG),
  name: "thick",
  ...extra,
});
export const thinClass = (extra: Partial<DeviceClass> = {}): DeviceClass => ({
  ...singleThickClass(VG),
  name: "thin",
  type: "thin",
  thinPool: THIN_POOL,
  overprovisionRatio: 4,
  default: false,
  ...extra,
});

export interface EngineSetup {
  /** Device classes; default: "thick" (the default class) and "thin" on pool THIN_POOL, both in VG. */
  classes?: readonly DeviceClass[];
  /** The stand-in to use; default: one seeded from fullreport-empty-vg. */
  lvm?: InMemoryLvmStandIn;
  /** Size of the thin pool made before the engine starts (0: none). Default 512 MiB. */
  thinPoolBytes?: number;
  /** More engine options (the stand-in's device check and stamp are the defaults). */
  options?: EngineOptions;
}

export interface TestEngine {
  engine: VolumeEngine;
  lvm: InMemoryLvmStandIn;
}

/**
 * A VolumeEngine with thick and thin device classes over the stand-in. The thin pool is made
 * through the stand-in before the engine exists, and the calls list starts empty.
 */
export async function makeEngine(setup: EngineSetup = {}): Promise<TestEngine> {
  const lvm = setup.lvm ?? new InMemoryLvmStandIn(fixtureReports("fullreport-empty-vg"));
  const classes = setup.classes ?? [thickClass(), thinClass()];
  const poolBytes = setup.thinPoolBytes ?? 512 * MiB;
  if (poolBytes > 0 && classes.some((c) => c.type === "thin")) {
    await lvm.createThinPool({ vg: VG, name: THIN_POOL, sizeBytes: poolBytes, metadataSizeBytes: 4 * MiB });
  }
  lvm.calls.length = 0;
  const engine = new VolumeEngine(lvm, classes, {
    isBlockDevice: lvm.isBlockDevice,
    stamp: lvm.stamp,
    ...setup.options,
  });
  return { engine, lvm };
}

export interface CsiSetup extends EngineSetup {
  /** An engine already made (makeEngine); otherwise one is made from the rest of the setup. */
  made?: TestEngine;
  maxVolumesPerNode?: number;
  /** The Node service's machine (e.g. InMemoryNodeHostStandIn); without one, host commands fail the call. */
  host?: NodeHost;
  /** IO limits through cgroups (a limiter over a stand-in CgroupAccess in the fast tests). */
  ioLimiter?: VolumeIoLimiter;
  /** Calls the server records, for assertions on codes and ids. */
  onCall?: (record: CallRecord) => void;
  /** kubelet's directory of a server still running (a second server over the same machine, as after a restart). */
  kubeletDir?: string;
}

export interface TestCsi extends TestEngine {
  client: CsiClient;
  /** kubelet's directory for this server: staging and target paths must lie below it. */
  kubeletDir: string;
  socketPath: string;
  stop(): Promise<void>;
}

/**
 * loam's real server (src/csi/server.ts) on a socket in a new temporary directory, over an
 * engine on the stand-in, and a client dialling it as the sidecars do. Call stop() after.
 */
export async function startCsi(setup: CsiSetup = {}): Promise<TestCsi> {
  const made = setup.made ?? (await makeEngine(setup));
  const dir = await mkdtemp(join(tmpdir(), "loam-fast-csi-"));
  const socketPath = join(dir, "csi.sock");
  const kubeletDir = setup.kubeletDir ?? join(dir, "kubelet");
  if (!setup.kubeletDir) await mkdir(kubeletDir);
  const options: ServerOptions = {
    socketPath,
    socketMode: 0o600,
    driverName: DRIVER_NAME,
    version: "0.0.0-fast",
    node: { key: TOPOLOGY_KEY, nodeId: NODE_ID },
    maxVolumesPerNode: setup.maxVolumesPerNode ?? 0,
    engine: made.engine,
    kubeletDir,
    hostRunner,
    logger: createLogger("error", () => undefined),
    ...(setup.onCall ? { onCall: setup.onCall } : {}),
    ...(setup.host ? { host: setup.host } : {}),
    ...(setup.ioLimiter ? { ioLimiter: setup.ioLimiter } : {}),
  };
  let server: RunningServer;
  try {
    server = await startServer(options);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const client = new CsiClient(`unix://${socketPath}`);
  return {
    ...made,
    client,
    kubeletDir,
    socketPath,
    stop: async () => {
      client.close();
      await server.stop(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Host commands (mount, mkfs, blkid) are not part of fast tests: any that runs fails the call. */
const hostRunner = {
  run: (argv: readonly string[]) =>
    Promise.reject(new Error(`fast tests run no host commands; ${argv.join(" ")} was started`)),
} as unknown as NonNullable<ServerOptions["hostRunner"]>;
