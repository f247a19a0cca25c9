// An Itera-Lite model file as ONNX (opset 17), for running the same model in ONNX Runtime.
// docs/onnx-export.md describes the graphs. Three kinds:
//   'full'  input_ids int64 [1, S] -> logits float [1, S, V] (every position; S <= T)
//   'last'  input_ids int64 [1, S] -> logits float [1, V]    (the last position: a prefill)
//   'step'  one position of the recurrence: input_ids [1, 1], position [1], and per layer l the
//           state conv_state_l [K-1, di] (the last K-1 conv inputs) and ssm_state_l [N]
//           -> logits [1, 1, V], conv_state_out_l, ssm_state_out_l
// The selective scan of the full graphs is closed-form: with cum_t = sum_{r<=t} delta_r,
//   z_t[n] = sum_{s<=t} exp(A_n (cum_t - cum_s)) * delta_s (B s_s)[n],
// a lower-triangular [N, S, S] decay matrix times the inputs (cum in float64 so that the
// differences keep float32 precision). MoE layers compute every expert and weight each by its
// gate, scattered into [S, E] (zero for experts not picked), which gives the same sum as running
// only the top-k experts. Platform-neutral.

import { readModelFile, tensorAsF32, type IteraModelFile } from '../runtime/model-file.js';
import { IteraError } from '../runtime/types.js';
import { DT, f32Tensor, OnnxGraph, serializeModel } from './onnx.js';

export type OnnxGraphKind = 'full' | 'last' | 'step';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export interface ExportOptions {
  kind?: OnnxGraphKind;
  producerVersion?: string;
}

/** Names of the step graph's state inputs and outputs for layer l. */
export const stateNames = (l: number): { convIn: string; ssmIn: string; convOut: string; ssmOut: string } => ({
  convIn: `conv_state_${l}`,
  ssmIn: `ssm_state_${l}`,
  convOut: `conv_state_out_${l}`,
  ssmOut: `ssm_state_out_${l}`,
});

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** The ONNX bytes of a model file (bytes or an already read file). */
export function exportOnnx(model: Uint8Array | IteraModelFile, o: ExportOptions = {}): Uint8Array {
  const file = model instanceof Uint8Array ? readModelFile(model) : model;
  const kind = o.kind ?? 'full';
  const c = file.config;
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmStateSize: N,
    ssmConvKernel: K,
    numExperts: E,
    expertSize: f,
    topK: k,
  } = c;
  if (K < 2 && kind === 'step')
    throw new IteraError('the step graph needs a conv kernel of at least 2', 'EXPORT_UNSUPPORTED');
  const w = (name: string): Float32Array => {
    const t = file.tensors.get(name);
    if (!t) throw new IteraError(`model has no tensor '${name}'`, 'MODEL_MISSING_TENSOR');
    return tensorAsF32(t);
  };
  const g = new OnnxGraph(`itera_lite_${kind}`);
  const step = kind === 'step';
  const eps = { f: c.layerNormEps };

  // shared constants
  const ax0 = g.constI64('axes0', [0]);
  const ax2 = g.constI64('axes2', [2]);
  const half = g.constF('half', [], [0.5]);
  const one = g.constF('one', [], [1]);
  const invSqrt2 = g.constF('inv_sqrt2', [], [Math.SQRT1_2]);
  const zero = g.constF('zero', [], [0]);

  const silu = (x: string): string => g.op('Mul', [x, g.op('Sigmoid', [x])]);
  const gelu = (x: string): string =>
    g.op('Mul', [g.op('Mul', [x, half]), g.op('Add', [one, g.op('Erf', [g.op('Mul', [x, invSqrt2])])])]);
  const linear = (
    x: string,
    name: string,
    weight: Float32Array,
    rows: number,
    cols: number,
    bias?: Float32Array,
  ): string => {
    const W = g.constF(name, [rows, cols], weight);
    const inputs = [x, W];
    if (bias) inputs.push(g.constF(name + '_b', [rows], bias));
    return g.op('Gemm', inputs, { transB: 1 });
  };
  const layerNorm = (x: string, prefix: string): string =>
    g.op(
      'LayerNormalization',
      [x, g.constF(prefix + '_w', [d], w(prefix + '.weight')), g.constF(prefix + '_b', [d], w(prefix + '.bias'))],
      { axis: -1, epsilon: eps },
    );

  // embeddings -> h [S, d]
  const embd = g.init(f32Tensor('token_embd', [V, d], w('token_embd.weight')));
  // a position-free model (no learned positions): the embedding alone; the step graph keeps its
  // `position` input, unused, so that every step graph has the same interface
  const positions = c.positionEmbedding !== false;
  const posTab = positions ? g.constF('position_embd', [c.maxSeqLength, d], w('position_embd.weight')) : '';
  const idsIn = g.input('input_ids', DT.INT64, step ? [1, 1] : [1, 'S']);
  let h: string;
  if (step) {
    const pos = g.input('position', DT.INT64, [1]);
    const id1 = g.op('Reshape', [idsIn, g.constI64('shape1', [1])]);
    const tok = g.op('Gather', [embd, id1], { axis: 0 });
    h = positions ? g.op('Add', [tok, g.op('Gather', [posTab, pos], { axis: 0 })]) : tok;
  } else {
    const ids = g.op('Squeeze', [idsIn, ax0]);
    const tok = g.op('Gather', [embd, ids], { axis: 0 });
    if (positions) {
      const S1 = g.op('Shape', [idsIn], { start: 1, end: 2 });
      const pe = g.op('Slice', [posTab, g.constI64('start0', [0]), S1, ax0]);
      h = g.op('Add', [tok, pe]);
    } else h = tok;
  }

  const moe = new Set(c.moeLayers);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    // ---- SSM block
    const u = layerNorm(h, p + 'ssm_norm');
    const win = w(p + 'ssm_in.weight'); // [2di, d]
    const a = linear(u, `l${l}_in_a`, win.subarray(0, di * d), di, d);
    const gate = linear(u, `l${l}_in_g`, win.subarray(di * d), di, d);
    const convW = w(p + 'ssm_conv1d.weight'); // [di, K]
    const convB = g.constF(`l${l}_conv_b`, [di], w(p + 'ssm_conv1d.bias'));
    let conv: string;
    if (step) {
      const st = stateNames(l);
      const prev = g.input(st.convIn, DT.FLOAT, [K - 1, di]);
      const window = g.op('Concat', [prev, a], { axis: 0 }); // [K, di]
      const wT = g.constF(`l${l}_conv_wT`, [K, di], transpose2d(convW, di, K));
      conv = g.op('Add', [g.op('ReduceSum', [g.op('Mul', [window, wT]), ax0], { keepdims: 1 }), convB]); // [1, di]
      g.op('Slice', [window, g.constI64(`l${l}_one`, [1]), g.constI64(`l${l}_K`, [K]), ax0], {}, st.convOut);
      g.output(st.convOut, DT.FLOAT, [K - 1, di]);
    } else {
      const x = g.op('Unsqueeze', [g.op('Transpose', [a], { perm: [1, 0] }), ax0]); // [1, di, S]
      const y = g.op('Conv', [x, g.constF(`l${l}_conv_w`, [di, 1, K], convW), convB], {
        group: di,
        kernel_shape: [K],
        pads: [K - 1, 0],
      });
      conv = g.op('Transpose', [g.op('Squeeze', [y, ax0])], { perm: [1, 0] }); // [S, di]
    }
    const s = silu(conv);
    const dt = g.op('Softplus', [linear(s, `l${l}_dt`, w(p + 'ssm_dt.weight'), di, di, w(p + 'ssm_dt.bias'))]);
    const delta = g.op('ReduceMean', [dt], { axes: [1], keepdims: 1 }); // [S, 1]
    const aLog = w(p + 'ssm_a_log');
    const A = Float32Array.from(aLog, (x) => -Math.exp(x));
    const Bs = linear(s, `l${l}_B`, w(p + 'ssm_b'), N, di); // [S, N]
    const uIn = g.op('Mul', [Bs, delta]); // [S, N]
    let z: string; // [S, N]
    if (step) {
      const st = stateNames(l);
      const prev = g.input(st.ssmIn, DT.FLOAT, [N]);
      const dA = g.op('Exp', [g.op('Mul', [delta, g.constF(`l${l}_A`, [N], A)])]); // [1, N]
      z = g.op('Add', [g.op('Mul', [dA, prev]), uIn]);
      g.op('Reshape', [z, g.constI64(`l${l}_shapeN`, [N])], {}, st.ssmOut);
      g.output(st.ssmOut, DT.FLOAT, [N]);
    } else {
      const cum = g.op('CumSum', [g.op('Cast', [delta], { to: DT.DOUBLE }), g.constI64(`l${l}_axis0`, [0], [])]); // [S, 1]
      const diff = g.op('Cast', [g.op('Sub', [cum, g.op('Transpose', [cum], { perm: [1, 0] })])], { to: DT.FLOAT }); // [S, S]: cum_t - cum_s
      const expo = g.op('Min', [g.op('Mul', [g.constF(`l${l}_A3`, [N, 1, 1], A), diff]), zero]); // [N, S, S]
      const decay = g.op('Trilu', [g.op('Exp', [expo])], { upper: 0 });
      const uT = g.op('Unsqueeze', [g.op('Transpose', [uIn], { perm: [1, 0] }), ax2]); // [N, S, 1]
      const zz = g.op('MatMul', [decay, uT]); // [N, S, 1]
      z = g.op('Transpose', [g.op('Squeeze', [zz, ax2])], { perm: [1, 0] }); // [S, N]
    }
    const yC = linear(z, `l${l}_C`, w(p + 'ssm_c'), di, N); // [S, di]
    const y = g.op('Add', [yC, g.op('Mul', [s, g.constF(`l${l}_D`, [di], w(p + 'ssm_d'))])]);
    h = g.op('Add', [h, linear(g.op('Mul', [y, silu(gate)]), `l${l}_out`, w(p + 'ssm_out.weight'), d, di)]);

    // ---- MoE or FFN
    const un = layerNorm(h, p + 'ffn_norm');
    let m: string;
    if (moe.has(l)) {
      const r = linear(un, `l${l}_router`, w(p + 'ffn_gate_inp.weight'), E, d); // [S, E]
      const [vals, idx] = g.ops('TopK', [r, g.constI64(`l${l}_k`, [k])], 2, { axis: -1, largest: 1, sorted: 1 }) as [
        string,
        string,
      ];
      const gates = g.op('Softmax', [vals], { axis: -1 });
      const zeros = g.op('Mul', [r, zero]);
      const weights = g.op('ScatterElements', [zeros, idx, gates], { axis: 1 }); // [S, E]
      const up = w(p + 'ffn_up_exps.weight'); // [E, f, d]
      const down = w(p + 'ffn_down_exps.weight'); // [E, d, f]
      const upT = new Float32Array(E * d * f);
      const downT = new Float32Array(E * f * d);
      for (let e = 0; e < E; e++) {
        upT.set(transpose2d(up.subarray(e * f * d, (e + 1) * f * d), f, d), e * d * f);
        downT.set(transpose2d(down.subarray(e * d * f, (e + 1) * d * f), d, f), e * f * d);
      }
      const hid = gelu(g.op('MatMul', [un, g.constF(`l${l}_up`, [E, d, f], upT)])); // [E, S, f]
      const eo = g.op('MatMul', [hid, g.constF(`l${l}_down`, [E, f, d], downT)]); // [E, S, d]
      const w3 = g.op('Unsqueeze', [g.op('Transpose', [weights], { perm: [1, 0] }), ax2]); // [E, S, 1]
      m = g.op('ReduceSum', [g.op('Mul', [eo, w3]), ax0], { keepdims: 0 }); // [S, d]
    } else {
      m = linear(
        gelu(linear(un, `l${l}_up`, w(p + 'ffn_up.weight'), f, d)),
        `l${l}_down`,
        w(p + 'ffn_down.weight'),
        d,
        f,
      );
    }
    h = g.op('Add', [h, m]);
  }

  let hn = layerNorm(h, 'output_norm');
  if (kind === 'last')
    hn = g.op('Slice', [hn, g.constI64('minus1', [-1]), g.constI64('big', [Number.MAX_SAFE_INTEGER]), ax0]);
  const head = file.tensors.has('output.weight') ? g.constF('output', [V, d], w('output.weight')) : embd;
  const logits2 = g.op('Gemm', [hn, head], { transB: 1 }); // [S, V]
  if (kind === 'last') {
    g.op('Identity', [logits2], {}, 'logits');
    g.output('logits', DT.FLOAT, [1, V]);
  } else {
    g.op('Unsqueeze', [logits2, ax0], {}, 'logits');
    g.output('logits', DT.FLOAT, step ? [1, 1, V] : [1, 'S', V]);
  }

  return serializeModel(g, {
    producerName: 'itera-lite',
    producerVersion: o.producerVersion ?? '0',
    opset: ONNX_OPSET,
    irVersion: ONNX_IR_VERSION,
    docString: `Itera-Lite model '${file.name}' (${kind} graph), exported by itera export onnx`,
    metadata: {
      'itera.kind': kind,
      'itera.config': JSON.stringify(c),
    },
  });
}
