// Run by host/test/relaxed.test.ts under a given Node and V8 flags (not a test file itself):
// prints one JSON line saying what this engine makes of the relaxed build. The verdicts come from
// host/runtime/features.ts, the code every host uses; `dotSum` and `matvec` are the facts they
// must agree with: the integer relaxed dot's own sum of fixed products (known: -4384), and the
// relaxed test build's f32 kernels against the SIMD test build's on pseudo-random data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { relaxedVerdict, relaxedVerdictOf } from '../runtime/features.js';
import { resolveBuild } from '../node/index.js';
import { repoRoot } from './shared.js';
import { lcg, type HookExports } from './helpers.js';

interface DotHooks extends HookExports {
  test_relaxed_selftest_dot(): number;
}

const build = (f: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(readFileSync(join(repoRoot(), 'build', f))) as Uint8Array<ArrayBuffer>;

async function main(): Promise<void> {
  const release = build('itera-relaxed.wasm');
  const out: Record<string, unknown> = { node: process.version, validates: WebAssembly.validate(release) };
  out.release = await relaxedVerdict(release);
  const r = await resolveBuild('relaxed');
  out.resolved = { build: r.build, note: r.note };
  if (out.validates) {
    const test = build('itera-relaxed.test.wasm');
    const hooks = new WebAssembly.Instance(new WebAssembly.Module(test), {}).exports as unknown as DotHooks;
    out.withDot = relaxedVerdictOf(hooks, () => hooks.test_relaxed_selftest_dot());
    // the dot's bare answer, beside the verdict: bit 32 of the test self-test is the dot alone
    out.dotWrong = (hooks.test_relaxed_selftest_dot() & 32) !== 0;
    // the f32 kernels the release build uses, against the SIMD build's, on 37 x 67 random values
    const simd = new WebAssembly.Instance(new WebAssembly.Module(build('itera.test.wasm')), {})
      .exports as unknown as HookExports;
    const rows = 37,
      cols = 67;
    const g = lcg(11);
    const W = Float32Array.from({ length: rows * cols }, g);
    const x = Float32Array.from({ length: cols }, g);
    const run = (ex: HookExports): Float32Array => {
      const pw = ex.alloc(W.byteLength),
        px = ex.alloc(x.byteLength),
        py = ex.alloc(rows * 4);
      new Float32Array(ex.memory.buffer, pw, W.length).set(W);
      new Float32Array(ex.memory.buffer, px, x.length).set(x);
      ex.test_matvec_f32(pw, px, py, rows, cols);
      return new Float32Array(ex.memory.buffer, py, rows).slice();
    };
    const a = run(hooks),
      b = run(simd);
    out.matvecMaxDiff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
