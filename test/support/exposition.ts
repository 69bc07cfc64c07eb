/**
 * A reader for the Prometheus text exposition format (version 0.0.4), enough to check
 * what /metrics says: the unit and VM tests scrape loam with it. Test support only: it never
 * ships (loam writes the format through prom-client and never reads it).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: string;
  help: string;
}

export class ExpositionParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExpositionParseError";
  }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

export function parseExposition(text: string): { samples: Sample[]; families: MetricFamily[] } {
  const samples: Sample[] = [];
  const families = new Map<string, MetricFamily>();
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)\s?(.*)$/.exec(line);
      if (!meta) continue;
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const family = families.get(name) ?? { name, type: "untyped", help: "" };
      if (kind === "TYPE") family.type = rest;
      else family.help = unescape(rest);
      families.set(name, family);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new ExpositionParseError(`line ${index + 1} is not a sample: ${line.slice(0, 120)}`);
    const [, name, labelText, valueText] = match as unknown as [string, string, string | undefined, string];
    samples.push({ name, labels: parseLabels(labelText ?? "", index + 1), value: parseValue(valueText, index + 1) });
  }
  return { samples, families: [...families.values()] };
}

/** The value of the one sample with this name whose labels include `labels`; undefined if none. */
export function sampleValue(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match) throw new ExpositionParseError(`line ${line}: bad label list at "${text.slice(at, at + 40)}"`);
    labels[match[1]] = unescape(match[2]);
  }
  return labels;
}

function parseValue(text: string, line: number): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new ExpositionParseError(`line ${line}: "${text}" is not a number`);
  return value;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}
