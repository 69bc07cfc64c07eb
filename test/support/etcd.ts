/**
 * Real etcd members for tests: Debian's `etcd` binary (etcd-server, installed by
 * scripts/setup) started on loopback ports in a temporary data directory, one member or a
 * cluster of three. Each member can be killed and started again on the same data, which is
 * how the tests take quorum away and give it back.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The etcd binary; LOAM_ETCD_BINARY overrides it (the VM guest has it elsewhere). */
export const ETCD_BINARY = process.env.LOAM_ETCD_BINARY ?? "/usr/bin/etcd";

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  process?: ChildProcess;
  /** The tail of what the member's last run wrote to stderr (its reason, when it exited). */
  stderr: string;
}

export interface EtcdOptions {
  /** etcd's --quota-backend-bytes: a tiny quota makes NOSPACE easy to reach. Default: etcd's (2 GiB). */
  quotaBackendBytes?: number;
}

/** Every member started and not yet seen to exit: killed when the test process exits, whatever its hooks did. */
const alive = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of alive) child.kill("SIGKILL");
});

export class EtcdCluster {
  private constructor(
    readonly members: EtcdMember[],
    private readonly root: string,
    private readonly token: string,
    private readonly options: EtcdOptions,
  ) {}

  /**
   * Starts `size` members (1 or 3) on free loopback ports and waits until the cluster answers.
   * A port found free can be taken before etcd binds it (another member's outgoing connection
   * gets an ephemeral port too): a member that exits while the cluster forms fails the attempt
   * at once, and the cluster is started again on other ports, up to three times.
   */
  static async start(size = 1, options: EtcdOptions = {}): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      const cluster = await EtcdCluster.create(size, options);
      try {
        await Promise.all(cluster.members.map((_, i) => cluster.startMember(i)));
        await cluster.waitHealthy();
        return cluster;
      } catch (error) {
        await cluster.stop();
        if (attempt === 3) throw error;
        process.stderr.write(
          `# etcd cluster did not form (attempt ${attempt}): ${String(error)}; again on other ports\n`,
        );
      }
    }
  }

  private static async create(size: number, options: EtcdOptions): Promise<EtcdCluster> {
    const root = await mkdtemp(join(tmpdir(), "loam-etcd-"));
    const members: EtcdMember[] = [];
    for (let i = 0; i < size; i++) {
      const [client, peer] = [await freePort(), await freePort()];
      members.push({
        name: `m${i}`,
        clientUrl: `http://127.0.0.1:${client}`,
        peerUrl: `http://127.0.0.1:${peer}`,
        dataDir: join(root, `m${i}`),
        stderr: "",
      });
    }
    return new EtcdCluster(members, root, `loam-test-${process.pid}-${Date.now()}`, options);
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Starts member i (again, on its data directory, after a kill); rejects if the binary cannot be started. */
  async startMember(i: number): Promise<void> {
    const member = this.members[i];
    if (member.process && isRunning(member.process)) return;
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    const child = spawn(
      ETCD_BINARY,
      [
        "--name",
        member.name,
        "--data-dir",
        member.dataDir,
        "--listen-client-urls",
        member.clientUrl,
        "--advertise-client-urls",
        member.clientUrl,
        "--listen-peer-urls",
        member.peerUrl,
        "--initial-advertise-peer-urls",
        member.peerUrl,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        this.token,
        "--initial-cluster-state",
        "new",
        // Short timings so that elections and the tests that wait for them are quick on loopback;
        // in the TCG guest, where a process may run ten times slower while others start, longer
        // ones, or late heartbeats start election after election.
        "--heartbeat-interval",
        process.env.LOAM_IN_VM ? "250" : "50",
        "--election-timeout",
        process.env.LOAM_IN_VM ? "2500" : "500",
        "--log-level",
        "error",
        "--logger",
        "zap",
        ...(this.options.quotaBackendBytes !== undefined
          ? ["--quota-backend-bytes", String(this.options.quotaBackendBytes)]
          : []),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    member.stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      member.stderr = (member.stderr + chunk.toString()).slice(-4000);
    });
    child.once("exit", (code, signal) => {
      if (code !== 0 && signal === null && process.env.LOAM_ETCD_DEBUG) {
        process.stderr.write(`etcd ${member.name} exited ${code}: ${member.stderr}\n`);
      }
    });
    member.process = child;
    alive.add(child);
    child.once("exit", () => alive.delete(child));
    // 'error' (ENOENT: no etcd at ETCD_BINARY) rejects here instead of crashing the test process.
    await once(child, "spawn");
  }

  /** SIGKILLs member i and waits for it to be gone. */
  async killMember(i: number): Promise<void> {
    const child = this.members[i]?.process;
    if (!child || !isRunning(child)) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await gone;
  }

  /**
   * Waits until every running member reports healthy (/health), up to `timeoutMs`. In the TCG
   * guest three members took 3.6 to 17.8 s to start on a loaded host (docs/vm.md), hence a
   * minute there. A member that exits meanwhile fails the wait at once, with what it said.
   */
  async waitHealthy(timeoutMs = process.env.LOAM_IN_VM ? 60_000 : 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const running = this.members.filter((m) => m.process && isRunning(m.process));
    for (;;) {
      const exited = running.find((m) => m.process && !isRunning(m.process));
      if (exited) {
        const last = exited.stderr.trim().split("\n").slice(-3).join(" | ");
        throw new Error(`etcd member ${exited.name} exited while the cluster formed: ${last || "no message"}`);
      }
      const states = await Promise.all(running.map((m) => health(m.clientUrl)));
      if (states.every(Boolean)) return;
      if (Date.now() > deadline) {
        const said = running.map((m) => `${m.name}: ${m.stderr.trim().split("\n").pop() ?? ""}`).join("; ");
        throw new Error(`etcd did not become healthy within ${timeoutMs} ms (${said})`);
      }
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.killMember(i)));
    await rm(this.root, { recursive: true, force: true });
  }
}

const isRunning = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

async function health(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: string };
    return body.health === "true";
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}
