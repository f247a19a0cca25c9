// The selective-scan block's kernels (assembly/kernels/ssm.ts) against their plain scalar
// references, at every width: conv K 1-8, state N 1-32, odd and even inner widths.
//  - the scalar build runs the references: equal bit for bit;
//  - the SIMD build's straight-line paths for the shipped shapes (K = 4, N = 8) equal its general
//    loops bit for bit;
//  - the SIMD lanes sum in the references' order: with inputs where the activation is the identity
//    (SiLU(x) = x once 1 + e^-x rounds to 1; exp(0) = 1) they equal the references bit for bit,
//    and on general inputs within the measured error of exp4/silu4 (kernels.test.ts).
import t from 'tap';
import { hooksOf, lcg, type BuildName, type HookExports } from './helpers.js';

const DI = [1, 3, 4, 5, 7, 8, 13, 16, 33, 64, 130];

function put(ex: HookExports, values: ArrayLike<number>): number {
  const p = ex.alloc(Math.max(16, values.length * 4));
  new Float32Array(ex.memory.buffer, p, values.length).set(values);
  return p;
}
const get = (ex: HookExports, p: number, n: number) => Float32Array.from(new Float32Array(ex.memory.buffer, p, n));
const randoms = (rnd: () => number, n: number, scale = 1) => Float32Array.from({ length: n }, () => rnd() * scale);
const sameBits = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
const close = (a: Float32Array, b: Float32Array, tol: number) =>
  a.every((v, i) => Math.abs(v - b[i]!) <= tol * (1 + Math.abs(b[i]!)));

/** Runs the conv step in a mode on fresh copies of the inputs: [sv, window after]. */
function conv(
  ex: HookExports,
  K: number,
  di: number,
  ring: number,
  inp: { win: Float32Array; taps: Float32Array; bias: Float32Array; a: Float32Array },
  mode: number,
) {
  const win = put(ex, inp.win),
    taps = put(ex, inp.taps),
    bias = put(ex, inp.bias),
    a = put(ex, inp.a),
    sv = put(ex, new Float32Array(di));
  ex.test_conv_silu(win, ring, taps, bias, a, sv, di, K, mode);
  const out = [get(ex, sv, di), get(ex, win, Math.max(1, K - 1) * di)] as const;
  for (const p of [win, taps, bias, a, sv]) ex.free(p);
  return out;
}

for (const build of ['simd', 'scalar'] as BuildName[]) {
  t.test(`${build}: conv + SiLU, K 1-8, every inner width`, async (t) => {
    const ex = await hooksOf(build);
    const rnd = lcg(7);
    let checked = 0;
    for (let K = 1; K <= 8; K++) {
      for (const di of DI) {
        for (let ring = 0; ring < Math.max(1, K - 1); ring++) {
          const general = {
            win: randoms(rnd, Math.max(1, K - 1) * di, 2),
            taps: randoms(rnd, K * di),
            bias: randoms(rnd, di),
            a: randoms(rnd, di, 2),
          };
          // the same with a bias of 100: SiLU is then the identity in f32, so the sums show bare
          const linear = { ...general, bias: Float32Array.from(general.bias, (b) => 100 + b) };
          const [svRef, winRef] = conv(ex, K, di, ring, general, 2);
          const [svFast, winFast] = conv(ex, K, di, ring, general, 0);
          const [svGeneral] = conv(ex, K, di, ring, general, 1);
          const what = `K ${K}, di ${di}, ring ${ring}`;
          if (!sameBits(winFast, winRef)) t.fail(`${what}: the window after the step`);
          if (!sameBits(svFast, svGeneral)) t.fail(`${what}: the shipped-shape path equals the general loop`);
          if (build === 'scalar' ? !sameBits(svFast, svRef) : !close(svFast, svRef, 2e-6))
            t.fail(`${what}: output vs the reference`);
          if (!sameBits(conv(ex, K, di, ring, linear, 0)[0], conv(ex, K, di, ring, linear, 2)[0]))
            t.fail(`${what}: the sums, bit for bit`);
          checked++;
        }
      }
    }
    t.equal(checked, DI.length * (1 + 1 + 2 + 3 + 4 + 5 + 6 + 7), 'every K, width and ring position checked');
  });

  t.test(`${build}: scan step, N 1-32`, async (t) => {
    const ex = await hooksOf(build);
    const rnd = lcg(11);
    for (let N = 1; N <= 32; N++) {
      for (const delta of [0.003, 0.2, 1.7]) {
        const z0 = randoms(rnd, N, 3),
          aNeg = Float32Array.from(randoms(rnd, N), (v) => -Math.exp(2 * v)),
          bs = randoms(rnd, N);
        const run = (aN: Float32Array, useRef: number) => {
          const z = put(ex, z0),
            a = put(ex, aN),
            b = put(ex, bs);
          ex.test_scan_step(z, a, b, delta, N, useRef);
          const out = get(ex, z, N);
          for (const p of [z, a, b]) ex.free(p);
          return out;
        };
        const fast = run(aNeg, 0),
          ref = run(aNeg, 1);
        if (build === 'scalar' ? !sameBits(fast, ref) : !close(fast, ref, 2e-6))
          t.fail(`N ${N}, delta ${delta}: vs the reference`);
        // A = 0: exp(0) = 1 exactly, so z + delta * bs shows bare
        const zeros = new Float32Array(N);
        if (!sameBits(run(zeros, 0), run(zeros, 1))) t.fail(`N ${N}, delta ${delta}: the update, bit for bit`);
      }
    }
    t.pass('N 1-32, three step sizes');
  });

  t.test(`${build}: read-out gated by SiLU(g), N 1-32, every inner width`, async (t) => {
    const ex = await hooksOf(build);
    const rnd = lcg(13);
    let checked = 0;
    for (let N = 1; N <= 32; N++) {
      for (const n of DI) {
        const Ct = randoms(rnd, N * n),
          z = randoms(rnd, N, 2),
          D = randoms(rnd, n),
          s = randoms(rnd, n),
          g = randoms(rnd, n, 3);
        const run = (gv: Float32Array, mode: number) => {
          const ps = [put(ex, new Float32Array(n)), put(ex, Ct), put(ex, z), put(ex, D), put(ex, s), put(ex, gv)];
          ex.test_gate_y(ps[0]!, ps[1]!, ps[2]!, N, ps[3]!, ps[4]!, ps[5]!, n, mode);
          const out = get(ex, ps[0]!, n);
          for (const p of ps) ex.free(p);
          return out;
        };
        const fast = run(g, 0),
          general = run(g, 1),
          ref = run(g, 2);
        const what = `N ${N}, n ${n}`;
        if (!sameBits(fast, general)) t.fail(`${what}: the shipped-shape path equals the general loop`);
        if (build === 'scalar' ? !sameBits(fast, ref) : !close(fast, ref, 2e-6)) t.fail(`${what}: vs the reference`);
        // g = 100: SiLU(g) = 100 exactly, so the sums show bare
        const big = new Float32Array(n).fill(100);
        if (!sameBits(run(big, 0), run(big, 2))) t.fail(`${what}: the sums, bit for bit`);
        checked++;
      }
    }
    t.equal(checked, 32 * DI.length, 'every N and width checked');
  });
}
