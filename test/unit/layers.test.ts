/**
 * The layer rules of .dependency-cruiser.mjs (what `npm run lint` checks): each rule reports
 * the violation it is written for in a small tree under test/fixtures/layers/, allows every
 * edge the layering permits, and finds nothing in the real src/.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { cruise, type ICruiseOptions, type ICruiseResult } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const configPath = `${root}.dependency-cruiser.mjs`;
const fixtures = `${root}test/fixtures/layers/`;

interface Violation {
  rule: string;
  from: string;
  /** A module of the tree, or the package name for a module under node_modules. */
  to: string;
}

let options: ICruiseOptions;
before(async () => {
  options = await extractDepcruiseOptions(configPath);
});

/** What the rules report over the tree's src/, tools/ and test/ (those it has). */
async function violations(baseDir: string): Promise<Violation[]> {
  const paths = ["src", "tools", "test"].filter((folder) => existsSync(`${baseDir}/${folder}`));
  const result = await cruise(paths, { ...options, baseDir });
  const output = result.output as ICruiseResult;
  return output.summary.violations
    .map((v) => ({
      rule: v.rule.name,
      from: v.from,
      to: v.to.replace(/^(\.\.\/)*node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, "$2"),
    }))
    .sort((a, b) => `${a.rule} ${a.from}`.localeCompare(`${b.rule} ${b.from}`));
}

const cases: { tree: string; what: string; expected: Violation[] }[] = [
  {
    tree: "upward",
    what: "a lower layer importing a higher one (exec imports lvm)",
    expected: [{ rule: "layer-exec", from: "src/exec/runner.ts", to: "src/lvm/lvm.ts" }],
  },
  {
    tree: "sideways",
    what: "another folder of the same layer (host imports lvm)",
    expected: [{ rule: "layer-host", from: "src/host/mount.ts", to: "src/lvm/lvm.ts" }],
  },
  {
    tree: "cycle",
    what: "an import cycle",
    expected: [{ rule: "no-circular", from: "src/volumes/engine.ts", to: "src/volumes/snapshots.ts" }],
  },
  {
    tree: "gen",
    what: "the generated code imported from volumes and @grpc/grpc-js from lvm",
    expected: [
      { rule: "grpc-in-transport-only", from: "src/lvm/lvm.ts", to: "@grpc/grpc-js" },
      { rule: "grpc-in-transport-only", from: "src/volumes/engine.ts", to: "src/gen/csi/v1/csi_pb.ts" },
    ],
  },
  {
    tree: "leaf",
    what: "src/log.ts importing a layer",
    expected: [{ rule: "shared-leaves", from: "src/log.ts", to: "src/volumes/size.ts" }],
  },
  {
    tree: "not-shipped",
    what: "src importing what does not ship (tools/bench)",
    expected: [{ rule: "not-shipped", from: "src/csi/controller.ts", to: "tools/bench/stats.ts" }],
  },
  {
    tree: "allowed",
    what: "every permitted edge (each layer to lower ones, log and version from anywhere, gRPC in csi, tools importing src and gen)",
    expected: [],
  },
];

for (const { tree, what, expected } of cases) {
  test(`layer rules: ${what} → ${expected.map((v) => v.rule).join(", ") || "no violation"}`, async () => {
    assert.deepEqual(await violations(`${fixtures}${tree}`), expected);
  });
}

test("layer rules: the real src/, tools/ and test/ have no violation", async () => {
  assert.deepEqual(await violations(root), []);
});

test("layer rules: every folder of src/ has its place in the rules", async () => {
  const config = (await import(pathToFileURL(configPath).href)) as { PLACED_FOLDERS: readonly string[] };
  const folders = readdirSync(`${root}src`, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  const unplaced = folders.filter((folder) => !config.PLACED_FOLDERS.includes(folder));
  assert.deepEqual(
    unplaced,
    [],
    `add these folders of src/ to a layer in .dependency-cruiser.mjs: ${unplaced.join(", ")}`,
  );
});
