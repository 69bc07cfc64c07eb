/**
 * Request bodies as they may be logged: every field the CSI proto marks `csi_secret` is
 * blanked, found by reading the option from the descriptors at run time, so a secret field
 * added to the proto later is covered without anyone keeping a list.
 */
import {
  type DescField,
  type DescMessage,
  type JsonValue,
  type MessageShape,
  getOption,
  toJson,
} from "@bufbuild/protobuf";
import { csi_secret } from "../gen/csi/v1/csi_pb.js";

/** What a secret field's value is replaced with. */
export const REDACTED = "[redacted]";

/**
 * The message as proto JSON with every `csi_secret` field, at any depth, replaced by
 * REDACTED. Safe to log at any level.
 */
export function redactMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonValue {
  return redactJson(schema, toJson(schema, message, { alwaysEmitImplicit: false }));
}

function redactJson(schema: DescMessage, json: JsonValue): JsonValue {
  if (!isJsonObject(json)) return json;
  const out: Record<string, JsonValue> = { ...json };
  for (const field of schema.fields) {
    const value = out[field.jsonName];
    if (value === undefined) continue;
    if (isSecret(field)) {
      out[field.jsonName] = REDACTED;
      continue;
    }
    const inner = field.message;
    if (!inner) continue;
    if (field.fieldKind === "list" && Array.isArray(value)) {
      out[field.jsonName] = value.map((item) => redactJson(inner, item));
    } else if (field.fieldKind === "map" && isJsonObject(value)) {
      out[field.jsonName] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactJson(inner, v)]));
    } else if (field.fieldKind === "message") {
      out[field.jsonName] = redactJson(inner, value);
    }
  }
  return out;
}

export function isSecret(field: DescField): boolean {
  return getOption(field, csi_secret) === true;
}

/** Every secret field reachable from the message, as dotted paths (for tests and docs). */
export function secretFieldPaths(schema: DescMessage, prefix = "", seen = new Set<string>()): string[] {
  if (seen.has(schema.typeName)) return [];
  const inPath = new Set(seen).add(schema.typeName);
  const paths: string[] = [];
  for (const field of schema.fields) {
    const path = `${prefix}${field.name}`;
    if (isSecret(field)) paths.push(path);
    else if (field.message) paths.push(...secretFieldPaths(field.message, `${path}.`, inPath));
  }
  return paths;
}

function isJsonObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
