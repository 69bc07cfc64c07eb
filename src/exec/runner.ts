/**
 * The one place that starts external commands, for lvm and host alike. Argument vectors only
 * (never a shell), a fixed C locale so the messages we classify are the English ones, a
 * deadline on every command, and kills that reach the whole process group so a prefix such as
 * nsenter cannot leave its child behind. A non-zero exit is a result, not an error: the caller
 * knows what the exit code means.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { CommandCancelledError, CommandStartError, CommandTimeoutError } from "./errors.js";

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * Open descriptors of this process the command receives as its fds 3, 4, ... (in this
   * order), so it can act on an object already opened instead of a path named again
   * (mount onto /proc/self/fd/3). Nothing else of ours is inherited: Node opens everything
   * close-on-exec.
   */
  fds?: readonly number[];
  /**
   * Bytes written to the command's standard input, which is then closed (a secret such as a
   * LUKS passphrase goes here, never in argv). Without it, standard input is /dev/null.
   */
  input?: Uint8Array;
}

export interface CommandObservation {
  /** The command as asked for, without the runner's prefix. */
  argv: readonly string[];
  durationMs: number;
  /** null when the command never started or was killed. */
  exitCode: number | null;
  failed: boolean;
  /** Process id of the started child (the prefix's process when there is one). */
  pid?: number;
}

export interface RunnerOptions {
  prefix?: readonly string[];
  defaultTimeoutMs?: number;
  env?: Readonly<Record<string, string>>;
  onCommand?: (o: CommandObservation) => void;
  /** Time between SIGTERM and SIGKILL when a command is stopped. Default 2000 ms. */
  killGraceMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_KILL_GRACE_MS = 2_000;

export class CommandRunner {
  private readonly prefix: readonly string[];
  private readonly defaultTimeoutMs: number;
  private readonly env: Readonly<Record<string, string>>;
  private readonly onCommand: ((o: CommandObservation) => void) | undefined;
  private readonly killGraceMs: number;

  constructor(options: RunnerOptions = {}) {
    this.prefix = [...(options.prefix ?? [])];
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.env = { ...(options.env ?? {}) };
    this.onCommand = options.onCommand;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    if (!(this.defaultTimeoutMs > 0))
      throw new RangeError(`defaultTimeoutMs must be positive, got ${this.defaultTimeoutMs}`);
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const asked = [...argv];
    const full = [...this.prefix, ...asked];
    const started = performance.now();
    const observe = (exitCode: number | null, failed: boolean, pid?: number): void => {
      const observation: CommandObservation = {
        argv: asked,
        durationMs: performance.now() - started,
        exitCode,
        failed,
      };
      if (pid !== undefined) observation.pid = pid;
      try {
        this.onCommand?.(observation);
      } catch {
        // A broken metrics hook must not turn a finished command into a failure.
      }
    };

    if (full.length === 0 || full[0] === "") {
      observe(null, true);
      return Promise.reject(new CommandStartError("empty command line", asked, null, ""));
    }
    if (options.signal?.aborted) {
      observe(null, true);
      return Promise.reject(new CommandCancelledError(asked, "", options.signal.reason));
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;

    return new Promise<CommandResult>((resolve, reject) => {
      const child = spawn(full[0], full.slice(1), {
        // LC_ALL last: callers may add variables but never change the language we parse.
        // LVM_SUPPRESS_FD_WARNINGS: LVM complains on stderr about any inherited descriptor.
        env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1", ...this.env, LC_ALL: "C" },
        stdio: [options.input ? "pipe" : "ignore", "pipe", "pipe", ...(options.fds ?? [])],
        // Its own process group, so one kill reaches the command and anything it started.
        detached: true,
        shell: false,
      });
      if (options.input && child.stdin) {
        // A command that exits without reading all of it closes the pipe: EPIPE is not our failure.
        child.stdin.on("error", () => undefined);
        child.stdin.end(options.input);
      }
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString("utf8");

      let stopReason: "timeout" | "cancel" | null = null;
      let graceTimer: NodeJS.Timeout | undefined;

      const killGroup = (signal: NodeJS.Signals): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch {
          // Already gone.
        }
      };
      const stop = (reason: "timeout" | "cancel"): void => {
        if (stopReason !== null) return;
        stopReason = reason;
        killGroup("SIGTERM");
        graceTimer = setTimeout(() => killGroup("SIGKILL"), this.killGraceMs);
      };
      const deadline = setTimeout(() => stop("timeout"), timeoutMs);
      const onAbort = (): void => stop("cancel");
      options.signal?.addEventListener("abort", onAbort, { once: true });

      let settled = false;
      const startFailed = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        options.signal?.removeEventListener("abort", onAbort);
        observe(null, true);
        const code = (err as NodeJS.ErrnoException).code ?? "unknown";
        reject(new CommandStartError(`cannot start ${full[0]}: ${code}`, asked, null, text(stderr), { cause: err }));
      };
      child.on("error", (err) => {
        // Errors after a successful start (a failed kill, say) leave the outcome to "close".
        if (child.pid === undefined) startFailed(err);
      });
      // "close" comes after the process has exited and its pipes are drained, so when we
      // settle, a killed command is really gone.
      child.on("close", (code, signal) => {
        clearTimeout(deadline);
        clearTimeout(graceTimer);
        options.signal?.removeEventListener("abort", onAbort);
        // Descendants that left the group's pipes open are already dead if we killed the
        // group; on a normal exit, make sure nothing of ours lingers in that group.
        if (stopReason !== null) killGroup("SIGKILL");
        if (settled) return;
        settled = true;
        const err = text(stderr);
        if (stopReason === "timeout") {
          observe(null, true, child.pid);
          reject(new CommandTimeoutError(asked, timeoutMs, err));
          return;
        }
        if (stopReason === "cancel") {
          observe(null, true, child.pid);
          reject(new CommandCancelledError(asked, err, options.signal?.reason));
          return;
        }
        // Killed from outside: report it as a failure with the shell's 128+n convention.
        const exitCode = code ?? (signal !== null ? 128 + (constants.signals[signal] ?? 0) : 1);
        observe(exitCode, exitCode !== 0, child.pid);
        resolve({ stdout: text(stdout), stderr: err, exitCode });
      });
    });
  }
}
