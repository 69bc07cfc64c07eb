/**
 * Structured logs: one JSON object per line on stderr (pino), so a log shipper can parse
 * them without rules, and cheap when a level is off. Every layer may import this file, so it
 * imports nothing of src (CSI request bodies are redacted by src/csi/redact.ts before they
 * are logged).
 */
import { type DestinationStream, destination as pinoDestination, pino, stdSerializers, stdTimeFunctions } from "pino";

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
  const emit =
    (at: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
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
