/**
 * docs/parameters.md against the PARAMETERS table the driver validates with: every key the
 * code accepts is documented, and nothing is documented that the code does not accept.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PARAMETERS } from "../../src/volumes/parameters.js";
import { documentedKeys, parameterTable, withParameterTable } from "../../src/deploy/parameters-doc.js";
import { PARAMETERS_DOC } from "../../src/deploy/generate.js";

const doc = await readFile(join(process.cwd(), PARAMETERS_DOC), "utf8");

test("every parameter the code accepts is in docs/parameters.md", () => {
  const documented = new Set(documentedKeys(doc));
  for (const p of PARAMETERS) assert.ok(documented.has(p.key), `${p.key} is accepted but not documented`);
});

test("docs/parameters.md documents nothing the code does not accept", () => {
  const accepted = new Set(PARAMETERS.map((p) => p.key));
  const documented = documentedKeys(doc);
  assert.ok(documented.length > 0, "no parameter rows found");
  for (const key of documented) assert.ok(accepted.has(key), `${key} is documented but the code does not accept it`);
  assert.equal(new Set(documented).size, documented.length, "a key is documented twice");
});

test("each documented row gives type, default and allowed values from PARAMETERS", () => {
  for (const p of PARAMETERS) {
    const row = doc.split("\n").find((line) => line.startsWith(`| \`${p.key}\` |`));
    assert.ok(row?.includes(`| ${p.type} |`), `${p.key}: type`);
    assert.ok(row?.includes(p.allowed.replaceAll("|", "\\|")), `${p.key}: allowed values`);
  }
});

test("the table generator escapes pipes and replaces only the marked block", () => {
  const table = parameterTable([
    { key: "a/b", type: "string", defaultValue: "x|y", allowed: "one", description: "d", metadata: false },
  ]);
  assert.match(table, /\| `a\/b` \| string \| x\\\|y \| one \| d \|/);
  const replaced = withParameterTable(`before\n${parameterTable([])}\nafter\n`, PARAMETERS);
  assert.ok(replaced.startsWith("before\n") && replaced.endsWith("\nafter\n"));
  assert.deepEqual(
    documentedKeys(replaced),
    PARAMETERS.map((p) => p.key),
  );
  assert.throws(() => withParameterTable("no markers", PARAMETERS), /lacks the parameters:begin\/end markers/);
});
