// Test helper: find the read-only reference material in ../shared (beside the repository root).
// Nothing from ../shared is ever copied into git; tests read it in place.
//
// Use it like this:
//
//   import { needShared, requireShared } from './shared.js';
//
//   t.test('golden prompts', needShared('reference/golden/micro/reference.json'), async (t) => {
//     const file = requireShared('reference/golden/micro/reference.json');
//     ...
//   });
//
// needShared(...) gives tap test options: when the file is missing the test is skipped with a
// visible reason, EXCEPT when process.env.CI is set: then the test runs, and requireShared(...)
// throws, so the test fails (CI always has ../shared, and a silent skip there would hide breakage).
// ITERA_SHARED_DIR, if set, overrides where ../shared is.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let rootCache: string | null = null;

/** The repository root: the nearest ancestor of this file with the project's package.json. Works
 *  from dist/host/test/ (compiled) and from host/test/ (sources) alike. */
export function repoRoot(): string {
  if (rootCache !== null) return rootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'itera-lite')
          return (rootCache = dir);
      } catch {
        // not ours; keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error(`cannot find the itera-lite repository root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The shared/ folder (it may not exist). */
export function sharedDir(): string {
  return process.env.ITERA_SHARED_DIR ? resolve(process.env.ITERA_SHARED_DIR) : join(repoRoot(), '..', 'shared');
}

/** Absolute path of ../shared/<parts...>, or null when it does not exist. */
export function sharedPath(...parts: string[]): string | null {
  const p = join(sharedDir(), ...parts);
  return existsSync(p) ? p : null;
}

/** Tap test options: skip (with the reason) when the shared file is missing, unless CI is set. */
export function needShared(...parts: string[]): { skip?: string } {
  if (sharedPath(...parts) !== null || process.env.CI) return {};
  return { skip: `needs ../shared/${parts.join('/')}, which is missing (${join(sharedDir(), ...parts)})` };
}

/** The path of a shared file a test needs; throws (failing the test) when it is missing. */
export function requireShared(...parts: string[]): string {
  const p = sharedPath(...parts);
  if (p === null) {
    throw new Error(
      `../shared/${parts.join('/')} is missing (looked at ${join(sharedDir(), ...parts)})` +
        (process.env.CI ? '; CI must have ../shared beside the checkout' : ''),
    );
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// A small assertion the model-file tests share.

/** The part of a tap Test this file uses (structural, so no tap internals are imported). */
export interface Asserts {
  fail(message: string): unknown;
  equal(found: unknown, wanted: unknown, message: string): unknown;
  match(found: unknown, pattern: RegExp, message: string): unknown;
}

/** Asserts that fn() throws an IteraError (by class name and a string `code`) with that code and,
 *  if given, a message matching `msg`. Any other outcome fails the test. */
export function expectIteraError(t: Asserts, fn: () => unknown, code: string, msg: RegExp | null, what: string): void {
  try {
    fn();
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown; constructor?: { name?: unknown } };
    if (err?.name !== 'IteraError' || typeof err.code !== 'string') {
      t.fail(`${what}: expected IteraError ${code}, got ${String(err?.constructor?.name)}: ${String(err?.message)}`);
      return;
    }
    t.equal(err.code, code, `${what}: code (${String(err.message)})`);
    if (msg) t.match(err.message, msg, `${what}: message`);
    return;
  }
  t.fail(`${what}: expected IteraError ${code}, but it succeeded`);
}
