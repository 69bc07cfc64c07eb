/**
 * `npm run lint` fails on an unformatted file: the lint script runs prettier --check over the
 * code with the repository's configuration (line width at most 120), and that check refuses
 * a file as a person might write it and accepts it once formatted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const unformatted = `export function sizeOf(volume:{sizeBytes:number},extra=0){return volume.sizeBytes+extra}\n`;

test("npm run lint runs prettier --check over the TypeScript and JavaScript sources", () => {
  const { scripts } = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { scripts: Record<string, string> };
  assert.match(scripts.lint ?? "", /prettier --check "\*\*\/\*\.\{ts,mjs,js\}"/);
});

test("the repository's prettier configuration keeps lines at most 120 wide", async () => {
  const options = await prettier.resolveConfig(`${root}src/volumes/engine.ts`);
  assert.ok(options?.printWidth !== undefined && options.printWidth <= 120, JSON.stringify(options));
});

test("the check refuses an unformatted source file and accepts it formatted", async () => {
  const filepath = `${root}src/volumes/example.ts`;
  const options = { ...(await prettier.resolveConfig(filepath)), filepath };
  assert.equal(await prettier.check(unformatted, options), false);
  const formatted = await prettier.format(unformatted, options);
  assert.equal(await prettier.check(formatted, options), true);
});
