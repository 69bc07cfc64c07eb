import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { configJsonSchema } from "../../src/cli/config-schema.js";
import { valuesJsonSchema } from "../../src/deploy/values-schema.js";
import { disksJsonSchema } from "../../src/disks/config.js";

const root = new URL("../../../", import.meta.url);

test("docs/schema/config.schema.json is the schema config.json is checked with (npm run schemas rewrites it)", async () => {
  const written: unknown = JSON.parse(await readFile(new URL("docs/schema/config.schema.json", root), "utf8"));
  assert.deepEqual(written, configJsonSchema());
});

test("docs/schema/values.schema.json is the schema deploy/values.json is checked with (npm run schemas rewrites it)", async () => {
  const written: unknown = JSON.parse(await readFile(new URL("docs/schema/values.schema.json", root), "utf8"));
  assert.deepEqual(written, valuesJsonSchema());
});

test("docs/schema/disks.schema.json is the schema disks.json is checked with (npm run schemas rewrites it)", async () => {
  const written: unknown = JSON.parse(await readFile(new URL("docs/schema/disks.schema.json", root), "utf8"));
  assert.deepEqual(written, disksJsonSchema());
});
