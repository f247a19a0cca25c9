// Which WebAssembly features this engine actually has: tiny probe modules, assembled here byte by
// byte, are validated, instantiated and run. Platform-neutral (Node, browsers, jsc).

import { known, unknown, type Reported } from './report.js';

export interface WasmFeatures {
  /** Fixed-width 128-bit SIMD: a probe module validated, instantiated and ran. */
  simd: Reported<boolean>;
  /** Relaxed SIMD (i8x16.relaxed_swizzle). */
  relaxedSimd: Reported<boolean>;
  /** Threads: a shared memory with an atomic load, and SharedArrayBuffer present. */
  threads: Reported<boolean>;
  /** Bulk memory operations (memory.fill). */
  bulkMemory: Reported<boolean>;
  /** Whether SharedArrayBuffer exists in this context (browsers need cross-origin isolation). */
  sharedArrayBuffer: Reported<boolean>;
}

/** unsigned LEB128 */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** A module section: its id, its payload's length, the payload. */
export function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

/** An export entry: the name, the kind (0 function, 2 memory) and the index. */
export function exportEntry(name: string, kind: number, index: number): number[] {
  const n = [...new TextEncoder().encode(name)];
  return [...uleb(n.length), ...n, kind, index];
}

/** A module: the magic number, version 1, then the given sections (id and payload, in order). */
export function assemble(sections: [number, number[]][]): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...sections.flatMap(([id, payload]) => section(id, payload)),
  ]);
}

const I32 = 0x7f;
const V128_CONST_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
const I32X4_EXTRACT_LANE_0 = [0xfd, 0x1b, 0x00];

/** A module of one function `run: () -> i32` with `body` (instructions, without the final end),
 *  and optionally a memory (limits bytes) that it defines. */
export function probeModule(body: number[], memoryLimits?: number[]): Uint8Array {
  const code = [0, ...body, 0x0b]; // no locals
  return assemble([
    [1, [1, 0x60, 0, 1, I32]],
    [3, [1, 0]],
    ...(memoryLimits ? [[5, [1, ...memoryLimits]] as [number, number[]]] : []),
    [7, [1, ...exportEntry('run', 0x00, 0)]],
    [10, [1, ...uleb(code.length), ...code]],
  ]);
}

export const PROBES = {
  /** v128.const 0; i32x4.extract_lane 0 -> 0 */
  simd: probeModule([...V128_CONST_ZERO, ...I32X4_EXTRACT_LANE_0]),
  /** v128.const 0; v128.const 0; i8x16.relaxed_swizzle; i32x4.extract_lane 0 -> 0 */
  relaxedSimd: probeModule([...V128_CONST_ZERO, ...V128_CONST_ZERO, 0xfd, 0x80, 0x02, ...I32X4_EXTRACT_LANE_0]),
  /** a shared memory (min 1, max 1 page); i32.const 0; i32.atomic.load -> 0 */
  threads: probeModule([0x41, 0x00, 0xfe, 0x10, 0x02, 0x00], [0x03, 0x01, 0x01]),
  /** a memory; memory.fill(0, 0, 0); i32.const 0 -> 0 */
  bulkMemory: probeModule([0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00, 0x41, 0x00], [0x00, 0x01]),
} as const;

/** The smallest well-formed module: if this fails, WebAssembly itself is unusable. */
export const EMPTY_MODULE = assemble([]);

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  /** Compile + instantiate synchronously, return the export `run`'s result. */
  run(bytes: Uint8Array): number;
}

function defaultApi(): WasmApi | null {
  const W = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
  if (!W) return null;
  return {
    validate: (b) => W.validate(b as BufferSource),
    run: (b) => {
      const inst = new W.Instance(new W.Module(b as BufferSource), {});
      return (inst.exports.run as () => number)();
    },
  };
}

/** Runs one probe: validates, then instantiates and runs it (the result must be 0). */
export function probe(api: WasmApi, bytes: Uint8Array, what: string): Reported<boolean> {
  let valid: boolean;
  try {
    valid = api.validate(bytes);
  } catch (e) {
    return unknown(`WebAssembly.validate threw for the ${what} probe: ${(e as Error).message}`);
  }
  if (!valid) return known(false, `the ${what} probe module does not validate in this engine`);
  try {
    const r = api.run(bytes);
    if (r !== 0) return unknown(`the ${what} probe validated but returned ${r}, not 0`);
    return known(true, `the ${what} probe module validated, instantiated and ran`);
  } catch (e) {
    return known(false, `the ${what} probe validates but does not instantiate or run: ${(e as Error).message}`);
  }
}

/** Probes every feature. api defaults to the engine's WebAssembly. */
export function probeWasmFeatures(api: WasmApi | null = defaultApi()): WasmFeatures {
  const hasSab = typeof (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer === 'function';
  const sab = known(hasSab, hasSab ? 'globalThis.SharedArrayBuffer exists' : 'globalThis.SharedArrayBuffer is missing');
  if (api === null) {
    const why = 'this engine has no WebAssembly object';
    return {
      simd: unknown(why),
      relaxedSimd: unknown(why),
      threads: unknown(why),
      bulkMemory: unknown(why),
      sharedArrayBuffer: sab,
    };
  }
  let base = true;
  try {
    base = api.validate(EMPTY_MODULE);
  } catch {
    base = false;
  }
  if (!base) {
    const why = 'WebAssembly is present but rejects even an empty module';
    return {
      simd: unknown(why),
      relaxedSimd: unknown(why),
      threads: unknown(why),
      bulkMemory: unknown(why),
      sharedArrayBuffer: sab,
    };
  }
  let threads = probe(api, PROBES.threads, 'threads (shared memory + atomics)');
  if (threads.value === true && !hasSab) {
    threads = known(
      false,
      'shared-memory modules validate but SharedArrayBuffer is unavailable (a browser without cross-origin isolation)',
    );
  }
  return {
    simd: probe(api, PROBES.simd, 'SIMD'),
    relaxedSimd: probe(api, PROBES.relaxedSimd, 'relaxed SIMD'),
    threads,
    bulkMemory: probe(api, PROBES.bulkMemory, 'bulk memory'),
    sharedArrayBuffer: sab,
  };
}
