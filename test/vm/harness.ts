/**
 * The VM suite's fixture: a real volume group on the guest's virtio disks, a real `loam
 * node` process serving CSI on a Unix socket, and a CSI client. Runs only inside the
 * throwaway VM (scripts/vm), where device-mapper exists.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { CsiClient } from "../../src/csi/client.js";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { CommandRunner, type CommandResult } from "../../src/exec/index.js";
import { Lvm } from "../../src/lvm/lvm.js";
import type { VolumeGroupReport } from "../../src/lvm/report.js";
import { metadataOf } from "../../src/volumes/metadata.js";

export const VG = "loamvg";
export const NODE_ID = "vm-node";
export const TOPOLOGY_KEY = "topology.loam.csi.dev/node";
export const SOCKET = "/run/loam-test/csi.sock";
export const ENDPOINT = `unix://${SOCKET}`;
/** kubelet's directory as loam sees it in the VM; staging and target paths go below it. */
export const KUBELET_DIR = "/var/lib/kubelet";

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the repository root from the suite's location");
    dir = up;
  }
  return dir;
}

/**
 * Which scratch disk belongs to whom (scripts/test boots the guest with ten): the first two
 * hold the shared VG; the third is the device-classes group's; the fourth and fifth the
 * missing-PV tests'; the sixth and seventh the reliability campaign's; the eighth, ninth and
 * tenth the cluster group's (one VG per node agent). A group that makes its own VG on its
 * disks removes it and wipes them before it ends.
 */
export function vmDisks(): string[] {
  const disks = (process.env.LOAM_VM_DISKS ?? "").split(/\s+/).filter(Boolean);
  if (disks.length < 2)
    throw new Error("LOAM_VM_DISKS must list at least two disks: run this suite through scripts/vm");
  return disks;
}

/** Where a loam process serves: its socket and the kubelet directory it confines paths to. */
export interface LoamPlace {
  socket: string;
  kubeletDir: string;
  /** The node id it serves as (NODE_ID unless told). */
  nodeId?: string;
}

export class Harness {
  /** The shared fixture's loam serves on SOCKET for KUBELET_DIR; a group with its own loam passes its own place. */
  constructor(readonly place: LoamPlace = { socket: SOCKET, kubeletDir: KUBELET_DIR }) {}

  readonly runner = new CommandRunner({ defaultTimeoutMs: 120_000 });
  readonly lvm = new Lvm(this.runner);
  client!: CsiClient;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  /** Everything loam wrote to stderr, for failure messages and log assertions. */
  logs = "";
  /** How long startLoam waits for loam to answer (a group starting several at once under TCG waits longer). */
  startTimeoutMs = 60_000;

  /** Fresh VG on the first two disks, then a running loam. */
  static async start(): Promise<Harness> {
    const harness = new Harness();
    const disks = vmDisks().slice(0, 2);
    await harness.must(["vgremove", "-ff", "-y", VG], { allowFailure: true });
    await harness.must(["pvcreate", "-ff", "-y", ...disks]);
    await harness.must(["vgcreate", "-y", VG, ...disks]);
    await mkdir(KUBELET_DIR, { recursive: true });
    await harness.startLoam();
    return harness;
  }

  /** `env`, when given, is loam's whole environment (a test may put its own programs first on PATH). */
  async startLoam(extraArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<void> {
    const bundle = join(repoRoot(), "dist", "loam.mjs");
    // With --config the file says which device classes (and VGs) to use.
    const endpoint = `unix://${this.place.socket}`;
    const args = [
      bundle,
      "node",
      "--endpoint",
      endpoint,
      ...(extraArgs.includes("--config") ? [] : ["--volume-group", VG]),
      "--node-id",
      this.place.nodeId ?? NODE_ID,
      "--log-level",
      "info",
      "--kubelet-dir",
      this.place.kubeletDir,
      ...extraArgs,
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "pipe"], env: env ?? process.env });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      this.logs += chunk;
    });
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    this.child = child;
    this.client = new CsiClient(endpoint);
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      try {
        await this.client.call(Identity, "getPluginInfo", {}, { timeoutMs: 2_000 });
        return;
      } catch (error) {
        if (child.exitCode !== null) throw new Error(`loam exited with ${child.exitCode} at start:\n${this.logs}`);
        if (Date.now() > deadline)
          throw new Error(`loam did not answer within ${this.startTimeoutMs / 1000} s: ${String(error)}\n${this.logs}`);
        await sleep(200);
      }
    }
  }

  /** Kills loam with a signal and waits for it to exit; returns its exit code. */
  async killLoam(signal: NodeJS.Signals): Promise<number | null> {
    this.child?.kill(signal);
    const code = await this.exited;
    this.child = undefined;
    this.client.close();
    return code;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    if (this.child) await this.killLoam("SIGTERM");
  }

  /**
   * SIGTERM, then SIGKILL if loam has not exited within `ms`: a teardown never hangs on a loam
   * that does not stop. Returns false when loam had to be killed (the caller fails the test).
   */
  async stopWithin(ms: number): Promise<boolean> {
    const child = this.child;
    if (!child) return true;
    child.kill("SIGTERM");
    const stopped = await Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)]);
    if (!stopped) await this.killLoam("SIGKILL");
    this.child = undefined;
    this.client.close();
    return stopped;
  }

  async report(): Promise<VolumeGroupReport> {
    return this.lvm.report(VG);
  }

  /** LVs loam made for a CSI name (by the name tag), however many there are. */
  async lvsNamed(name: string): Promise<string[]> {
    const { lvs } = await this.report();
    return lvs.filter((lv) => metadataOf(lv)?.name === name).map((lv) => lv.name);
  }

  async must(argv: string[], options: { allowFailure?: boolean } = {}): Promise<CommandResult> {
    const result = await this.runner.run(argv);
    if (result.exitCode !== 0 && !options.allowFailure) {
      throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
    }
    return result;
  }
}
