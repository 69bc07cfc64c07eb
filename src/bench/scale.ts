/**
 * Scale: how loam's calls behave as the VG fills with volumes. At each scale the VG holds
 * exactly N loam volumes (pre-made in one metadata commit, see populate.ts), loam is
 * restarted so its memory reflects that scale alone, and each RPC is sampled on its own.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CsiClient } from "../csi/client.js";
import { Controller, Node } from "../gen/csi/v1/csi_pb.js";
import { MiB, say, timed } from "./lab.js";
import { ENDPOINT, memoryOf, type Memory } from "./loam-process.js";
import { populate, type PopulateResult } from "./populate.js";
import { createInit, csiPaths, mountCapability, PODS_ROOT, STAGING_ROOT } from "./requests.js";
import { distribution, type Distribution } from "./stats.js";

export const SCALE_RPCS = ["CreateVolume", "NodePublishVolume", "ListVolumes", "GetCapacity"] as const;
export type ScaleRpc = (typeof SCALE_RPCS)[number];

export interface RpcSamples extends Distribution {
  rpc: ScaleRpc;
  samplesMs: number[];
}

export interface ScaleResult {
  volumes: number;
  /** What ListVolumes returned before sampling (must be at least `volumes`). */
  listed: number;
  populate?: PopulateResult;
  rpcs: RpcSamples[];
  memoryAfterStart: Memory;
  memoryAfterSamples: Memory;
}

export interface ScaleOptions {
  samples: number;
  pageSize: number;
  /** Stops any running loam and starts a fresh one; resolves to the new child. */
  restartLoam: () => Promise<ChildProcess>;
}

const SAMPLE_BYTES = 64 * MiB;
// xfs refuses filesystems under 300 MiB; ext4 keeps the staged sample volumes small.
const ext4 = mountCapability("ext4");
const capacityRequest = { volumeCapabilities: [mountCapability("xfs")], parameters: { "loam.csi.dev/deviceClass": "thick" } };

async function listAll(client: CsiClient, pageSize: number): Promise<number> {
  let token = "";
  let count = 0;
  for (let pages = 0; pages < 100_000; pages++) {
    const reply = await client.call(Controller, "listVolumes", { maxEntries: pageSize, startingToken: token });
    count += reply.entries.length;
    token = reply.nextToken;
    if (token === "") return count;
  }
  throw new Error("ListVolumes: next_token never ended");
}

async function sampleCreate(client: CsiClient, scale: number, i: number): Promise<number> {
  let id = "";
  const ms = await timed(async () => {
    id = (await client.call(Controller, "createVolume", createInit(`bench-scale${scale}-create-${i}`, SAMPLE_BYTES, "thick"))).volume?.volumeId ?? "";
  });
  await client.call(Controller, "deleteVolume", { volumeId: id });
  return ms;
}

/** Stage untimed as kubelet would just before, time only NodePublishVolume, then tear down untimed. */
async function samplePublish(client: CsiClient, scale: number, i: number): Promise<number> {
  const reply = await client.call(Controller, "createVolume", createInit(`bench-scale${scale}-publish-${i}`, SAMPLE_BYTES, "thick", "ext4"));
  const id = reply.volume?.volumeId ?? "";
  const p = csiPaths(id);
  await mkdir(p.staging, { recursive: true });
  await client.call(Node, "nodeStageVolume", { volumeId: id, stagingTargetPath: p.staging, volumeCapability: ext4 });
  const ms = await timed(() =>
    client.call(Node, "nodePublishVolume", { volumeId: id, stagingTargetPath: p.staging, targetPath: p.target, volumeCapability: ext4 }));
  await client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: p.target });
  await client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: p.staging });
  await client.call(Controller, "deleteVolume", { volumeId: id });
  await rm(join(STAGING_ROOT, id), { recursive: true, force: true });
  await rm(join(PODS_ROOT, "bench-pod"), { recursive: true, force: true });
  return ms;
}

async function sampleRpc(rpc: ScaleRpc, client: CsiClient, scale: number, i: number, pageSize: number): Promise<number> {
  switch (rpc) {
    case "CreateVolume":
      return sampleCreate(client, scale, i);
    case "NodePublishVolume":
      return samplePublish(client, scale, i);
    case "ListVolumes":
      return timed(() => listAll(client, pageSize));
    case "GetCapacity":
      return timed(() => client.call(Controller, "getCapacity", capacityRequest));
  }
}

/** Runs every scale in ascending order; `existing` is how many pre-made volumes the VG already holds. */
export async function scaleSection(scales: readonly number[], options: ScaleOptions): Promise<ScaleResult[]> {
  const results: ScaleResult[] = [];
  let existing = 0;
  for (const volumes of scales) {
    say(`   ${volumes} volumes: populating ${volumes - existing} in one metadata commit`);
    const populated = volumes > existing ? await populate(existing, volumes - existing) : undefined;
    if (populated) {
      say(`      ${populated.added} LVs in ${populated.seconds.toFixed(1)} s; metadata ${populated.metadataBytesAfter} bytes ` +
        `(${populated.metadataBytesPerVolume.toFixed(0)} per volume), metadata area ${populated.metadataAreaBytes} bytes, ${populated.metadataAreaFreeBytes} free`);
    }
    existing = Math.max(existing, volumes);
    const child = await options.restartLoam();
    const pid = child.pid ?? 0;
    const client = new CsiClient(ENDPOINT);
    try {
      const memoryAfterStart = await memoryOf(pid);
      // The check is also the warm-up: loam's first walk is not a sample.
      const listed = await listAll(client, options.pageSize);
      if (listed < volumes) throw new Error(`ListVolumes returned ${listed} volumes; the VG should hold ${volumes}`);
      await client.call(Controller, "getCapacity", capacityRequest);
      const rpcs: RpcSamples[] = [];
      for (const rpc of SCALE_RPCS) {
        const samplesMs: number[] = [];
        for (let i = 0; i < options.samples; i++) samplesMs.push(await sampleRpc(rpc, client, volumes, i, options.pageSize));
        const d = distribution(samplesMs);
        rpcs.push({ rpc, ...d, samplesMs });
        say(`      ${rpc.padEnd(18)} p50 ${d.p50Ms.toFixed(0).padStart(6)} ms  p99 ${d.p99Ms.toFixed(0).padStart(6)} ms  (${d.samples} samples)`);
      }
      const memoryAfterSamples = await memoryOf(pid);
      say(`      loam VmRSS ${(memoryAfterSamples.rssBytes / MiB).toFixed(1)} MiB (peak ${(memoryAfterSamples.peakRssBytes / MiB).toFixed(1)} MiB; ${listed} volumes listed)`);
      const result: ScaleResult = { volumes, listed, rpcs, memoryAfterStart, memoryAfterSamples };
      if (populated) result.populate = populated;
      results.push(result);
    } finally {
      client.close();
    }
  }
  return results;
}
