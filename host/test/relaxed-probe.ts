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
    // the f32 kernels the release build uses, against the SIMD build's, on random values: one
    // position and two, shapes with eight-row groups, a four-row group, single rows and column
    // tails (37 x 67), and the models' (the lm_head's 2000 x 96)
    const simd = new WebAssembly.Instance(new WebAssembly.Module(build('itera.test.wasm')), {})
      .exports as unknown as HookExports;
    const g = lcg(11);
    const shapes: [number, number][] = [
      [37, 67],
      [8, 12],
      [16, 96],
      [44, 5],
      [2000, 96],
    ];
    let matvecMaxDiff = 0;
    for (const [rows, cols] of shapes) {
      const W = Float32Array.from({ length: rows * cols }, g);
      const x0 = Float32Array.from({ length: cols }, g);
      const x1 = Float32Array.from({ length: cols }, g);
      const run = (ex: HookExports): Float32Array => {
        const put = (v: Float32Array): number => {
          const p = ex.alloc(v.byteLength);
          new Float32Array(ex.memory.buffer, p, v.length).set(v);
          return p;
        };
        const pw = put(W),
          p0 = put(x0),
          p1 = put(x1),
          py = ex.alloc(rows * 12);
        ex.test_matvec_f32(pw, p0, py, rows, cols);
        ex.test_matvec2_f32(pw, p0, p1, py + rows * 4, py + rows * 8, rows, cols);
        const y = new Float32Array(ex.memory.buffer, py, rows * 3).slice();
        for (const q of [pw, p0, p1, py]) ex.free(q);
        return y;
      };
      const a = run(hooks),
        b = run(simd);
      matvecMaxDiff = Math.max(matvecMaxDiff, ...a.map((v, i) => Math.abs(v - b[i]!)));
    }
    out.matvecMaxDiff = matvecMaxDiff;
    // exp, SiLU, softplus and GELU (their polynomials fused here) on [-20, 20]: the largest
    // difference from the SIMD build's, relative to max(1, |SIMD's value|)
    const n = 4096;
    const xs = Float32Array.from({ length: n }, (_, i) => -20 + (40 * i) / n);
    const elementwise = (ex: HookExports, which: number): Float32Array => {
      const px = ex.alloc(n * 4),
        py = ex.alloc(n * 4);
      new Float32Array(ex.memory.buffer, px, n).set(xs);
      ex.test_elementwise(which, px, py, n);
      const y = new Float32Array(ex.memory.buffer, py, n).slice();
      ex.free(px);
      ex.free(py);
      return y;
    };
    let elementwiseMaxDiff = 0;
    for (const which of [0, 1, 2, 3]) {
      const a = elementwise(hooks, which),
        b = elementwise(simd, which);
      for (let i = 0; i < n; i++)
        elementwiseMaxDiff = Math.max(elementwiseMaxDiff, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
    }
    out.elementwiseMaxDiff = elementwiseMaxDiff;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
