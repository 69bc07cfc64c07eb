/**
 * Time to mounted: CreateVolume + NodeStageVolume + NodePublishVolume of a 1 GiB xfs volume
 * through CSI, against the bare lvcreate + mkfs.xfs + mount an administrator would type.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { CsiClient } from "../csi/client.js";
import { Controller, Node } from "../gen/csi/v1/csi_pb.js";
import { GiB, must, POOL, say, timed, VG } from "./lab.js";
import { createInit, csiPaths, type Kind, mountCapability, PODS_ROOT, STAGING_ROOT } from "./requests.js";
import { median, medians, sumOf } from "./stats.js";

/** Where one loam sample's time went, per call; kubelet makes the staging directory, so that is untimed. */
export interface LoamSample {
  createMs: number;
  stageMs: number;
  publishMs: number;
}

/** The bare sequence, with the same mkfs flags loam uses. */
export interface BareSample {
  lvcreateMs: number;
  mkfsMs: number;
  mountMs: number;
}

export interface MountedResult {
  kind: Kind;
  loamMs: number[];
  bareMs: number[];
  loamMedianMs: number;
  bareMedianMs: number;
  ratio: number;
  loamStepMediansMs: Record<keyof LoamSample, number>;
  bareStepMediansMs: Record<keyof BareSample, number>;
  loamSamples: LoamSample[];
  bareSamples: BareSample[];
}

const xfs = mountCapability("xfs");

async function loamMounted(client: CsiClient, name: string, kind: Kind): Promise<LoamSample> {
  let id = "";
  const createMs = await timed(async () => {
    const reply = await client.call(Controller, "createVolume", createInit(name, GiB, kind));
    id = reply.volume?.volumeId ?? "";
  });
  const p = csiPaths(id);
  await mkdir(p.staging, { recursive: true });
  const stageMs = await timed(() =>
    client.call(Node, "nodeStageVolume", { volumeId: id, stagingTargetPath: p.staging, volumeCapability: xfs }));
  const publishMs = await timed(() =>
    client.call(Node, "nodePublishVolume", { volumeId: id, stagingTargetPath: p.staging, targetPath: p.target, volumeCapability: xfs }));
  await client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: p.target });
  await client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: p.staging });
  await client.call(Controller, "deleteVolume", { volumeId: id });
  await rm(join(STAGING_ROOT, id), { recursive: true, force: true });
  await rm(join(PODS_ROOT, "bench-pod"), { recursive: true, force: true });
  return { createMs, stageMs, publishMs };
}

async function bareMounted(name: string, kind: Kind): Promise<BareSample> {
  const mountPoint = join("/mnt/loam-bench", name);
  await mkdir(mountPoint, { recursive: true });
  const create = kind === "thick"
    ? ["lvcreate", "-y", "-n", name, "-L", "1G", VG]
    : ["lvcreate", "-y", "-n", name, "-V", "1G", "--thin", `${VG}/${POOL}`];
  const device = `/dev/${VG}/${name}`;
  const lvcreateMs = await timed(() => must(create));
  const mkfsMs = await timed(() => must(["mkfs.xfs", "-q", "-K", device]));
  const mountMs = await timed(() => must(["mount", "-t", "xfs", device, mountPoint]));
  await must(["umount", mountPoint]);
  await must(["lvremove", "-y", `${VG}/${name}`]);
  await rm(mountPoint, { recursive: true, force: true });
  return { lvcreateMs, mkfsMs, mountMs };
}

/** Samples of one kind run back to back before the other kind's turn. */
const MOUNTED_BLOCK = 3;

export async function timeToMounted(client: CsiClient, kind: Kind, repeats: number): Promise<MountedResult> {
  const loamSamples: LoamSample[] = [];
  const bareSamples: BareSample[] = [];
  // Blocks of loam samples and of bare samples take turns, so drift in the guest (page cache,
  // metadata growth) hits both. Blocks rather than strict alternation: on a node only loam
  // changes its volume group, and every bare command between two loam calls is a change by
  // someone else that makes loam read LVM again. The first loam sample of each block pays
  // that read; the others show the steady state.
  for (let start = 0; start < repeats; start += MOUNTED_BLOCK) {
    const block = Array.from({ length: Math.min(MOUNTED_BLOCK, repeats - start) }, (_, j) => start + j);
    for (const i of block) {
      const l = await loamMounted(client, `bench-mnt-${kind}-${i}`, kind);
      loamSamples.push(l);
      say(`   ${kind} loam #${i + 1}: ${sumOf(l).toFixed(0)} ms (create ${l.createMs.toFixed(0)}, stage ${l.stageMs.toFixed(0)}, publish ${l.publishMs.toFixed(0)})`);
    }
    for (const i of block) {
      const b = await bareMounted(`bare_mnt_${kind}_${i}`, kind);
      bareSamples.push(b);
      say(`   ${kind} bare #${i + 1}: ${sumOf(b).toFixed(0)} ms (lvcreate ${b.lvcreateMs.toFixed(0)}, mkfs ${b.mkfsMs.toFixed(0)}, mount ${b.mountMs.toFixed(0)})`);
    }
  }
  const loamMs = loamSamples.map(sumOf);
  const bareMs = bareSamples.map(sumOf);
  const loamMedianMs = median(loamMs);
  const bareMedianMs = median(bareMs);
  return {
    kind, loamMs, bareMs, loamMedianMs, bareMedianMs, ratio: loamMedianMs / bareMedianMs,
    loamStepMediansMs: medians(loamSamples), bareStepMediansMs: medians(bareSamples), loamSamples, bareSamples,
  };
}
