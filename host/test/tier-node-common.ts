// The Node-version tiers (docs/hosts.md): the pinned official Node builds of
// scripts/engines/node-versions.txt (fetched by scripts/engines/node.sh), where each one's node
// binary is, and what each runs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { plainEnv, prepareInputs, type Asserts } from './tier-common.js';

/** The pinned versions, by major: { '22': '22.23.5', '24': '24.22.3' }. */
export function pinnedNodes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot(), 'scripts', 'engines', 'node-versions.txt'), 'utf8').split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+\.\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The node binary of the pinned build of a major version for an architecture (it may be absent). */
export function nodeBinary(major: string, arch: 'x64' | 'arm64' = 'x64'): string {
  const v = pinnedNodes()[major];
  if (v === undefined) throw new Error(`Node ${major} is not pinned in scripts/engines/node-versions.txt`);
  const cache = process.env.ITERA_ENGINE_CACHE ?? join(homedir(), '.cache', 'itera-engines');
  return join(cache, arch, `node-${v}`, 'bin', 'node');
}

export interface Run {
  code: number | null;
  signal: string | null;
  out: string;
  ms: number;
}

/** Runs a command (a plain environment but for CI, which the suites read) with a time limit. */
export function runCommand(cmd: string, args: string[], timeoutMs = 600_000): Promise<Run> {
  const t0 = performance.now();
  return new Promise((ok) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv(), cwd: repoRoot() });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, out, ms: performance.now() - t0 });
    });
  });
}

/** The suites every supported Node runs, in two parts (each a test file of its own, to stay
 *  within tap's time limit per file): the golden logits and generations (both builds, and the
 *  relaxed build where it runs) and the sampler against its plain reference, then the device
 *  tests; and the recorded table of seeds, settings and tokens (the longest). Each suite is a
 *  compiled tap file run as a plain script. */
export const SUITES = { core: ['golden', 'sampling-reference'], table: ['sampling-table'] } as const;

/** Holds one suite's TAP output to: exit 0, tests ran, none failed. */
export function assertSuite(
  t: Asserts & { equal(a: unknown, b: unknown, m: string): unknown },
  label: string,
  r: Run,
): void {
  const lines = r.out.split('\n');
  const oks = lines.filter((l) => /^\s*ok \d+ /.test(l)).length;
  const fails = lines.filter((l) => /^\s*not ok \d+ /.test(l));
  t.equal(r.code, 0, `${label}: exit 0 (${(r.ms / 1000).toFixed(1)} s)`);
  t.ok(oks > 0, `${label}: ${oks} checks passed`);
  t.ok(fails.length === 0, `${label}: none failed${fails.length ? ': ' + fails.slice(0, 5).join(' | ') : ''}`);
  if (r.code !== 0 || fails.length) t.comment(`${label} output (end):\n${r.out.slice(-2000)}`);
}

/** The x64 tier of one pinned Node, one part: its suites, and for 'core' then the device tests
 *  (the SIMD build against Node x86's own results: the same ids, logits within 1e-5; the relaxed
 *  build against the golden data). */
export async function nodeTier(
  t: Asserts & { equal(a: unknown, b: unknown, m: string): unknown; match(a: unknown, b: RegExp, m: string): unknown },
  major: string,
  part: keyof typeof SUITES,
): Promise<void> {
  const node = nodeBinary(major);
  const v = await runCommand(node, ['--version']);
  t.equal(v.out.trim(), `v${pinnedNodes()[major]}`, `runs the pinned Node ${major}`);
  for (const s of SUITES[part]) {
    const r = await runCommand(node, [join(repoRoot(), 'dist', 'host', 'test', `${s}.test.js`)]);
    assertSuite(t, `Node ${major} ${s}`, r);
    if (s === 'golden')
      t.match(
        r.out,
        /ok \d+ - the relaxed build on Node [\d.]+: golden logits[^\n]*# time/,
        `Node ${major}: the relaxed build ran the golden suite`,
      );
  }
  if (part !== 'core') return;
  const inp = prepareInputs();
  const run = join(repoRoot(), 'device-tests', 'run.mjs');
  const d = await runCommand(node, [run, '--inputs', inp.dir, '--compare', join(inp.dir, 'x86.json')]);
  assertSuite(t, `Node ${major} device tests, SIMD build, vs Node 20 x86`, d);
  const rx = await runCommand(node, [run, '--build', 'relaxed', '--inputs', inp.dir]);
  assertSuite(t, `Node ${major} device tests, relaxed build`, rx);
}

/** scripts/engines/arm64.sh, which runs arm64 Node builds under qemu-user. */
export const ARM64_SCRIPT = join(repoRoot(), 'scripts', 'engines', 'arm64.sh');

/** Why the arm64 Node-version tiers cannot run here (qemu, the sysroot, the pinned arm64 Node 22
 *  and 24, the pinned x64 Node 24), or null when they can. */
export function arm64NodesMissing(): string | null {
  if (spawnSync('bash', [ARM64_SCRIPT, 'check']).status !== 0)
    return 'the arm64 engines are not set up (qemu-user-static and the arm64 sysroot)';
  if (!existsSync(nodeBinary('22', 'arm64')) || !existsSync(nodeBinary('24', 'arm64')))
    return 'the pinned arm64 Node 22 / 24 builds are not installed';
  if (!existsSync(nodeBinary('24'))) return 'the pinned x64 Node 24 is not installed';
  return null;
}
