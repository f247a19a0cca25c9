// The module's exports: the whole interface a host sees. Plain numbers and pointers only, so
// any host instantiates it with no imports and no glue (no @assemblyscript/loader needed).
//
// Calling pattern (host/runtime/runtime.ts): alloc a block, copy the weights in once, write a
// descriptor, model_new; then per session: session_new, prefill (one call per prompt),
// generate_next (one call per token) or generate (one call for a whole generation).

import { ABI_VERSION, OK, ERR_BAD_PARAM, ERR_EMPTY, WINDOW_EXACT, WINDOW_SLIDE, SAMPLER_V1, SAMPLER_VERSION } from './abi';
import {
  Session, modelNew, modelFree, sessionNew, sessionFree, sessionReset, prefill as runPrefill, stepToken,
  getDetail, getError,
} from './model';
import { sampleToken, seedRng } from './sampling';
import { stateSize, stateSave, stateLoad } from './state';
import { batchScratchNew, stepBatch } from './batch';
import { selftest, fusedMadd } from './selftest';

export function abi_version(): i32 { return ABI_VERSION; }
/** 1 if this build uses SIMD kernels, 0 for the scalar fallback build. */
export function has_simd(): i32 { return ASC_FEATURE_SIMD ? 1 : 0; }
/** 1 if this is the relaxed-SIMD build (fused multiply-adds where the engine has them). */
export function has_relaxed(): i32 { return ASC_FEATURE_RELAXED_SIMD ? 1 : 0; }
/** The relaxed build's self-test (assembly/selftest.ts): 0 when the kernels give the known
 *  results on this engine, else a bit mask of the failed checks (SELFTEST_*). */
export function relaxed_selftest(): i32 { return selftest(); }
/** 1 when this engine's multiply-add in the kernels is fused, 0 when not, -1 when wrong. */
export function fused_madd(): i32 { return fusedMadd(); }

// ---- memory
export function alloc(bytes: usize): usize { return heap.alloc(bytes); }
export function free(ptr: usize): void { heap.free(ptr); }

// ---- errors: the code of the last failure and its detail (a word index, a token index, ...)
export function last_error(): i32 { return getError(); }
export function error_detail(): i32 { return getDetail(); }

// ---- model
export function model_new(desc: usize): usize { return modelNew(desc); }
export function model_free(m: usize): void { modelFree(m); }

// ---- sessions
export function session_new(m: usize): usize { return sessionNew(m); }
export function session_free(s: usize): void { sessionFree(s); }
export function session_reset(s: usize): void { sessionReset(changetype<Session>(s)); }
export function session_pos(s: usize): i32 { return changetype<Session>(s).pos; }
export function session_logits(s: usize): usize { return changetype<Session>(s).logits; }
/** 0: the original's exact window (recompute the last T tokens per token past T);
 *  1: an approximation that keeps the recurrent state with the position clamped to T-1. */
export function session_set_window(s: usize, mode: i32): i32 {
  if (mode != WINDOW_EXACT && mode != WINDOW_SLIDE) return ERR_BAD_PARAM;
  changetype<Session>(s).mode = mode;
  return OK;
}

/** Bytes of a saved state of session s (the same for every session of its model). */
export function session_state_size(s: usize): i32 { return stateSize(changetype<Session>(s).model); }
/** Writes s's complete state (session_state_size bytes) to out (layout: assembly/abi.ts ST_*). */
export function session_state_save(s: usize, out: usize): void { stateSave(changetype<Session>(s), out); }
/** Replaces s's state with n bytes from a save of a session of the same model; ERR_BAD_STATE
 *  (nothing changed) for a wrong length or a field out of range. */
export function session_state_load(s: usize, src: usize, n: i32): i32 { return stateLoad(changetype<Session>(s), src, n); }

/** Runs n token ids (i32 at ids). out != 0 receives every position's logits [n, V]. */
export function prefill(s: usize, ids: usize, n: i32, out: usize): i32 {
  return runPrefill(changetype<Session>(s), ids, n, out);
}

/** Sampling parameters: temperature 0 is greedy; topk 0 is off; topp 1 is off. */
export function sampler_set(s: usize, temperature: f32, topk: i32, topp: f32, seedLo: u32, seedHi: u32): i32 {
  const ss = changetype<Session>(s);
  // written so that NaN fails every test
  if (!(temperature >= 0 && temperature < Infinity)) return ERR_BAD_PARAM;
  if (topk < 0) return ERR_BAD_PARAM;
  if (!(topp > 0 && topp <= 1)) return ERR_BAD_PARAM;
  ss.temperature = temperature;
  ss.topk = topk;
  ss.topp = topp;
  seedRng(ss, seedLo, seedHi);
  return OK;
}

/** The sampler version the session draws with (abi.ts SAMPLER_*: 1 up to SAMPLER_VERSION, the
 *  default); it keeps the other sampling parameters and the PRNG state. */
export function sampler_set_version(s: usize, version: i32): i32 {
  if (version < SAMPLER_V1 || version > SAMPLER_VERSION) return ERR_BAD_PARAM;
  changetype<Session>(s).sampler = version;
  return OK;
}

/** Draws a token from the current logits without feeding it. */
export function sample(s: usize): i32 {
  const ss = changetype<Session>(s);
  if (ss.pos == 0) return ERR_EMPTY;
  return sampleToken(ss);
}

/** Draws the next token, feeds it (so the logits after it are ready), returns it. */
export function generate_next(s: usize): i32 {
  const ss = changetype<Session>(s);
  if (ss.pos == 0) return ERR_EMPTY;
  const tok = sampleToken(ss);
  stepToken(ss, tok, ss.logits);
  return tok;
}

/** Up to max tokens in one call, written to out (i32); stops after eos (if eos >= 0).
 *  Returns how many were written, or an error. */
export function generate(s: usize, max: i32, out: usize, eos: i32): i32 {
  const ss = changetype<Session>(s);
  if (ss.pos == 0) return ERR_EMPTY;
  if (max < 0) return ERR_BAD_PARAM;
  for (let i = 0; i < max; i++) {
    const tok = sampleToken(ss);
    store<i32>(out + (<usize>i << 2), tok);
    stepToken(ss, tok, ss.logits);
    if (tok == eos) return i + 1;
  }
  return max;
}

/** A batch's scratch for model m: a session (free it with session_free) whose buffers carry the
 *  rows of generate_next_batch; it holds no conversation of its own. */
export function batch_new(m: usize): usize { return batchScratchNew(m); }

/** generate_next for B sessions at once (u32 session pointers at sessions; the tokens to out,
 *  i32): each draws with its own sampler, then they go through the model together, the weights
 *  read once per chunk of rows. Bit for bit what generate_next on each in turn gives.
 *  ERR_EMPTY / ERR_BAD_PARAM (another model, a repeat): detail = the session's index, and
 *  nothing has changed. */
export function generate_next_batch(scratch: usize, sessions: usize, B: i32, out: usize): i32 {
  if (B < 0) return ERR_BAD_PARAM;
  return stepBatch(changetype<Session>(scratch), sessions, B, out);
}
