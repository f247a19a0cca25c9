// From a parsed model file to the module's model descriptor (assembly/model.ts): the configuration
// keys checked as host/runtime/model-file.ts checks them, every tensor present with exactly the
// shape the configuration implies, and a type this module runs (F32, F16, Q8_0, Q4_0 as stored:
// modelNew widens F16 and repacks the quantized types, as for every host).

import { die } from './io';
import { GgufFile, TensorInfo, getU32, getU32Array, getF32, getBool, getString, hasKey, ggmlTypeName, GGML_F32, GGML_F16 } from './gguf';
import {
  ABI_VERSION, D_ABI, D_V, D_D, D_L, D_N, D_K, D_DI, D_E, D_F, D_TOPK, D_T, D_EPS, D_BLOCK, D_GLOBALS, D_LAYERS,
  SLOT_WORDS, SLOT_ADDRESS, SLOT_TYPE, SLOT_EXTRA, GLOBAL_TENSORS, LAYER_TENSORS,
  G_TOK_EMBD, G_POS_EMBD, G_OUT_NORM_W, G_OUT_NORM_B, G_OUTPUT,
  S_SSM_NORM_W, S_SSM_NORM_B, S_SSM_IN, S_CONV_W, S_CONV_B, S_A_LOG, S_SSM_B, S_SSM_C, S_SSM_D, S_DT_W, S_DT_B,
  S_SSM_OUT, S_FFN_NORM_W, S_FFN_NORM_B, S_ROUTER, S_UP, S_DOWN, S_COUNT,
} from '../abi';
const Q4_0: u32 = 2;
const Q8_0: u32 = 8;

export class Config {
  V: i32 = 0; d: i32 = 0; L: i32 = 0; N: i32 = 0; K: i32 = 0; di: i32 = 0; E: i32 = 0; f: i32 = 0; k: i32 = 0; T: i32 = 0;
  eps: f32 = 0;
  moe: bool[] = [];
  tied: bool = true;
  positions: bool = true; // false: a position-free model (itera-lite.position_embedding = false)
}

const MAX_DIM: u32 = 1 << 24;

function dim(f: GgufFile, key: string, min: u32, max: u32): i32 {
  const v = getU32(f, key);
  if (v < min || v > max) die('model file configuration: ' + key + ' is ' + v.toString() + '; it must be a whole number from ' + min.toString() + ' to ' + max.toString());
  return <i32>v;
}

export function readConfig(f: GgufFile): Config {
  const arch = getString(f, 'general.architecture');
  if (arch != 'itera-lite') die("model file is for architecture '" + arch + "', not 'itera-lite': this module runs Itera-Lite models only");
  const c = new Config();
  c.V = dim(f, 'itera-lite.vocab_size', 1, MAX_DIM);
  c.T = dim(f, 'itera-lite.context_length', 1, MAX_DIM);
  c.d = dim(f, 'itera-lite.embedding_length', 1, MAX_DIM);
  c.L = dim(f, 'itera-lite.block_count', 1, 4096);
  c.N = dim(f, 'itera-lite.ssm.state_size', 1, MAX_DIM);
  c.K = dim(f, 'itera-lite.ssm.conv_kernel', 1, MAX_DIM);
  c.di = dim(f, 'itera-lite.ssm.inner_size', 1, MAX_DIM);
  c.f = dim(f, 'itera-lite.expert_feed_forward_length', 1, MAX_DIM);
  const layers = getU32Array(f, 'itera-lite.moe_layers');
  c.moe = new Array<bool>(c.L);
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    if (l >= <u32>c.L) die('model file configuration: moe layer ' + l.toString() + ' is not a layer index (0..' + (c.L - 1).toString() + ')');
    if (i > 0 && l <= layers[i - 1]) die('model file configuration: itera-lite.moe_layers must be strictly ascending');
    c.moe[<i32>l] = true;
  }
  if (layers.length > 0) {
    c.E = dim(f, 'itera-lite.expert_count', 1, 4096);
    c.k = dim(f, 'itera-lite.expert_used_count', 1, <u32>c.E);
  } else {
    c.E = dim(f, 'itera-lite.expert_count', 0, 4096);
    c.k = dim(f, 'itera-lite.expert_used_count', 0, <u32>c.E);
  }
  c.eps = getF32(f, 'itera-lite.layer_norm_epsilon');
  if (!(c.eps > 0 && c.eps < Infinity)) die('model file configuration: itera-lite.layer_norm_epsilon must be a finite number > 0');
  c.tied = getBool(f, 'itera-lite.tied_embeddings');
  if (hasKey(f, 'itera-lite.position_embedding')) {
    if (getBool(f, 'itera-lite.position_embedding')) die('model file configuration: itera-lite.position_embedding is written only when false (no learned positions)');
    c.positions = false;
  }
  // keep the largest tensor well inside 2^31 bytes of f32
  const big: u64[] = [<u64>c.V * <u64>c.d, <u64>c.T * <u64>c.d, 2 * <u64>c.di * <u64>c.d, <u64>c.di * <u64>c.di,
    <u64>c.E * <u64>c.f * <u64>c.d, <u64>c.N * <u64>c.di];
  for (let i = 0; i < big.length; i++) if (big[i] * 4 > 0x7fffffff) die('model file configuration: a tensor would not fit in memory');
  return c;
}

let lastType: u32 = 0;
let seen: Set<string> = new Set<string>();

function shapeText(s: u64[]): string {
  let t = '[';
  for (let i = 0; i < s.length; i++) t += (i > 0 ? ', ' : '') + s[i].toString();
  return t + ']';
}

/** The f32 data pointer of a tensor, checked against its expected shape. */
function tensor(f: GgufFile, name: string, shape: i32[]): usize {
  if (!f.tensors.has(name)) {
    let want = '[';
    for (let i = 0; i < shape.length; i++) want += (i > 0 ? ', ' : '') + shape[i].toString();
    die("model file is missing tensor '" + name + "' " + want + ']');
  }
  const t: TensorInfo = f.tensors.get(name);
  seen.add(name);
  let ok = t.shape.length == shape.length;
  for (let i = 0; ok && i < shape.length; i++) ok = t.shape[i] == <u64>shape[i];
  if (!ok) {
    const want = new Array<u64>(shape.length);
    for (let i = 0; i < shape.length; i++) want[i] = <u64>shape[i];
    die("model file tensor '" + name + "' has shape " + shapeText(t.shape) + ' but the configuration implies ' + shapeText(want));
  }
  lastType = GGML_F32;
  if (t.type == GGML_F32) return t.ptr;
  if (t.type == Q8_0 || t.type == Q4_0) { lastType = t.type; return t.ptr; }
  // F16 as stored: modelNew widens it (the one f16 conversion, kernels/quant.ts f16ToF32)
  if (t.type == GGML_F16) { lastType = t.type; return t.ptr; }
  die("model file tensor '" + name + "' is stored as " + ggmlTypeName(t.type) + ', which this module does not run yet (it runs F32, F16, Q8_0, Q4_0)');
  return 0;
}

function w(desc: usize, i: i32, v: u32): void { store<u32>(desc + (<usize>i << 2), v); }
/** Slot i after word base: the address and the type of the tensor() just read. */
function slot(desc: usize, base: i32, i: i32, p: usize): void {
  w(desc, base + SLOT_WORDS * i + SLOT_ADDRESS, <u32>p);
  w(desc, base + SLOT_WORDS * i + SLOT_TYPE, p == 0 ? 0 : lastType);
}
/** A global slot from the file's tensor of that slot's name, which must have this shape. */
function global(f: GgufFile, desc: usize, g: i32, shape: i32[]): void {
  slot(desc, D_GLOBALS, g, tensor(f, GLOBAL_TENSORS[g], shape));
}
/** Layer slot s from the file's tensor 'blk.<l>.<name of s><suffix>', which must have this shape. */
function layer(f: GgufFile, desc: usize, base: i32, b: string, s: i32, shape: i32[], suffix: string = ''): void {
  slot(desc, base, s, tensor(f, b + LAYER_TENSORS[s] + suffix, shape));
}

/** Writes the descriptor (a fresh heap block) for the model in f; the tensors stay in the file's bytes. */
export function buildDescriptor(f: GgufFile, c: Config): usize {
  seen = new Set<string>();
  const words = D_LAYERS + SLOT_WORDS * S_COUNT * c.L;
  const desc = heap.alloc(<usize>words << 2);
  memory.fill(desc, 0, <usize>words << 2);
  w(desc, D_ABI, <u32>ABI_VERSION);
  w(desc, D_V, c.V); w(desc, D_D, c.d); w(desc, D_L, c.L); w(desc, D_N, c.N); w(desc, D_K, c.K); w(desc, D_DI, c.di);
  w(desc, D_E, c.E); w(desc, D_F, c.f); w(desc, D_TOPK, c.k); w(desc, D_T, c.T);
  w(desc, D_EPS, reinterpret<u32>(c.eps));
  w(desc, D_BLOCK, 0); // the weights live in the file's bytes, owned here
  const V = c.V, d = c.d, T = c.T, di = c.di, K = c.K, N = c.N, E = c.E, ff = c.f;
  global(f, desc, G_TOK_EMBD, [V, d]);
  if (c.positions) global(f, desc, G_POS_EMBD, [T, d]);
  else slot(desc, D_GLOBALS, G_POS_EMBD, 0); // position-free: no positions, no limit at T
  global(f, desc, G_OUT_NORM_W, [d]);
  global(f, desc, G_OUT_NORM_B, [d]);
  if (c.tied) slot(desc, D_GLOBALS, G_OUTPUT, 0); // a tied head: address 0, the module uses the embedding
  else global(f, desc, G_OUTPUT, [V, d]);
  for (let l = 0; l < c.L; l++) {
    const base = D_LAYERS + l * SLOT_WORDS * S_COUNT;
    const b = 'blk.' + l.toString() + '.';
    layer(f, desc, base, b, S_SSM_NORM_W, [d]);
    layer(f, desc, base, b, S_SSM_NORM_B, [d]);
    layer(f, desc, base, b, S_SSM_IN, [2 * di, d]);
    layer(f, desc, base, b, S_CONV_W, [di, K]);
    layer(f, desc, base, b, S_CONV_B, [di]);
    layer(f, desc, base, b, S_A_LOG, [N]);
    layer(f, desc, base, b, S_SSM_B, [N, di]);
    // C as stored: ssm_c [di, N], or transposed as ssm_c_t [N, di] (then the slot's extra word is 1)
    const cName = b + LAYER_TENSORS[S_SSM_C];
    if (f.tensors.has(cName + '_t')) {
      if (f.tensors.has(cName)) die("model file has both '" + cName + "' and '" + cName + "_t': it must have one");
      layer(f, desc, base, b, S_SSM_C, [N, di], '_t');
      w(desc, base + SLOT_WORDS * S_SSM_C + SLOT_EXTRA, 1);
    } else layer(f, desc, base, b, S_SSM_C, [di, N]);
    layer(f, desc, base, b, S_SSM_D, [di]);
    layer(f, desc, base, b, S_DT_W, [di, di]);
    layer(f, desc, base, b, S_DT_B, [di]);
    layer(f, desc, base, b, S_SSM_OUT, [d, di]);
    layer(f, desc, base, b, S_FFN_NORM_W, [d]);
    layer(f, desc, base, b, S_FFN_NORM_B, [d]);
    if (c.moe[l]) {
      layer(f, desc, base, b, S_ROUTER, [E, d]);
      layer(f, desc, base, b, S_UP, [E, ff, d], '_exps.weight');
      layer(f, desc, base, b, S_DOWN, [E, d, ff], '_exps.weight');
    } else {
      slot(desc, base, S_ROUTER, 0);
      layer(f, desc, base, b, S_UP, [ff, d], '.weight');
      layer(f, desc, base, b, S_DOWN, [d, ff], '.weight');
    }
  }
  for (let i = 0; i < f.tensorOrder.length; i++) {
    const n = f.tensorOrder[i];
    if (!seen.has(n)) die("model file has tensor '" + n + "' that an Itera-Lite model with this configuration does not have" +
      (n == 'output.weight' ? ' (output.weight with itera-lite.tied_embeddings = true)' : ''));
  }
  return desc;
}

export function hasName(f: GgufFile): string { return hasKey(f, 'general.name') ? getString(f, 'general.name') : ''; }
