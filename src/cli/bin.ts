/** The process entry point: runs the command line and sets the exit status. */
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
