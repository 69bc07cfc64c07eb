/**
 * The StorageClass parameter table in docs/parameters.md, written from the PARAMETERS table
 * the driver itself validates with, so the reference cannot drift from the code. The table
 * sits between two markers; the prose around it is hand-written.
 */
import type { ParameterDefinition } from "../volumes/parameters.js";

export const TABLE_BEGIN =
  "<!-- parameters:begin (generated from src/volumes/parameters.ts by npm run manifests; do not edit) -->";
export const TABLE_END = "<!-- parameters:end -->";

const cell = (text: string): string => text.replaceAll("|", "\\|").replaceAll("\n", " ");

export function parameterTable(parameters: readonly ParameterDefinition[]): string {
  const rows = parameters.map(
    (p) =>
      `| \`${p.key}\` | ${p.type} | ${cell(p.defaultValue)} | ${cell(p.allowed)} | ${cell(p.description)}${p.metadata ? " Claim metadata: recorded, never changes the volume." : ""} |`,
  );
  return [
    TABLE_BEGIN,
    "| Key | Type | Default | Allowed values | Meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    TABLE_END,
  ].join("\n");
}

/** Replaces the generated table in a document; throws when the markers are missing. */
export function withParameterTable(document: string, parameters: readonly ParameterDefinition[]): string {
  const begin = document.indexOf(TABLE_BEGIN);
  const end = document.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error("docs/parameters.md lacks the parameters:begin/end markers");
  return document.slice(0, begin) + parameterTable(parameters) + document.slice(end + TABLE_END.length);
}

/** The keys listed in a document's parameter table (first column of each row). */
export function documentedKeys(document: string): string[] {
  const begin = document.indexOf(TABLE_BEGIN);
  const end = document.indexOf(TABLE_END);
  const table = begin >= 0 && end > begin ? document.slice(begin, end) : document;
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? "");
}
