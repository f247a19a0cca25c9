// Each SIMD kernel against its plain scalar reference, inside the same module build.
import t from 'tap';
import { hooksOf, lcg, wasmBytes } from './helpers.js';

t.test('f32 matvec: SIMD vs scalar reference, every shape class (tails, 4-row blocks, odd rows)', async (t) => {
  const ex = await hooksOf('simd');
  t.equal(ex.has_simd(), 1, 'the release build uses SIMD');
  const rnd = lcg(7);
  const shapes: [number, number][] = [
    [1, 1],
    [3, 5],
    [4, 4],
    [4, 8],
    [5, 9],
    [7, 13],
    [8, 64],
    [256, 64],
    [128, 128],
    [64, 128],
    [2000, 64],
    [13, 31],
    [8, 128],
    [128, 8],
    [4, 2],
  ];
  for (const [rows, cols] of shapes) {
    const W = ex.alloc(rows * cols * 4),
      x = ex.alloc(cols * 4),
      y1 = ex.alloc(rows * 4),
      y2 = ex.alloc(rows * 4);
    const mem = () => new Float32Array(ex.memory.buffer);
    for (let i = 0; i < rows * cols; i++) mem()[W / 4 + i] = rnd();
    for (let i = 0; i < cols; i++) mem()[x / 4 + i] = rnd() * 3;
    ex.test_matvec_f32(W, x, y1, rows, cols);
    ex.test_matvec_f32_ref(W, x, y2, rows, cols);
    let worst = 0;
    for (let r = 0; r < rows; r++) {
      // bound: a reordered f32 sum of `cols` products of magnitude <= 3 differs by at most ~cols * eps * sum|terms|
      let absSum = 0;
      for (let c = 0; c < cols; c++) absSum += Math.abs(mem()[W / 4 + r * cols + c] * mem()[x / 4 + c]);
      const bound = cols * 1.2e-7 * absSum + 1e-30;
      const d = Math.abs(mem()[y1 / 4 + r] - mem()[y2 / 4 + r]);
      worst = Math.max(worst, d / bound);
    }
    t.ok(
      worst <= 1,
      `${rows}x${cols}: |simd - ref| within the reordering bound (worst ${worst.toFixed(3)} of the bound)`,
    );
    // two positions at once (a prompt's path): each the same bits as one position alone
    const x2 = ex.alloc(cols * 4),
      z1 = ex.alloc(rows * 4),
      z2 = ex.alloc(rows * 4),
      y3 = ex.alloc(rows * 4);
    for (let i = 0; i < cols; i++) mem()[x2 / 4 + i] = rnd() * 3;
    ex.test_matvec_f32(W, x2, y3, rows, cols);
    ex.test_matvec2_f32(W, x, x2, z1, z2, rows, cols);
    const same = (a: number, b: number) =>
      new Float32Array(ex.memory.buffer, a, rows).every((v, i) => Object.is(v, mem()[b / 4 + i]));
    t.ok(same(z1, y1) && same(z2, y3), `${rows}x${cols}: two positions at once give each one's bits`);
    for (const p of [W, x, y1, y2, x2, z1, z2, y3]) ex.free(p);
  }
});

t.test('f32 matvec: the scalar build runs the reference exactly', async (t) => {
  const ex = await hooksOf('scalar');
  t.equal(ex.has_simd(), 0, 'the fallback build has no SIMD');
  const rnd = lcg(3);
  const rows = 37,
    cols = 29;
  const W = ex.alloc(rows * cols * 4),
    x = ex.alloc(cols * 4),
    y1 = ex.alloc(rows * 4),
    y2 = ex.alloc(rows * 4);
  const m = new Float32Array(ex.memory.buffer);
  for (let i = 0; i < rows * cols; i++) m[W / 4 + i] = rnd();
  for (let i = 0; i < cols; i++) m[x / 4 + i] = rnd();
  ex.test_matvec_f32(W, x, y1, rows, cols);
  ex.test_matvec_f32_ref(W, x, y2, rows, cols);
  const a = new Float32Array(ex.memory.buffer, y1, rows),
    b = new Float32Array(ex.memory.buffer, y2, rows);
  t.same(Array.from(a), Array.from(b));
});

t.test('erf: within 1.5e-7 of a high-precision series', async (t) => {
  const ex = await hooksOf('simd');
  // reference: Maclaurin series for |x| < 3 (converges; summed in f64 with enough terms), 1 beyond
  const erfRef = (x: number): number => {
    if (Math.abs(x) >= 6) return Math.sign(x);
    let term = x,
      sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  let worst = 0;
  for (let x = -4; x <= 4; x += 0.01) worst = Math.max(worst, Math.abs(ex.test_erf(x) - erfRef(x)));
  t.ok(worst < 1.5e-7, `max |erf - ref| = ${worst.toExponential(2)}`);
  t.ok(Math.abs(ex.test_erf(0)) < 1.5e-7, 'erf(0) within the bound of 0');
  for (const x of [0.1, 0.5, 1.3, 2.7]) t.equal(ex.test_erf(-x), -ex.test_erf(x), `erf is odd at ${x}`);
  t.equal(ex.test_erf(10), 1);
  t.equal(ex.test_erf(-10), -1);
});

t.test('mean of softplus (delta): the SIMD sum-of-logs-as-log-of-product vs the scalar sum', async (t) => {
  const ex = await hooksOf('simd');
  const rnd = lcg(11);
  // 128 is the micro model's inner width; 512 and 1024 take the product past its 64-step refold
  for (const n of [4, 128, 512, 1024]) {
    for (const spread of [1, 8, 30]) {
      const x = ex.alloc(n * 4),
        b = ex.alloc(n * 4);
      const xs = new Float32Array(ex.memory.buffer, x, n),
        bs = new Float32Array(ex.memory.buffer, b, n);
      for (let i = 0; i < n; i++) {
        xs[i] = (rnd() * 2 - 1) * spread;
        bs[i] = (rnd() * 2 - 1) * 0.5;
      }
      // exact in f64, PyTorch's threshold included
      let exact = 0;
      for (let i = 0; i < n; i++) {
        const v = Math.fround(xs[i] + bs[i]);
        exact += v > 20 ? v : Math.log1p(Math.exp(v));
      }
      exact /= n;
      const fast = ex.test_softplus_mean(x, b, n, 0),
        ref = ex.test_softplus_mean(x, b, n, 1);
      // both within a few f32 rounding steps of the exact mean (relative)
      t.ok(
        Math.abs(fast - exact) <= 2e-6 * exact,
        `n ${n}, |x| <= ${spread}: SIMD ${fast} vs exact ${exact.toPrecision(9)} (rel ${(Math.abs(fast - exact) / exact).toExponential(2)})`,
      );
      t.ok(
        Math.abs(ref - exact) <= 2e-6 * exact,
        `n ${n}, |x| <= ${spread}: scalar ${ref} vs exact (rel ${(Math.abs(ref - exact) / exact).toExponential(2)})`,
      );
      ex.free(x);
      ex.free(b);
    }
  }
});

t.test('exp, SiLU, softplus, GELU: f32x4 versions vs the scalar ones', async (t) => {
  const ex = await hooksOf('simd');
  const n = 4096;
  const x = ex.alloc(n * 4),
    a = ex.alloc(n * 4),
    b = ex.alloc(n * 4);
  const xs = new Float32Array(ex.memory.buffer, x, n);
  for (let i = 0; i < n; i++) xs[i] = -40 + (80 * i) / (n - 1); // -40 .. 40, through 0 and the softplus threshold 20
  const names = ['exp', 'silu', 'softplus', 'gelu'];
  for (let which = 0; which < 4; which++) {
    ex.test_elementwise(which, x, a, n);
    ex.test_elementwise_ref(which, x, b, n);
    const va = new Float32Array(ex.memory.buffer, a, n),
      vb = new Float32Array(ex.memory.buffer, b, n);
    let worstRel = 0,
      worstAbs = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(va[i] - vb[i]);
      worstAbs = Math.max(worstAbs, d);
      if (Math.abs(vb[i]) > 1e-30) worstRel = Math.max(worstRel, d / Math.abs(vb[i]));
    }
    // exp: relative error of a degree-6 polynomial after range reduction (a few ulp);
    // SiLU, softplus and GELU: absolute error dominated by rounding near 1 + tiny
    if (which === 0) t.ok(worstRel < 1e-6, `${names[which]}: max relative error ${worstRel.toExponential(2)}`);
    else t.ok(worstAbs < 4e-6 * 40, `${names[which]}: max absolute error ${worstAbs.toExponential(2)} over |x| <= 40`);
  }
  // NaN stays NaN in every lane version
  xs[0] = NaN;
  xs[1] = NaN;
  xs[2] = NaN;
  xs[3] = NaN;
  for (let which = 1; which < 4; which++) {
    ex.test_elementwise(which, x, a, 4);
    const va = new Float32Array(ex.memory.buffer, a, 4);
    t.ok(
      Array.from(va).every((v) => Number.isNaN(v)),
      `${names[which]}(NaN) is NaN`,
    );
  }
});

t.test('the release builds carry no test hooks; the test builds carry them', async (t) => {
  for (const build of ['simd', 'scalar'] as const) {
    const release = WebAssembly.Module.exports(new WebAssembly.Module(wasmBytes(build) as Uint8Array<ArrayBuffer>)).map(
      (e) => e.name,
    );
    t.same(
      release.filter((n) => n.startsWith('test_')),
      [],
      `${build}: no test_* export`,
    );
    t.ok(release.includes('generate_next'), `${build}: the runtime's exports are there`);
    const hooks = await hooksOf(build);
    t.equal(typeof hooks.test_matvec_quant, 'function', `${build} test build: the hooks are there`);
  }
});
