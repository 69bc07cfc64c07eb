/** The loam under test: a real `loam node` child process on its own socket, and its memory. */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CsiClient } from "../../src/csi/client.js";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { onCleanup, POOL, VG } from "./lab.js";

export const SOCKET = "/run/loam-bench/csi.sock";
export const ENDPOINT = `unix://${SOCKET}`;
export const KUBELET = "/var/lib/kubelet";

async function writeConfig(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "loam-bench-config-"));
  const path = join(dir, "config.json");
  await writeFile(
    path,
    JSON.stringify({
      endpoint: ENDPOINT,
      nodeId: "bench-node",
      kubeletDir: KUBELET,
      deviceClasses: [
        { name: "thick", volumeGroup: VG, type: "thick", default: true },
        // Ratio 10 on the 4 GiB pool: the storm's 32 thin volumes of 1 GiB (32 GiB virtual) fit.
        { name: "thin", volumeGroup: VG, type: "thin", thinPool: POOL, overprovisionRatio: 10 },
      ],
    }),
  );
  return path;
}

export interface Diagnostics {
  /** loam logs at debug level (every LVM and host command with its duration) into this file. */
  logFile?: string;
  /** loam writes a V8 CPU profile into this directory when it stops. */
  profileDir?: string;
}

export async function startLoam(bundle: string, diagnostics: Diagnostics = {}): Promise<ChildProcess> {
  const { logFile, profileDir } = diagnostics;
  const argv = [
    ...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []),
    bundle,
    "node",
    "--config",
    await writeConfig(),
    ...(logFile ? ["--log-level", "debug"] : []),
  ];
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr?.setEncoding("utf8");
  if (logFile) child.stderr?.pipe(createWriteStream(logFile, { flags: "a" }));
  child.stderr?.on("data", (chunk: string) => (logs = (logs + chunk).slice(-20_000)));
  onCleanup(() => stopLoam(child));
  // Probe reads the whole VG: with 1,000 LVs under emulation that alone takes seconds.
  await untilAnswering(child, "loam", ENDPOINT, (probe) => probe.call(Identity, "probe", {}, { timeoutMs: 60_000 }), {
    withinMs: 300_000,
    pauseMs: 200,
    logs: () => logs.slice(-3000),
  });
  return child;
}

/**
 * Waits until the CSI server `child` started at `endpoint` answers `ask`; throws with its last
 * log lines when it exits first or does not answer within `withinMs`.
 */
export async function untilAnswering(
  child: ChildProcess,
  name: string,
  endpoint: string,
  ask: (probe: CsiClient) => Promise<unknown>,
  options: { withinMs: number; pauseMs: number; logs: () => string },
): Promise<void> {
  const probe = new CsiClient(endpoint);
  const deadline = Date.now() + options.withinMs;
  let last = "";
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${options.logs()}`);
      try {
        await ask(probe);
        return;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
        await sleep(options.pauseMs);
      }
    }
  } finally {
    probe.close();
  }
  throw new Error(`${name} did not answer within ${options.withinMs / 1000} s (last: ${last}):\n${options.logs()}`);
}

export async function stopLoam(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

export interface Memory {
  /** VmRSS: resident now. */
  rssBytes: number;
  /** VmHWM: the most it was ever resident. */
  peakRssBytes: number;
}

/** Reads a process's resident memory from /proc/<pid>/status (values are in kB). */
export async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib("VmRSS"), peakRssBytes: kib("VmHWM") };
}
