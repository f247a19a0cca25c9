// Quantization: GGUF block layouts against hand-computed blocks, round-trip error bounds, each
// quantized SIMD kernel against its scalar reference, bad quantized input, and the quality of
// the quantized micro reference model against its FP32 logits on the golden inputs.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dequantizeQ4_0, dequantizeQ8_0, checkBlockScales, QK } from '../runtime/quant.js';
import { q4BlockScale, quantizeQ4_0, quantizeQ4_0MaxAbs, quantizeQ8_0 } from '../convert/quantize.js';
import { f16ToF32, f32ToF16 } from '../runtime/f16.js';
import { GgmlType, readGguf } from '../runtime/gguf.js';
import { writeGguf } from '../convert/gguf-write.js';
import { readModelFile, tensorAsF32 } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { IteraModel } from '../runtime/api.js';
import { IteraError } from '../runtime/types.js';
import { quantizeModel } from '../quant/quantize.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { hooksOf, lcg, quantHookProduct, randomWeights, TINY, tensorShapes, wasmBytes, maxAbsDiff } from './helpers.js';
import { needShared, requireShared } from './shared.js';
import { convertReference } from './reference-model.js';

t.test('Q8_0 block layout: f16 scale then 32 int8, hand-computed', async (t) => {
  const x = new Float32Array(32);
  for (let i = 0; i < 32; i++) x[i] = (i - 16) / 4; // -4 .. 3.75, max |x| = 4
  const b = quantizeQ8_0(x);
  t.equal(b.length, 34, 'one block is 34 bytes');
  const d = f16ToF32(f32ToF16(4 / 127));
  t.equal(new DataView(b.buffer).getUint16(0, true), f32ToF16(4 / 127), 'scale = max|x| / 127 as f16, little-endian');
  const q = new Int8Array(b.buffer, 2, 32);
  t.equal(q[0], -127, 'x = -4 is -127');
  t.equal(q[16], 0, 'x = 0 is 0');
  t.equal(q[17], Math.round(0.25 / d), 'x = 0.25 is round(0.25 / d)');
  t.equal(q[31], Math.round(3.75 / d));
});

t.test('Q4_0 block layout: f16 scale, byte j = value j (low nibble) | value j+16 (high nibble)', async (t) => {
  const x = new Float32Array(32);
  for (let i = 0; i < 32; i++) x[i] = i - 8; // -8 .. 23: the largest magnitude is +23
  const b = quantizeQ4_0MaxAbs(x);
  t.equal(b.length, 18, 'one block is 18 bytes');
  const d = f16ToF32(f32ToF16(23 / -8));
  t.equal(new DataView(b.buffer).getUint16(0, true), f32ToF16(23 / -8), 'scale = (signed max) / -8');
  const nib = (i: number) => Math.max(0, Math.min(15, Math.round(x[i] / d) + 8));
  t.equal(nib(31), 0, 'the largest value maps to nibble 0 (= -8 * d)');
  for (const j of [0, 5, 15]) t.equal(b[2 + j], nib(j) | (nib(j + 16) << 4), `byte ${j}`);
  // a hand-made block: d = 1, values 0..15 -> nibbles 8..23 clamp; decode them back
  const hand = new Uint8Array(18);
  new DataView(hand.buffer).setUint16(0, f32ToF16(0.5), true);
  for (let j = 0; j < 16; j++) hand[2 + j] = j | ((15 - j) << 4);
  const v = dequantizeQ4_0(hand, 32);
  t.same(Array.from(v.subarray(0, 4)), [-4, -3.5, -3, -2.5], 'low nibbles are values 0..15: 0.5 * (n - 8)');
  t.same(Array.from(v.subarray(16, 18)), [3.5, 3], 'high nibbles are values 16..31');
});

t.test('Q4_0 scale search: never worse than the plain scale, and better on the whole', async (t) => {
  const rnd = lcg(29);
  const nb = 2000;
  const x = new Float32Array(QK * nb);
  // rows of different shapes: uniform, heavy-tailed (a few large values), and constant blocks
  for (let i = 0; i < x.length; i++) {
    const u = rnd();
    const kind = Math.floor(i / QK) % 3;
    x[i] = kind === 0 ? u : kind === 1 ? u ** 5 * 8 : 0.25;
  }
  const plain = dequantizeQ4_0(quantizeQ4_0MaxAbs(x), x.length);
  const searched = dequantizeQ4_0(quantizeQ4_0(x), x.length);
  let worse = 0,
    better = 0,
    ePlain = 0,
    eSearch = 0;
  for (let b = 0; b < nb; b++) {
    let ep = 0,
      es = 0;
    for (let j = 0; j < QK; j++) {
      const i = b * QK + j;
      ep += (plain[i]! - x[i]!) ** 2;
      es += (searched[i]! - x[i]!) ** 2;
    }
    if (es > ep) worse++;
    if (es < ep) better++;
    ePlain += ep;
    eSearch += es;
  }
  t.equal(worse, 0, 'no block has a larger squared error than with d = m / -8');
  t.ok(better > nb / 3, `most non-constant blocks improve (${better} of ${nb})`);
  t.ok(eSearch < ePlain * 0.9, `total squared error ${(eSearch / ePlain).toFixed(3)}x the plain one's`);
  const zeros = new Float32Array(QK);
  t.equal(f16ToF32(q4BlockScale(zeros)), 0, 'an all-zero block keeps scale 0');
  t.same(quantizeQ4_0(zeros), quantizeQ4_0MaxAbs(zeros), 'and is stored as the plain quantizer stores it');
  const again = quantizeQ4_0(x);
  t.same(again, quantizeQ4_0(x), 'deterministic');
});

t.test('round trip error bounds (stated per type, like ggml)', async (t) => {
  const rnd = lcg(11);
  const x = new Float32Array(32 * 256);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * (1 + (i % 7));
  const q8 = dequantizeQ8_0(quantizeQ8_0(x), x.length);
  const q4 = dequantizeQ4_0(quantizeQ4_0(x), x.length);
  let w8 = 0,
    w4 = 0;
  for (let b = 0; b < x.length / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    for (let j = 0; j < QK; j++) {
      const i = b * QK + j;
      // Q8_0: half a step (amax/127/2) plus the f16 rounding of the scale (2^-11 relative, times 127 steps)
      w8 = Math.max(w8, Math.abs(q8[i] - x[i]) / (amax / 254 + amax * 2 ** -11));
      // Q4_0: one step (amax/8): the side opposite the largest value clamps at +7 steps
      w4 = Math.max(w4, Math.abs(q4[i] - x[i]) / (amax / 8 + amax * 2 ** -10));
    }
  }
  t.ok(w8 <= 1, `Q8_0: every value within half a step (worst ${w8.toFixed(3)} of the bound)`);
  t.ok(w4 <= 1, `Q4_0: every value within one step (worst ${w4.toFixed(3)} of the bound)`);
  const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - x[i]) ** 2, 0) / x.length);
  const xr = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  t.ok(rms(q8) / xr < 0.01, `Q8_0 relative RMS error ${(rms(q8) / xr).toExponential(2)} < 1%`);
  t.ok(rms(q4) / xr < 0.12, `Q4_0 relative RMS error ${(rms(q4) / xr).toExponential(2)} < 12%`);
});

/** The bytes a hook takes for weights w stored as type (I8: int8 of w * 60, zero point zp), and
 *  the values they stand for. */
function quantizedCase(type: number, w: Float32Array, zp: number): { blocks: Uint8Array; deq: Float32Array } {
  if (type === GgmlType.Q8_0) {
    const blocks = quantizeQ8_0(w);
    return { blocks, deq: dequantizeQ8_0(blocks, w.length) };
  }
  if (type === GgmlType.Q4_0) {
    const blocks = quantizeQ4_0(w);
    return { blocks, deq: dequantizeQ4_0(blocks, w.length) };
  }
  const q = Int8Array.from(w, (v) => Math.max(-128, Math.min(127, Math.round(v * 60))));
  return { blocks: new Uint8Array(q.buffer), deq: Float32Array.from(q, (v) => v - zp) };
}

t.test(
  'quantized kernels: SIMD vs scalar reference, and both vs the dequantized f32 product, one position and several at once',
  async (t) => {
    // the SIMD build's reference kernel, per case: the scalar build's must give the same bits (the
    // SIMD activation quantizer rounds exactly as the scalar one does). P positions at once: the
    // kernel runs four at a time and the rest one by one (P = 6: both), every position's result the
    // same bits as the reference one position at a time
    const simdRef = new Map<string, Float32Array>();
    for (const build of ['simd', 'scalar'] as const) {
      const rnd = lcg(5);
      const ex = await hooksOf(build);
      for (const [type, name] of [
        [GgmlType.Q8_0, 'Q8_0'],
        [GgmlType.Q4_0, 'Q4_0'],
        [GgmlType.I8, 'I8'],
        [GgmlType.I8, 'I8 zp'],
      ] as const) {
        for (const [rows, cols, P] of [
          [4, 32, 1],
          [7, 64, 6],
          [256, 64, 1],
          [256, 64, 8],
          [2000, 64, 5],
          [128, 128, 4],
          [64, 32, 3],
          [10, 96, 6],
        ]) {
          const w = new Float32Array(rows * cols).map(() => rnd());
          const x = new Float32Array(P * cols).map(() => rnd() * 2);
          const zp = name === 'I8 zp' ? 3 : 0;
          const { blocks, deq } = quantizedCase(type, w, zp);
          const c = { type, blocks, rows, cols, x, P, zp };
          const fast = quantHookProduct(ex, c, 0),
            ref = quantHookProduct(ex, c, 1);
          const key = `${name} ${rows}x${cols} P=${P}`;
          if (build === 'simd') simdRef.set(key, ref);
          else {
            const other = simdRef.get(key)!;
            const n = ref.reduce((k, v, i) => k + (Object.is(v, other[i]) ? 0 : 1), 0);
            t.equal(n, 0, `${key}: the scalar build's activation quantization and kernel give the SIMD build's bits`);
          }
          // exact f32 product of the dequantized weights
          let worstTrue = 0,
            differ = 0;
          for (let p = 0; p < P; p++) {
            for (let r = 0; r < rows; r++) {
              let exact = 0,
                mag = 0;
              for (let c = 0; c < cols; c++) {
                exact += deq[r * cols + c] * x[p * cols + c];
                mag += Math.abs(deq[r * cols + c] * x[p * cols + c]);
              }
              // kernel vs reference: the same exact integer block sums, scaled and added in f32 by the
              // same operations in the same order, so the same bits
              const i = p * rows + r;
              if (Object.is(fast[i], ref[i]) === false) differ++;
              // vs the exact product: the 16-bit activation rounding (half a step of max|x|/32767 per value) dominates
              worstTrue = Math.max(worstTrue, Math.abs(ref[i] - exact) / (mag / 32767 + cols * 1.2e-7 * mag + 1e-12));
            }
          }
          t.equal(
            differ,
            0,
            `${build} ${key}: kernel equals the reference bit for bit (${differ} of ${P * rows} outputs differ)`,
          );
          t.ok(
            worstTrue <= 1,
            `${build} ${key}: within the activation-rounding bound of the exact product (${worstTrue.toFixed(3)})`,
          );
        }
      }
    }
  },
);

t.test("embedding rows: the laid-out weights read back as the file's dequantized values, bit for bit", async (t) => {
  for (const build of ['simd', 'scalar'] as const) {
    const rnd = lcg(9);
    const ex = await hooksOf(build);
    for (const [type, name] of [
      [GgmlType.Q8_0, 'Q8_0'],
      [GgmlType.Q4_0, 'Q4_0'],
      [GgmlType.I8, 'I8 zp'],
    ] as const) {
      for (const [rows, cols] of [
        [8, 64],
        [7, 32],
        [13, 96],
      ]) {
        const w = new Float32Array(rows * cols).map(() => rnd());
        const zp = name === 'I8 zp' ? 3 : 0;
        const { blocks, deq } = quantizedCase(type, w, zp);
        const run = (useRef: number) => {
          const W = ex.alloc(blocks.length),
            O = ex.alloc(rows * cols * 4);
          new Uint8Array(ex.memory.buffer, W, blocks.length).set(blocks);
          ex.test_mat_rows(type, W, rows, cols, O, useRef, zp);
          const o = new Float32Array(ex.memory.buffer, O, rows * cols).slice();
          ex.free(W);
          ex.free(O);
          return o;
        };
        const fast = run(0),
          ref = run(1);
        const differ = (a: Float32Array) => a.reduce((n, v, i) => n + (Object.is(v, deq[i]) ? 0 : 1), 0);
        t.equal(differ(ref), 0, `${build} ${name} ${rows}x${cols}: the reference reads every value back`);
        t.equal(differ(fast), 0, `${build} ${name} ${rows}x${cols}: matRow (grouped rows read lane by lane) too`);
      }
    }
  }
});

t.test('bad quantized input: clear errors', async (t) => {
  const w = randomWeights(TINY, 2);
  const tok = tokenizerFromOriginalJson({
    token2id: { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3, a: 4 },
    id2token: { 0: '<PAD>', 1: '<UNK>', 2: '<BOS>', 3: '<EOS>', 4: 'a' },
    vocab_size: 5,
    level: 'char',
  });
  const shapes = tensorShapes(TINY);
  const tensors = [...w].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  // TINY's rows are 8 or 16 values: not whole 32-value blocks
  t.throws(
    () =>
      writeModelFile({
        config: TINY,
        tensors: tensors.map((x) => (x.name === 'blk.0.ssm_in.weight' ? { ...x, typeName: 'Q4_0' as const } : x)),
        tokenizer: tok,
        name: 't',
      }),
    { code: 'QUANT_BAD_LENGTH', message: /blk\.0\.ssm_in\.weight.*not a whole number of 32-value blocks/ },
  );
  // a model whose rows are whole blocks
  const C = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };
  const w2 = randomWeights(C, 3);
  const sh2 = tensorShapes(C);
  const good = writeModelFile({
    config: C,
    tensors: [...w2].map(([name, data]) => ({ name, shape: sh2.get(name)!, data })),
    tokenizer: tok,
    name: 't',
    type: 'Q8_0',
  });
  const f = readModelFile(good);
  t.equal(f.tensors.get('blk.0.ssm_in.weight')!.type, GgmlType.Q8_0, 'the matrices are Q8_0');
  t.equal(f.tensors.get('blk.0.ssm_norm.weight')!.type, GgmlType.F32, 'norms stay F32');
  // ssm_c [di, N]: rows of N values, but di = 64 is whole blocks: stored transposed as Q8_0
  const fc = f.tensors.get('blk.0.ssm_c')!;
  t.same(
    [fc.type, fc.transposed, fc.shape],
    [GgmlType.Q8_0, true, [64, 4]],
    'ssm_c is Q8_0, stored transposed (ssm_c_t [N, di])',
  );
  t.ok(
    readGguf(good).tensors.some((x) => x.name === 'blk.0.ssm_c_t' && x.shape.join() === '4,64'),
    'the file names it ssm_c_t, shape [N, di]',
  );
  const cBack = tensorAsF32(fc),
    cOrig = w2.get('blk.0.ssm_c')!;
  let cWorst = 0;
  for (let n = 0; n < 4; n++) {
    let amax = 0;
    for (let c = 0; c < 64; c++) amax = Math.max(amax, Math.abs(cOrig[c * 4 + n]!));
    for (let c = 0; c < 64; c++)
      cWorst = Math.max(cWorst, Math.abs(cBack[c * 4 + n]! - cOrig[c * 4 + n]!) / (amax / 254 + amax * 2 ** -11));
  }
  t.ok(
    cWorst <= 1,
    `ssm_c read back in [di, N] order within Q8_0's half step (worst ${cWorst.toFixed(3)} of the bound)`,
  );
  // di = 16 (TINY): neither way whole blocks: F16
  const tinyQ = readModelFile(writeModelFile({ config: TINY, tensors, tokenizer: tok, name: 't', type: 'Q8_0' }));
  t.equal(tinyQ.tensors.get('blk.0.ssm_c')!.type, GgmlType.F16, 'ssm_c with di not whole blocks is F16');
  // corrupt one block scale: NaN, then zero with non-zero values
  const g = readGguf(good);
  const ti = g.tensors.find((x) => x.name === 'blk.0.ssm_in.weight')!;
  const off = ti.data.byteOffset;
  for (const [bits, re] of [
    [0x7e00, /non-finite scale/],
    [0x0000, /zero scale but non-zero values/],
  ] as const) {
    const bad = good.slice();
    new DataView(bad.buffer).setUint16(off + 34 * 3, bits, true);
    t.throws(
      () => readModelFile(bad),
      { code: 'QUANT_BAD_SCALE', message: re },
      `scale 0x${bits.toString(16)} refused`,
    );
  }
  // an all-zero block with a zero scale is what a quantizer writes for zeros: accepted
  const zeros = new Uint8Array(34);
  t.doesNotThrow(() => checkBlockScales('z', GgmlType.Q8_0, zeros));
  // a quantized tensor whose byte length does not match its shape and type: the container refuses it
  const meta = g.metadata;
  const tensorsOut = g.tensors.map((x) => ({
    name: x.name,
    type: x.type,
    shape: x.shape,
    data: x.name === 'blk.0.ssm_in.weight' ? x.data.subarray(0, x.data.length - 34) : x.data,
  }));
  t.throws(
    () => writeGguf({ metadata: meta, tensors: tensorsOut }),
    /blk\.0\.ssm_in\.weight/,
    'writer: byte length vs shape and type',
  );
  // a quantized type on a tensor that must stay float
  const norm = quantizeQ8_0(new Float32Array(32).fill(1)); // ssm_norm.weight of this model: 32 values, one block
  const tensorsBad = g.tensors.map((x) =>
    x.name === 'blk.0.ssm_norm.weight'
      ? { name: x.name, type: GgmlType.Q8_0, shape: x.shape, data: norm }
      : { name: x.name, type: x.type, shape: x.shape, data: x.data },
  );
  t.throws(
    () => readModelFile(writeGguf({ metadata: meta, tensors: tensorsBad })),
    { code: 'MODEL_UNSUPPORTED_TYPE', message: /blk\.0\.ssm_norm\.weight.*must be F32 or F16/ },
    'a norm may not be quantized',
  );
});

t.test(
  'quantized micro reference model vs its FP32 logits on the golden inputs',
  needShared('reference/golden/micro/reference.json'),
  async (t) => {
    const ref = JSON.parse(readFileSync(requireShared('reference/golden/micro/reference.json'), 'utf8')) as {
      logits_cases: { name: string; input_ids: number[] }[];
    };
    const f32 = convertReference();
    const base = await IteraModel.fromBytes(f32, wasmBytes('simd'));
    const V = base.config.vocabSize;
    const goals: Record<string, number | null> = { F16: 0.999, Q8_0: 0.99, Q4_0: null };
    const sizes: Record<string, number> = {};
    for (const type of ['F16', 'Q8_0', 'Q4_0'] as const) {
      const q = await quantizeModel(f32, type);
      sizes[type] = q.bytes.byteLength / f32.byteLength;
      for (const build of ['simd', 'scalar'] as const) {
        const m = await IteraModel.fromBytes(q.bytes, wasmBytes(build));
        let agree = 0,
          n = 0,
          maxd = 0;
        for (const c of ref.logits_cases) {
          const a = base.logits(c.input_ids),
            b = m.logits(c.input_ids);
          maxd = Math.max(maxd, maxAbsDiff(a, b));
          for (let p = 0; p < c.input_ids.length; p++) {
            let ia = 0,
              ib = 0;
            for (let v = 1; v < V; v++) {
              if (a[p * V + v] > a[p * V + ia]) ia = v;
              if (b[p * V + v] > b[p * V + ib]) ib = v;
            }
            if (ia === ib) agree++;
            n++;
          }
        }
        const goal = goals[type];
        const msg = `${type} (${build}): top-1 agreement ${((100 * agree) / n).toFixed(2)}% over ${n} positions, max |dlogit| ${maxd.toFixed(4)}, file ${sizes[type].toFixed(3)}x of F32`;
        if (goal === null) t.pass(`${msg} (reported, no bound)`);
        else t.ok(agree / n >= goal, `${msg} (goal >= ${goal * 100}%)`);
        m.dispose();
      }
    }
    base.dispose();
  },
);

/** A random model whose rows are whole blocks, so that every matrix (and ssm_c, transposed) is
 *  quantized, written as F32 or in `type`. */
function blockModel(seed: number, type?: 'Q8_0' | 'Q4_0'): Uint8Array {
  const C = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };
  const sh = tensorShapes(C);
  const w = randomWeights(C, seed);
  const tok = tokenizerFromOriginalJson({
    token2id: { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3, a: 4 },
    id2token: { 0: '<PAD>', 1: '<UNK>', 2: '<BOS>', 3: '<EOS>', 4: 'a' },
    vocab_size: 5,
    level: 'char',
  });
  return writeModelFile({
    config: C,
    tensors: [...w].map(([name, data]) => ({ name, shape: sh.get(name)!, data })),
    tokenizer: tok,
    name: 'blocks',
    ...(type ? { type } : {}),
  });
}

t.test('--small f16: norms, biases, A_log, D and conv taps stored as F16 beside Q4_0 matrices', async (t) => {
  const f32 = blockModel(5);
  const plain = await quantizeModel(f32, 'Q4_0');
  const half = await quantizeModel(f32, 'Q4_0', { small: 'F16' });
  const types = (b: Uint8Array) => new Map(readGguf(b).tensors.map((x) => [x.name, x.type]));
  const tp = types(plain.bytes),
    th = types(half.bytes);
  let halved = 0;
  for (const [name, type] of tp) {
    if (type === GgmlType.F32) {
      t.equal(th.get(name), GgmlType.F16, `${name}: F32 -> F16`);
      halved++;
    } else t.equal(th.get(name), type, `${name}: unchanged`);
  }
  t.ok(halved > 10, `${halved} small tensors halved`);
  t.ok(half.bytes.byteLength < plain.bytes.byteLength, `${half.bytes.byteLength} < ${plain.bytes.byteLength} bytes`);
  const ids = [4, 1, 2, 3, 0, 4, 4, 1];
  for (const build of ['simd', 'scalar'] as const) {
    const a = await IteraModel.fromBytes(plain.bytes, wasmBytes(build));
    const b = await IteraModel.fromBytes(half.bytes, wasmBytes(build));
    const d = maxAbsDiff(a.logits(ids), b.logits(ids));
    t.ok(d < 0.05, `${build}: max |dlogit| ${d.toExponential(2)} against F32 small tensors (f16 rounding only)`);
    t.ok(d > 0, `${build}: the F16 values are really used`);
    a.dispose();
    b.dispose();
  }
});

t.test('mixed within a size budget: the file fits, and no matrix left at Q4_0 would still have fit', async (t) => {
  const f32 = blockModel(11);
  const load = (b: Uint8Array) => IteraModel.fromBytes(b, wasmBytes('simd'));
  const calibration = [4, 1, 2, 3, 0, 4, 4, 1, 2, 4, 3, 1];
  const all4 = (await quantizeModel(f32, 'Q4_0')).bytes.byteLength;
  const all8 = (await quantizeModel(f32, 'Q8_0')).bytes.byteLength;
  const types = (b: Uint8Array) => new Map(readGguf(b).tensors.map((x) => [x.name, x.type]));
  const blocks = new Map(readModelFile(f32).tensors);
  const added = (name: string) => (blocks.get(name)!.data.byteLength / 4 / QK) * 16;
  for (const [label, budget] of [
    ['all Q4_0 exactly', all4],
    ['a third of the way', Math.round(all4 + (all8 - all4) / 3)],
    ['two thirds', Math.round(all4 + ((all8 - all4) * 2) / 3)],
    ['all Q8_0', all8],
  ] as const) {
    const r = await quantizeModel(f32, 'mixed', { load, calibration, maxBytes: budget });
    const size = r.bytes.byteLength;
    t.ok(size <= budget, `${label}: ${size} <= ${budget} bytes`);
    const ty = types(r.bytes);
    const sensed = r.choices.filter((c) => c.sensitivity !== undefined);
    const left = sensed.filter((c) => ty.get(c.name) === GgmlType.Q4_0);
    const raised = sensed.filter((c) => ty.get(c.name) === GgmlType.Q8_0);
    t.equal(left.length + raised.length, sensed.length, `${label}: every measured matrix is Q4_0 or Q8_0`);
    for (const c of left) t.ok(size + added(c.name) > budget, `${label}: ${c.name} left at Q4_0 would not fit`);
    if (budget === all4) t.equal(raised.length, 0, 'at the all-Q4_0 size nothing is raised');
    if (budget === all8) t.equal(left.length, 0, 'at the all-Q8_0 size everything is raised');
    t.match(r.notes.join(' '), /mixed within \d+ bytes/);
    // the model loads and runs
    const m = await load(r.bytes);
    t.equal(m.logits([4, 1]).length, 2 * m.config.vocabSize);
    m.dispose();
  }
  await t.rejects(quantizeModel(f32, 'mixed', { load, calibration, maxBytes: all4 - 1 }), {
    code: 'QUANT_BUDGET',
    message: /even with every matrix at Q4_0/,
  });
  await t.rejects(quantizeModel(f32, 'Q4_0', { maxBytes: all8 }), { code: 'QUANT_MIXED' });
});

t.test(
  'corrupt quantized files (Q8_0, Q4_0, ssm_c_t): refused with an IteraError, or loaded and run without a trap',
  async (t) => {
    const rnd = lcg(21);
    for (const type of ['Q8_0', 'Q4_0'] as const) {
      const good = blockModel(9, type);
      t.ok(
        readGguf(good).tensors.some((x) => x.name === 'blk.1.ssm_c_t'),
        `${type}: the file has ssm_c_t`,
      );
      let refused = 0,
        ran = 0;
      const bad: string[] = [];
      const header = readGguf(good).dataOffset;
      // every header byte once, then random bytes of the data (scales and quants)
      const positions = [
        ...Array.from({ length: header }, (_, i) => i),
        ...Array.from({ length: 400 }, () => header + Math.floor(rnd() * (good.length - header))),
      ];
      for (const pos of positions) {
        const b = good.slice();
        b[pos]! ^= 1 << Math.floor(rnd() * 8);
        let m: IteraModel | null = null;
        try {
          m = await IteraModel.fromBytes(b, wasmBytes('simd'));
        } catch (e) {
          if (e instanceof IteraError) refused++;
          else bad.push(`flip at ${pos}: ${String(e)}`);
          continue;
        }
        try {
          const lg = m.logits([4, 1, 2, 3, 0, 4, 4, 1]);
          if (lg.length !== 8 * TINY.vocabSize) bad.push(`flip at ${pos}: ${lg.length} logits`);
          ran++;
        } catch (e) {
          if (!(e instanceof IteraError)) bad.push(`flip at ${pos}: ran into ${String(e)}`);
        } finally {
          m.dispose();
        }
      }
      t.same(
        bad,
        [],
        `${type}: ${positions.length} flipped files, ${refused} refused with an IteraError, ${ran} loaded and ran; no other outcome`,
      );
      t.ok(refused > 0 && ran > 0, `${type}: both outcomes seen`);
    }
  },
);
