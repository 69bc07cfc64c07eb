/** Runs the command line as the whole process: sets the exit status, and ends a failed run. */
import { main } from "./main.js";

export async function runProcess(argv: string[]): Promise<void> {
  process.exitCode = await main(argv);
  // A command that failed after it opened connections (an etcd client, a metrics listener) would
  // otherwise stay alive doing nothing, neither serving nor exiting for a supervisor to restart it.
  // The delay lets stderr and stdout drain; unref keeps a process that ends by itself from waiting.
  if (process.exitCode !== 0) setTimeout(() => process.exit(), 2000).unref();
}
