// A value the platform may not report: either {value, source} (where it came from) or
// {value: null, reason} (why it is not known). Never a guess. Used by the engine probes here and
// by the diagnostics document (host/diag/schema.ts).

export type Reported<T> =
  { value: T; source: string; reason?: undefined } | { value: null; reason: string; source?: undefined };

export function known<T>(value: T, source: string): Reported<T> {
  return { value, source };
}

export function unknown<T = never>(reason: string): Reported<T> {
  return { value: null, reason: reason || 'not reported (no reason given)' };
}

/** A Reported<T> from a value that may be null/undefined/NaN/empty: null with the reason then. */
export function reported<T>(value: T | null | undefined, source: string, reasonIfMissing: string): Reported<T> {
  if (
    value === null ||
    value === undefined ||
    (typeof value === 'number' && !Number.isFinite(value)) ||
    (typeof value === 'string' && value.trim() === '')
  ) {
    return unknown(reasonIfMissing);
  }
  return known(value, source);
}
