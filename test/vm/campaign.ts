/**
 * The reliability campaign's bookkeeping (test/vm/reliability.vm.ts runs the scenarios): every
 * CSI call goes through `Campaign.ask`, which tallies it per scenario and checks its answer
 * against the codes the CSI spec allows for that RPC (or a scenario's narrower set); `untilFinal`
 * retries as a sidecar would; `killTree` kills loam and everything it started, as a container's
 * death does; the figures table docs/reliability.md quotes.
 */
import { readdir, readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { CsiCallError } from "../../src/csi/client.js";
import type { Harness } from "./harness.js";

/** Codes a sidecar retries: the operation may still succeed (or may have, unseen). */
export const RETRYABLE: ReadonlySet<status> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.CANCELLED,
]);

/**
 * What the CSI spec (v1.12, "Error Scheme" of each RPC) lets each RPC answer, beyond OK: its own
 * table plus the general ones (a missing or invalid field INVALID_ARGUMENT, an operation pending
 * ABORTED, UNIMPLEMENTED) and the transport's when the plugin is gone or slow (UNAVAILABLE,
 * DEADLINE_EXCEEDED, CANCELLED). INTERNAL is in no table: it is always a wrong code here.
 */
const GENERAL = [
  status.INVALID_ARGUMENT,
  status.ABORTED,
  status.UNIMPLEMENTED,
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
];
const SPEC: Record<string, status[]> = {
  createVolume: [status.ALREADY_EXISTS, status.RESOURCE_EXHAUSTED, status.OUT_OF_RANGE, status.NOT_FOUND],
  deleteVolume: [status.FAILED_PRECONDITION],
  validateVolumeCapabilities: [status.NOT_FOUND],
  listVolumes: [],
  getCapacity: [],
  controllerGetVolume: [status.NOT_FOUND],
  controllerExpandVolume: [
    status.NOT_FOUND,
    status.FAILED_PRECONDITION,
    status.OUT_OF_RANGE,
    status.RESOURCE_EXHAUSTED,
  ],
  controllerModifyVolume: [status.NOT_FOUND, status.OUT_OF_RANGE],
  createSnapshot: [status.ALREADY_EXISTS, status.RESOURCE_EXHAUSTED, status.NOT_FOUND],
  deleteSnapshot: [status.FAILED_PRECONDITION],
  listSnapshots: [],
  nodeStageVolume: [status.NOT_FOUND, status.ALREADY_EXISTS, status.FAILED_PRECONDITION],
  nodeUnstageVolume: [status.NOT_FOUND],
  nodePublishVolume: [status.NOT_FOUND, status.ALREADY_EXISTS, status.FAILED_PRECONDITION],
  nodeUnpublishVolume: [status.NOT_FOUND],
  nodeGetVolumeStats: [status.NOT_FOUND],
  nodeExpandVolume: [status.NOT_FOUND, status.FAILED_PRECONDITION, status.OUT_OF_RANGE],
};

/** OK plus the codes the spec allows this RPC. */
export function specCodes(method: string): status[] {
  return [status.OK, ...GENERAL, ...(SPEC[method] ?? [])];
}

export interface Tally {
  /** Operations asked for: one per logical request, however many times it was retried. */
  tried: number;
  /** RPC answers received (retries included). */
  answers: number;
  /** Acknowledged volumes or snapshots missing, of the wrong size, or with other data. */
  lost: number;
  /** LVs loam made that no acknowledged request accounts for, and mounts left behind. */
  orphaned: number;
  /** Answers outside the allowed set; operations that never reached a final answer. */
  wrong: number;
  /** One line per lost, orphaned or wrong item, for the failure message. */
  notes: string[];
}

/** An answer: OK with its reply, or a code and message; `transport` when no CSI status came back at all. */
export type Answer<R> = { code: status; reply?: R; details: string; transport?: boolean };

export class Campaign {
  readonly tallies = new Map<string, Tally>();

  constructor(private readonly loam: () => Harness) {}

  tally(scenario: string): Tally {
    let t = this.tallies.get(scenario);
    if (!t) {
      t = { tried: 0, answers: 0, lost: 0, orphaned: 0, wrong: 0, notes: [] };
      this.tallies.set(scenario, t);
    }
    return t;
  }

  note(scenario: string, kind: "lost" | "orphaned" | "wrong", what: string): void {
    const t = this.tally(scenario);
    t[kind] += 1;
    t.notes.push(`${kind}: ${what}`);
  }

  /**
   * One attempt. Counts the answer and checks its code against `allowed` (default: what the
   * spec allows this RPC); a code outside it is a wrong code.
   */
  async ask<M extends GenServiceMethods, K extends keyof M & string>(
    scenario: string,
    service: GenService<M>,
    method: K,
    request: MessageInitShape<M[K]["input"]>,
    allowed: readonly status[] = specCodes(method),
  ): Promise<Answer<MessageShape<M[K]["output"]>>> {
    let answer: Answer<MessageShape<M[K]["output"]>>;
    try {
      const reply = await this.loam().client.call(service, method, request, { timeoutMs: 90_000 });
      answer = { code: status.OK, reply, details: "" };
    } catch (error) {
      // A closed client (loam restarting) throws before any status: the transport's failure.
      if (!(error instanceof CsiCallError))
        return { code: status.UNAVAILABLE, details: String(error), transport: true };
      answer = { code: error.code, details: error.details };
    }
    this.tally(scenario).answers += 1;
    if (!allowed.includes(answer.code))
      this.note(scenario, "wrong", `${method} answered ${status[answer.code]}: ${answer.details.slice(0, 300)}`);
    return answer;
  }

  /** One operation, asked once (hostile requests: their first answer is their final one). */
  async once<M extends GenServiceMethods, K extends keyof M & string>(
    scenario: string,
    service: GenService<M>,
    method: K,
    request: MessageInitShape<M[K]["input"]>,
    allowed?: readonly status[],
  ): Promise<Answer<MessageShape<M[K]["output"]>>> {
    this.tally(scenario).tried += 1;
    return this.ask(scenario, service, method, request, allowed);
  }

  /** One operation, retried as a sidecar retries (retryable codes, transport failures) until a final answer. */
  async untilFinal<M extends GenServiceMethods, K extends keyof M & string>(
    scenario: string,
    service: GenService<M>,
    method: K,
    request: MessageInitShape<M[K]["input"]>,
    allowed?: readonly status[],
  ): Promise<Answer<MessageShape<M[K]["output"]>>> {
    this.tally(scenario).tried += 1;
    const deadline = Date.now() + 180_000;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.ask(scenario, service, method, request, allowed);
      if (!answer.transport && !RETRYABLE.has(answer.code)) return answer;
      if (Date.now() > deadline) {
        this.note(
          scenario,
          "wrong",
          `${method} never reached a final answer: ${status[answer.code]} ${answer.details}`,
        );
        return answer;
      }
      await sleep(Math.min(50 * 2 ** attempt, 500));
    }
  }

  /** The figures table, one row per scenario and a total. */
  table(): string {
    const rows = [...this.tallies.entries()];
    const total = rows.reduce(
      (sum, [, t]) => ({
        tried: sum.tried + t.tried,
        answers: sum.answers + t.answers,
        lost: sum.lost + t.lost,
        orphaned: sum.orphaned + t.orphaned,
        wrong: sum.wrong + t.wrong,
      }),
      { tried: 0, answers: 0, lost: 0, orphaned: 0, wrong: 0 },
    );
    const line = (name: string, t: Omit<Tally, "notes">): string =>
      `| ${name} | ${t.tried} | ${t.answers} | ${t.lost} | ${t.orphaned} | ${t.wrong} |`;
    return [
      "| scenario | operations tried | answers | lost | orphaned | wrong codes |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...rows.map(([name, t]) => line(name, t)),
      line("total", total),
    ].join("\n");
  }
}

/** Every process below pid (children of any of its threads, recursively). */
export async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    const tasks = await readdir(`/proc/${parent}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const text = await readFile(`/proc/${parent}/task/${task}/children`, "utf8").catch(() => "");
      for (const child of text.split(" ").filter(Boolean).map(Number)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** The program a process runs, as LVM's tools name themselves (`lvm lvcreate` reads as lvcreate). */
export async function programOf(pid: number): Promise<string> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  const base = (argv[0] ?? "").split("/").pop() ?? "";
  return base === "lvm" && argv[1] ? argv[1] : base;
}

async function gone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  // The state follows the parenthesised command name; a zombie has finished.
  return stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

/**
 * Kills loam and every command it started at one instant, as the end of its container does:
 * loam is stopped first so it cannot start another, then all get SIGKILL. Waits until they are gone.
 */
export async function killTree(h: Harness): Promise<void> {
  const pid = h.pid;
  if (pid === undefined) return;
  process.kill(pid, "SIGSTOP");
  const below = await descendants(pid);
  for (const child of below) {
    try {
      process.kill(child, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await h.killLoam("SIGKILL");
  const deadline = Date.now() + 30_000;
  for (const child of below) while (!(await gone(child)) && Date.now() < deadline) await sleep(10);
}

/**
 * Watches loam's commands and kills the tree while the `nth` command it starts is running;
 * returns that command's program, or undefined when `settled()` came first (no kill).
 */
export async function killAtCommand(h: Harness, nth: number, settled: () => boolean): Promise<string | undefined> {
  const seen = new Set<number>();
  for (;;) {
    if (settled()) return undefined;
    const pid = h.pid;
    if (pid === undefined) return undefined;
    for (const child of await descendants(pid)) {
      if (seen.has(child)) continue;
      seen.add(child);
      if (seen.size >= nth) {
        const program = await programOf(child);
        await killTree(h);
        return program || "(exited)";
      }
    }
    await sleep(2);
  }
}

/** Mount points below a directory, from this process's mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined && point.startsWith(`${dir}/`))
    .sort();
}
