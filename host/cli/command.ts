// The shape of a CLI command and the helpers every command shares: parsing with --help,
// number options checked with messages that say what to type instead.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { IteraError } from '../runtime/types.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  /** Full help text: usage line, description, options, examples. */
  help: string;
  options: Options;
  /** How many positionals it takes: [min, max]. */
  positionals?: [number, number];
  /** The positionals' names for messages, like 'CHECKPOINT (the file to convert)'; the last one
   *  names every positional past it. */
  args?: string[];
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}

export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  /** Standard input, for '-p -' (default: process.stdin). */
  in?: NodeJS.ReadableStream;
  /** True once the reader of out has gone away (EPIPE: \`itera run | head\`): stop writing. */
  closed?: () => boolean;
}

/** How often (ms) a long-running writer lets the event loop deliver a closed pipe's error: the
 *  error arrives through process.nextTick, which waits while an await loop keeps the microtask
 *  queue busy. */
const BREATHE_MS = 20;
let lastBreath = 0;

/** Between tokens or records: lets pending I/O events arrive every BREATHE_MS of wall time (one
 *  setImmediate, a few microseconds), and says whether the output is still read. */
export async function stillReading(io: Io): Promise<boolean> {
  if (!io.closed) return true;
  const now = performance.now();
  if (now - lastBreath >= BREATHE_MS) {
    lastBreath = now;
    await new Promise<void>((r) => setImmediate(r));
  }
  return !io.closed();
}

/** Watches a real output stream for EPIPE: the error is swallowed (no stack trace, no exit 1) and
 *  closed() turns true. Other stream errors are reported on err once and make failed() true. The
 *  listener stays for the life of the process: a last write's error can arrive after the command
 *  returned. */
export function watchPipe(
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): { closed: () => boolean; failed: () => boolean } {
  let closed = false;
  let failed = false;
  const onError = (e: NodeJS.ErrnoException): void => {
    if (closed) return;
    closed = true;
    if (e.code !== 'EPIPE') {
      failed = true;
      err.write(`itera: cannot write the output: ${e.message}\n`);
    }
  };
  out.on('error', onError);
  return { closed: () => closed, failed: () => failed };
}

/** Reads a whole stream as UTF-8 text. */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of input) parts.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(parts).toString('utf8');
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/** The closest of the candidates to a mistyped word: a prefix of exactly one, or within an edit
 *  distance of a third of its length (at least 1, at most 3); null when nothing is close. */
export function closest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  if (w === '') return null;
  const prefixed = candidates.filter((c) => c.startsWith(w));
  if (prefixed.length === 1) return prefixed[0]!;
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return bestD <= limit ? best : null;
}

/** ' Did you mean ...?' for an unknown option (as typed, with its dashes), or ''. */
function optionHint(typed: string, cmd: Command): string {
  const names = Object.keys(cmd.options).concat('help');
  const bare = typed.replace(/^-+/, '').replace(/=.*$/, '');
  const long = typed.startsWith('--');
  const shorts = Object.entries(cmd.options).flatMap(([n, o]) => (o.short ? [[o.short, n] as const] : []));
  if (!long) {
    // -x: a long option typed with one dash ('-prompt') is the usual slip
    if (bare.length > 1 && names.includes(bare)) return ` Did you mean '--${bare}'?`;
    const s = shorts.find(([short]) => short.toLowerCase() === bare.toLowerCase());
    if (s) return ` Did you mean '-${s[0]}' (--${s[1]})?`;
  }
  const c = closest(bare, names);
  return c ? ` Did you mean '--${c}'?` : '';
}

/** A mistake in how the command was called (exit 2, with a pointer to --help). */
export class UsageError extends Error {}

export function parse(cmd: Command, argv: string[]): { values: Values; positionals: string[] } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...cmd.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const unknown = /^Unknown option '([^']+)'/.exec(msg);
    throw new UsageError(unknown ? msg.replace(/\.?$/, '.') + optionHint(unknown[1]!, cmd) : msg);
  }
  if (parsed.values.help) return 'help';
  const [min, max] = cmd.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min) {
    const names = cmd.args ?? [];
    const missing = Array.from({ length: min - n }, (_, i) => names[Math.min(n + i, names.length - 1)]).filter(
      (a): a is string => a !== undefined,
    );
    const what = missing.length > 0 ? ` ${missing.join(', ')}` : '';
    throw new UsageError(`missing argument${min - n > 1 ? 's' : ''}${what}`);
  }
  if (n > max) throw new UsageError(`unexpected argument '${parsed.positionals[max]}'`);
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

export function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}

/** A number option: undefined if absent; a UsageError naming the option if it is not a number
 *  in range. */
export function num(
  v: Values,
  name: string,
  o: { int?: boolean; min?: number; max?: number } = {},
): number | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const n = Number(x);
  if (x.trim() === '' || Number.isNaN(n)) throw new UsageError(`--${name} must be a number, got '${x}'`);
  if (o.int && !Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got '${x}'`);
  if (o.min !== undefined && n < o.min) throw new UsageError(`--${name} must be at least ${o.min}, got ${x}`);
  if (o.max !== undefined && n > o.max) throw new UsageError(`--${name} must be at most ${o.max}, got ${x}`);
  return n;
}

/** Comma-separated token ids. */
export function idList(x: string, name: string): number[] {
  const parts = x
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new UsageError(`--${name} needs at least one token id, like --${name} 2,45,7`);
  return parts.map((p) => {
    const n = Number(p);
    if (!/^-?\d+$/.test(p) || !Number.isSafeInteger(n))
      throw new UsageError(`--${name}: '${p}' is not a token id (a whole number)`);
    return n;
  });
}

export function fail(e: unknown, cmd: string, io: Io): number {
  if (e instanceof UsageError) {
    io.err.write(`itera ${cmd}: ${e.message}\nTry 'itera ${cmd} --help'.\n`);
    return 2;
  }
  if (e instanceof IteraError) {
    io.err.write(`itera ${cmd}: ${e.message}\n`);
    return 1;
  }
  const err = e as Error;
  io.err.write(`itera ${cmd}: unexpected error: ${err?.stack ?? String(e)}\n`);
  return 1;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}
