// The SIMD ceiling of this engine on this CPU: how many multiply-adds per second one thread gets
// from the two instruction mixes our matrix kernels are made of, measured with tiny modules
// assembled here. Platform-neutral (Node, browsers, jsc): it needs WebAssembly and a clock.
//
//   f32: f32x4.mul + f32x4.add                  (4 multiply-adds; the FP32 kernels)
//   i16: i32x4.dot_i16x8_s + i32x4.add          (8 multiply-adds; the Q8_0 / Q4_0 / I8 kernels)
//
// Each loop iteration loads four vectors of "weights" (as the kernels do: a load per weight vector,
// so that no engine can hoist the arithmetic out of the loop) and feeds eight independent
// accumulators, two per loaded vector, each with one of two constant "activation" vectors: enough
// independent chains that the loop is bound by throughput, not by the add's latency. The rate is
// the best of several timed calls (the first calls may run in a baseline compiler).

import { assemble, exportEntry, uleb } from './probes.js';
import { known, unknown, type Reported } from './report.js';

export interface SimdPeak {
  /** G multiply-adds per second with f32x4.mul + f32x4.add, one thread */
  f32MulAdd: Reported<number>;
  /** G multiply-adds per second with i32x4.dot_i16x8_s + i32x4.add, one thread */
  i16DotAdd: Reported<number>;
}

export type PeakKind = 'f32' | 'i16';

/** multiply-adds one loop iteration of a probe does */
export const MACS_PER_ITERATION: Record<PeakKind, number> = { f32: 8 * 4, i16: 8 * 8 };

const simd = (op: number): number[] => [0xfd, ...uleb(op)];

const I32 = 0x7f,
  V128 = 0x7b;
const LOCAL_GET = 0x20,
  LOCAL_SET = 0x21;
const OP = {
  v128Load: 0x00,
  v128Const: 0x0c,
  i32x4ExtractLane: 0x1b,
  i32x4Add: 174,
  i32x4DotI16x8S: 186,
  f32x4Add: 228,
  f32x4Mul: 230,
};

/** The bytes of a probe: exports `memory` (one page) and `run(iterations) -> i32`, which returns
 *  lane 0 of the sum of the eight accumulators (as bits for f32), so that the work is observable:
 *  the weights are read from the first 4 KiB of memory, 64 bytes per iteration, wrapping. */
export function peakModule(kind: PeakKind): Uint8Array {
  const mul = kind === 'f32' ? OP.f32x4Mul : OP.i32x4DotI16x8S;
  const acc = kind === 'f32' ? OP.f32x4Add : OP.i32x4Add;
  // locals: 0 iterations (param), 1 byte offset, 2..9 accumulators, 10..11 activations, 12 weights
  // (few enough live vectors that V8 keeps every one in a register on x64's sixteen)
  const ITER = 0,
    OFF = 1,
    A0 = 2,
    X0 = 10,
    W = 12;
  const body: number[] = [];
  // the activations: lane values 1..4 plus 4 x the vector's index (f32 or int16 lanes)
  for (let v = 0; v < 2; v++) {
    const bytes: number[] = [];
    if (kind === 'f32') {
      const f = new Float32Array([1 + 4 * v, 2 + 4 * v, 3 + 4 * v, 4 + 4 * v].map((x) => x / 16));
      bytes.push(...new Uint8Array(f.buffer));
    } else {
      const s = new Int16Array(8).map((_, i) => 1 + (i & 3) + 4 * v);
      bytes.push(...new Uint8Array(s.buffer));
    }
    body.push(...simd(OP.v128Const), ...bytes, LOCAL_SET, X0 + v);
  }
  body.push(0x03, 0x40); // loop
  for (let i = 0; i < 4; i++) {
    // weights = v128.load offset=16*i (offset)
    body.push(LOCAL_GET, OFF, ...simd(OP.v128Load), 4, 16 * i, LOCAL_SET, W);
    for (let j = 0; j < 2; j++) {
      const a = A0 + 2 * i + j;
      body.push(LOCAL_GET, a, LOCAL_GET, W, LOCAL_GET, X0 + j, ...simd(mul), ...simd(acc), LOCAL_SET, a);
    }
  }
  // offset = (offset + 64) & 4032; iterations -= 1; continue while iterations != 0
  body.push(LOCAL_GET, OFF, 0x41, 0xc0, 0x00, 0x6a, 0x41, 0xc0, 0x1f, 0x71, LOCAL_SET, OFF);
  body.push(LOCAL_GET, ITER, 0x41, 1, 0x6b, 0x22, ITER, 0x0d, 0);
  body.push(0x0b); // end loop
  // lane 0 of acc0 + ... + acc7
  body.push(LOCAL_GET, A0);
  for (let i = 1; i < 8; i++) body.push(LOCAL_GET, A0 + i, ...simd(acc));
  body.push(...simd(OP.i32x4ExtractLane), 0);
  const code = [2, 1, I32, 11, V128, ...body, 0x0b]; // locals: 1 i32 (offset), 11 v128 (8 + 2 + 1)
  return assemble([
    [1, [1, 0x60, 1, I32, 1, I32]],
    [3, [1, 0]],
    [5, [1, 0x00, 1]],
    [7, [2, ...exportEntry('run', 0x00, 0), ...exportEntry('memory', 0x02, 0)]],
    [10, [1, ...uleb(code.length), ...code]],
  ]);
}

export interface PeakProbe {
  run(iterations: number): number;
  memory: WebAssembly.Memory;
}

/** Instantiates a probe (synchronously). */
export function instantiatePeak(kind: PeakKind, W: typeof WebAssembly = WebAssembly): PeakProbe {
  const inst = new W.Instance(new W.Module(peakModule(kind) as BufferSource), {});
  return { run: inst.exports.run as (n: number) => number, memory: inst.exports.memory as WebAssembly.Memory };
}

/** Timed calls per probe; the figure is the best of them. */
const TRIALS = 12;

/** G multiply-adds per second: calls of about trialMs each, the best of `trials`. */
export function measurePeak(
  probe: PeakProbe,
  kind: PeakKind,
  now: () => number,
  trialMs = 15,
  trials = TRIALS,
): number {
  let n = 1000;
  // size a call to about trialMs (the first calls also give the engine time to optimize)
  for (;;) {
    const t0 = now();
    probe.run(n);
    const ms = now() - t0;
    if (ms >= trialMs / 4 || n >= 2 ** 28) {
      n = Math.min(2 ** 30, Math.max(1000, Math.round((n * trialMs) / Math.max(ms, 1e-3))));
      break;
    }
    n *= 4;
  }
  let best = 0;
  // A call that the clock saw take no time (a coarse clock, and a sizing call slowed by other
  // work on the machine) does not count: the calls grow until the clock sees them.
  for (let i = 0, tries = 0; i < trials && tries < 4 * trials; tries++) {
    const t0 = now();
    probe.run(n);
    const s = (now() - t0) / 1000;
    if (s > 0) {
      best = Math.max(best, (n * MACS_PER_ITERATION[kind]) / s / 1e9);
      i++;
    } else n = Math.min(2 ** 30, n * 4);
  }
  return best;
}

/** Both ceilings, or null with the reason where they cannot be measured. trialMs: the length of
 *  a timed call (longer where the clock is coarse: WebKit's steps 1 ms). */
export function measureSimdPeak(
  hasSimd: Reported<boolean>,
  W: typeof WebAssembly | null = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly ?? null,
  trialMs = 15,
): SimdPeak {
  const perf = (globalThis as { performance?: { now(): number } }).performance;
  const now = perf && typeof perf.now === 'function' ? () => perf.now() : null;
  let why: string | null = null;
  if (W === null) why = 'this engine has no WebAssembly object';
  else if (hasSimd.value !== true)
    why = `no WebAssembly SIMD (${hasSimd.value === null ? hasSimd.reason : 'the SIMD probe failed'})`;
  else if (now === null) why = 'this engine has no performance.now() to time the probes with';
  if (why !== null || W === null || now === null)
    return { f32MulAdd: unknown(why ?? ''), i16DotAdd: unknown(why ?? '') };
  const one = (kind: PeakKind, what: string): Reported<number> => {
    try {
      const g = measurePeak(instantiatePeak(kind, W), kind, now, trialMs);
      return g > 0
        ? known(
            Math.round(g * 10) / 10,
            `${what}: best of ${TRIALS} timed calls of about ${trialMs} ms of a probe loop, one thread`,
          )
        : unknown(`the ${kind} probe ran too fast for the clock`);
    } catch (e) {
      return unknown(`the ${kind} probe failed: ${(e as Error).message}`);
    }
  };
  return {
    f32MulAdd: one('f32', '8 chains of f32x4.mul + f32x4.add on loaded vectors'),
    i16DotAdd: one('i16', '8 chains of i32x4.dot_i16x8_s + i32x4.add on loaded vectors'),
  };
}
