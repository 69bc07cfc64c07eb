/**
 * loam's own time per RPC (issue 20, item 2): each call's wall time, from loam's debug log,
 * minus the time of the LVM and host commands it ran. Commands carry no request id in the log,
 * so a command counts for the one call open when it was logged; a call that overlapped another
 * is left out (its commands cannot be told apart), which the time-to-mounted section, one call
 * at a time, never does. Commands one call runs side by side are summed, so own time is then a
 * lower bound.
 */
import { median } from "./stats.js";

export interface OwnTime {
  /** The method's short name (CreateVolume). */
  method: string;
  wallMs: number;
  commandsMs: number;
  commands: number;
  ownMs: number;
}

interface LogLine {
  msg?: string;
  method?: string;
  requestId?: string;
  durationMs?: number;
}

const COMMAND_LINES = new Set(["lvm command", "lvm command failed", "host command"]);

/** Every call in `log` (loam's JSON lines at debug level) that ran alone. */
export function ownTimes(log: string): OwnTime[] {
  const open = new Map<string, { method: string; commandsMs: number; commands: number; overlapped: boolean }>();
  const done: OwnTime[] = [];
  for (const text of log.split("\n")) {
    if (!text.startsWith("{")) continue;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      continue;
    }
    if (line.msg === "rpc request" && line.requestId && line.method) {
      for (const call of open.values()) call.overlapped = true;
      open.set(line.requestId, {
        method: line.method.slice(line.method.lastIndexOf(".") + 1),
        commandsMs: 0,
        commands: 0,
        overlapped: open.size > 0,
      });
    } else if (COMMAND_LINES.has(line.msg ?? "") && typeof line.durationMs === "number" && open.size === 1) {
      const [call] = open.values();
      call.commandsMs += line.durationMs;
      call.commands += 1;
    } else if (line.msg === "rpc" && line.requestId && typeof line.durationMs === "number") {
      const call = open.get(line.requestId);
      open.delete(line.requestId);
      if (!call || call.overlapped) continue;
      done.push({
        method: call.method,
        wallMs: line.durationMs,
        commandsMs: call.commandsMs,
        commands: call.commands,
        ownMs: line.durationMs - call.commandsMs,
      });
    }
  }
  return done;
}

export interface OwnTimeSummary {
  method: string;
  calls: number;
  wallMedianMs: number;
  commandsMedianMs: number;
  commandsPerCall: number;
  ownMedianMs: number;
}

/** Medians per method, for the methods named, in that order. */
export function summarizeOwnTimes(times: readonly OwnTime[], methods: readonly string[]): OwnTimeSummary[] {
  return methods.map((method) => {
    const of = times.filter((t) => t.method === method);
    return {
      method,
      calls: of.length,
      wallMedianMs: median(of.map((t) => t.wallMs)),
      commandsMedianMs: median(of.map((t) => t.commandsMs)),
      commandsPerCall: median(of.map((t) => t.commands)),
      ownMedianMs: median(of.map((t) => t.ownMs)),
    };
  });
}
