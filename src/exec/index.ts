/** Running external commands for lvm and host alike: the runner, its result and the command errors. */
export { CommandRunner } from "./runner.js";
export type { CommandObservation, CommandResult, RunOptions, RunnerOptions } from "./runner.js";
export {
  CommandCancelledError,
  CommandError,
  CommandExitError,
  CommandStartError,
  CommandTimeoutError,
  describeCommand,
} from "./errors.js";
