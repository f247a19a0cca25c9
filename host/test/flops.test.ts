// The exact FLOPs count, checked by hand on the micro configuration (docs/bench.md states the
// convention), and the research report's formula (57,344 for micro, as the Phase 4 report says).
import t from 'tap';
import { flopsPerToken, layerNormFlops, prefillMatrixMacs, researchFormulaFlops } from '../bench/flops.js';
import type { IteraConfig } from '../runtime/types.js';

const micro: IteraConfig = {
  vocabSize: 2000,
  hiddenSize: 64,
  numLayers: 3,
  ssmStateSize: 8,
  ssmConvKernel: 4,
  ssmInnerSize: 128,
  numExperts: 4,
  expertSize: 32,
  topK: 2,
  moeLayers: [1],
  maxSeqLength: 128,
  layerNormEps: 1e-5,
};

t.test('micro: every component by hand', async (t) => {
  const f = flopsPerToken(micro);
  const b = f.breakdown;
  // d=64 di=128 N=8 K=4 E=4 f=32 k=2 V=2000 L=3, one MoE layer, two FFN layers
  t.equal(layerNormFlops(64), 452, 'LayerNorm(64) = 7*64 + 4');
  t.equal(b.embedding, 64, 'token + position add');
  t.equal(b.layerNorm, 7 * 452, '2 per layer + the output norm = 7 LayerNorms');
  t.equal(b.inProj, 3 * 32768, 'in_proj 256x64 MACs x2 per layer');
  t.equal(b.conv, 3 * 1152, 'conv: 128 channels x 4 taps x2 + 128 bias');
  t.equal(b.convSilu, 3 * 512, 'SiLU over 128: 4 each');
  t.equal(b.deltaProj, 3 * 32896, 'delta_proj 128x128 x2 + 128 bias');
  t.equal(b.softplusMean, 3 * 513, 'softplus 3*128 + sum 128 + 1 divide');
  t.equal(b.scan, 3 * 2088, 'exp(dA) 16 + B.s 2048 + delta* 8 + dA*z+u 16');
  t.equal(b.output, 3 * 2304, 'C.z 2048 + D*s 256');
  t.equal(b.gating, 3 * 640, 'SiLU(g) 512 + product 128');
  t.equal(b.outProj, 3 * 16384, 'out_proj 64x128 x2');
  t.equal(b.residual, 3 * 128, 'two residual adds of 64');
  t.equal(b.router, 512, 'router 4x64 x2');
  t.equal(b.gateSoftmax, 7, 'softmax over 2: 2 sub, 2 exp, 1 add, 2 div');
  t.equal(b.experts, 2 * 8480, 'two experts: 4096 + GELU 160 + 4096 + gate MAC 128');
  t.equal(b.ffn, 2 * 8352, 'two FFN layers: 4096 + 160 + 4096');
  t.equal(b.lmHead, 256000, 'lm_head 2000x64 x2');
  t.equal(f.total, 561566, 'total');
  t.equal(f.withoutLmHead, 561566 - 256000, 'without the head');
  // MACs: in 98304 + conv 3072 + dt 98304 + B 6144 + C 6144 + out 49152 + router 512
  //       + experts 2*(4096+4096+128) + ffn 2*8192 + head 256000
  t.equal(f.macFlops, 98304 + 3072 + 98304 + 6144 + 6144 + 49152 + 512 + 16640 + 16384 + 256000, 'multiply-add part');
  t.equal(f.elementwise, f.total - f.macFlops, 'the rest');
  t.match(f.convention, /1 multiply-add = 2 FLOPs/);
});

t.test("the research report's formula", async (t) => {
  t.equal(researchFormulaFlops(micro), 57344, 'micro: 3*64^2*2*2 + 1*64*32*2*2, the Phase 4 figure');
  // the original's tiny teacher: d=128, L=4, e=2, f=64, k=2, moe [1,3] -> the Phase 3 figure 327,680
  t.equal(
    researchFormulaFlops({
      ...micro,
      hiddenSize: 128,
      numLayers: 4,
      ssmInnerSize: 256,
      expertSize: 64,
      moeLayers: [1, 3],
    }),
    327680,
  );
});

t.test('no MoE layers: only FFNs; more experts picked cost more', async (t) => {
  const dense = flopsPerToken({ ...micro, moeLayers: [], numExperts: 0, topK: 0 });
  t.equal(dense.breakdown.router, 0);
  t.equal(dense.breakdown.experts, 0);
  t.equal(dense.breakdown.gateSoftmax, 0);
  t.equal(dense.breakdown.ffn, 3 * 8352);
  const k3 = flopsPerToken({ ...micro, topK: 3 });
  t.equal(k3.breakdown.experts - flopsPerToken(micro).breakdown.experts, 8480, 'one more expert');
});

t.test('micro: matrix multiply-adds per prompt position, by hand', async (t) => {
  // a full layer's SSM matrices: in_proj 256x64 16384 + delta_proj 16384 + B 8x128 1024 + out_proj
  // 64x128 8192 = 41984; carrying the state only: in_proj's a half 8192 + 16384 + 1024 = 25600;
  // FFN 2x(32x64) 4096; MoE router 4x64 256 + two experts 2 x 4096 = 8448; lm_head 2000x64 128000
  const below = 41984 + 4096 + (41984 + 8448); // layers 0 and 1, in full
  const last = below + 41984 + 4096 + 128000; // the last position: layer 2 in full, the head
  const carry = below + 25600; // every other position
  t.equal(prefillMatrixMacs(micro, 1), last, 'one token: the whole forward');
  t.equal(prefillMatrixMacs(micro, 128), (127 * carry + last) / 128, '128 tokens');
  t.equal(Math.round(prefillMatrixMacs(micro, 128)), 123272);
});
