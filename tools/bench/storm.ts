/**
 * Storm (issue 20, item 1): many pods starting on one node at once, as a StatefulSet scaled up
 * or a replaced node brings them. `volumes` 1 GiB xfs volumes are created, staged and published
 * through CSI all at once (the grpc-go client's `storm`: a goroutine per volume), timed until
 * the last is mounted; against the same volumes made by a bare script serially (lvcreate, mkfs,
 * mount, one volume after another) and by a bare script running one such chain per volume in
 * parallel, where LVM serialises the lvcreates on the VG lock and mkfs and mount overlap.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { must, POOL, say, VG } from "./lab.js";
import { goClientVolumes } from "./mounted.js";
import type { Kind } from "./requests.js";
import { medians } from "./stats.js";

export interface StormVolume {
  createMs: number;
  stageMs: number;
  publishMs: number;
  /** From the release of the storm until this volume was mounted. */
  mountedAtMs: number;
}

export interface StormResult {
  kind: Kind;
  volumes: number;
  /** Until the last volume was mounted: loam (through CSI), the bare script serially and in parallel. */
  loamMs: number;
  bareSerialMs: number;
  bareParallelMs: number;
  /** loam against each bare script. Targets: <= 1.0 (parallel) and <= 0.7 (serial). */
  ratioParallel: number;
  ratioSerial: number;
  /** Medians over loam's volumes of each call's wall time under the storm. */
  loamCallMediansMs: Record<keyof StormVolume, number>;
  loamVolumes: StormVolume[];
}

async function loamStorm(client: string, kind: Kind, volumes: number): Promise<{ ms: number; each: StormVolume[] }> {
  const lines = await goClientVolumes(client, "storm", `bench-storm-${kind}`, kind, volumes);
  const each = lines
    .filter((l) => l.call === "storm-volume")
    .map(({ reply = {} }) => ({
      createMs: Number(reply.create_ms),
      stageMs: Number(reply.stage_ms),
      publishMs: Number(reply.publish_ms),
      mountedAtMs: Number(reply.mounted_at_ms),
    }));
  const storm = lines.find((l) => l.call === "storm");
  if (!storm || each.length !== volumes)
    throw new Error(`the grpc-go client's storm reported ${each.length} of ${volumes} volumes`);
  return { ms: storm.elapsed_ms, each };
}

/** One volume as an administrator's script makes it, with the mkfs flags loam uses. */
async function bareVolume(name: string, kind: Kind): Promise<void> {
  const mountPoint = join("/mnt/loam-bench", name);
  await mkdir(mountPoint, { recursive: true });
  await must(
    kind === "thick"
      ? ["lvcreate", "-y", "-n", name, "-L", "1G", VG]
      : ["lvcreate", "-y", "-n", name, "-V", "1G", "--thin", `${VG}/${POOL}`],
  );
  const device = `/dev/${VG}/${name}`;
  await must(["mkfs.xfs", "-q", "-K", device]);
  await must(["mount", "-t", "xfs", device, mountPoint]);
}

async function bareTakeDown(names: string[]): Promise<void> {
  for (const name of names) {
    const mountPoint = join("/mnt/loam-bench", name);
    await must(["umount", mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  }
  // One lvremove for all: untimed, and the next run starts from the same VG.
  await must(["lvremove", "-y", ...names.map((name) => `${VG}/${name}`)]);
}

async function bareStorm(kind: Kind, volumes: number, parallel: boolean): Promise<number> {
  const names = Array.from({ length: volumes }, (_, i) => `bare_storm_${kind}_${parallel ? "p" : "s"}_${i}`);
  const start = performance.now();
  if (parallel) await Promise.all(names.map((name) => bareVolume(name, kind)));
  else for (const name of names) await bareVolume(name, kind);
  const ms = performance.now() - start;
  await bareTakeDown(names);
  return ms;
}

/** `client` is the grpc-go client binary. Bare serial, loam, bare parallel, in that order per kind. */
export async function stormSection(client: string, volumes: number): Promise<StormResult[]> {
  const results: StormResult[] = [];
  for (const kind of ["thick", "thin"] as const) {
    const bareSerialMs = await bareStorm(kind, volumes, false);
    say(`   ${kind} bare serial: ${(bareSerialMs / 1000).toFixed(1)} s`);
    const loam = await loamStorm(client, kind, volumes);
    say(`   ${kind} loam: ${(loam.ms / 1000).toFixed(1)} s until the last of ${volumes} was mounted`);
    const bareParallelMs = await bareStorm(kind, volumes, true);
    say(`   ${kind} bare parallel: ${(bareParallelMs / 1000).toFixed(1)} s`);
    results.push({
      kind,
      volumes,
      loamMs: loam.ms,
      bareSerialMs,
      bareParallelMs,
      ratioParallel: loam.ms / bareParallelMs,
      ratioSerial: loam.ms / bareSerialMs,
      loamCallMediansMs: medians(loam.each),
      loamVolumes: loam.each,
    });
  }
  return results;
}
