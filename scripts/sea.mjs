// Builds loam as one executable file, dist/sea/loam (issue 19; docs/install.md, "A plain host"):
// a Node.js 20 single executable application. esbuild bundles src/cli/sea.ts as CommonJS (what
// Node 20 runs as an application's script), `node --experimental-sea-config` turns it into a
// blob, and postject (pinned in package.json) injects the blob into a stripped copy of the
// Node.js 20 binary loam is tested on (this machine's `node`, or LOAM_SEA_NODE).
//   node scripts/sea.mjs                        (npm run sea; after npm run build)
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { build } from "esbuild";
import { bundleOptions, gitCommit } from "./bundle-options.mjs";

const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const out = "dist/sea";
const started = Date.now();
const node = execFileSync("readlink", ["-f", process.env.LOAM_SEA_NODE ?? process.execPath], {
  encoding: "utf8",
}).trim();
const nodeVersion = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
if (!nodeVersion.startsWith("v20.")) {
  throw new Error(
    `${node} is Node.js ${nodeVersion}; the single executable needs the Node.js 20 loam is tested on (set LOAM_SEA_NODE)`,
  );
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const commit = gitCommit();
await build({
  ...bundleOptions,
  format: "cjs",
  banner: {},
  sourcemap: false,
  define: { __LOAM_COMMIT__: JSON.stringify(commit) },
  entryPoints: ["dist/src/cli/sea.js"],
  outfile: `${out}/loam.cjs`,
});
writeFileSync(
  `${out}/sea-config.json`,
  JSON.stringify({ main: `${out}/loam.cjs`, output: `${out}/loam.blob`, disableExperimentalSEAWarning: true }),
);
// Output is kept (and shown in the error) only when a step fails: LIEF warns about the notes.
const quiet = { stdio: ["ignore", "pipe", "pipe"] };
execFileSync(node, ["--experimental-sea-config", `${out}/sea-config.json`], quiet);

const binary = `${out}/loam`;
execFileSync("strip", ["--strip-all", "-o", binary, node], quiet);
const postject = createRequire(import.meta.url).resolve("postject/dist/cli.js");
execFileSync(process.execPath, [postject, binary, "NODE_SEA_BLOB", `${out}/loam.blob`, "--sentinel-fuse", FUSE], quiet);
chmodSync(binary, 0o755);
copyFileSync("LICENSE", `${out}/LICENSE`);
const mb = (statSync(binary).size / 1e6).toFixed(1);
process.stdout.write(
  `sea: ${binary} (${mb} MB, Node.js ${nodeVersion}, commit ${commit}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
