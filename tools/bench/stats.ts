/** The statistics the benchmark reports: medians, nearest-rank percentiles, rates. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Nearest-rank percentile: the smallest sample with at least p % of the samples at or below
 * it. With 20 samples p99 is the maximum, which is what 20 samples can honestly say.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export interface Distribution {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export function distribution(valuesMs: readonly number[]): Distribution {
  return {
    samples: valuesMs.length,
    p50Ms: percentile(valuesMs, 50),
    p99Ms: percentile(valuesMs, 99),
    meanMs: valuesMs.reduce((a, b) => a + b, 0) / (valuesMs.length || 1),
  };
}

/** Median of each field across samples. */
export function medians<T extends object>(samples: readonly T[]): Record<keyof T, number> {
  const keys = Object.keys(samples[0] ?? {}) as Array<keyof T>;
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k] as number))])) as Record<
    keyof T,
    number
  >;
}

export const sumOf = (sample: object): number =>
  Object.values(sample as Record<string, number>).reduce((a, b) => a + b, 0);
