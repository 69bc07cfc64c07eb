// Bundles the CLI and the VM test suite into single ESM files: loading one file is much
// faster than resolving node_modules over 9p in the test VM (see DESIGN.md), and the CLI
// bundle is the one file a container ships.
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // grpc-js and friends still call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __loamCreateRequire } from 'node:module'; const require = __loamCreateRequire(import.meta.url);" },
};

await Promise.all([
  build({ ...common, entryPoints: ["dist/src/cli/bin.js"], outfile: "dist/loam.mjs" }),
  build({ ...common, entryPoints: ["dist/test/vm/suite.js"], outfile: "dist/test/vm/suite.mjs" }),
  build({ ...common, entryPoints: ["dist/src/demo/main.js"], outfile: "dist/demo.mjs" }),
  build({ ...common, entryPoints: ["dist/src/bench/main.js"], outfile: "dist/bench.mjs" }),
  build({ ...common, entryPoints: ["dist/src/bench/plot/main.js"], outfile: "dist/bench-plot.mjs" }),
]);
