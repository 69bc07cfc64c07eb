/**
 * Structured logs: one JSON object per line on stderr (pino), so a log shipper can parse
 * them without rules, and cheap when a level is off. Request bodies pass through
 * redactMessage first: every field the CSI proto marks `csi_secret` is blanked, found by
 * reading the option from the descriptors at run time, so a secret field added to the
 * proto later is covered without anyone keeping a list.
 */
import { type DescField, type DescMessage, type JsonValue, type MessageShape, getOption, toJson } from "@bufbuild/protobuf";
import { type DestinationStream, destination as pinoDestination, pino, stdSerializers, stdTimeFunctions } from "pino";
import { csi_secret } from "./gen/csi/v1/csi_pb.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: LogLevel[] = ["debug", "info", "warn", "error"];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Whether a line at this level would be written; lets callers skip costly fields. */
  enabled?(level: LogLevel): boolean;
}

/**
 * A logger writing JSON lines. `write` replaces stderr (tests collect lines with it).
 * Lines carry `time` (ISO 8601), `level` (its name), `msg`, then the fields.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  // Synchronous on stderr: the last lines before a crash or exit must not sit in a buffer.
  const destination: DestinationStream = write ? { write } : pinoDestination({ fd: 2, sync: true });
  const base = pino(
    {
      level,
      base: { pid: process.pid },
      messageKey: "msg",
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: stdSerializers.err, err: stdSerializers.err },
    },
    destination,
  );
  const emit = (at: LogLevel) => (msg: string, fields?: Record<string, unknown>): void => {
    if (!base.isLevelEnabled(at)) return;
    if (fields) base[at](jsonSafe(fields), msg);
    else base[at](msg);
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    enabled: (at) => base.isLevelEnabled(at),
  };
}

/** bigint as decimal text (pino would write a bare number JSON readers round). */
function jsonSafe(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === "bigint") {
      copy ??= { ...fields };
      copy[key] = value.toString();
    }
  }
  return copy ?? fields;
}

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
