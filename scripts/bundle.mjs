// Bundles the CLI and the VM test suite into single ESM files: loading one file is much
// faster than resolving node_modules over 9p in the test VM (see DESIGN.md), and the CLI
// bundle is the one file a container ships. The demo and the benchmark (tools/) get bundles
// of their own beside it; they import the product's modules, never the other way round.
// The product bundle's metafile (dist/loam.meta.json) lists every input it holds, so a host
// test can check that nothing from tools/ or test/ got into it. The options, and the plugin that
// makes the etcd3 client work inside a bundle, are in bundle-options.mjs.
import { readFile, writeFile } from "node:fs/promises";
import { build } from "esbuild";
import { bundleOptions, gitCommit } from "./bundle-options.mjs";

const common = { ...bundleOptions, define: { __LOAM_COMMIT__: JSON.stringify(gitCommit()) } };

const [product] = await Promise.all([
  build({ ...common, entryPoints: ["dist/src/cli/bin.js"], outfile: "dist/loam.mjs", metafile: true }),
  build({ ...common, entryPoints: ["dist/test/vm/suite.js"], outfile: "dist/test/vm/suite.mjs" }),
  build({ ...common, entryPoints: ["dist/tools/demo/main.js"], outfile: "dist/demo.mjs" }),
  build({ ...common, entryPoints: ["dist/tools/bench/main.js"], outfile: "dist/bench.mjs" }),
  build({ ...common, entryPoints: ["dist/tools/bench/plot/main.js"], outfile: "dist/bench-plot.mjs" }),
]);
await writeFile("dist/loam.meta.json", JSON.stringify(product.metafile, null, 1) + "\n");

// V8 keeps a script's whole source in memory, and one character above U+00FF makes it two bytes a
// character: 6 MiB instead of 3 for the bundle. esbuild escapes strings but keeps comments as
// written, so the few dashes and arrows in comments are written as \u escapes (issue 20). Only
// comments hold them, and they stand on lines of their own, so the source map stays right.
const bundled = await readFile("dist/loam.mjs", "utf8");
await writeFile(
  "dist/loam.mjs",
  bundled.replace(/[^\p{ASCII}]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
);
