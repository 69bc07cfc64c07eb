/**
 * The product bundle (dist/loam.mjs, the one file a container ships) holds the product and
 * its dependencies only: nothing from tools/ (benchmark, demo, scratch disks) or test/. Read
 * from what esbuild says it bundled (dist/loam.meta.json, written by scripts/bundle.mjs) and
 * from the bundle's source map, which leads back to the TypeScript files.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const distFile = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

/** The first folder of a repository-relative path, or "node_modules" for a dependency anywhere. */
function origin(path: string): string {
  if (path.split("/").includes("node_modules")) return "node_modules";
  return path.split("/").find((part) => part !== "" && part !== "." && part !== "..") ?? "";
}

test("dist/loam.mjs is built from dist/src and node_modules only", () => {
  const meta = JSON.parse(distFile("loam.meta.json")) as {
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
  };
  assert.ok("dist/loam.mjs" in meta.outputs, "the metafile describes dist/loam.mjs");
  const inputs = Object.keys(meta.inputs);
  assert.ok(inputs.includes("dist/src/cli/bin.js"), "the entry point is among the inputs");
  const foreign = inputs.filter((input) => origin(input) !== "node_modules" && !input.startsWith("dist/src/"));
  assert.deepEqual(foreign, [], "inputs from outside src/ and node_modules");
});

test("dist/loam.mjs's source map leads to src/ and node_modules only", () => {
  const map = JSON.parse(distFile("loam.mjs.map")) as { sources: string[] };
  // Paths are relative to dist/, so "../src/cli/bin.ts" is src/cli/bin.ts.
  assert.ok(map.sources.includes("../src/cli/bin.ts"), "the source map leads back to the TypeScript sources");
  const foreign = map.sources.filter((source) => !["src", "node_modules"].includes(origin(source)));
  assert.deepEqual(foreign, [], "sources outside src/ and node_modules");
});

test("dist/loam.mjs is ASCII only, so V8 keeps its source at one byte a character", () => {
  const bundle = distFile("loam.mjs");
  const wide = [...bundle.matchAll(/[^\p{ASCII}]/gu)].map((m) => m[0]);
  assert.deepEqual(wide, [], "characters outside ASCII in the product bundle");
});
