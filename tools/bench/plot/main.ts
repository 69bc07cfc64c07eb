/**
 * `node dist/bench-plot.mjs RESULTS.json [AFTER.json] OUT.svg`: the benchmark chart from
 * results files alone. With two files, before and after are drawn side by side; each is
 * labelled with its git commit when the run recorded one, else its file name.
 */
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { BenchResults } from "../results.js";
import { type LabelledResults, renderResultsSvg } from "./charts.js";

const args = process.argv.slice(2);
if (args.length < 2 || args.length > 3 || !args[args.length - 1]?.endsWith(".svg")) {
  process.stderr.write("usage: bench-plot RESULTS.json [AFTER.json] OUT.svg\n");
  process.exit(2);
}
const out = args[args.length - 1] ?? "";
const inputs = args.slice(0, -1);
const runs: LabelledResults[] = [];
for (const [i, file] of inputs.entries()) {
  const results = JSON.parse(await readFile(file, "utf8")) as BenchResults;
  const commit = results.loam?.gitCommit?.slice(0, 7);
  const role = inputs.length === 2 ? (i === 0 ? "before" : "after") : "";
  runs.push({ label: [role, commit ?? basename(file, ".json")].filter(Boolean).join(": "), results });
}
await writeFile(out, renderResultsSvg(runs));
process.stdout.write(`wrote ${out}\n`);
