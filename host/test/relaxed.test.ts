// The relaxed-SIMD build's gate (docs/runtime.md, "The relaxed build"): it runs only where the
// engine validates it and its self-test computes the known results, else the SIMD build with a
// warning saying why. Held to real engines: Node 20 as shipped (does not validate it), Node 20
// with relaxed SIMD forced on and only its baseline compiler, Liftoff (validates it and
// miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s, on which the build's Q4_0 kernel rests, so the
// self-test must refuse it), Node 20 with only its optimizing compiler, and the pinned Node 22 and
// 24 (scripts/engines/node.sh).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { relaxedVerdictOf, selftestFailures } from '../runtime/features.js';
import { decodeState, encodeState } from '../runtime/state.js';
import { repoRoot } from './shared.js';
import { engineOption, plainEnv } from './tier-common.js';
import { nodeBinary } from './tier-node-common.js';

interface Verdict {
  ok: boolean;
  reason: string;
  fused: boolean | null;
}
interface Probe {
  node: string;
  validates: boolean;
  release: Verdict;
  resolved: { build: string; note: string | null };
  dotWrong?: boolean;
  q4Wrong?: boolean;
  q4Differ?: number;
  q4Outputs?: number;
  matvecMaxDiff?: number;
  elementwiseMaxDiff?: number;
}

const probeJs = join(repoRoot(), 'dist', 'host', 'test', 'relaxed-probe.js');

function probe(node: string, flags: string[]): Probe {
  const r = spawnSync(node, [...flags, probeJs], { encoding: 'utf8', env: plainEnv(), timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${node} ${flags.join(' ')} relaxed-probe failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Probe;
}

t.test('the self-test mask names its failed checks; the verdict follows it', async (t) => {
  t.same(selftestFailures(0), []);
  t.same(selftestFailures(1 | 32 | 64), [
    'f32 matrix-vector product',
    'integer relaxed dot',
    'Q4_0 matrix product (integer relaxed dot)',
  ]);
  const ex = (mask: number, relaxed = 1) => ({
    has_relaxed: () => relaxed,
    relaxed_selftest: () => mask,
    fused_madd: () => 1,
  });
  t.match(relaxedVerdictOf(ex(0)), { ok: true, fused: true });
  const bad = relaxedVerdictOf(ex(16));
  t.equal(bad.ok, false);
  t.match(bad.reason, /self-test failed \(f32x4\.relaxed_madd\)/);
  t.match(relaxedVerdictOf(ex(0, 0)), { ok: false, reason: /not the relaxed-SIMD build/ });
});

t.test('a state saved by the relaxed build is refused by the SIMD build (STATE_BUILD)', async (t) => {
  const hash = new Uint8Array(8).fill(7);
  const saved = encodeState({ modelHash: hash, simd: 2 }, new Uint8Array(4));
  t.ok(decodeState({ modelHash: hash, simd: 2 }, saved, 4), 'the relaxed build reads its own state');
  t.throws(() => decodeState({ modelHash: hash, simd: 1 }, saved, 4), {
    code: 'STATE_BUILD',
    message: /relaxed-SIMD build of the module, this is the SIMD build/,
  });
});

t.test('Node 20 as shipped: no relaxed SIMD, so the SIMD build with the reason', async (t) => {
  const p = probe(process.execPath, []);
  if (!p.node.startsWith('v20.')) {
    t.comment(`this test's Node is ${p.node}: the Node 20 facts are checked by the Node 20 run`);
    return;
  }
  t.equal(p.validates, false, 'does not validate the relaxed build');
  t.equal(p.release.ok, false);
  t.equal(p.resolved.build, 'simd', "build: 'relaxed' runs the SIMD build");
  t.match(p.resolved.note, /does not validate relaxed SIMD/, `the warning says why: ${p.resolved.note}`);
});

t.test('Node 20 with relaxed SIMD forced on, baseline compiler (Liftoff) only', async (t) => {
  const p = probe(process.execPath, ['--experimental-wasm-relaxed-simd', '--liftoff', '--no-wasm-tier-up']);
  if (!p.node.startsWith('v20.')) return void t.comment(`this test's Node is ${p.node}`);
  t.equal(p.validates, true, 'validates the relaxed build');
  t.equal(p.dotWrong, true, 'Liftoff miscomputes the integer relaxed dot (the known sum is missed)');
  t.equal(p.q4Wrong, true, 'and so the Q4_0 kernel built on it');
  t.ok(p.q4Differ! > 0, `random Q4_0 products differ from the integer kernel (${p.q4Differ} of ${p.q4Outputs})`);
  t.ok(
    p.matvecMaxDiff! < 1e-4,
    `the f32 kernels compute right (max diff ${p.matvecMaxDiff} vs SIMD): the dot alone is wrong`,
  );
  t.equal(p.release.ok, false, 'the self-test refuses this engine');
  t.match(p.release.reason, /integer relaxed dot/);
  t.equal(p.resolved.build, 'simd', "build: 'relaxed' runs the SIMD build");
  t.match(p.resolved.note, /self-test failed/, `the warning says why: ${p.resolved.note}`);
});

t.test('Node 20 with relaxed SIMD forced on, optimizing compiler only', async (t) => {
  const p = probe(process.execPath, ['--experimental-wasm-relaxed-simd', '--no-liftoff']);
  if (!p.node.startsWith('v20.')) return void t.comment(`this test's Node is ${p.node}`);
  t.equal(p.dotWrong, false, 'TurboFan computes the integer relaxed dot right');
  t.equal(p.q4Differ, 0, `the Q4_0 kernel gives the integer kernel's bits (${p.q4Outputs} outputs)`);
  t.equal(p.release.ok, true, 'and the self-test accepts it');
});

for (const [major, flags] of [
  ['24', []],
  ['24', ['--liftoff', '--no-wasm-tier-up']],
  ['22', []],
] as const) {
  const node = nodeBinary(major);
  t.test(
    `Node ${major}${flags.length ? ' ' + flags.join(' ') : ''}: validates relaxed SIMD by default, self-test passes`,
    engineOption(existsSync(node) ? null : `the pinned Node ${major} is not installed (${node})`),
    async (t) => {
      const p = probe(node, [...flags]);
      t.equal(p.validates, true);
      t.equal(p.dotWrong, false, 'computes the integer relaxed dot right');
      t.equal(p.release.ok, true, p.release.reason);
      t.equal(p.q4Wrong, false);
      t.ok(p.q4Outputs! > 8000, `${p.q4Outputs} Q4_0 outputs compared`);
      t.equal(p.q4Differ, 0, `Q4_0 on the relaxed dot: the integer kernel's bits in all ${p.q4Outputs} outputs`);
      t.equal(p.resolved.build, 'relaxed');
      t.ok(p.matvecMaxDiff! < 1e-4, `f32 kernels within 1e-4 of the SIMD build (max ${p.matvecMaxDiff})`);
      t.ok(
        p.elementwiseMaxDiff! < 1e-5,
        `exp, SiLU, softplus, GELU within 1e-5 (relative) of the SIMD build (max ${p.elementwiseMaxDiff})`,
      );
    },
  );
}
