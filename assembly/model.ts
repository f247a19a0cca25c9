// The Itera-Lite forward pass, as ../shared/spec/architecture.md states it.
//
// Memory: a Model is laid out once (its weights are copied into linear memory by the host,
// once, and derived tables are computed here at load); a Session is laid out once when it is
// created. Nothing below allocates after that: the per-token path only reads and writes
// those buffers.
//
// Names: V vocab, d hidden, L layers, N ssm state, K conv width, di = e*d inner width,
// E experts, f expert (or FFN) width, k experts used, T positions.

import { add_f32, axpy_f32 } from './kernels/f32';
import { gelu_inplace, layernorm, softplusMean } from './kernels/math';
import { convSilu, gateY, scanStep } from './kernels/ssm';
import {
  ABI_VERSION, D_ABI, D_V, D_D, D_L, D_N, D_K, D_DI, D_E, D_F, D_TOPK, D_T, D_EPS,
  D_BLOCK, D_GLOBALS, SLOT_WORDS, SLOT_ADDRESS, SLOT_TYPE, SLOT_SCALES, SLOT_EXTRA, G_TOK_EMBD,
  G_POS_EMBD, G_OUT_NORM_W, G_OUT_NORM_B, G_OUTPUT, G_COUNT, D_LAYERS, S_SSM_NORM_W, S_SSM_NORM_B,
  S_SSM_IN, S_CONV_W, S_CONV_B, S_A_LOG, S_SSM_B, S_SSM_C, S_SSM_D, S_DT_W, S_DT_B, S_SSM_OUT,
  S_FFN_NORM_W, S_FFN_NORM_B, S_ROUTER, S_UP, S_DOWN, S_COUNT, OK, ERR_BAD_TOKEN, ERR_EMPTY,
  ERR_BAD_PARAM, ERR_BAD_MODEL, ERR_BAD_TYPE, WINDOW_EXACT, WINDOW_SLIDE, SAMPLER_VERSION,
} from './abi';
import { Mat, QScratch, QK, T_F32, T_F16, T_Q4_0, T_Q8_0, T_I8, f16ToF32, repackMatrix, matmul, matvec, matRow } from './kernels/quant';

// ---- Error reporting -------------------------------------------------------------------

let lastDetail: i32 = 0;
let lastError: i32 = 0;
export function setDetail(v: i32): void { lastDetail = v; }
export function getDetail(): i32 { return lastDetail; }
export function getError(): i32 { return lastError; }
function fail(code: i32, detail: i32): usize { lastError = code; lastDetail = detail; return 0; }

// ---- Structures -----------------------------------------------------------------------

@unmanaged
export class Layer {
  ssm_norm_w: usize; // [d]
  ssm_norm_b: usize; // [d]
  ssm_in: Mat; // [2*di, d]
  ssm_in_a: Mat; // its first di rows (a without g: the last layer where no output is wanted)
  conv_t: usize; // [K, di]  conv taps transposed at load, tap-major
  conv_b: usize; // [di]
  a_neg: usize; // [N]  A = -exp(A_log), computed at load
  ssm_b: Mat; // [N, di]
  c_t: usize; // [N, di] f32: C transposed, built at load from any stored form
  ssm_d: usize; // [di]
  dt_w: Mat; // [di, di]
  dt_b: usize; // [di]
  ssm_out: Mat; // [d, di]
  ffn_norm_w: usize; // [d]
  ffn_norm_b: usize; // [d]
  router: Mat; // [E, d]; null (0) when dense
  up: usize; // MoE: E Mats [f, d], one per expert; dense: one Mat
  down: usize; // MoE: E Mats [d, f]; dense: one Mat
  moe: i32; // 1 for a MoE layer
}

@unmanaged
export class Model {
  V: i32;
  d: i32;
  L: i32;
  N: i32;
  K: i32;
  di: i32;
  E: i32;
  f: i32;
  k: i32;
  T: i32;
  eps: f32;
  maxCols: i32; // widest input of any matrix (for the activation scratch)
  block: usize; // weights block owned by the model
  derived: usize; // one block for everything computed at load (Mats, scales, f32 copies, tables)
  tok_embd: Mat; // [V, d]
  pos_embd: Mat; // [T, d]; null (0) for a position-free model
  out_norm_w: usize; // [d]
  out_norm_b: usize; // [d]
  output: Mat; // [V, d] (the same Mat as tok_embd when tied)
  layers: usize; // L Layer structs, contiguous
}


/** Positions run together through each layer (a prompt is cut into chunks of this many): every
 *  weight chunk is widened once per four of them, and each position's buffers are rows of the
 *  session's chunk buffers. */
export const CHUNK: i32 = 8;

@unmanaged
export class Session {
  model: Model;
  pos: i32; // tokens in the current window (<= T)
  mode: i32; // WINDOW_EXACT or WINDOW_SLIDE
  block: usize; // the one allocation holding every buffer below
  // [CHUNK] rows each, a row of n floats taking rowOf(n) of them:
  h: usize; // [d] residual
  u: usize; // [d] normed
  xz: usize; // [2*di] in_proj output: a then g
  sv: usize; // [di] SiLU(conv(a))
  tmp: usize; // [max(di, d)] scratch
  y: usize; // [di]
  bs: usize; // [N] B . s
  m: usize; // [d] MoE / FFN output
  hid: usize; // [max(k, 1) * f] the FFN's hidden vector, or the picked experts'
  // one row:
  rl: usize; // [E] router logits
  picks: usize; // [k] i32 chosen experts
  gates: usize; // [k] f32
  logits: usize; // [V] logits of the last position
  conv: usize; // [L, K-1, di] last K-1 values of a, a ring: the oldest in slot `ring`
  ring: i32; // the conv windows' oldest slot (every layer advances together)
  z: usize; // [L, N] scan state
  hist: usize; // [T] i32 tokens of the current window
  probs: usize; // [V] f32 sampler scratch
  idx: usize; // [V] i32 sampler scratch
  qs: QScratch; // quantized activations, CHUNK rows (int16 [stride]; f32 and i32 [stride/32])
  bout: usize; // [CHUNK, V] logits of a batch's rows: only in a batch's scratch session, else 0
  temperature: f32;
  topk: i32;
  topp: f32;
  rng: u64;
  sampler: i32; // the sampler's version (abi.ts SAMPLER_*)
}

// ---- Helpers ----------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function fat(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function fset(p: usize, i: i32, v: f32): void { store<f32>(p + (<usize>i << 2), v); }

function alloc16(bytes: usize): usize {
  // the TLSF allocator hands out 16-byte aligned blocks; zero them so states start at 0
  const p = heap.alloc(bytes);
  memory.fill(p, 0, bytes);
  return p;
}

/** Whether m has learned positions (and so a window of T tokens past which the exact mode
 *  recomputes); false for a position-free model, which has no position slot. */
// @ts-ignore: decorator
@inline export function hasPositions(m: Model): bool { return changetype<usize>(m.pos_embd) != 0; }

// ---- Model ------------------------------------------------------------------------------

/** Builds a Model from a descriptor; returns 0 (with the offending word in the detail) if it is
 *  inconsistent. The host validates the file first; this is the module's own last line. */
// @ts-ignore: decorator
@inline function word(desc: usize, i: i32): u32 { return load<u32>(desc + (<usize>i << 2)); }

/** Rows and columns of a tensor slot (a vector is 1 x n). The layer's MoE flag picks the expert
 *  shapes for UP and DOWN. */
function slotShape(m: Model, global: bool, slot: i32, moe: bool): u64 {
  const V = m.V, d = m.d, di = m.di, N = m.N, K = m.K, E = m.E, f = m.f, T = m.T;
  let rows = 1, cols = 0;
  if (global) {
    if (slot == G_TOK_EMBD || slot == G_OUTPUT) { rows = V; cols = d; }
    else if (slot == G_POS_EMBD) { rows = T; cols = d; }
    else cols = d;
  } else if (slot == S_SSM_IN) { rows = 2 * di; cols = d; }
  else if (slot == S_CONV_W) { rows = di; cols = K; }
  else if (slot == S_A_LOG) cols = N;
  else if (slot == S_SSM_B) { rows = N; cols = di; }
  else if (slot == S_SSM_C) { rows = di; cols = N; } // transposed: see checkType
  else if (slot == S_DT_W) { rows = di; cols = di; }
  else if (slot == S_SSM_OUT) { rows = d; cols = di; }
  else if (slot == S_ROUTER) { rows = E; cols = d; }
  else if (slot == S_UP) { rows = moe ? E * f : f; cols = d; }
  else if (slot == S_DOWN) { rows = moe ? E * d : d; cols = f; }
  else if (slot == S_SSM_NORM_W || slot == S_SSM_NORM_B || slot == S_FFN_NORM_W || slot == S_FFN_NORM_B) cols = d;
  else cols = di; // CONV_B, SSM_D, DT_B
  return (<u64>rows << 32) | <u64>cols;
}

// @ts-ignore: decorator
@inline function isMatrixSlot(global: bool, slot: i32): bool {
  if (global) return slot == G_TOK_EMBD || slot == G_OUTPUT || slot == G_POS_EMBD;
  return slot == S_SSM_IN || slot == S_SSM_B || slot == S_SSM_C || slot == S_DT_W || slot == S_SSM_OUT ||
    slot == S_ROUTER || slot == S_UP || slot == S_DOWN;
}

/** Bytes between consecutive Mats of one layer's experts (take() rounds to 16). */
const MAT_STRIDE: usize = (offsetof<Mat>() + 15) & ~15;

/** The load-time builder: pass 0 only measures the derived block, pass 1 fills it. */
let bPass: i32 = 0;
let bCursor: usize = 0;
function take(bytes: usize): usize {
  const p = bCursor;
  bCursor += (bytes + 15) & ~15;
  return p;
}

/** A tensor slot as f32 values: the file's own bytes when F32, a converted copy when F16.
 *  Returns 0 (pass 1 only meaningful) or fails for a type a vector cannot have. */
function vectorSlot(desc: usize, w: i32, n: i32): usize {
  const addr = <usize>word(desc, w);
  const type = <i32>word(desc, w + 1);
  if (type == T_F32) return addr;
  // F16: converted into the derived block
  const out = take(<usize>n << 2);
  if (bPass == 1) for (let i = 0; i < n; i++) store<f32>(out + (<usize>i << 2), f16ToF32(<u32>load<u16>(addr + (<usize>i << 1))));
  return out;
}

/** One Mat over rows [r0, r0 + rows) of a matrix slot whose full shape is [allRows, cols]. */
function matSlice(desc: usize, w: i32, allRows: i32, cols: i32, r0: i32, rows: i32, full: Mat): Mat {
  const m = changetype<Mat>(take(offsetof<Mat>()));
  if (bPass == 1) {
    m.type = full.type;
    m.rows = rows;
    m.cols = cols;
    m.zp = full.zp;
    const nb = cols / QK;
    if (full.type == T_F32) { m.q = full.q + (<usize>r0 * <usize>cols << 2); m.s = 0; }
    else if (full.type == T_Q4_0) { m.q = full.q + <usize>r0 * <usize>(cols >> 1); m.s = full.s + (<usize>(r0 * nb) << 2); }
    else { m.q = full.q + <usize>r0 * <usize>cols; m.s = full.s + (<usize>(r0 * nb) << 2); }
    m.ns = full.ns != 0 ? full.ns + (<usize>(r0 * nb) << 1) : 0;
  }
  return m;
}

/** C as f32 [N, di] (transposed, so that C . z is N scaled rows added up) from the slot: F32 or
 *  F16 [di, N], or transposed ([N, di]) F32, F16, Q8_0 or Q4_0 (dequantized from the file's
 *  blocks). Pass 1 does the work. */
function cTransposed(desc: usize, w: i32, di: i32, N: i32): usize {
  const out = take(<usize>(N * di) << 2);
  if (bPass == 0) return out;
  const addr = <usize>word(desc, w);
  const type = <i32>word(desc, w + 1);
  const transposed = word(desc, w + 3) == 1;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < di; c++) {
      const i = transposed ? n * di + c : c * N + n; // index of C[c][n] as stored
      let v: f32;
      if (type == T_F32) v = load<f32>(addr + (<usize>i << 2));
      else if (type == T_F16) v = f16ToF32(<u32>load<u16>(addr + (<usize>i << 1)));
      else if (type == T_Q8_0) {
        const blk = addr + <usize>(i / QK) * 34;
        v = f16ToF32(<u32>load<u16>(blk)) * <f32>load<i8>(blk + 2 + <usize>(i % QK));
      } else {
        // Q4_0: byte j of a block holds value j (low nibble) and value j + 16 (high)
        const blk = addr + <usize>(i / QK) * 18;
        const j = i % QK;
        const byte = <i32>load<u8>(blk + 2 + <usize>(j & 15));
        v = f16ToF32(<u32>load<u16>(blk)) * <f32>((j < 16 ? byte & 15 : byte >> 4) - 8);
      }
      fset(out, n * di + c, v);
    }
  }
  return out;
}

/** The whole matrix of a slot, repacked for the kernels. Pass 1 does the work. */
function matSlot(desc: usize, w: i32, rows: i32, cols: i32, groups: i32 = 1): Mat {
  const m = changetype<Mat>(take(offsetof<Mat>()));
  const addr = <usize>word(desc, w);
  let type = <i32>word(desc, w + 1);
  const nb = cols / QK;
  const blocks = rows * nb;
  let q = addr;
  let sc: usize = 0, ns: usize = 0;
  if (type == T_F16) {
    q = vectorSlot(desc, w, rows * cols);
    type = T_F32;
  } else if (type == T_Q8_0 || type == T_Q4_0 || type == T_I8) {
    sc = take(<usize>blocks << 2);
    // the relaxed build's Q4_0 kernel takes each block's nibble sum (kernels/quant.ts)
    if (ASC_FEATURE_RELAXED_SIMD && type == T_Q4_0) ns = take(<usize>blocks << 1);
    if (bPass == 1) {
      repackMatrix(type, addr, sc, rows, cols, groups, ns);
      if (type == T_I8) {
        // every block of a row group takes the group's scale
        const scales = <usize>word(desc, w + 2);
        const perGroup = blocks / groups;
        for (let i = 0; i < blocks; i++) store<f32>(sc + (<usize>i << 2), load<f32>(scales + (<usize>(i / perGroup) << 2)));
      }
    }
  }
  if (bPass == 1) {
    m.q = q;
    m.s = sc;
    m.ns = ns;
    m.type = type;
    m.rows = rows;
    m.cols = cols;
    m.zp = type == T_I8 ? <i32>word(desc, w + 3) : 0;
  }
  return m;
}

/** Builds a Model from a descriptor; returns 0 (with the error and the offending word) if it is
 *  inconsistent. The host validates the file first; this is the module's own last line. */
export function modelNew(desc: usize): usize {
  if (<i32>word(desc, D_ABI) != ABI_VERSION) return fail(ERR_BAD_MODEL, D_ABI);
  for (let i = D_V; i <= D_T; i++) {
    const v = word(desc, i);
    // E and k may be 0 in a model without MoE layers
    if ((v == 0 && i != D_E && i != D_TOPK) || v > 1 << 24) return fail(ERR_BAD_MODEL, i);
  }
  const E = <i32>word(desc, D_E), k = <i32>word(desc, D_TOPK);
  if (k > E) return fail(ERR_BAD_MODEL, D_TOPK);
  const L = <i32>word(desc, D_L);

  const m = changetype<Model>(alloc16(offsetof<Model>()));
  m.V = <i32>word(desc, D_V);
  m.d = <i32>word(desc, D_D);
  m.L = L;
  m.N = <i32>word(desc, D_N);
  m.K = <i32>word(desc, D_K);
  m.di = <i32>word(desc, D_DI);
  m.E = E;
  m.f = <i32>word(desc, D_F);
  m.k = k;
  m.T = <i32>word(desc, D_T);
  m.eps = reinterpret<f32>(word(desc, D_EPS));
  m.maxCols = max(max(m.d, m.di), max(m.f, m.N));

  // every slot: present (but the optional ones), a known type, quantized only where allowed
  for (let g = 0; g < G_COUNT; g++) {
    const w = D_GLOBALS + SLOT_WORDS * g;
    if (word(desc, w) == 0 && g != G_OUTPUT && g != G_POS_EMBD) { heap.free(changetype<usize>(m)); return fail(ERR_BAD_MODEL, w); }
    const bad = checkType(m, desc, w, true, g, false);
    if (bad != 0) { heap.free(changetype<usize>(m)); return fail(ERR_BAD_TYPE, w + 1); }
  }
  for (let l = 0; l < L; l++) {
    const base = D_LAYERS + l * SLOT_WORDS * S_COUNT;
    const moe = word(desc, base + SLOT_WORDS * S_ROUTER) != 0;
    if (moe && k == 0) { heap.free(changetype<usize>(m)); return fail(ERR_BAD_MODEL, D_TOPK); }
    for (let s = 0; s < S_COUNT; s++) {
      const w = base + SLOT_WORDS * s;
      if (s != S_ROUTER && word(desc, w) == 0) { heap.free(changetype<usize>(m)); return fail(ERR_BAD_MODEL, w); }
      if (checkType(m, desc, w, false, s, moe) != 0) { heap.free(changetype<usize>(m)); return fail(ERR_BAD_TYPE, w + 1); }
    }
  }

  m.block = <usize>word(desc, D_BLOCK);
  // two passes over the same code: measure the derived block, then fill it
  for (bPass = 0; bPass < 2; bPass++) {
    if (bPass == 0) bCursor = 0;
    else { m.derived = alloc16(bCursor); bCursor = m.derived; }
    buildModel(m, desc);
  }
  return changetype<usize>(m);
}

/** 0 if the slot's type is one this build runs for that slot (and its shape suits it). */
function checkType(m: Model, desc: usize, w: i32, global: bool, slot: i32, moe: bool): i32 {
  if (word(desc, w) == 0) return 0;
  const type = <i32>word(desc, w + 1);
  if (type == T_F32 || type == T_F16) return 0;
  if (type != T_Q8_0 && type != T_Q4_0 && type != T_I8) return 1;
  if (!isMatrixSlot(global, slot)) return 1;
  let cols = <i32>(slotShape(m, global, slot, moe) & 0xffffffff);
  if (!global && slot == S_SSM_C) {
    // quantized C only as stored transposed (rows of di values), dequantized at load
    if (word(desc, w + 3) != 1 || type == T_I8) return 1;
    cols = m.di;
  }
  if (cols % QK != 0) return 1;
  if (type == T_I8 && word(desc, w + 2) == 0) return 1; // no scales
  return 0;
}

function buildModel(m: Model, desc: usize): void {
  const L = m.L, K = m.K, di = m.di, N = m.N, E = m.E;
  m.tok_embd = matSlot(desc, D_GLOBALS + SLOT_WORDS * G_TOK_EMBD, m.V, m.d);
  m.output = word(desc, D_GLOBALS + SLOT_WORDS * G_OUTPUT) == 0 ? m.tok_embd : matSlot(desc, D_GLOBALS + SLOT_WORDS * G_OUTPUT, m.V, m.d);
  // no position slot: a position-free model (its conv and scan carry order; no limit at T)
  m.pos_embd = word(desc, D_GLOBALS + SLOT_WORDS * G_POS_EMBD) == 0 ? changetype<Mat>(0) : matSlot(desc, D_GLOBALS + SLOT_WORDS * G_POS_EMBD, m.T, m.d);
  m.out_norm_w = vectorSlot(desc, D_GLOBALS + SLOT_WORDS * G_OUT_NORM_W, m.d);
  m.out_norm_b = vectorSlot(desc, D_GLOBALS + SLOT_WORDS * G_OUT_NORM_B, m.d);
  const layerSize = offsetof<Layer>();
  const layers = take(<usize>L * layerSize);
  if (bPass == 1) m.layers = layers;
  for (let l = 0; l < L; l++) {
    const base = D_LAYERS + l * SLOT_WORDS * S_COUNT;
    const ly = changetype<Layer>(layers + <usize>l * layerSize);
    const moe = word(desc, base + SLOT_WORDS * S_ROUTER) != 0;
    const ssm_norm_w = vectorSlot(desc, base + SLOT_WORDS * S_SSM_NORM_W, m.d);
    const ssm_norm_b = vectorSlot(desc, base + SLOT_WORDS * S_SSM_NORM_B, m.d);
    const ssm_in = matSlot(desc, base + SLOT_WORDS * S_SSM_IN, 2 * di, m.d);
    // (a slice is only laid out like a matrix of its own on a whole group of four rows)
    const ssm_in_a = di % 4 == 0 ? matSlice(desc, base + SLOT_WORDS * S_SSM_IN, 2 * di, m.d, 0, di, ssm_in) : ssm_in;
    const convW = vectorSlot(desc, base + SLOT_WORDS * S_CONV_W, di * K);
    const conv_b = vectorSlot(desc, base + SLOT_WORDS * S_CONV_B, di);
    const aLog = vectorSlot(desc, base + SLOT_WORDS * S_A_LOG, N);
    const ssm_b = matSlot(desc, base + SLOT_WORDS * S_SSM_B, N, di);
    const c_t = cTransposed(desc, base + SLOT_WORDS * S_SSM_C, di, N);
    const ssm_d = vectorSlot(desc, base + SLOT_WORDS * S_SSM_D, di);
    const dt_w = matSlot(desc, base + SLOT_WORDS * S_DT_W, di, di);
    const dt_b = vectorSlot(desc, base + SLOT_WORDS * S_DT_B, di);
    const ssm_out = matSlot(desc, base + SLOT_WORDS * S_SSM_OUT, m.d, di);
    const ffn_norm_w = vectorSlot(desc, base + SLOT_WORDS * S_FFN_NORM_W, m.d);
    const ffn_norm_b = vectorSlot(desc, base + SLOT_WORDS * S_FFN_NORM_B, m.d);
    const router = moe ? matSlot(desc, base + SLOT_WORDS * S_ROUTER, E, m.d) : changetype<Mat>(0);
    const nExp = moe ? E : 1;
    const upAll = matSlot(desc, base + SLOT_WORDS * S_UP, nExp * m.f, m.d, nExp);
    const downAll = matSlot(desc, base + SLOT_WORDS * S_DOWN, nExp * m.d, m.f, nExp);
    const up = bCursor;
    for (let e = 0; e < nExp; e++) matSlice(desc, base + SLOT_WORDS * S_UP, nExp * m.f, m.d, e * m.f, m.f, upAll);
    const down = bCursor;
    for (let e = 0; e < nExp; e++) matSlice(desc, base + SLOT_WORDS * S_DOWN, nExp * m.d, m.f, e * m.d, m.d, downAll);
    const convT = take(<usize>(K * di) << 2);
    const aNeg = take(<usize>N << 2);
    if (bPass == 0) continue;
    ly.ssm_norm_w = ssm_norm_w;
    ly.ssm_norm_b = ssm_norm_b;
    ly.ssm_in = ssm_in;
    ly.ssm_in_a = ssm_in_a;
    ly.conv_b = conv_b;
    ly.ssm_b = ssm_b;
    ly.c_t = c_t;
    ly.ssm_d = ssm_d;
    ly.dt_w = dt_w;
    ly.dt_b = dt_b;
    ly.ssm_out = ssm_out;
    ly.ffn_norm_w = ffn_norm_w;
    ly.ffn_norm_b = ffn_norm_b;
    ly.router = router;
    ly.up = up;
    ly.down = down;
    ly.moe = moe ? 1 : 0;
    // conv1d.weight [di, 1, K] -> taps [K, di] so that one tap runs across channels
    ly.conv_t = convT;
    for (let c = 0; c < di; c++) {
      for (let j = 0; j < K; j++) fset(convT, j * di + c, fat(convW, c * K + j));
    }
    // A = -exp(A_log)
    ly.a_neg = aNeg;
    for (let n = 0; n < N; n++) fset(aNeg, n, -Mathf.exp(fat(aLog, n)));
  }
}

export function modelFree(mp: usize): void {
  const m = changetype<Model>(mp);
  if (m.block != 0) heap.free(m.block);
  heap.free(m.derived);
  heap.free(mp);
}

// ---- Session ----------------------------------------------------------------------------

/** Bytes of n floats rounded up to 16. */
// @ts-ignore: decorator
@inline function fl(n: i32): usize { return <usize>((n + 3) & ~3) << 2; }

/** Floats one chunk row of n floats takes (rounded up to 4: every row 16-byte aligned). */
// @ts-ignore: decorator
@inline function rowOf(n: i32): i32 { return (n + 3) & ~3; }

export function sessionNew(mp: usize): usize {
  const m = changetype<Model>(mp);
  const s = changetype<Session>(alloc16(offsetof<Session>()));
  s.model = m;
  s.mode = WINDOW_EXACT;
  const d = m.d, di = m.di, V = m.V, L = m.L, N = m.N, K = m.K, E = m.E, k = m.k, f = m.f;
  const C = CHUNK;
  const stride = (m.maxCols + QK - 1) & ~(QK - 1);
  // every buffer in one block, each rounded up to 4 floats (16 bytes); two passes: size, then place
  let p: usize = 0;
  for (let pass = 0; pass < 2; pass++) {
    if (pass == 1) { s.block = alloc16(p); p = s.block; }
    s.h = p; p += fl(C * rowOf(d));
    s.u = p; p += fl(C * rowOf(d));
    s.xz = p; p += fl(C * rowOf(2 * di));
    s.sv = p; p += fl(C * rowOf(di));
    s.tmp = p; p += fl(C * rowOf(max(di, d)));
    s.y = p; p += fl(C * rowOf(di));
    s.bs = p; p += fl(C * rowOf(N));
    s.m = p; p += fl(C * rowOf(d));
    s.hid = p; p += fl(C * rowOf(max(k, 1) * f));
    s.rl = p; p += fl(E);
    s.picks = p; p += fl(k);
    s.gates = p; p += fl(k);
    s.logits = p; p += fl(V);
    s.conv = p; p += fl(L * (K - 1) * di);
    s.z = p; p += fl(L * N);
    s.hist = p; p += fl(m.T);
    s.probs = p; p += fl(V);
    s.idx = p; p += fl(V);
    s.qs = changetype<QScratch>(p); p += (offsetof<QScratch>() + 15) & ~15;
    const xq = p; p += fl(C * stride / 2);
    const xd = p; p += fl(C * stride / QK);
    const xs = p; p += fl(C * stride / QK);
    // the relaxed build's split activations (kernels/quant.ts, splitBlock): xq's size
    const xb = ASC_FEATURE_RELAXED_SIMD ? p : 0;
    if (ASC_FEATURE_RELAXED_SIMD) p += fl(C * stride / 2);
    if (pass == 1) { s.qs.xq = xq; s.qs.xd = xd; s.qs.xs = xs; s.qs.stride = stride; s.qs.xb = xb; }
  }
  s.temperature = 0;
  s.topk = 0;
  s.topp = 1;
  s.rng = 0x9E3779B97F4A7C15;
  s.sampler = SAMPLER_VERSION;
  return changetype<usize>(s);
}

export function sessionFree(sp: usize): void {
  const s = changetype<Session>(sp);
  if (s.bout != 0) heap.free(s.bout);
  heap.free(s.block);
  heap.free(sp);
}

/** Forget every token: position 0, zero conv windows and scan states. */
export function sessionReset(s: Session): void {
  const m = s.model;
  s.pos = 0;
  clearState(s, m);
}

function clearState(s: Session, m: Model): void {
  s.ring = 0;
  memory.fill(s.conv, 0, <usize>(m.L * (m.K - 1) * m.di) << 2);
  memory.fill(s.z, 0, <usize>(m.L * m.N) << 2);
}

// ---- Forward ----------------------------------------------------------------------------

/** Row i of a chunk buffer whose rows are `stride` floats apart (rowOf of what a row holds). */
// @ts-ignore: decorator
@inline function row(buf: usize, stride: i32, i: i32): usize { return buf + (<usize>(i * stride) << 2); }

// A batch's rows: row i is the next token of session BATCH_SESSIONS[i] at position
// BATCH_POSITIONS[i], with that session's own conv window, ring and scan state.
export const BATCH_IDS = memory.data(CHUNK << 2, 16);
export const BATCH_SESSIONS = memory.data(CHUNK << 2, 16);
export const BATCH_POSITIONS = memory.data(CHUNK << 2, 16);
// @ts-ignore: decorator
@inline export function batchSession(i: i32): Session { return changetype<Session>(load<u32>(BATCH_SESSIONS + (<usize>i << 2))); }

/** P (<= CHUNK) tokens from ids (i32) at positions p0 .. p0+P-1, layer by layer (each matrix runs
 *  on all P positions at once), updating the recurrent state. With outAll, every position's V
 *  logits go to out (rows V apart); else, if out != 0, the last position's logits; else none, and
 *  the last layer only carries its recurrent state (conv window and scan): g, y, out_proj and the
 *  MoE/FFN block feed nothing but logits. Every position's arithmetic is the same whatever P is,
 *  so a prompt in chunks and token by token give the same bits.
 *  batch: the rows are P sessions' next tokens (BATCH_*) rather than P positions of s; s is then
 *  only the scratch whose chunk buffers they use, and p0 is unused. */
export function forwardChunk(s: Session, ids: usize, p0: i32, P: i32, out: usize, outAll: bool, batch: bool = false): void {
  const m = s.model;
  const d = m.d, di = m.di, N = m.N, K = m.K, f = m.f, eps = m.eps;
  const rd = rowOf(d), rdi = rowOf(di), r2di = rowOf(2 * di), rtmp = rowOf(max(di, d)), rN = rowOf(N), rf = rowOf(max(m.k, 1) * f);
  const H = s.h, U = s.u, XZ = s.xz, SV = s.sv, TMP = s.tmp, Y = s.y, BS = s.bs, M = s.m, HID = s.hid;

  // h = embedding[x] + position_embedding[p] (a position-free model: embedding[x] alone)
  const positions = hasPositions(m);
  for (let i = 0; i < P; i++) {
    const h = row(H, rd, i), e = row(M, rd, i);
    matRow(m.tok_embd, load<i32>(ids + (<usize>i << 2)), h);
    if (positions) {
      matRow(m.pos_embd, batch ? load<i32>(BATCH_POSITIONS + (<usize>i << 2)) : p0 + i, e);
      add_f32(e, h, d);
    }
  }

  for (let l = 0; l < m.L; l++) {
    const ly = changetype<Layer>(m.layers + <usize>l * offsetof<Layer>());
    const stateOnly = out == 0 && l == m.L - 1;

    // ---- SSM block
    // u = LayerNorm(h; ssm.norm)
    for (let i = 0; i < P; i++) layernorm(row(H, rd, i), ly.ssm_norm_w, ly.ssm_norm_b, row(U, rd, i), d, eps);
    // [a; g] = in_proj . u
    matmul(stateOnly ? ly.ssm_in_a : ly.ssm_in, U, rd, XZ, r2di, P, s.qs);
    // c = conv1d.bias + sum_j conv1d.weight[:, 0, j] * a_{t-K+1+j};  s = SiLU(c), position by
    // position through the ring (which advances once per position, for every layer alike)
    const convAt = <usize>(l * (K - 1) * di) << 2;
    const win = s.conv + convAt; // a_{t-K+1} .. a_{t-1}
    let ring = s.ring;
    for (let i = 0; i < P; i++) {
      if (batch) {
        const bi = batchSession(i);
        convSilu(bi.conv + convAt, bi.ring, ly.conv_t, ly.conv_b, row(XZ, r2di, i), row(SV, rdi, i), di, K);
        continue;
      }
      convSilu(win, ring, ly.conv_t, ly.conv_b, row(XZ, r2di, i), row(SV, rdi, i), di, K);
      if (K > 1 && ++ring == K - 1) ring = 0;
    }
    // delta_proj . s and B . s (s quantized once for both, when both are quantized)
    const svq = matmul(ly.dt_w, SV, rdi, TMP, rtmp, P, s.qs);
    matmul(ly.ssm_b, SV, rdi, BS, rN, P, s.qs, svq);
    // per position: delta = mean_c softplus(delta_proj . s + bias); z = exp(delta * A) * z +
    // delta * (B . s); y = (C . z + D * s) * SiLU(g)
    const zAt = <usize>(l * N) << 2;
    for (let i = 0; i < P; i++) {
      const z = (batch ? batchSession(i).z : s.z) + zAt;
      const delta = softplusMean(row(TMP, rtmp, i), ly.dt_b, di);
      scanStep(z, ly.a_neg, row(BS, rN, i), delta, N);
      if (!stateOnly) gateY(row(Y, rdi, i), ly.c_t, z, N, ly.ssm_d, row(SV, rdi, i), row(XZ, r2di, i) + (<usize>di << 2), di);
    }
    if (stateOnly) break;
    // h = h + out_proj . y
    matmul(ly.ssm_out, Y, rdi, TMP, rtmp, P, s.qs);
    for (let i = 0; i < P; i++) add_f32(row(TMP, rtmp, i), row(H, rd, i), d);

    // ---- MoE or FFN
    for (let i = 0; i < P; i++) layernorm(row(H, rd, i), ly.ffn_norm_w, ly.ffn_norm_b, row(U, rd, i), d, eps);
    if (ly.moe) {
      for (let i = 0; i < P; i++) moe(s, ly, row(U, rd, i), row(M, rd, i));
    } else {
      // m = w2 . GELU(w1 . u)
      matmul(changetype<Mat>(ly.up), U, rd, HID, rf, P, s.qs);
      for (let i = 0; i < P; i++) gelu_inplace(row(HID, rf, i), f);
      matmul(changetype<Mat>(ly.down), HID, rf, M, rd, P, s.qs);
    }
    for (let i = 0; i < P; i++) add_f32(row(M, rd, i), row(H, rd, i), d);
  }
  // every layer's a_t took the oldest slot: it is now the newest
  if (K > 1) {
    if (batch) for (let i = 0; i < P; i++) { const bi = batchSession(i); bi.ring = (bi.ring + 1) % (K - 1); }
    else s.ring = (s.ring + P) % (K - 1);
  }

  // logits = lm_head . LayerNorm(h; norm)
  if (outAll) {
    for (let i = 0; i < P; i++) layernorm(row(H, rd, i), m.out_norm_w, m.out_norm_b, row(U, rd, i), d, eps);
    matmul(m.output, U, rd, out, m.V, P, s.qs);
  } else if (out != 0) {
    const u = row(U, rd, P - 1);
    layernorm(row(H, rd, P - 1), m.out_norm_w, m.out_norm_b, u, d, eps);
    matvec(m.output, u, out, s.qs);
  }
}

/** n tokens from ids at positions p0 .. p0+n-1 (< T), in chunks. outAll != 0: every position's
 *  logits there; else the last position's to out when out != 0 (that position runs alone, so that
 *  every other one skips what only logits need). */
function runPositions(s: Session, ids: usize, p0: i32, n: i32, out: usize, outAll: usize): void {
  const V = s.model.V;
  if (outAll != 0) {
    for (let c = 0; c < n; c += CHUNK) {
      forwardChunk(s, ids + (<usize>c << 2), p0 + c, min(CHUNK, n - c), outAll + (<usize>c * <usize>V << 2), true);
    }
    return;
  }
  const body = out != 0 ? n - 1 : n;
  for (let c = 0; c < body; c += CHUNK) forwardChunk(s, ids + (<usize>c << 2), p0 + c, min(CHUNK, body - c), 0, false);
  if (out != 0) forwardChunk(s, ids + (<usize>(n - 1) << 2), p0 + n - 1, 1, out, false);
}

/** out = sum over the k picked experts of gate_j * w2_j . GELU(w1_j . u), gates = softmax over
 *  the k largest router logits. Ties go to the lower expert index. One position (the first rows
 *  of s.hid and s.tmp are its scratch). */
function moe(s: Session, ly: Layer, u: usize, out: usize): void {
  const m = s.model;
  const d = m.d, f = m.f, E = m.E, k = m.k;
  const rl = s.rl, picks = s.picks, gates = s.gates;
  let uq = matvec(ly.router, u, rl, s.qs);
  // top-k, highest logit first; on equal logits the lower index wins
  for (let i = 0; i < k; i++) {
    let best = -1;
    let bv: f32 = -Infinity;
    for (let e = 0; e < E; e++) {
      let taken = false;
      for (let j = 0; j < i; j++) if (load<i32>(picks + (<usize>j << 2)) == e) taken = true;
      if (taken) continue;
      const v = fat(rl, e);
      if (best < 0 || v > bv) { best = e; bv = v; }
    }
    store<i32>(picks + (<usize>i << 2), best);
    fset(gates, i, bv);
  }
  // softmax over the k picked logits (the first is the largest)
  const top = fat(gates, 0);
  let sum: f32 = 0;
  for (let i = 0; i < k; i++) {
    const e = Mathf.exp(fat(gates, i) - top);
    fset(gates, i, e);
    sum += e;
  }
  // every picked expert's first matrix while u is quantized, then the second ones
  for (let i = 0; i < k; i++) {
    const e = <usize>load<i32>(picks + (<usize>i << 2));
    uq = matvec(changetype<Mat>(ly.up + e * MAT_STRIDE), u, s.hid + (<usize>(i * f) << 2), s.qs, uq);
  }
  gelu_inplace(s.hid, k * f);
  memory.fill(out, 0, <usize>d << 2);
  for (let i = 0; i < k; i++) {
    const e = <usize>load<i32>(picks + (<usize>i << 2));
    matvec(changetype<Mat>(ly.down + e * MAT_STRIDE), s.hid + (<usize>(i * f) << 2), s.tmp, s.qs);
    axpy_f32(fat(gates, i) / sum, s.tmp, out, d);
  }
}

/** Feeds one token, honouring the window mode past T positions; writes logits to out (if != 0). */
export function stepToken(s: Session, tok: i32, out: usize): void {
  const m = s.model;
  const T = m.T;
  if (!hasPositions(m)) {
    // position-free: one step per token at any length (the window's first slot holds the id)
    store<i32>(s.hist, tok);
    forwardChunk(s, s.hist, s.pos, 1, out, false);
    s.pos++;
    return;
  }
  if (s.pos < T) {
    const at = s.hist + (<usize>s.pos << 2);
    store<i32>(at, tok);
    forwardChunk(s, at, s.pos, 1, out, false);
    s.pos++;
    return;
  }
  // the window is full: drop its oldest token
  memory.copy(s.hist, s.hist + 4, <usize>(T - 1) << 2);
  const at = s.hist + (<usize>(T - 1) << 2);
  store<i32>(at, tok);
  if (s.mode == WINDOW_SLIDE) {
    forwardChunk(s, at, T - 1, 1, out, false);
    return;
  }
  // exact: the original recomputes the last T tokens, positions restarting at 0
  clearState(s, m);
  runPositions(s, s.hist, 0, T, out, 0);
}

/** Runs n tokens from ids. outAll != 0: every position's logits, [n, V]. The last position's
 *  logits are always left in s.logits. Returns OK or an error (state untouched on error). */
export function prefill(s: Session, ids: usize, n: i32, outAll: usize): i32 {
  const m = s.model;
  if (n <= 0) return ERR_EMPTY;
  for (let i = 0; i < n; i++) {
    const t = load<i32>(ids + (<usize>i << 2));
    if (t < 0 || t >= m.V) { setDetail(i); return ERR_BAD_TOKEN; }
  }
  const V = m.V;
  // the tokens that fit in the window run in chunks (s.pos never passes T, so fit >= 0); a
  // position-free model has no window: every token fits
  const positions = hasPositions(m);
  const fit = positions ? min(n, m.T - s.pos) : n;
  if (fit > 0) {
    if (positions) memory.copy(s.hist + (<usize>s.pos << 2), ids, <usize>fit << 2);
    runPositions(s, ids, s.pos, fit, fit == n ? s.logits : 0, outAll);
    s.pos += fit;
  }
  // past the window, token by token
  for (let i = fit; i < n; i++) {
    const t = load<i32>(ids + (<usize>i << 2));
    stepToken(s, t, outAll != 0 ? outAll + (<usize>i * <usize>V << 2) : i == n - 1 ? s.logits : 0);
  }
  if (outAll != 0) memory.copy(s.logits, outAll + (<usize>(n - 1) * <usize>V << 2), <usize>V << 2);
  return OK;
}

