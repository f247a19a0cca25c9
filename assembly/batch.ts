// Decode steps of many sessions of one model at once: each session draws its next token with its
// own sampler, then all their positions go through the model together, CHUNK rows at a time, so
// that every weight is read once per chunk rather than once per session. Each row's arithmetic is
// the one-position step's (the kernels give every row the same bits whatever the chunk), so the
// result is generate_next on each session in turn, bit for bit (host/test/batch.test.ts).

import { OK, ERR_EMPTY, ERR_BAD_PARAM, WINDOW_SLIDE } from './abi';
import {
  Session, CHUNK, BATCH_IDS, BATCH_SESSIONS, BATCH_POSITIONS, batchSession, forwardChunk, sessionNew,
  stepToken, setDetail, hasPositions,
} from './model';
import { sampleToken } from './sampling';

// @ts-ignore: decorator
@inline function alloc16(bytes: usize): usize { const p = heap.alloc(bytes); memory.fill(p, 0, bytes); return p; }

/** A session whose buffers serve as a batch's scratch (stepBatch), with room for CHUNK rows of
 *  logits. */
export function batchScratchNew(mp: usize): usize {
  const sp = sessionNew(mp);
  const s = changetype<Session>(sp);
  s.bout = alloc16(<usize>(CHUNK * s.model.V) << 2);
  return sp;
}

/** Feeds tok to session t as stepToken does, but through a row of the batch being gathered in
 *  BATCH_*; returns the rows gathered. A session past T in the exact window (T positions
 *  recomputed) runs alone at once instead. */
function batchRow(t: Session, tok: i32, n: i32): i32 {
  const T = t.model.T;
  let at: i32;
  if (!hasPositions(t.model)) {
    // position-free: no window, no position (the row's position is not read)
    at = 0;
    t.pos++;
  } else if (t.pos < T) {
    at = t.pos;
    store<i32>(t.hist + (<usize>at << 2), tok);
    t.pos++;
  } else if (t.mode == WINDOW_SLIDE) {
    memory.copy(t.hist, t.hist + 4, <usize>(T - 1) << 2);
    at = T - 1;
    store<i32>(t.hist + (<usize>at << 2), tok);
  } else {
    stepToken(t, tok, t.logits);
    return n;
  }
  store<i32>(BATCH_IDS + (<usize>n << 2), tok);
  store<u32>(BATCH_SESSIONS + (<usize>n << 2), <u32>changetype<usize>(t));
  store<i32>(BATCH_POSITIONS + (<usize>n << 2), at);
  return n + 1;
}

/** The gathered rows through one forward: every matrix read once for all of them. */
function batchRun(scratch: Session, n: i32): void {
  if (n == 0) return;
  const V = scratch.model.V;
  forwardChunk(scratch, BATCH_IDS, 0, n, scratch.bout, true, true);
  for (let i = 0; i < n; i++) memory.copy(batchSession(i).logits, scratch.bout + (<usize>(i * V) << 2), <usize>V << 2);
}

/** One token for each of B sessions (u32 pointers at sessions, all of scratch's model, each at
 *  most once, each with a prompt fed): draws it with the session's own sampler, feeds it, writes
 *  it to out (i32). The same tokens, logits and states as generate_next on each in turn, bit for
 *  bit, but the sessions go through the model together, CHUNK at a time. Errors before any change:
 *  ERR_EMPTY (detail: the session's index), ERR_BAD_PARAM (another model or a repeat; detail: index). */
export function stepBatch(scratch: Session, sessions: usize, B: i32, out: usize): i32 {
  for (let i = 0; i < B; i++) {
    const t = changetype<Session>(load<u32>(sessions + (<usize>i << 2)));
    if (t.model != scratch.model || t == scratch) { setDetail(i); return ERR_BAD_PARAM; }
    if (t.pos == 0) { setDetail(i); return ERR_EMPTY; }
    for (let j = 0; j < i; j++) if (load<u32>(sessions + (<usize>j << 2)) == <u32>changetype<usize>(t)) { setDetail(i); return ERR_BAD_PARAM; }
  }
  let n = 0;
  for (let i = 0; i < B; i++) {
    const t = changetype<Session>(load<u32>(sessions + (<usize>i << 2)));
    const tok = sampleToken(t);
    store<i32>(out + (<usize>i << 2), tok);
    n = batchRow(t, tok, n);
    if (n == CHUNK) { batchRun(scratch, n); n = 0; }
  }
  batchRun(scratch, n);
  return OK;
}
