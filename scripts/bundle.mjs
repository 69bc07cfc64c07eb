// Bundles the CLI into one ESM file: loading one file is much faster than resolving
// node_modules over 9p in the test VM (see DESIGN.md), and it is the file a container ships.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/src/cli/main.js"],
  outfile: "dist/loam.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // grpc-js and friends still call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __loamCreateRequire } from 'node:module'; const require = __loamCreateRequire(import.meta.url);" },
});
