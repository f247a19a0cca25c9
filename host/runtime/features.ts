// Feature detection every host shares.

// The smallest module that uses a SIMD instruction: (func (result v128) v128.const 0).
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 11,
]);

/** Whether this engine runs WebAssembly SIMD (fixed-width, baseline; JavaScriptCore without its
 *  JIT does not). */
export function engineHasSimd(): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The checks of the relaxed build's self-test (assembly/selftest.ts SELFTEST_*), by bit. */
const SELFTEST_CHECKS = [
  'f32 matrix-vector product',
  'f32 matrix-vector product with row and column tails',
  'f32 two-position matrix-vector product',
  'f32 axpy',
  'f32x4.relaxed_madd',
  'integer relaxed dot',
  'Q4_0 matrix product (integer relaxed dot)',
];

/** The checks a self-test mask names, for a message. */
export function selftestFailures(mask: number): string[] {
  return SELFTEST_CHECKS.filter((_, i) => (mask & (1 << i)) !== 0);
}

/** Whether the relaxed build may run here, and why not: this engine must validate it (relaxed
 *  SIMD: Node 22+, current Chromium; not JavaScriptCore, nor Node 20 without a flag) and its
 *  built-in self-test must compute the known results (an engine may validate an instruction and
 *  still miscompute it). `fused`: whether the multiply-adds round once (the CPU has FMA). */
export interface RelaxedVerdict {
  ok: boolean;
  reason: string;
  fused: boolean | null;
}

interface SelftestExports {
  has_relaxed?(): number;
  relaxed_selftest?(): number;
  fused_madd?(): number;
}

/** The verdict on an instance's exports; `selftest` may name another self-test export (the test
 *  build's, which also checks the integer relaxed dot). */
export function relaxedVerdictOf(
  ex: SelftestExports,
  selftest: () => number = () => ex.relaxed_selftest!(),
): RelaxedVerdict {
  if (typeof ex.has_relaxed !== 'function' || ex.has_relaxed() !== 1 || typeof ex.relaxed_selftest !== 'function')
    return { ok: false, reason: 'the module given is not the relaxed-SIMD build', fused: null };
  const mask = selftest();
  if (mask !== 0)
    return {
      ok: false,
      reason: `this engine validates relaxed SIMD but miscomputes it: the relaxed build's self-test failed (${selftestFailures(mask).join(', ')})`,
      fused: null,
    };
  const f = typeof ex.fused_madd === 'function' ? ex.fused_madd() : -1;
  return {
    ok: true,
    reason: `self-test passed; multiply-adds ${f === 1 ? 'fused (one rounding)' : 'unfused (mul then add)'}`,
    fused: f === 1,
  };
}

/** Validates the relaxed build's bytes on this engine, then runs its self-test in a throwaway
 *  instance. */
export async function relaxedVerdict(bytes: Uint8Array<ArrayBuffer>): Promise<RelaxedVerdict> {
  let valid = false;
  try {
    valid = WebAssembly.validate(bytes);
  } catch {
    valid = false;
  }
  if (!valid)
    return {
      ok: false,
      reason:
        'this engine does not validate relaxed SIMD (Node 22 and later and current Chromium do; Node 20 only with --experimental-wasm-relaxed-simd; JavaScriptCore does not)',
      fused: null,
    };
  try {
    // asynchronous both ways: a browser's main thread refuses to compile large modules synchronously
    const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), {});
    return relaxedVerdictOf(instance.exports as SelftestExports);
  } catch (e) {
    return { ok: false, reason: `the relaxed build did not instantiate: ${(e as Error).message}`, fused: null };
  }
}
