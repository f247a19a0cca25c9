// A session's complete state as bytes, and back: what a conversation needs to continue bit for bit
// in another session of the same model (this instance or another one of the same build). The
// layout is assembly/abi.ts's ST_*; the host adds the header (model, build, versions) and checksum.

import {
  OK, ERR_BAD_STATE, WINDOW_EXACT, WINDOW_SLIDE, ST_POS, ST_MODE, ST_RING, ST_TEMPERATURE, ST_TOPK,
  ST_TOPP, ST_RNG, ST_SAMPLER, ST_ARRAYS, SAMPLER_V1, SAMPLER_VERSION,
} from './abi';
import { Session, Model, hasPositions, setDetail } from './model';

// @ts-ignore: decorator
@inline function convBytes(m: Model): usize { return <usize>(m.L * (m.K - 1) * m.di) << 2; }
// @ts-ignore: decorator
@inline function scanBytes(m: Model): usize { return <usize>(m.L * m.N) << 2; }

/** Bytes of a saved state of a session of model m. */
export function stateSize(m: Model): i32 {
  return ST_ARRAYS + <i32>(convBytes(m) + scanBytes(m)) + ((m.T + m.V) << 2);
}

/** Writes the session's state to out (stateSize bytes). The window's unused tokens are written as
 *  0, so that one state always gives the same bytes. */
export function stateSave(s: Session, out: usize): void {
  const m = s.model;
  store<u32>(out + ST_POS, <u32>s.pos);
  store<u32>(out + ST_MODE, <u32>s.mode);
  store<u32>(out + ST_RING, <u32>s.ring);
  store<f32>(out + ST_TEMPERATURE, s.temperature);
  store<i32>(out + ST_TOPK, s.topk);
  store<f32>(out + ST_TOPP, s.topp);
  store<u64>(out + ST_RNG, s.rng);
  store<i32>(out + ST_SAMPLER, s.sampler);
  let p = out + ST_ARRAYS;
  memory.copy(p, s.conv, convBytes(m)); p += convBytes(m);
  memory.copy(p, s.z, scanBytes(m)); p += scanBytes(m);
  // the window's tokens (a position-free model keeps none: it has no window, and pos may pass T)
  const kept = hasPositions(m) ? s.pos : 0;
  memory.copy(p, s.hist, <usize>kept << 2);
  memory.fill(p + (<usize>kept << 2), 0, <usize>(m.T - kept) << 2); p += <usize>m.T << 2;
  memory.copy(p, s.logits, <usize>m.V << 2);
}

function bad(detail: i32): i32 { setDetail(detail); return ERR_BAD_STATE; }

/** Replaces the session's state with n bytes at src (from stateSave for a session of the same
 *  model). Every field that could lead the module astray is checked first: on an error nothing
 *  changes. Floats are taken as they are (any bits are a state the model could compute on). */
export function stateLoad(s: Session, src: usize, n: i32): i32 {
  const m = s.model;
  if (n != stateSize(m)) return bad(-1);
  const pos = load<u32>(src + ST_POS);
  if (hasPositions(m) ? pos > <u32>m.T : pos > <u32>i32.MAX_VALUE) return bad(ST_POS);
  const kept = hasPositions(m) ? pos : 0;
  const mode = load<u32>(src + ST_MODE);
  if (mode != <u32>WINDOW_EXACT && mode != <u32>WINDOW_SLIDE) return bad(ST_MODE);
  if (load<u32>(src + ST_RING) >= <u32>max(m.K - 1, 1)) return bad(ST_RING);
  // as sampler_set checks them; written so that NaN fails
  const temperature = load<f32>(src + ST_TEMPERATURE);
  if (!(temperature >= 0 && temperature < Infinity)) return bad(ST_TEMPERATURE);
  if (load<i32>(src + ST_TOPK) < 0) return bad(ST_TOPK);
  const topp = load<f32>(src + ST_TOPP);
  if (!(topp > 0 && topp <= 1)) return bad(ST_TOPP);
  if (load<u64>(src + ST_RNG) == 0) return bad(ST_RNG); // xorshift would stay at 0
  const sampler = load<i32>(src + ST_SAMPLER);
  if (sampler < SAMPLER_V1 || sampler > SAMPLER_VERSION) return bad(ST_SAMPLER);
  const hist = src + ST_ARRAYS + convBytes(m) + scanBytes(m);
  for (let i: u32 = 0; i < <u32>m.T; i++) {
    const t = load<i32>(hist + (<usize>i << 2));
    if (i < kept ? t < 0 || t >= m.V : t != 0) return bad(<i32>(hist - src) + (<i32>i << 2));
  }
  s.pos = <i32>pos;
  s.mode = <i32>mode;
  s.ring = <i32>load<u32>(src + ST_RING);
  s.temperature = temperature;
  s.topk = load<i32>(src + ST_TOPK);
  s.topp = topp;
  s.rng = load<u64>(src + ST_RNG);
  s.sampler = sampler;
  let p = src + ST_ARRAYS;
  memory.copy(s.conv, p, convBytes(m)); p += convBytes(m);
  memory.copy(s.z, p, scanBytes(m)); p += scanBytes(m);
  memory.copy(s.hist, p, <usize>m.T << 2); p += <usize>m.T << 2;
  memory.copy(s.logits, p, <usize>m.V << 2);
  return OK;
}
