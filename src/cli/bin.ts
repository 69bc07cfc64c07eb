/** The process entry point: runs the command line and sets the exit status. */
import { runProcess } from "./run-process.js";

await runProcess(process.argv.slice(2));
