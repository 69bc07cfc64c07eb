/** Entry point of the manifest generator: `node dist/src/deploy/main.js [--check]` (see generate.ts). */
import { runGenerator } from "./generate.js";

process.exitCode = await runGenerator(process.argv.slice(2));
