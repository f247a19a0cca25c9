// Run by host/test/relaxed.test.ts under a given Node and V8 flags (not a test file itself):
// prints one JSON line saying what this engine makes of the relaxed build. The verdicts come from
// host/runtime/features.ts, the code every host uses; the facts they must agree with: the integer
// relaxed dot's own sum of fixed products (known: -4384; `dotWrong`), the relaxed test build's
// Q4_0 kernel on that dot against its integer SIMD kernel (`q4Differ`, outputs whose bits differ),
// and its f32 kernels against the SIMD test build's on pseudo-random data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { relaxedVerdict } from '../runtime/features.js';
import { resolveBuild } from '../node/index.js';
import { repoRoot } from './shared.js';
import { lcg, quantHookProduct, type HookExports } from './helpers.js';
import { GgmlType } from '../runtime/gguf.js';

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
    const hooks = new WebAssembly.Instance(new WebAssembly.Module(test), {}).exports as unknown as HookExports & {
      relaxed_selftest(): number;
    };
    // the self-test's checks one by one, beside the verdict: bit 32 the dot alone, 64 the Q4_0 kernel
    const mask = hooks.relaxed_selftest();
    out.dotWrong = (mask & 32) !== 0;
    out.q4Wrong = (mask & 64) !== 0;
    // the Q4_0 kernel on random weights and activations (every block's largest activation is
    // +-32767, so the split bytes take their extremes): mode 0 the relaxed dot kernel, mode 2
    // the integer SIMD kernel of the same build (the same f32 steps after the integer sums)
    const q = lcg(23);
    let q4Differ = 0,
      q4Outputs = 0;
    for (const [rows, cols, P] of [
      [4, 32, 1],
      [7, 64, 6],
      [256, 64, 1],
      [256, 64, 8],
      [2000, 64, 3],
      [12, 256, 2],
      [13, 96, 5],
    ] as const) {
      const nb = cols / 32;
      const blocks = new Uint8Array(rows * nb * 18);
      for (let i = 0; i < rows * nb; i++) {
        blocks[i * 18 + 1] = 0x3c; // scale 1.0 (f16)
        for (let j = 0; j < 16; j++) blocks[i * 18 + 2 + j] = Math.floor((q() + 1) * 128) & 255;
      }
      const x = Float32Array.from({ length: P * cols }, q);
      const c = { type: GgmlType.Q4_0, blocks, rows, cols, x, P };
      const a = quantHookProduct(hooks, c, 0),
        b = quantHookProduct(hooks, c, 2);
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) q4Differ++;
      q4Outputs += a.length;
    }
    out.q4Differ = q4Differ;
    out.q4Outputs = q4Outputs;
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
