/** Runs a host command through the shared CommandRunner and turns a non-zero exit into an error. */
import type { CommandResult, CommandRunner, RunOptions } from "../exec/index.js";
import { HostCommandError } from "./errors.js";

export async function runChecked(
  runner: CommandRunner,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const result = await runner.run(argv, options);
  if (result.exitCode !== 0) throw new HostCommandError(argv, result.exitCode, result.stderr);
  return result;
}
