// Shared by the device-tier tests (tier-*.test.ts): the conformance inputs and Node x86's own
// results for them, made once per test process by device-tests/run.mjs, and the checks that
// hold another engine's results to them (the same ids, logits within 1e-5).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './shared.js';

export interface Case {
  model: string;
  name: string;
  kind: 'logits' | 'generate';
  ids?: number[];
  prompt?: string;
  options?: object;
  expect?: object;
}
export interface Results {
  engine: string;
  results: Record<string, { ids?: number[]; promptIds?: number[]; logits?: string; error?: string }>;
  ms: Record<string, number>;
}
export interface Check {
  ok: boolean;
  name: string;
}
interface Conformance {
  checkResults(cases: Case[], got: Results, reference: Results | null): Check[];
  toTap(checks: Check[], comments?: string[]): string;
}

/** Where the browser tiers save their screenshots: reports/screenshots/ (the committed ones) when
 *  ITERA_SCREENSHOTS=1, else a fresh temporary folder, so that a test run leaves the work tree
 *  clean. */
export function screenshotDir(): string {
  const dir =
    process.env.ITERA_SCREENSHOTS === '1'
      ? join(repoRoot(), 'reports', 'screenshots')
      : mkdtempSync(join(tmpdir(), 'itera-screenshots-'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The environment without the test runner's NODE_OPTIONS (its loaders are not on a device, and
 *  an older Node cannot run them): what a device's plain `node` sees. */
export function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Tap options for a tier whose engine may be missing: skipped with the reason on a developer's
 *  machine, run (and so failed) under CI, where the setup scripts must have installed it. */
export function engineOption(missing: string | null): { skip?: string } {
  if (missing === null || process.env.CI) return {};
  return { skip: `${missing} (install it with the matching scripts/ci/setup-*.sh)` };
}

export interface Inputs {
  dir: string;
  cases: Case[];
  models: Record<string, string>;
  x86: Results;
  x86Ms: number;
}
let inputs: Inputs | null = null;

/** The cases and models (written to a fresh folder) and Node x86's results for them. */
export function prepareInputs(): Inputs {
  if (inputs) return inputs;
  const dir = mkdtempSync(join(tmpdir(), 'itera-tier-'));
  const run = join(repoRoot(), 'device-tests', 'run.mjs');
  const w = spawnSync(process.execPath, [run, '--write-inputs', dir], { encoding: 'utf8', env: plainEnv() });
  if (w.status !== 0) throw new Error(`device-tests/run.mjs --write-inputs failed: ${w.stderr}${w.stdout}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [run, '--inputs', dir, '--results', join(dir, 'x86.json')], {
    encoding: 'utf8',
    env: plainEnv(),
  });
  if (r.status !== 0) throw new Error(`device-tests/run.mjs on Node x86 failed:\n${r.stdout}${r.stderr}`);
  const spec = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
    cases: Case[];
    models: Record<string, string>;
  };
  inputs = {
    dir,
    cases: spec.cases,
    models: spec.models,
    x86: JSON.parse(readFileSync(join(dir, 'x86.json'), 'utf8')) as Results,
    x86Ms: performance.now() - t0,
  };
  inputs.x86.engine = 'Node x86';
  return inputs;
}

export async function conformance(): Promise<Conformance> {
  const url = pathToFileURL(join(repoRoot(), 'device-tests', 'conformance.mjs')).href;
  return (await import(url)) as Conformance;
}

/** The assertions a tap test needs. */
export interface Asserts {
  ok(v: unknown, msg: string): unknown;
  comment(...m: unknown[]): unknown;
}

/** Asserts every case ran, matched its golden ids, and matches Node x86; returns the count. */
export async function assertMatchesX86(t: Asserts, got: Results, label: string): Promise<number> {
  const inp = prepareInputs();
  const c = await conformance();
  const checks = c.checkResults(inp.cases, got, inp.x86);
  const ran = inp.cases.filter((x) => got.results[x.name] !== undefined).length;
  t.ok(ran === inp.cases.length, `${label}: ran all ${inp.cases.length} cases (${ran})`);
  for (const k of checks) t.ok(k.ok, `${label}: ${k.name}`);
  return checks.length;
}
