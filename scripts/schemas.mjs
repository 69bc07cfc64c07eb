// Writes the JSON Schemas of config.json, deploy/values.json and disks.json to docs/schema/ from the
// zod schemas the code validates with. Run `npm run schemas` after changing either schema;
// test/unit/schemas.test.ts fails when a written file is out of date.
import { writeFile } from "node:fs/promises";
import { configJsonSchema } from "../dist/src/cli/config-schema.js";
import { valuesJsonSchema } from "../dist/src/deploy/values-schema.js";
import { disksJsonSchema } from "../dist/src/disks/config.js";

const files = {
  "docs/schema/config.schema.json": configJsonSchema(),
  "docs/schema/values.schema.json": valuesJsonSchema(),
  "docs/schema/disks.schema.json": disksJsonSchema(),
};
for (const [path, schema] of Object.entries(files)) {
  await writeFile(new URL(`../${path}`, import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path}`);
}
