/**
 * Failures of external commands, whoever runs them. The runner raises the first three
 * (the command could not start, ran past its deadline, or was cancelled); a layer that
 * reads a non-zero exit raises CommandExitError or its own subclass of CommandError
 * (src/lvm classifies LVM's exit codes and stderr, src/host has HostCommandError).
 */

export class CommandError extends Error {
  readonly argv: readonly string[];
  /** null when the command never started or was killed. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(
    message: string,
    argv: readonly string[],
    exitCode: number | null,
    stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Nothing ran: an empty command line, a missing binary, or a prefix that could not execute the command. */
export class CommandStartError extends CommandError {}

export class CommandTimeoutError extends CommandError {
  readonly timeoutMs: number;
  constructor(argv: readonly string[], timeoutMs: number, stderr: string) {
    super(`${describeCommand(argv)} did not finish within ${timeoutMs} ms and was killed`, argv, null, stderr);
    this.timeoutMs = timeoutMs;
  }
}

export class CommandCancelledError extends CommandError {
  constructor(argv: readonly string[], stderr: string, reason?: unknown) {
    super(`${describeCommand(argv)} was cancelled and killed`, argv, null, stderr, { cause: reason });
  }
}

/** The command ran and exited non-zero; the message carries the whole command line and its stderr. */
export class CommandExitError extends CommandError {
  declare readonly exitCode: number;
  constructor(argv: readonly string[], exitCode: number, stderr: string) {
    super(`${argv.join(" ")} exited ${exitCode}: ${stderr.trim() || "(no message)"}`, argv, exitCode, stderr);
  }
}

/** Programs whose first argument is the real command (`lvm lvcreate ...`), so a message names both. */
const DISPATCHERS = new Set(["lvm"]);

/** The first words of a command line, enough to name it in a message without flooding logs. */
export function describeCommand(argv: readonly string[]): string {
  const head = DISPATCHERS.has(argv[0] ?? "") && argv.length > 1 ? argv.slice(0, 2) : argv.slice(0, 1);
  return head.join(" ") || "(empty command)";
}
