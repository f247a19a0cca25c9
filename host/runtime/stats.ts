// Small statistics for benchmarks: percentiles by linear interpolation between closest ranks
// (the same definition as numpy's default), median, min, max.

/** The p-th percentile (0..100) of values, linear interpolation between closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export interface Summary {
  min: number;
  median: number;
  max: number;
  p95: number;
  n: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    min: Math.min(...values),
    median: percentile(values, 50),
    max: Math.max(...values),
    p95: percentile(values, 95),
    n: values.length,
  };
}
