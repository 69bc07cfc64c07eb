/**
 * loam's own time per RPC (issue 20, item 2): each call's wall time, from loam's debug log,
 * minus the time in it during which a command of loam's ran. A line's `time` is when it was
 * logged; a call's and a command's interval end there and began `durationMs` before. The union
 * of the command intervals, clipped to the call's, is subtracted: commands run side by side
 * count once, and one started before the call and waited for by it (NodePublishVolume waiting
 * for the removal its stage started, docs/node.md) counts for the part inside the call. A call
 * that overlapped another call is left out (commands carry no request id), which the
 * time-to-mounted section, one call at a time, never does.
 */
import { median } from "./stats.js";

export interface OwnTime {
  /** The method's short name (CreateVolume). */
  method: string;
  wallMs: number;
  /** The time within the call during which at least one command ran. */
  commandsMs: number;
  /** Commands whose interval met the call's. */
  commands: number;
  ownMs: number;
}

interface LogLine {
  msg?: string;
  time?: string;
  method?: string;
  requestId?: string;
  durationMs?: number;
}

const COMMAND_LINES = new Set(["lvm command", "lvm command failed", "host command"]);

interface Interval {
  start: number;
  end: number;
}

interface Call extends Interval {
  method: string;
}

/** Every call in `log` (loam's JSON lines at debug level) that ran alone. */
export function ownTimes(log: string): OwnTime[] {
  const methods = new Map<string, string>();
  const calls: Call[] = [];
  const commands: Interval[] = [];
  for (const text of log.split("\n")) {
    if (!text.startsWith("{")) continue;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      continue;
    }
    const end = line.time === undefined ? NaN : Date.parse(line.time);
    if (line.msg === "rpc request" && line.requestId && line.method) {
      methods.set(line.requestId, line.method.slice(line.method.lastIndexOf(".") + 1));
    } else if (Number.isNaN(end) || typeof line.durationMs !== "number") {
      continue;
    } else if (COMMAND_LINES.has(line.msg ?? "")) {
      commands.push({ start: end - line.durationMs, end });
    } else if (line.msg === "rpc" && line.requestId) {
      const method = methods.get(line.requestId);
      if (method) calls.push({ method, start: end - line.durationMs, end });
    }
  }
  const meets = (a: Interval, b: Interval): boolean => a.start < b.end && b.start < a.end;
  return calls
    .filter((call) => !calls.some((other) => other !== call && meets(other, call)))
    .map((call) => {
      const inside = commands
        .filter((c) => meets(c, call))
        .map((c) => ({ start: Math.max(c.start, call.start), end: Math.min(c.end, call.end) }));
      const commandsMs = unionLength(inside);
      const wallMs = call.end - call.start;
      return { method: call.method, wallMs, commandsMs, commands: inside.length, ownMs: wallMs - commandsMs };
    });
}

/** The length of the union of intervals. */
function unionLength(intervals: readonly Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let total = 0;
  let reach = -Infinity;
  for (const { start, end } of sorted) {
    if (end <= reach) continue;
    total += end - Math.max(start, reach);
    reach = end;
  }
  return total;
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
