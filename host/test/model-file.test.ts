import t from 'tap';
import { readFileSync } from 'node:fs';
import { readModelFile, tensorAsF32, countParameters, modelTensorSpecs, MODEL_KEYS } from '../runtime/model-file.js';
import { inferConfig, stateDictToModel, type ModelTensor } from '../convert/state-dict.js';
import { writeModelFile } from '../convert/model-write.js';
import { readGguf, GgmlType, type GgufKV } from '../runtime/gguf.js';
import { writeGguf, type GgufTensorInput } from '../convert/gguf-write.js';
import { f32ToF16Bytes, f16BytesToF32 } from '../runtime/f16.js';
import { WordTokenizer, tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { IteraError, type DType, type IteraConfig, type RawTensor } from '../runtime/types.js';
import { expectIteraError, needShared, requireShared } from './shared.js';

// ------------------------------------------------------------------ fixtures

const MICRO: IteraConfig = {
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
/** Small enough for many quick error tests; MoE in layer 1 of 3, like the micro model. */
const TINY: IteraConfig = {
  vocabSize: 20,
  hiddenSize: 8,
  numLayers: 3,
  ssmStateSize: 4,
  ssmConvKernel: 3,
  ssmInnerSize: 16,
  numExperts: 3,
  expertSize: 6,
  topK: 2,
  moeLayers: [1],
  maxSeqLength: 16,
  layerNormEps: 1e-5,
};

/** Distinct, deterministic values for a tensor: name hash + index. */
function values(name: string, n: number): Float32Array {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.fround(((h >>> 8) % 1000) / 1000 + i * 1e-3 - 0.5);
  return a;
}

function raw(name: string, shape: number[], dtype: DType = 'f32', storageKey?: string): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = values(name, n);
  let data: Uint8Array;
  if (dtype === 'f16') data = f32ToF16Bytes(v);
  else if (dtype === 'f64') data = new Uint8Array(Float64Array.from(v).buffer);
  else if (dtype === 'bf16') {
    const bits = new Uint32Array(v.buffer);
    data = new Uint8Array(n * 2);
    for (let i = 0; i < n; i++) {
      data[2 * i] = (bits[i]! >>> 16) & 0xff;
      data[2 * i + 1] = bits[i]! >>> 24;
    }
  } else data = new Uint8Array(v.buffer.slice(0));
  return { name, dtype, shape, data, storageKey: storageKey ?? `key:${name}` };
}

/** A PyTorch-style state_dict for a config, in the original's key order. */
function stateDict(
  c: IteraConfig,
  o: { head?: 'shared' | 'copy' | 'own' | 'none'; dtype?: DType } = {},
): Map<string, RawTensor> {
  const m = new Map<string, RawTensor>();
  const put = (name: string, shape: number[]): void => {
    m.set(name, raw(name, shape, o.dtype));
  };
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmConvKernel: K,
    ssmStateSize: N,
    numExperts: E,
    expertSize: f,
  } = c;
  put('embedding.weight', [V, d]);
  put('position_embedding.weight', [c.maxSeqLength, d]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `layers.${i}.`;
    put(p + 'ssm.in_proj.weight', [2 * di, d]);
    put(p + 'ssm.conv1d.weight', [di, 1, K]);
    put(p + 'ssm.conv1d.bias', [di]);
    put(p + 'ssm.ssm.A_log', [N]);
    put(p + 'ssm.ssm.B', [N, di]);
    put(p + 'ssm.ssm.C', [di, N]);
    put(p + 'ssm.ssm.D', [di]);
    put(p + 'ssm.ssm.delta_proj.weight', [di, di]);
    put(p + 'ssm.ssm.delta_proj.bias', [di]);
    put(p + 'ssm.out_proj.weight', [d, di]);
    put(p + 'ssm.norm.weight', [d]);
    put(p + 'ssm.norm.bias', [d]);
    if (c.moeLayers.includes(i)) {
      put(p + 'moe.layer.router.expert_counts', [E]);
      put(p + 'moe.layer.router.gate.weight', [E, d]);
      for (let j = 0; j < E; j++) {
        put(`${p}moe.layer.experts.${j}.w1.weight`, [f, d]);
        put(`${p}moe.layer.experts.${j}.w2.weight`, [d, f]);
      }
      put(p + 'moe.layer.norm.weight', [d]);
      put(p + 'moe.layer.norm.bias', [d]);
    } else {
      put(p + 'moe.norm.weight', [d]);
      put(p + 'moe.norm.bias', [d]);
      put(p + 'moe.ffn.w1.weight', [f, d]);
      put(p + 'moe.ffn.w2.weight', [d, f]);
    }
  }
  put('norm.weight', [d]);
  put('norm.bias', [d]);
  const emb = m.get('embedding.weight')!;
  const head = o.head ?? 'shared';
  if (head === 'shared') m.set('lm_head.weight', { ...emb, name: 'lm_head.weight' });
  else if (head === 'copy')
    m.set('lm_head.weight', { ...emb, name: 'lm_head.weight', data: emb.data.slice(), storageKey: 'other' });
  else if (head === 'own') put('lm_head.weight', [V, d]);
  return m;
}

const tinyTokenizer = (n = 10): WordTokenizer =>
  new WordTokenizer(['<PAD>', '<UNK>', '<BOS>', '<EOS>', ...Array.from({ length: n - 4 }, (_, i) => `w${i}`)], {
    pad: 0,
    unk: 1,
    bos: 2,
    eos: 3,
  });

function tinyFile(c = TINY, head: 'shared' | 'own' = 'shared'): Uint8Array {
  const m = stateDictToModel(stateDict(c, { head }));
  return writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: tinyTokenizer(), name: 'tiny' });
}

/** Re-write a model file after editing its GGUF metadata / tensors. */
function edit(
  bytes: Uint8Array,
  f: (md: GgufKV[], ts: GgufTensorInput[]) => [GgufKV[], GgufTensorInput[]],
): Uint8Array {
  const g = readGguf(bytes);
  const [metadata, tensors] = f(g.metadata.slice(), g.tensors.slice());
  return writeGguf({ metadata, tensors });
}
const setKV = (md: GgufKV[], key: string, value: GgufKV['value'] | undefined): GgufKV[] =>
  value === undefined
    ? md.filter((kv) => kv.key !== key)
    : md.some((kv) => kv.key === key)
      ? md.map((kv) => (kv.key === key ? { key, value } : kv))
      : [...md, { key, value }];

// ------------------------------------------------------------------ parameter count and config

t.test('parameter count of the micro model: 293,656', async (t) => {
  t.equal(countParameters(MICRO, true), 293656, 'tied lm_head counts once, expert_counts (a buffer) not at all');
  t.equal(countParameters(MICRO, false), 293656 + 2000 * 64, 'untied: plus the separate head');
  const sd = stateDict(MICRO);
  let all = 0;
  for (const r of sd.values()) all += r.shape.reduce((a, b) => a * b, 1);
  t.equal(all, 293656 + 2000 * 64 + 4, 'the state_dict has the head twice and 4 expert counts');
});

t.test(
  'parameter count matches reference.json',
  needShared('reference', 'golden', 'micro', 'reference.json'),
  async (t) => {
    const ref = JSON.parse(readFileSync(requireShared('reference', 'golden', 'micro', 'reference.json'), 'utf8')) as {
      parameters: number;
      config: Record<string, unknown>;
    };
    const c = ref.config;
    const cfg: IteraConfig = {
      vocabSize: c.vocab_size as number,
      hiddenSize: c.hidden_size as number,
      numLayers: c.num_layers as number,
      ssmStateSize: c.ssm_state_size as number,
      ssmConvKernel: c.ssm_conv_kernel as number,
      ssmInnerSize: (c.ssm_expand_factor as number) * (c.hidden_size as number),
      numExperts: c.num_experts as number,
      expertSize: c.expert_size as number,
      topK: c.top_k_experts as number,
      moeLayers: c.moe_layers as number[],
      maxSeqLength: c.max_seq_length as number,
      layerNormEps: c.layer_norm_eps as number,
    };
    t.same(cfg, MICRO);
    t.equal(countParameters(cfg, true), ref.parameters);
  },
);

t.test('inferConfig reads the config off shapes and names', async (t) => {
  t.same(inferConfig(stateDict(MICRO)), MICRO);
  t.same(inferConfig(stateDict(TINY), { topK: 3, eps: 1e-6 }), { ...TINY, topK: 3, layerNormEps: 1e-6 });
  const prefixed = new Map([...stateDict(TINY)].map(([k, v]) => [`model_state_dict.${k}`, v]));
  t.same(inferConfig(prefixed), TINY, "names under 'model_state_dict.' accepted");
  const dense = { ...TINY, moeLayers: [], numExperts: 0, topK: 0 };
  t.same(inferConfig(stateDict(dense)), dense, 'no MoE layer: E = k = 0');
  const allMoe = { ...TINY, moeLayers: [0, 1, 2] };
  t.same(inferConfig(stateDict(allMoe)), allMoe);
  expectIteraError(
    t,
    () => inferConfig(stateDict(TINY), { topK: 4 }),
    'MODEL_BAD_CONFIG',
    /top-k is 4.*1 to the 3 experts/,
    'k > E',
  );
  expectIteraError(t, () => inferConfig(stateDict(TINY), { topK: 0 }), 'MODEL_BAD_CONFIG', /top-k is 0/, 'k = 0');
  expectIteraError(
    t,
    () => inferConfig(stateDict(TINY), { eps: -1 }),
    'MODEL_BAD_CONFIG',
    /layerNormEps is -1/,
    'eps < 0',
  );
  const noEmb = stateDict(TINY);
  noEmb.delete('embedding.weight');
  expectIteraError(t, () => inferConfig(noEmb), 'MODEL_MISSING_TENSOR', /no tensor 'embedding.weight'/, 'no embedding');
  const gap = new Map([...stateDict(TINY)].filter(([k]) => !k.startsWith('layers.1.')));
  expectIteraError(
    t,
    () => inferConfig(gap),
    'MODEL_MISSING_TENSOR',
    /layers up to 2 but none of layer 1/,
    'layer gap',
  );
  const conv = stateDict(TINY);
  conv.set('layers.0.ssm.conv1d.weight', raw('layers.0.ssm.conv1d.weight', [16, 2, 3]));
  expectIteraError(t, () => inferConfig(conv), 'MODEL_BAD_SHAPE', /\[16, 2, 3\].*\[di, 1, K\]/, 'conv1d not depthwise');
  const expGap = stateDict(TINY);
  expGap.delete('layers.1.moe.layer.experts.1.w1.weight');
  expGap.delete('layers.1.moe.layer.experts.1.w2.weight');
  expectIteraError(
    t,
    () => inferConfig(expGap),
    'MODEL_MISSING_TENSOR',
    /experts up to 2 but no expert 1/,
    'expert gap',
  );
  const both = stateDict(TINY);
  both.set('layers.1.moe.ffn.w1.weight', raw('x', [6, 8]));
  expectIteraError(t, () => inferConfig(both), 'MODEL_BAD_LAYER', /layer 1 has both/, 'MoE and dense in one layer');
});

// ------------------------------------------------------------------ conversion

t.test('stateDictToModel: canonical names, order, shapes and values', async (t) => {
  const sd = stateDict(MICRO);
  const m = stateDictToModel(sd);
  t.same(m.config, MICRO);
  t.equal(m.tiedEmbeddings, true);
  t.equal(m.parameters, 293656);
  t.same(
    m.tensors.map((x) => x.name),
    modelTensorSpecs(MICRO, true).map((s) => s.name),
    'canonical order',
  );
  t.equal(
    m.tensors.reduce((a, x) => a + x.data.length, 0),
    293656,
  );
  const names = m.tensors.map((x) => x.name);
  for (const n of [
    'token_embd.weight',
    'position_embd.weight',
    'blk.0.ssm_norm.weight',
    'blk.0.ssm_norm.bias',
    'blk.0.ssm_in.weight',
    'blk.0.ssm_conv1d.weight',
    'blk.0.ssm_conv1d.bias',
    'blk.0.ssm_a_log',
    'blk.0.ssm_b',
    'blk.0.ssm_c',
    'blk.0.ssm_d',
    'blk.0.ssm_dt.weight',
    'blk.0.ssm_dt.bias',
    'blk.0.ssm_out.weight',
    'blk.0.ffn_norm.weight',
    'blk.0.ffn_norm.bias',
    'blk.0.ffn_up.weight',
    'blk.0.ffn_down.weight',
    'blk.1.ffn_gate_inp.weight',
    'blk.1.ffn_up_exps.weight',
    'blk.1.ffn_down_exps.weight',
    'blk.1.ffn_norm.weight',
    'blk.2.ffn_up.weight',
    'output_norm.weight',
    'output_norm.bias',
  ]) {
    t.ok(names.includes(n), n);
  }
  t.notOk(names.includes('output.weight'), 'tied: no output.weight');
  t.notOk(names.includes('blk.0.ffn_gate_inp.weight'), 'dense layer: no router');
  const get = (n: string): ModelTensor => m.tensors.find((x) => x.name === n)!;
  t.same(get('blk.0.ssm_conv1d.weight').shape, [128, 4], 'conv1d [di,1,K] squeezed to [di,K]');
  t.same(Array.from(get('blk.0.ssm_conv1d.weight').data), Array.from(values('layers.0.ssm.conv1d.weight', 512)));
  t.same(get('blk.1.ffn_up_exps.weight').shape, [4, 32, 64]);
  t.same(get('blk.1.ffn_down_exps.weight').shape, [4, 64, 32]);
  for (let j = 0; j < 4; j++) {
    t.same(
      Array.from(get('blk.1.ffn_up_exps.weight').data.subarray(j * 2048, (j + 1) * 2048)),
      Array.from(values(`layers.1.moe.layer.experts.${j}.w1.weight`, 2048)),
      `expert ${j} w1 stacked in order`,
    );
    t.same(
      Array.from(get('blk.1.ffn_down_exps.weight').data.subarray(j * 2048, (j + 1) * 2048)),
      Array.from(values(`layers.1.moe.layer.experts.${j}.w2.weight`, 2048)),
      `expert ${j} w2 stacked in order`,
    );
  }
  t.same(
    Array.from(get('blk.1.ffn_norm.weight').data),
    Array.from(values('layers.1.moe.layer.norm.weight', 64)),
    'MoE layer norm',
  );
  t.same(
    Array.from(get('blk.0.ffn_norm.weight').data),
    Array.from(values('layers.0.moe.norm.weight', 64)),
    'dense layer norm',
  );
  t.same(Array.from(get('blk.2.ssm_a_log').data), Array.from(values('layers.2.ssm.ssm.A_log', 8)), 'A_log stored raw');
  t.match(m.notes.join('\n'), /dropped layers\.1\.moe\.layer\.router\.expert_counts: a training statistic/);
  t.match(m.notes.join('\n'), /shares its storage with embedding.weight \(tied\)/);
});

t.test('tied or not', async (t) => {
  const copy = stateDictToModel(stateDict(TINY, { head: 'copy' }));
  t.equal(copy.tiedEmbeddings, true, 'identical bytes, other storage: tied');
  t.match(copy.notes.join(), /byte-identical/);
  const none = stateDictToModel(stateDict(TINY, { head: 'none' }));
  t.equal(none.tiedEmbeddings, true, 'no lm_head: tied');
  const own = stateDictToModel(stateDict(TINY, { head: 'own' }));
  t.equal(own.tiedEmbeddings, false);
  const out = own.tensors[own.tensors.length - 1]!;
  t.equal(out.name, 'output.weight');
  t.same(Array.from(out.data), Array.from(values('lm_head.weight', 160)));
  t.equal(own.parameters, countParameters(TINY, true) + 160);
  const badHead = stateDict(TINY, { head: 'none' });
  badHead.set('lm_head.weight', raw('lm_head.weight', [20, 9]));
  expectIteraError(
    t,
    () => stateDictToModel(badHead),
    'MODEL_BAD_SHAPE',
    /'lm_head.weight' has shape \[20, 9\] but the configuration implies \[20, 8\]/,
    'untied head of the wrong shape',
  );
});

t.test('dtypes: f16, bf16, f64 convert; qint8 rows must be whole blocks; integers are refused', async (t) => {
  const base = stateDictToModel(stateDict(TINY));
  for (const dtype of ['f16', 'bf16', 'f64'] as const) {
    const m = stateDictToModel(stateDict(TINY, { dtype }));
    let maxErr = 0;
    m.tensors.forEach((x, i) =>
      x.data.forEach((v, j) => {
        maxErr = Math.max(maxErr, Math.abs(v - base.tensors[i]!.data[j]!));
      }),
    );
    t.ok(maxErr <= (dtype === 'f64' ? 0 : dtype === 'f16' ? 1e-3 : 8e-3), `${dtype}: max error ${maxErr}`);
  }
  const f16 = stateDict(TINY, { dtype: 'f16' });
  const a = stateDictToModel(f16).tensors[0]!.data;
  t.same(Array.from(a), Array.from(f16BytesToF32(f16.get('embedding.weight')!.data)), 'f16 converted exactly');

  const q = stateDict(TINY);
  q.set('layers.0.ssm.in_proj.weight', {
    ...q.get('layers.0.ssm.in_proj.weight')!,
    dtype: 'qint8',
    data: new Uint8Array(256),
    quant: { scale: 0.1, zeroPoint: 0 },
  });
  // INT8 is kept as stored (I8), which needs rows of whole 32-value blocks: TINY's rows are 8 wide
  expectIteraError(
    t,
    () => stateDictToModel(q),
    'QUANT_BAD_LENGTH',
    /'blk.0.ssm_in.weight' is INT8 but its rows of 8 values are not whole 32-value blocks/,
    'qint8',
  );
  const i64 = stateDict(TINY);
  i64.set('norm.bias', { ...i64.get('norm.bias')!, dtype: 'i64', data: new Uint8Array(64) });
  expectIteraError(t, () => stateDictToModel(i64), 'MODEL_BAD_DTYPE', /'norm.bias' has dtype i64/, 'i64');
  const short = stateDict(TINY);
  short.set('norm.bias', { ...short.get('norm.bias')!, data: new Uint8Array(31) });
  expectIteraError(
    t,
    () => stateDictToModel(short),
    'MODEL_BAD_TENSOR_DATA',
    /'norm.bias' \[8\] of f32 needs 32 bytes but has 31/,
    'short data',
  );
  const nan = stateDict(TINY);
  const nb = new Float32Array(8);
  nb[5] = NaN;
  nan.set('norm.bias', { ...nan.get('norm.bias')!, data: new Uint8Array(nb.buffer) });
  expectIteraError(
    t,
    () => stateDictToModel(nan),
    'MODEL_NON_FINITE',
    /'norm.bias' has a non-finite value \(NaN\) at element 5/,
    'NaN',
  );
});

t.test('shape errors name the tensor, the expected and the actual shape; missing and unknown tensors', async (t) => {
  const cases: [string, number[], RegExp][] = [
    [
      'layers.2.ssm.ssm.B',
      [4, 15],
      /tensor 'layers.2.ssm.ssm.B' has shape \[4, 15\] but the configuration implies \[4, 16\] \(for 'blk.2.ssm_b' \[N, di\]/,
    ],
    [
      'layers.1.moe.layer.experts.2.w2.weight',
      [8, 7],
      /'layers.1.moe.layer.experts.2.w2.weight' has shape \[8, 7\] but the configuration implies \[8, 6\] \(for 'blk.1.ffn_down_exps.weight' \[E, d, f\]/,
    ],
    [
      'position_embedding.weight',
      [16, 9],
      /'position_embedding.weight' has shape \[16, 9\] but the configuration implies \[16, 8\]/,
    ],
    [
      'layers.0.ssm.ssm.delta_proj.bias',
      [16, 1],
      /'layers.0.ssm.ssm.delta_proj.bias' has shape \[16, 1\] but the configuration implies \[16\]/,
    ],
    [
      'layers.1.moe.layer.router.gate.weight',
      [4, 8],
      /'layers.1.moe.layer.router.gate.weight' has shape \[4, 8\] but the configuration implies \[3, 8\]/,
    ],
    [
      'layers.1.moe.layer.router.expert_counts',
      [4],
      /'layers.1.moe.layer.router.expert_counts' has shape \[4\] but the configuration implies \[3\]/,
    ],
  ];
  for (const [name, shape, re] of cases) {
    const sd = stateDict(TINY);
    sd.set(name, raw(name, shape));
    expectIteraError(t, () => stateDictToModel(sd), 'MODEL_BAD_SHAPE', re, `${name} ${shape}`);
  }
  const missing = stateDict(TINY);
  missing.delete('layers.2.ssm.ssm.D');
  expectIteraError(
    t,
    () => stateDictToModel(missing),
    'MODEL_MISSING_TENSOR',
    /missing tensor 'layers.2.ssm.ssm.D' \[16\] \(for 'blk.2.ssm_d' \[di\]/,
    'missing D',
  );
  const missingExpert = stateDict(TINY);
  missingExpert.delete('layers.1.moe.layer.experts.2.w2.weight');
  expectIteraError(
    t,
    () => stateDictToModel(missingExpert),
    'MODEL_MISSING_TENSOR',
    /'layers.1.moe.layer.experts.2.w2.weight'/,
    'missing expert w2',
  );
  const unknown = stateDict(TINY);
  unknown.set('layers.0.ssm.extra.weight', raw('x', [3]));
  unknown.set('encoder.weight', raw('y', [2, 2]));
  expectIteraError(
    t,
    () => stateDictToModel(unknown),
    'MODEL_UNKNOWN_TENSOR',
    /2 tensors that an Itera-Lite model .* does not have: 'layers.0.ssm.extra.weight' \[3\], 'encoder.weight' \[2, 2\]/,
    'unknown tensors',
  );
  const dense = stateDict(TINY);
  dense.set('layers.0.moe.ffn.w1.bias', raw('b', [6]));
  expectIteraError(
    t,
    () => stateDictToModel(dense),
    'MODEL_UNKNOWN_TENSOR',
    /'layers.0.moe.ffn.w1.bias'/,
    'a bias the model has not',
  );
});

// ------------------------------------------------------------------ the file

t.test('write -> read round trip; deterministic', async (t) => {
  const sd = stateDict(MICRO);
  const m = stateDictToModel(sd);
  const tok = tinyTokenizer(184);
  const bytes = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: tok, name: 'micro test' });
  const again = writeModelFile({
    config: m.config,
    tensors: stateDictToModel(stateDict(MICRO)).tensors.reverse(),
    tokenizer: tinyTokenizer(184),
    name: 'micro test',
  });
  t.ok(
    Buffer.from(bytes).equals(Buffer.from(again)),
    'converting twice (tensors in any order) gives byte-identical files',
  );
  const f = readModelFile(bytes);
  t.same(f.config, MICRO, 'config round trip (eps reads back as 1e-5)');
  t.equal(f.config.layerNormEps, 1e-5);
  t.equal(f.name, 'micro test');
  t.equal(f.tiedEmbeddings, true);
  t.equal(f.tokenizer.kind, 'itera-word');
  t.equal(f.tokenizer.size, 184);
  t.same(
    [...f.tensors.keys()],
    m.tensors.map((x) => x.name),
  );
  for (const x of m.tensors) {
    const got = f.tensors.get(x.name)!;
    t.equal(got.type, GgmlType.F32);
    if (
      !Buffer.from(tensorAsF32(got).buffer, tensorAsF32(got).byteOffset, x.data.byteLength).equals(
        Buffer.from(x.data.buffer),
      )
    )
      t.fail(`${x.name} data differs`);
  }
  const meta = new Map(f.metadata.map((kv) => [kv.key, kv.value]));
  t.same(meta.get('general.architecture'), { type: 'string', value: 'itera-lite' });
  t.same(meta.get(MODEL_KEYS.vocabSize), { type: 'u32', value: 2000 });
  t.same(meta.get(MODEL_KEYS.maxSeqLength), { type: 'u32', value: 128 });
  t.same(meta.get(MODEL_KEYS.moeLayers), { type: 'array', itemType: 'u32', value: [1] });
  t.same(meta.get(MODEL_KEYS.layerNormEps), { type: 'f32', value: Math.fround(1e-5) });
  t.same(meta.get(MODEL_KEYS.tiedEmbeddings), { type: 'bool', value: true });
  const parameters = [...f.tensors.values()].reduce((a, x) => a + x.shape.reduce((p, q) => p * q, 1), 0);
  t.equal(parameters, 293656, 'the file holds 293,656 parameters');

  const untied = stateDictToModel(stateDict(TINY, { head: 'own' }));
  const uf = readModelFile(
    writeModelFile({ config: untied.config, tensors: untied.tensors, tokenizer: tinyTokenizer(), name: 'u' }),
  );
  t.equal(uf.tiedEmbeddings, false);
  t.ok(uf.tensors.has('output.weight'));
});

t.test('F16 storage', async (t) => {
  const m = stateDictToModel(stateDict(TINY));
  const bytes = writeModelFile({
    config: m.config,
    tensors: m.tensors,
    tokenizer: tinyTokenizer(),
    name: 'h',
    type: 'F16',
  });
  const f = readModelFile(bytes);
  for (const x of m.tensors) {
    const got = f.tensors.get(x.name)!;
    t.equal(got.type, GgmlType.F16);
    t.same(
      Array.from(tensorAsF32(got)),
      Array.from(f16BytesToF32(f32ToF16Bytes(x.data))),
      `${x.name} is the f16-rounded value`,
    );
  }
  // per-tensor choice: norms in f32, the rest f16
  const mixed = m.tensors.map((x) => ({
    ...x,
    typeName: x.name.includes('norm') ? ('F32' as const) : ('F16' as const),
  }));
  const g = readModelFile(
    writeModelFile({ config: m.config, tensors: mixed, tokenizer: tinyTokenizer(), name: 'mixed' }),
  );
  t.equal(g.tensors.get('output_norm.weight')!.type, GgmlType.F32);
  t.equal(g.tensors.get('token_embd.weight')!.type, GgmlType.F16);
});

t.test('writeModelFile refuses bad input', async (t) => {
  const m = stateDictToModel(stateDict(TINY));
  const w = (o: Partial<Parameters<typeof writeModelFile>[0]>) => () =>
    writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: tinyTokenizer(), name: 'x', ...o });
  expectIteraError(
    t,
    w({ tokenizer: tinyTokenizer(21) }),
    'MODEL_TOKENIZER_TOO_BIG',
    /21 tokens but the model's vocabulary has only 20 rows/,
    'tokenizer > V',
  );
  expectIteraError(
    t,
    w({ tensors: m.tensors.slice(1) }),
    'MODEL_MISSING_TENSOR',
    /'token_embd.weight' \[V, d\] = \[20, 8\] is missing/,
    'missing tensor',
  );
  expectIteraError(
    t,
    w({ tensors: [...m.tensors, { name: 'blk.9.ssm_d', shape: [16], data: new Float32Array(16) }] }),
    'MODEL_UNKNOWN_TENSOR',
    /'blk.9.ssm_d'/,
    'unknown tensor',
  );
  expectIteraError(
    t,
    w({ tensors: m.tensors.map((x) => (x.name === 'blk.0.ssm_b' ? { ...x, shape: [16, 4] } : x)) }),
    'MODEL_BAD_SHAPE',
    /'blk.0.ssm_b' has shape \[16, 4\] but the configuration implies \[N, di\] = \[4, 16\]/,
    'bad shape',
  );
  expectIteraError(
    t,
    w({ config: { ...m.config, moeLayers: [3] } }),
    'MODEL_BAD_CONFIG',
    /moe layer 3 is not a layer index/,
    'bad config',
  );
  expectIteraError(
    t,
    w({ tensors: [...m.tensors, m.tensors[0]!] }),
    'MODEL_DUPLICATE_TENSOR',
    /'token_embd.weight' given twice/,
    'duplicate',
  );
});

t.test('readModelFile validates everything', async (t) => {
  const good = tinyFile();
  t.ok(readModelFile(good));
  const bad = (bytes: Uint8Array, code: string, re: RegExp, what: string): void =>
    expectIteraError(t, () => readModelFile(bytes), code, re, what);
  const md = (key: string, value: GgufKV['value'] | undefined): Uint8Array =>
    edit(good, (m, ts) => [setKV(m, key, value), ts]);

  bad(
    md('general.architecture', { type: 'string', value: 'llama' }),
    'MODEL_WRONG_ARCHITECTURE',
    /for architecture 'llama', not 'itera-lite'/,
    'llama',
  );
  bad(
    md('general.architecture', undefined),
    'MODEL_BAD_METADATA',
    /general.architecture is missing/,
    'no architecture',
  );
  for (const key of Object.values(MODEL_KEYS)) {
    // optional: the name, and the position-free flag (absent: learned positions)
    if (key === 'general.architecture' || key === 'general.name' || key === MODEL_KEYS.positionEmbedding) continue;
    bad(md(key, undefined), 'MODEL_BAD_METADATA', new RegExp(`${key.replace(/\./g, '\\.')} is missing`), `no ${key}`);
  }
  bad(
    md(MODEL_KEYS.positionEmbedding, { type: 'bool', value: true }),
    'MODEL_BAD_METADATA',
    /position_embedding is written only when false/,
    'position_embedding = true',
  );
  bad(
    md(MODEL_KEYS.positionEmbedding, { type: 'u32', value: 0 }),
    'MODEL_BAD_METADATA',
    /position_embedding must be a bool, found u32/,
    'position_embedding as u32',
  );
  bad(
    md(MODEL_KEYS.vocabSize, { type: 'i32', value: 20 }),
    'MODEL_BAD_METADATA',
    /vocab_size must be a u32, found i32/,
    'V as i32',
  );
  bad(
    md(MODEL_KEYS.layerNormEps, { type: 'f64', value: 1e-5 }),
    'MODEL_BAD_METADATA',
    /layer_norm_epsilon must be a f32, found f64/,
    'eps as f64',
  );
  bad(
    md(MODEL_KEYS.moeLayers, { type: 'array', itemType: 'i32', value: [1] }),
    'MODEL_BAD_METADATA',
    /moe_layers must be an array of u32/,
    'moe layers i32',
  );
  bad(
    md(MODEL_KEYS.moeLayers, { type: 'array', itemType: 'u32', value: [1, 1] }),
    'MODEL_BAD_CONFIG',
    /strictly ascending/,
    'moe layers repeated',
  );
  bad(
    md(MODEL_KEYS.topK, { type: 'u32', value: 4 }),
    'MODEL_BAD_CONFIG',
    /topK is 4; it must be a whole number from 1 to 3/,
    'k > E',
  );
  bad(md(MODEL_KEYS.layerNormEps, { type: 'f32', value: 0 }), 'MODEL_BAD_CONFIG', /layerNormEps is 0/, 'eps 0');
  bad(md(MODEL_KEYS.hiddenSize, { type: 'u32', value: 0 }), 'MODEL_BAD_CONFIG', /hiddenSize is 0/, 'd = 0');
  bad(
    md(MODEL_KEYS.hiddenSize, { type: 'u32', value: 9 }),
    'MODEL_BAD_SHAPE',
    /'token_embd.weight' has shape \[20, 8\] but the configuration implies \[V, d\] = \[20, 9\]/,
    'd disagrees with the tensors',
  );
  bad(
    md(MODEL_KEYS.vocabSize, { type: 'u32', value: 0xffffffff }),
    'MODEL_BAD_CONFIG',
    /vocabSize is 4294967295/,
    'absurd V',
  );
  bad(
    md(MODEL_KEYS.tiedEmbeddings, { type: 'bool', value: false }),
    'MODEL_MISSING_TENSOR',
    /missing tensor 'output.weight'/,
    'untied without output.weight',
  );
  bad(
    md('tokenizer.ggml.model', { type: 'string', value: 'sentencepiece' }),
    'TOKENIZER_UNSUPPORTED',
    /'sentencepiece'/,
    'unknown tokenizer',
  );
  bad(
    md('tokenizer.ggml.tokens', {
      type: 'array',
      itemType: 'string',
      value: [...Array(21).keys()].map((i) => (i < 4 ? ['<PAD>', '<UNK>', '<BOS>', '<EOS>'][i]! : `t${i}`)),
    }),
    'MODEL_TOKENIZER_TOO_BIG',
    /21 tokens.*only 20 rows/,
    'tokenizer > V',
  );
  bad(
    md('general.name', { type: 'u32', value: 1 }),
    'MODEL_BAD_METADATA',
    /general.name must be a string/,
    'name not a string',
  );

  const ts = (f: (ts: GgufTensorInput[]) => GgufTensorInput[]): Uint8Array => edit(good, (m, x) => [m, f(x)]);
  bad(
    ts((x) => x.filter((y) => y.name !== 'blk.1.ffn_gate_inp.weight')),
    'MODEL_MISSING_TENSOR',
    /missing tensor 'blk.1.ffn_gate_inp.weight' \[E, d\] = \[3, 8\]/,
    'missing router',
  );
  bad(
    ts((x) => [...x, { name: 'blk.0.ffn_gate_inp.weight', type: 0, shape: [3, 8], data: new Uint8Array(96) }]),
    'MODEL_UNKNOWN_TENSOR',
    /'blk.0.ffn_gate_inp.weight'/,
    'router in a dense layer',
  );
  bad(
    ts((x) => [...x, { name: 'output.weight', type: 0, shape: [20, 8], data: new Uint8Array(640) }]),
    'MODEL_UNKNOWN_TENSOR',
    /'output.weight'.*tied_embeddings = true/,
    'output.weight while tied',
  );
  bad(
    ts((x) => x.map((y) => (y.name === 'blk.2.ssm_c' ? { ...y, shape: [4, 16] } : y))),
    'MODEL_BAD_SHAPE',
    /'blk.2.ssm_c' has shape \[4, 16\] but the configuration implies \[di, N\] = \[16, 4\]/,
    'transposed C',
  );
  bad(
    ts((x) =>
      x.map((y) =>
        y.name === 'token_embd.weight'
          ? { name: y.name, type: GgmlType.Q8_0, shape: [20, 32], data: new Uint8Array(20 * 34) }
          : y,
      ),
    ),
    'MODEL_BAD_SHAPE',
    /token_embd/,
    'Q8_0 of another shape',
  );
  const q8 = edit(tinyFile({ ...TINY, hiddenSize: 32 }), (m, x) => [
    m,
    x.map((y) =>
      y.name === 'token_embd.weight'
        ? { name: y.name, type: GgmlType.Q8_0, shape: [20, 32], data: new Uint8Array(20 * 34) }
        : y,
    ),
  ]);
  // all-zero Q8_0 blocks (zero scale, zero values) are valid: the runtime runs Q8_0 embeddings
  t.equal(readModelFile(q8).tensors.get('token_embd.weight')!.type, GgmlType.Q8_0, 'Q8_0 embedding accepted');
  const q8norm = edit(tinyFile({ ...TINY, hiddenSize: 32 }), (m, x) => [
    m,
    x.map((y) =>
      y.name === 'output_norm.weight'
        ? { name: y.name, type: GgmlType.Q8_0, shape: [32], data: new Uint8Array(34) }
        : y,
    ),
  ]);
  bad(
    q8norm,
    'MODEL_UNSUPPORTED_TYPE',
    /'output_norm.weight' is stored as Q8_0, but only the large matrices/,
    'Q8_0 norm',
  );
  // C may be stored transposed as ssm_c_t [N, di] (then quantized), never quantized as [di, N], never both
  const wide = { ...TINY, hiddenSize: 32, ssmInnerSize: 32 };
  const cT = (f: (y: GgufTensorInput) => GgufTensorInput[]): Uint8Array =>
    edit(tinyFile(wide), (m, x) => [m, x.flatMap((y) => (y.name === 'blk.1.ssm_c' ? f(y) : [y]))]);
  const q8cT = { name: 'blk.1.ssm_c_t', type: GgmlType.Q8_0, shape: [4, 32], data: new Uint8Array(4 * 34) };
  t.equal(
    readModelFile(cT(() => [q8cT])).tensors.get('blk.1.ssm_c')!.transposed,
    true,
    'ssm_c_t (Q8_0, [N, di]) accepted as ssm_c, transposed',
  );
  bad(
    cT((y) => [y, q8cT]),
    'MODEL_DUPLICATE_TENSOR',
    /both 'blk.1.ssm_c' and 'blk.1.ssm_c_t'/,
    'ssm_c and ssm_c_t',
  );
  bad(
    cT(() => [{ name: 'blk.1.ssm_c_t', type: GgmlType.F32, shape: [32, 4], data: new Uint8Array(512) }]),
    'MODEL_BAD_SHAPE',
    /'blk.1.ssm_c_t' has shape \[32, 4\] but the configuration implies \[N, di\] = \[4, 32\]/,
    'ssm_c_t not transposed',
  );
  const n32 = edit(tinyFile({ ...wide, ssmStateSize: 32 }), (m, x) => [
    m,
    x.map((y) =>
      y.name === 'blk.1.ssm_c'
        ? { name: y.name, type: GgmlType.Q8_0, shape: [32, 32], data: new Uint8Array(32 * 34) }
        : y,
    ),
  ]);
  bad(
    n32,
    'MODEL_UNSUPPORTED_TYPE',
    /'blk.1.ssm_c' is stored as Q8_0/,
    'Q8_0 ssm_c untransposed (even with whole-block rows)',
  );
  bad(
    cT(() => [{ ...q8cT, type: GgmlType.I8, data: new Uint8Array(128) }]),
    'MODEL_UNSUPPORTED_TYPE',
    /'blk.1.ssm_c_t' is stored as I8/,
    'I8 ssm_c_t',
  );
  bad(
    ts((x) =>
      x.map((y) => (y.name === 'blk.0.ssm_d' ? { ...y, type: GgmlType.BF16, data: y.data.subarray(0, 32) } : y)),
    ),
    'MODEL_UNSUPPORTED_TYPE',
    /'blk.0.ssm_d' is stored as BF16/,
    'BF16',
  );
  bad(new Uint8Array(100), 'GGUF_BAD_MAGIC', /not a GGUF file/, 'not GGUF');
});

t.test('a truncated or corrupted model file is always an IteraError', async (t) => {
  const good = tinyFile();
  let other = 0;
  const step = Math.max(1, Math.floor(good.length / 1500));
  for (let n = 0; n < good.length; n += step) {
    try {
      readModelFile(good.subarray(0, n));
      other++;
      t.fail(`accepted ${n} bytes`);
    } catch (e) {
      if (!(e instanceof IteraError)) {
        other++;
        t.fail(String(e));
      }
    }
  }
  const header = readGguf(good).dataOffset;
  for (let pos = 0; pos < header; pos++) {
    const b = good.slice();
    b[pos]! ^= 0x10;
    try {
      readModelFile(b);
    } catch (e) {
      if (!(e instanceof IteraError)) {
        other++;
        t.fail(`flip at ${pos}: ${String(e)}`);
      }
    }
  }
  t.equal(other, 0);
});

// ------------------------------------------------------------------ the real checkpoint (needs ../shared and the importer)

t.test(
  'the micro reference checkpoint converts',
  needShared('reference', 'checkpoints', 'itera_lite_micro_distilled.pt'),
  async (t) => {
    const { importCheckpoint } = await import('../convert/import/index.js');
    const ckpt = readFileSync(requireShared('reference', 'checkpoints', 'itera_lite_micro_distilled.pt'));
    const tok = tokenizerFromOriginalJson(
      JSON.parse(readFileSync(requireShared('reference', 'tokenizers', 'tokenizer_2000.json'), 'utf8')),
    );
    const convert = (): Uint8Array => {
      const m = stateDictToModel(importCheckpoint(new Uint8Array(ckpt)).tensors);
      return writeModelFile({
        config: m.config,
        tensors: m.tensors,
        tokenizer: tok,
        name: 'itera_lite_micro_distilled',
      });
    };
    const m = stateDictToModel(importCheckpoint(new Uint8Array(ckpt)).tensors);
    t.same(m.config, MICRO);
    t.equal(m.tiedEmbeddings, true);
    t.equal(m.parameters, 293656);
    const a = convert();
    const b = convert();
    t.ok(Buffer.from(a).equals(Buffer.from(b)), 'two conversions are byte-identical');
    const f = readModelFile(a);
    t.same(f.config, MICRO);
    t.equal(f.tokenizer.size, 184);
    t.same(f.tokenizer.encode('Once upon a time, there was a'), [20, 21, 5, 22, 11, 6, 5]);
  },
);
