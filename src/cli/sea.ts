/**
 * The entry point of the single executable (scripts/sea): Node.js 20 runs a single executable
 * application's script as CommonJS, which has no top-level await, so this is bin.ts without it.
 * In a single executable process.argv is [executable, executable, ...arguments].
 */
import { runProcess } from "./run-process.js";

void runProcess(process.argv.slice(2));
