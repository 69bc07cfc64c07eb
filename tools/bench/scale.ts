/**
 * Scale: how loam's calls behave as the VG fills with volumes. At each scale the VG holds
 * exactly N loam volumes (pre-made in one metadata commit, see populate.ts), loam is
 * restarted so its memory reflects that scale alone, and each RPC is sampled on its own.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CsiClient } from "../../src/csi/client.js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB, must, say, timed, VG } from "./lab.js";
import { ENDPOINT, memoryOf, type Memory } from "./loam-process.js";
import { populate, type PopulateResult } from "./populate.js";
import { createInit, csiPaths, mountCapability, PODS_ROOT, STAGING_ROOT } from "./requests.js";
import { distribution, type Distribution } from "./stats.js";

// "bare lvcreate" is no RPC: the same 64 MiB LV made by hand, so CreateVolume's growth with
// the VG can be told apart from LVM's own (every lvcreate rewrites the whole metadata).
export const SCALE_RPCS = ["CreateVolume", "bare lvcreate", "NodePublishVolume", "ListVolumes", "GetCapacity"] as const;
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
  /** A full walk costs one LVM report per page: fewer samples keep the run under an hour. */
  listSamples: number;
  pageSize: number;
  /** Stops any running loam and starts a fresh one; resolves to the new child. */
  restartLoam: () => Promise<ChildProcess>;
}

const SAMPLE_BYTES = 64 * MiB;
// xfs refuses filesystems under 300 MiB; ext4 keeps the staged sample volumes small.
const ext4 = mountCapability("ext4");
const capacityRequest = {
  volumeCapabilities: [mountCapability("xfs")],
  parameters: { "loam.csi.dev/deviceClass": "thick" },
};

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
    id =
      (
        await client.call(
          Controller,
          "createVolume",
          createInit(`bench-scale${scale}-create-${i}`, SAMPLE_BYTES, "thick"),
        )
      ).volume?.volumeId ?? "";
  });
  await client.call(Controller, "deleteVolume", { volumeId: id });
  return ms;
}

async function sampleBareCreate(scale: number, i: number): Promise<number> {
  const name = `bare_scale${scale}_${i}`;
  const ms = await timed(() => must(["lvcreate", "-y", "-n", name, "-L", `${SAMPLE_BYTES / MiB}M`, VG]));
  await must(["lvremove", "-y", `${VG}/${name}`]);
  return ms;
}

/** One ext4 volume, created and staged untimed; each publish sample bind-mounts it into another pod. */
async function stagedVolume(
  client: CsiClient,
  scale: number,
): Promise<{ id: string; staging: string; tearDown: () => Promise<void> }> {
  const reply = await client.call(
    Controller,
    "createVolume",
    createInit(`bench-scale${scale}-publish`, SAMPLE_BYTES, "thick", "ext4"),
  );
  const id = reply.volume?.volumeId ?? "";
  const { staging } = csiPaths(id);
  await mkdir(staging, { recursive: true });
  await client.call(Node, "nodeStageVolume", { volumeId: id, stagingTargetPath: staging, volumeCapability: ext4 });
  return {
    id,
    staging,
    tearDown: async () => {
      await client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await client.call(Controller, "deleteVolume", { volumeId: id });
      await rm(join(STAGING_ROOT, id), { recursive: true, force: true });
    },
  };
}

/** Times only NodePublishVolume, as kubelet calls it for a new pod; the unpublish is untimed. */
async function samplePublish(client: CsiClient, volume: { id: string; staging: string }, i: number): Promise<number> {
  const pod = `bench-pod-${i}`;
  const { target } = csiPaths(volume.id, pod);
  const ms = await timed(() =>
    client.call(Node, "nodePublishVolume", {
      volumeId: volume.id,
      stagingTargetPath: volume.staging,
      targetPath: target,
      volumeCapability: ext4,
    }),
  );
  await client.call(Node, "nodeUnpublishVolume", { volumeId: volume.id, targetPath: target });
  await rm(join(PODS_ROOT, pod), { recursive: true, force: true });
  return ms;
}

async function samples(count: number, sample: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await sample(i));
  return out;
}

async function sampleRpc(rpc: ScaleRpc, client: CsiClient, scale: number, options: ScaleOptions): Promise<number[]> {
  switch (rpc) {
    case "CreateVolume":
      return samples(options.samples, (i) => sampleCreate(client, scale, i));
    case "bare lvcreate":
      return samples(options.samples, (i) => sampleBareCreate(scale, i));
    case "NodePublishVolume": {
      const volume = await stagedVolume(client, scale);
      const out = await samples(options.samples, (i) => samplePublish(client, volume, i));
      await volume.tearDown();
      return out;
    }
    case "ListVolumes":
      return samples(options.listSamples, () => timed(() => listAll(client, options.pageSize)));
    case "GetCapacity":
      return samples(options.samples, () => timed(() => client.call(Controller, "getCapacity", capacityRequest)));
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
      say(
        `      ${populated.added} LVs in ${populated.seconds.toFixed(1)} s; metadata ${populated.metadataBytesAfter} bytes ` +
          `(${populated.metadataBytesPerVolume.toFixed(0)} per volume as text, ${populated.metadataAreaBytesPerVolume.toFixed(0)} in the metadata area), metadata area ${populated.metadataAreaBytes} bytes, ${populated.metadataAreaFreeBytes} free`,
      );
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
        const samplesMs = await sampleRpc(rpc, client, volumes, options);
        const d = distribution(samplesMs);
        rpcs.push({ rpc, ...d, samplesMs });
        say(
          `      ${rpc.padEnd(18)} p50 ${d.p50Ms.toFixed(0).padStart(6)} ms  p99 ${d.p99Ms.toFixed(0).padStart(6)} ms  (${d.samples} samples)`,
        );
      }
      const memoryAfterSamples = await memoryOf(pid);
      say(
        `      loam VmRSS ${(memoryAfterSamples.rssBytes / MiB).toFixed(1)} MiB (peak ${(memoryAfterSamples.peakRssBytes / MiB).toFixed(1)} MiB; ${listed} volumes listed)`,
      );
      const result: ScaleResult = { volumes, listed, rpcs, memoryAfterStart, memoryAfterSamples };
      if (populated) result.populate = populated;
      results.push(result);
    } finally {
      client.close();
    }
  }
  return results;
}
