// The ONNX export: the protobuf encoding, and parity: ONNX Runtime (native, and WASM on one
// case) running the exported graphs gives our logits within 1e-4 on the golden inputs, for the
// full-sequence, last-position and single-step (recurrent state) graphs.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProtoWriter } from '../export/protobuf.js';
import { exportOnnx, stateNames } from '../export/itera-onnx.js';
import { IteraModel } from '../runtime/api.js';
import { convertReference } from './reference-model.js';
import { needShared, requireShared, repoRoot } from './shared.js';
import { loadOrt } from '../bench/engines.js';
import { writeModelFile } from '../convert/model-write.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { randomWeights, tensorShapes, TINY, wasmBytes } from './helpers.js';

const GOLD = 'reference/golden/micro/reference.json';

t.test('protobuf wire format', async (t) => {
  const hex = (w: ProtoWriter): string => Buffer.from(w.finish()).toString('hex');
  t.equal(hex(new ProtoWriter().int(1, 150)), '089601', 'the protobuf docs example: field 1 = 150');
  t.equal(hex(new ProtoWriter().int(1, -1)), '08ffffffffffffffffff01', 'negative int64: ten bytes');
  t.equal(hex(new ProtoWriter().string(2, 'testing')), '120774657374696e67', 'field 2 = "testing"');
  t.equal(hex(new ProtoWriter().float(2, 1)), '150000803f', 'fixed32 float');
  t.equal(hex(new ProtoWriter().packedInts(4, [3, 270, 86942])), '2206038e029ea705', 'packed repeated');
  t.equal(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150))), '1a03089601', 'nested message');
  t.equal(hex(new ProtoWriter().int(1, 2n ** 40n)), '088080808080' + '20', 'bigint varint');
});

interface Case {
  name: string;
  input_ids: number[];
}

t.test('ONNX Runtime runs the export with our logits (1e-4)', needShared(GOLD), async (t) => {
  const ref = JSON.parse(readFileSync(requireShared(GOLD), 'utf8')) as {
    logits_cases: (Case & { logits_file: string })[];
  };
  const bytes = convertReference();
  const model = await IteraModel.fromBytes(bytes, readFileSync(join(repoRoot(), 'build', 'itera.wasm')));
  const { api } = await loadOrt('node');
  const so = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const full = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'full' }), so);
  const last = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'last' }), so);
  const step = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'step' }), so);
  const c = model.config;
  const V = c.vocabSize;
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>, off = 0, n = a.length): number => {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i]! - b[off + i]!));
    return m;
  };
  const ids64 = (ids: number[]): BigInt64Array => BigInt64Array.from(ids, (x) => BigInt(x));
  for (const cs of ref.logits_cases) {
    const ours = model.logits(cs.input_ids);
    const golden = new Float32Array(
      new Uint8Array(readFileSync(requireShared('reference/golden/micro', cs.logits_file))).buffer,
    );
    const S = cs.input_ids.length;
    const f = await full.run({ input_ids: new api.Tensor('int64', ids64(cs.input_ids), [1, S]) });
    t.same(f.logits!.dims, [1, S, V], `${cs.name}: full graph output [1, ${S}, ${V}]`);
    const dFull = maxDiff(f.logits!.data as Float32Array, ours);
    t.ok(dFull < 1e-4, `${cs.name}: full graph vs ours, max |diff| ${dFull.toExponential(2)}`);
    const dGold = maxDiff(f.logits!.data as Float32Array, golden);
    t.ok(dGold < 1e-4, `${cs.name}: full graph vs PyTorch golden, max |diff| ${dGold.toExponential(2)}`);
    const l = await last.run({ input_ids: new api.Tensor('int64', ids64(cs.input_ids), [1, S]) });
    const dLast = maxDiff(l.logits!.data as Float32Array, ours, (S - 1) * V, V);
    t.ok(dLast < 1e-4, `${cs.name}: last-position graph, max |diff| ${dLast.toExponential(2)}`);
    // the step graph, token by token with its state
    const feeds: Record<string, unknown> = {};
    for (let i = 0; i < c.numLayers; i++) {
      feeds[stateNames(i).convIn] = new api.Tensor(
        'float32',
        new Float32Array((c.ssmConvKernel - 1) * c.ssmInnerSize),
        [c.ssmConvKernel - 1, c.ssmInnerSize],
      );
      feeds[stateNames(i).ssmIn] = new api.Tensor('float32', new Float32Array(c.ssmStateSize), [c.ssmStateSize]);
    }
    let dStep = 0;
    for (let p = 0; p < S; p++) {
      feeds.input_ids = new api.Tensor('int64', ids64([cs.input_ids[p]!]), [1, 1]);
      feeds.position = new api.Tensor('int64', ids64([p]), [1]);
      const r = await step.run(feeds as never);
      dStep = Math.max(dStep, maxDiff(r.logits!.data as Float32Array, ours, p * V, V));
      for (let i = 0; i < c.numLayers; i++) {
        feeds[stateNames(i).convIn] = r[stateNames(i).convOut];
        feeds[stateNames(i).ssmIn] = r[stateNames(i).ssmOut];
      }
    }
    t.ok(dStep < 1e-4, `${cs.name}: step graph over ${S} positions, max |diff| ${dStep.toExponential(2)}`);
  }
  model.dispose();
});

t.test('onnxruntime-web (WASM) runs the full graph too', needShared(GOLD), async (t) => {
  const bytes = convertReference();
  const model = await IteraModel.fromBytes(bytes, readFileSync(join(repoRoot(), 'build', 'itera.wasm')));
  const { api } = await loadOrt(
    'web',
    pathToFileURL(join(repoRoot(), 'node_modules', 'onnxruntime-web', 'dist') + '/').href,
  );
  const s = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'full' }), { executionProviders: ['wasm'] });
  const ids = Array.from({ length: 40 }, (_, i) => (i * 53 + 7) % 2000);
  const r = await s.run({
    input_ids: new api.Tensor(
      'int64',
      BigInt64Array.from(ids, (x) => BigInt(x)),
      [1, ids.length],
    ),
  });
  const ours = model.logits(ids);
  const got = r.logits!.data as Float32Array;
  let m = 0;
  for (let i = 0; i < ours.length; i++) m = Math.max(m, Math.abs(ours[i]! - got[i]!));
  t.ok(m < 1e-4, `max |diff| ${m.toExponential(2)}`);
  model.dispose();
});

t.test("conv widths other than 4 (the runtime's generic conv ring) against ONNX Runtime on the export", async (t) => {
  const { api } = await loadOrt('node');
  const tok = tokenizerFromOriginalJson({
    token2id: { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3, a: 4 },
    id2token: { 0: '<PAD>', 1: '<UNK>', 2: '<BOS>', 3: '<EOS>', 4: 'a' },
    vocab_size: 5,
    level: 'char',
  });
  const ids = Array.from({ length: 14 }, (_, i) => (i * 7 + 3) % TINY.vocabSize);
  for (const K of [2, 3, 5]) {
    const c = { ...TINY, ssmConvKernel: K };
    const sh = tensorShapes(c);
    const bytes = writeModelFile({
      config: c,
      tensors: [...randomWeights(c, K)].map(([name, data]) => ({ name, shape: sh.get(name)!, data })),
      tokenizer: tok,
      name: `k${K}`,
    });
    const full = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'full' }), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    const r = await full.run({
      input_ids: new api.Tensor(
        'int64',
        BigInt64Array.from(ids, (x) => BigInt(x)),
        [1, ids.length],
      ),
    });
    const theirs = r.logits!.data as Float32Array;
    for (const build of ['simd', 'scalar'] as const) {
      const model = await IteraModel.fromBytes(bytes, wasmBytes(build));
      const ours = model.logits(ids);
      let d = 0;
      for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i]! - theirs[i]!));
      t.ok(
        d < 1e-4,
        `K = ${K}, ${build} build: ${ids.length} positions within 1e-4 of ONNX Runtime (max |diff| ${d.toExponential(2)})`,
      );
      model.dispose();
    }
    await full.release?.();
  }
});
