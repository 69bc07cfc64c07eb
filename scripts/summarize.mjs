// Adds up the pass/fail counts that node's spec reporter printed in each phase and
// prints one closing line, so a reader (or CI) sees the whole run's result at the end.
import { readFileSync } from "node:fs";

const text = readFileSync(process.argv[2] ?? ".cache/test-output.log", "utf8");
const sum = (label) =>
  [...text.matchAll(new RegExp(`^\\S*\\s*${label} (\\d+)\\s*$`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);
const passed = sum("pass");
const failed = sum("fail") + sum("cancelled");
const skipped = sum("skipped");
console.log(`\ntotal: ${passed} passed, ${failed} failed, ${skipped} skipped`);
