// The emulated Raspberry Pi tier: arm64 Node under qemu-user (scripts/engines/arm64.sh) as a Pi 4
// (cortex-a72) and a Pi 5 (cortex-a76) with the host's Node version, plus Debian bookworm's own
// arm64 Node 18. Each runs the device tests exactly as a Pi owner would (plain node
// device-tests/run.mjs), compared with Node x86's results: the same ids, logits within 1e-5.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, plainEnv, prepareInputs } from './tier-common.js';

const script = join(repoRoot(), 'scripts', 'engines', 'arm64.sh');
const ready = spawnSync('bash', [script, 'check']).status === 0;
const missing = ready ? null : 'the arm64 engines are not set up (qemu-user-static and the cached arm64 Node builds)';

function runDevice(
  engine: string,
  args: string[],
): Promise<{ code: number | null; signal: string | null; out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((ok) => {
    const p = spawn('bash', [script, 'run', engine, join(repoRoot(), 'device-tests', 'run.mjs'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: plainEnv(),
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, out, ms: performance.now() - t0 });
    });
  });
}

t.test('emulated Raspberry Pi: the device tests under qemu-user match Node x86', engineOption(missing), async (t) => {
  const inp = prepareInputs();
  const engines = [
    ['pi4', 'Pi 4 (cortex-a72), Node ' + process.version],
    ['pi5', 'Pi 5 (cortex-a76), Node ' + process.version],
    ['deb18', "Debian bookworm's arm64 Node 18 (cortex-a72)"],
  ];
  // one at a time: qemu is slow enough, and the machine has 2 cores
  const runs: Awaited<ReturnType<typeof runDevice>>[] = [];
  for (const [e] of engines)
    runs.push(await runDevice(e, ['--inputs', inp.dir, '--compare', join(inp.dir, 'x86.json')]));
  engines.forEach(([e, label], i) => {
    const r = runs[i];
    const lines = r.out.split('\n');
    const oks = lines.filter((l) => /^ok \d+ /.test(l)).length;
    const fails = lines.filter((l) => /^not ok \d+ /.test(l));
    t.match(
      r.out,
      /# engine: node v\d+\.\d+\.\d+ linux-arm64 simd/,
      `${e}: ran as linux-arm64 (${lines.find((l) => l.startsWith('# engine'))?.slice(2) ?? 'no engine line'})`,
    );
    t.equal(r.code, 0, `${e}: ${label}: exit 0`);
    t.ok(oks > 20, `${e}: ${oks} checks passed (cases, golden ids, the same ids as x86, logits within 1e-5)`);
    t.same(fails, [], `${e}: no check failed`);
    if (r.code !== 0) t.comment(`${e} exit ${r.code} ${r.signal ?? ''}, output:\n${r.out.slice(-1500)}`);
    t.comment(`${e} (${label}): ${(r.ms / 1000).toFixed(1)} s`);
  });
});
