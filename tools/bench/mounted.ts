/**
 * Time to mounted: CreateVolume + NodeStageVolume + NodePublishVolume of a 1 GiB xfs volume
 * through CSI, against the bare lvcreate + mkfs.xfs + mount an administrator would type.
 *
 * The calls come from the grpc-go client (test/go/csi-client `mounted`), as they come from
 * external-provisioner and kubelet, which are Go: a JavaScript client under emulation spent
 * ~100 ms of its own per call, which is no part of loam's cost.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { GiB, must, POOL, say, timed, VG } from "./lab.js";
import { ENDPOINT, KUBELET } from "./loam-process.js";
import { type Kind } from "./requests.js";
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
  /**
   * A bind mount of that mount elsewhere, timed but not part of the bare sum: the second mount
   * every CSI driver with a staging step makes (kubelet asks for it), so bare + bind is the
   * least any such driver can take.
   */
  bindMs: number;
}

const bareSum = (b: BareSample): number => b.lvcreateMs + b.mkfsMs + b.mountMs;

export interface MountedResult {
  kind: Kind;
  loamMs: number[];
  bareMs: number[];
  loamMedianMs: number;
  bareMedianMs: number;
  ratio: number;
  loamStepMediansMs: Record<keyof LoamSample, number>;
  bareStepMediansMs: Record<keyof BareSample, number>;
  /** loam against bare + bind: how far loam is from what the CSI protocol itself requires (absent in results from before it was measured). */
  floorRatio?: number;
  loamSamples: LoamSample[];
  bareSamples: BareSample[];
}

/** One JSON line of the grpc-go client. */
export interface GoClientLine {
  call: string;
  elapsed_ms: number;
  reply?: Record<string, number>;
}

/**
 * Runs the grpc-go client's `mounted` or `storm` scenario for `count` 1 GiB xfs volumes of
 * `kind`, named `<prefix>-0`, `<prefix>-1`, ..., and returns its JSON lines.
 */
export async function goClientVolumes(
  client: string,
  scenario: "mounted" | "storm",
  prefix: string,
  kind: Kind,
  count: number,
): Promise<GoClientLine[]> {
  const out = await must([
    client,
    "--endpoint",
    ENDPOINT,
    "--kubelet-dir",
    KUBELET,
    "--name",
    prefix,
    "--count",
    String(count),
    "--size",
    String(GiB),
    "--fs-type",
    "xfs",
    "--parameter",
    `loam.csi.dev/deviceClass=${kind}`,
    // A storm's calls queue behind each other: each may take far longer than one alone.
    ...(scenario === "storm" ? ["--timeout", "10m"] : []),
    scenario,
  ]);
  return out
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as GoClientLine);
}

/** `count` samples from the grpc-go client, named `<prefix>-0`, `<prefix>-1`, ... */
async function loamMounted(client: string, prefix: string, kind: Kind, count: number): Promise<LoamSample[]> {
  const lines = await goClientVolumes(client, "mounted", prefix, kind, count);
  return lines
    .filter((l) => l.call === "mounted")
    .map(({ reply = {} }) => ({
      createMs: Number(reply.create_ms),
      stageMs: Number(reply.stage_ms),
      publishMs: Number(reply.publish_ms),
    }));
}

async function bareMounted(name: string, kind: Kind): Promise<BareSample> {
  const mountPoint = join("/mnt/loam-bench", name);
  await mkdir(mountPoint, { recursive: true });
  const create =
    kind === "thick"
      ? ["lvcreate", "-y", "-n", name, "-L", "1G", VG]
      : ["lvcreate", "-y", "-n", name, "-V", "1G", "--thin", `${VG}/${POOL}`];
  const device = `/dev/${VG}/${name}`;
  const lvcreateMs = await timed(() => must(create));
  const mkfsMs = await timed(() => must(["mkfs.xfs", "-q", "-K", device]));
  const mountMs = await timed(() => must(["mount", "-t", "xfs", device, mountPoint]));
  const bound = `${mountPoint}-bind`;
  await mkdir(bound, { recursive: true });
  const bindMs = await timed(() => must(["mount", "--bind", mountPoint, bound]));
  await must(["umount", bound]);
  await rm(bound, { recursive: true, force: true });
  await must(["umount", mountPoint]);
  await must(["lvremove", "-y", `${VG}/${name}`]);
  await rm(mountPoint, { recursive: true, force: true });
  return { lvcreateMs, mkfsMs, mountMs, bindMs };
}

/** Samples of one kind run back to back before the other kind's turn. */
const MOUNTED_BLOCK = 3;

/** `client` is the grpc-go client binary. */
export async function timeToMounted(client: string, kind: Kind, repeats: number): Promise<MountedResult> {
  const loamSamples: LoamSample[] = [];
  const bareSamples: BareSample[] = [];
  // Blocks of loam samples and of bare samples take turns, so drift in the guest (page cache,
  // metadata growth) hits both. Blocks rather than strict alternation: on a node only loam
  // changes its volume group, and every bare command between two loam calls is a change by
  // someone else that makes loam read LVM again. The first loam sample of each block pays
  // that read; the others show the steady state.
  for (let start = 0; start < repeats; start += MOUNTED_BLOCK) {
    const block = Array.from({ length: Math.min(MOUNTED_BLOCK, repeats - start) }, (_, j) => start + j);
    const samples = await loamMounted(client, `bench-mnt-${kind}-${start}`, kind, block.length);
    if (samples.length !== block.length)
      throw new Error(`the grpc-go client reported ${samples.length} samples, not ${block.length}`);
    samples.forEach((l, j) => {
      loamSamples.push(l);
      say(
        `   ${kind} loam #${start + j + 1}: ${sumOf(l).toFixed(0)} ms (create ${l.createMs.toFixed(0)}, stage ${l.stageMs.toFixed(0)}, publish ${l.publishMs.toFixed(0)})`,
      );
    });
    for (const i of block) {
      const b = await bareMounted(`bare_mnt_${kind}_${i}`, kind);
      bareSamples.push(b);
      say(
        `   ${kind} bare #${i + 1}: ${bareSum(b).toFixed(0)} ms (lvcreate ${b.lvcreateMs.toFixed(0)}, mkfs ${b.mkfsMs.toFixed(0)}, mount ${b.mountMs.toFixed(0)}; bind ${b.bindMs.toFixed(0)})`,
      );
    }
  }
  const loamMs = loamSamples.map(sumOf);
  const bareMs = bareSamples.map(bareSum);
  const loamMedianMs = median(loamMs);
  const bareMedianMs = median(bareMs);
  return {
    kind,
    loamMs,
    bareMs,
    loamMedianMs,
    bareMedianMs,
    ratio: loamMedianMs / bareMedianMs,
    floorRatio: loamMedianMs / median(bareSamples.map((b) => bareSum(b) + b.bindMs)),
    loamStepMediansMs: medians(loamSamples),
    bareStepMediansMs: medians(bareSamples),
    loamSamples,
    bareSamples,
  };
}
