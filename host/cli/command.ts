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
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}

export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
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
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (parsed.values.help) return 'help';
  const [min, max] = cmd.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min) throw new UsageError(`missing argument${min - n > 1 ? 's' : ''}`);
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
