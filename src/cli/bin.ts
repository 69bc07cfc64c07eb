/** The process entry point: runs the command line and sets the exit status. */
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
// A command that failed after it opened connections (an etcd client, a metrics listener) would
// otherwise stay alive doing nothing, neither serving nor exiting for a supervisor to restart it.
// The delay lets stderr and stdout drain; unref keeps a process that ends by itself from waiting.
if (process.exitCode !== 0) setTimeout(() => process.exit(), 2000).unref();
