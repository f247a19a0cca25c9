// Shared by the runtime tests: the module builds, instantiated from build/.

import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Io } from '../cli/command.js';
import { join } from 'node:path';
import { instantiate, type IteraExports } from '../runtime/runtime.js';
import { repoRoot } from './shared.js';

export const BUILDS = { simd: 'itera.wasm', scalar: 'itera-scalar.wasm' } as const;
export type BuildName = keyof typeof BUILDS;
/** The test builds: each build's flags with assembly/test-hooks.ts as a second entry. */
export const TEST_BUILDS = { simd: 'itera.test.wasm', scalar: 'itera-scalar.test.wasm' } as const;

export function wasmBytes(build: BuildName): Uint8Array {
  return readFileSync(join(repoRoot(), 'build', BUILDS[build]));
}

/** A file of little-endian float32 values (logits written by the CLI, PyTorch or a module). */
export function readF32File(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export async function exportsOf(build: BuildName): Promise<IteraExports> {
  return instantiate(wasmBytes(build));
}

/** The test hooks of assembly/test-hooks.ts (only in the test builds). */
export interface HookExports extends IteraExports {
  test_matvec_f32_ref(W: number, x: number, y: number, rows: number, cols: number): void;
  test_matvec_f32(W: number, x: number, y: number, rows: number, cols: number): void;
  test_erf(x: number): number;
  test_elementwise(which: number, x: number, y: number, n: number): void;
  test_elementwise_ref(which: number, x: number, y: number, n: number): void;
  test_softplus_mean(x: number, b: number, n: number, useRef: number): number;
  test_matvec2_f32(W: number, x0: number, x1: number, y0: number, y1: number, rows: number, cols: number): void;
  test_mat_rows(type: number, W: number, rows: number, cols: number, out: number, useRef: number, zp: number): void;
  test_sampler_weights(s: number): number;
  test_draw_blocks(s: number, r: number): number;
  test_matvec_quant(
    type: number,
    W: number,
    rows: number,
    cols: number,
    x: number,
    y: number,
    useRef: number,
    zp: number,
    positions: number,
  ): void;
  test_conv_silu(
    win: number,
    ring: number,
    taps: number,
    bias: number,
    a: number,
    sv: number,
    di: number,
    K: number,
    mode: number,
  ): void;
  test_scan_step(z: number, aNeg: number, bs: number, delta: number, N: number, useRef: number): void;
  test_gate_y(
    y: number,
    Ct: number,
    z: number,
    N: number,
    D: number,
    s: number,
    g: number,
    n: number,
    mode: number,
  ): void;
}

/** A test build's exports: the module's own and the kernel hooks. */
export async function hooksOf(build: BuildName): Promise<HookExports> {
  return (await instantiate(readFileSync(join(repoRoot(), 'build', TEST_BUILDS[build])))) as HookExports;
}

/** test_matvec_quant on copies of the weight bytes and the P activation vectors in the module's
 *  memory: the P outputs of rows values each (mode: 0 the build's kernel, 1 the scalar reference,
 *  2 without the relaxed build's nibble sums; zp: I8's zero point). */
export function quantHookProduct(
  ex: HookExports,
  c: { type: number; blocks: Uint8Array; rows: number; cols: number; x: Float32Array; P: number; zp?: number },
  mode: number,
): Float32Array {
  const { type, blocks, rows, cols, x, P } = c;
  const W = ex.alloc(blocks.length),
    X = ex.alloc(P * cols * 4),
    Y = ex.alloc(P * rows * 4);
  new Uint8Array(ex.memory.buffer, W, blocks.length).set(blocks);
  new Float32Array(ex.memory.buffer, X, P * cols).set(x);
  ex.test_matvec_quant(type, W, rows, cols, X, Y, mode, c.zp ?? 0, P);
  const y = new Float32Array(ex.memory.buffer, Y, P * rows).slice();
  for (const p of [W, X, Y]) ex.free(p);
  return y;
}

/** A deterministic stream of floats in [-1, 1) (an LCG; tests must not depend on Math.random). */
export function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2147483648 - 1;
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}

import type { IteraConfig } from '../runtime/types.js';
import { f32Source, type WeightSource, type WasmSession } from '../runtime/runtime.js';

/** Feeds ids one by one into s (a fresh session) and returns the largest difference between each
 *  position's logits and its row of `all` ([ids.length, V], from one prefill). */
export function tokenByTokenDiff(s: WasmSession, ids: readonly number[], all: Float32Array, V: number): number {
  let d = 0;
  ids.forEach((id, i) => {
    s.prefill([id]);
    d = Math.max(d, maxAbsDiff(s.logits(), all.subarray(i * V, (i + 1) * V)));
  });
  return d;
}

export const TINY: IteraConfig = {
  vocabSize: 50,
  hiddenSize: 8,
  numLayers: 2,
  ssmStateSize: 4,
  ssmConvKernel: 4,
  ssmInnerSize: 16,
  numExperts: 4,
  expertSize: 8,
  topK: 2,
  moeLayers: [1],
  maxSeqLength: 16,
  layerNormEps: 1e-5,
};

/** Tensor shapes (PyTorch order) by model-file name for a config. */
export function tensorShapes(c: IteraConfig, tied = true): Map<string, number[]> {
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmStateSize: N,
    ssmConvKernel: K,
    numExperts: E,
    expertSize: f,
  } = c;
  const m = new Map<string, number[]>([
    ['token_embd.weight', [V, d]],
    ['position_embd.weight', [c.maxSeqLength, d]],
  ]);
  for (let l = 0; l < c.numLayers; l++) {
    const b = `blk.${l}.`;
    m.set(b + 'ssm_norm.weight', [d]);
    m.set(b + 'ssm_norm.bias', [d]);
    m.set(b + 'ssm_in.weight', [2 * di, d]);
    m.set(b + 'ssm_conv1d.weight', [di, K]);
    m.set(b + 'ssm_conv1d.bias', [di]);
    m.set(b + 'ssm_a_log', [N]);
    m.set(b + 'ssm_b', [N, di]);
    m.set(b + 'ssm_c', [di, N]);
    m.set(b + 'ssm_d', [di]);
    m.set(b + 'ssm_dt.weight', [di, di]);
    m.set(b + 'ssm_dt.bias', [di]);
    m.set(b + 'ssm_out.weight', [d, di]);
    m.set(b + 'ffn_norm.weight', [d]);
    m.set(b + 'ffn_norm.bias', [d]);
    if (c.moeLayers.includes(l)) {
      m.set(b + 'ffn_gate_inp.weight', [E, d]);
      m.set(b + 'ffn_up_exps.weight', [E, f, d]);
      m.set(b + 'ffn_down_exps.weight', [E, d, f]);
    } else {
      m.set(b + 'ffn_up.weight', [f, d]);
      m.set(b + 'ffn_down.weight', [d, f]);
    }
  }
  m.set('output_norm.weight', [d]);
  m.set('output_norm.bias', [d]);
  if (!tied) m.set('output.weight', [V, d]);
  return m;
}

/** Random but deterministic weights of a plausible scale for a config. */
export function randomWeights(c: IteraConfig, seed = 1, tied = true): Map<string, Float32Array> {
  const rnd = lcg(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of tensorShapes(c, tied)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const fan = shape[shape.length - 1];
    for (let i = 0; i < n; i++) {
      if (name.endsWith('norm.weight')) v[i] = 1 + 0.1 * rnd();
      else if (name.endsWith('a_log')) v[i] = Math.log(1 + i);
      else v[i] = rnd() / Math.sqrt(fan);
    }
    out.set(name, v);
  }
  return out;
}

export function weightSource(c: IteraConfig, w: Map<string, Float32Array>): WeightSource {
  return f32Source(c, (name) => w.get(name));
}

import { writeModelFile } from '../convert/model-write.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';

/** A tiny model file (random weights, a character tokenizer over a-z and space). */
export function tinyModelFile(c: IteraConfig = TINY, seed = 1, type?: 'F32' | 'F16' | 'Q8_0' | 'Q4_0'): Uint8Array {
  const chars = ' abcdefghijklmnopqrstuvwxyz'.split('');
  const token2id: Record<string, number> = { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3 };
  chars.forEach((ch, i) => {
    token2id[ch] = 4 + i;
  });
  const id2token = Object.fromEntries(Object.entries(token2id).map(([k, v]) => [String(v), k]));
  const tokenizer = tokenizerFromOriginalJson({ token2id, id2token, vocab_size: 4 + chars.length, level: 'char' });
  const shapes = tensorShapes(c);
  const tensors = [...randomWeights(c, seed)]
    .filter(([name]) => c.positionEmbedding !== false || name !== 'position_embd.weight')
    .map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  return writeModelFile({ config: c, tensors, tokenizer, name: 'tiny', type });
}

/** mulberry32: a small seeded generator of floats in [0, 1) for the fuzzing tests. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = new TextEncoder();

/** Concatenates byte arrays, byte lists and strings (as UTF-8) into one Uint8Array. */
export function bytesOf(...parts: Array<number[] | string | Uint8Array>): Uint8Array {
  const arrays = parts.map((p) =>
    typeof p === 'string' ? enc.encode(p) : p instanceof Uint8Array ? p : Uint8Array.from(p),
  );
  const out = new Uint8Array(arrays.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** The CLI's io, recording what it writes (and how many writes to out); `input` becomes its
 *  standard input. */
export function captureIo(input?: string): { io: Io; out: () => string; err: () => string; writes: () => number } {
  let o = '',
    e = '',
    n = 0;
  const w = (f: (s: string) => void) =>
    ({
      write: (s: string) => {
        f(String(s));
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  return {
    io: {
      out: w((s) => {
        o += s;
        n++;
      }),
      err: w((s) => {
        e += s;
      }),
      in: input === undefined ? undefined : Readable.from([Buffer.from(input)]),
    },
    out: () => o,
    err: () => e,
    writes: () => n,
  };
}
