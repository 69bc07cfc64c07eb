/** Runs the command line as the whole process: sets the exit status, and ends the process. */
import { main } from "./main.js";

export async function runProcess(argv: string[]): Promise<void> {
  process.exitCode = await main(argv);
  // main has returned: the command is done, failed or stopped on a signal and released what it
  // holds. Anything still open then (an etcd client of a failed start, a stream a library keeps)
  // would keep the process alive doing nothing, neither serving nor exiting for a supervisor to
  // restart it. The delay lets stderr and stdout drain; unref keeps a process that ends by itself
  // from waiting.
  setTimeout(() => process.exit(), 2000).unref();
}
