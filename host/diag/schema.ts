// The diagnostics document: what the machine and the JavaScript engine are, as reported by the
// platform. Platform-neutral (a browser host can fill the same shape later).
//
// Every field the platform may not report is a Reported<T>: either {value, source} (where it came
// from) or {value: null, reason} (why it is not known). Never a guess.

import type { SimdPeak } from './throughput.js';

export type Reported<T> =
  | { value: T; source: string; reason?: undefined }
  | { value: null; reason: string; source?: undefined };

export function known<T>(value: T, source: string): Reported<T> {
  return { value, source };
}

export function unknown<T = never>(reason: string): Reported<T> {
  return { value: null, reason: reason || 'not reported (no reason given)' };
}

/** A Reported<T> from a value that may be null/undefined/NaN/empty: null with the reason then. */
export function reported<T>(value: T | null | undefined, source: string, reasonIfMissing: string): Reported<T> {
  if (value === null || value === undefined || (typeof value === 'number' && !Number.isFinite(value)) || (typeof value === 'string' && value.trim() === '')) {
    return unknown(reasonIfMissing);
  }
  return known(value, source);
}

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

export interface Diagnostics {
  schema: 'itera-diag/1';
  /** ISO time the diagnostics were taken. */
  takenAt: string;
  host: {
    /** 'node' today; a browser host fills 'browser'. */
    kind: 'node' | 'browser' | 'wasi';
    /** Node's process.version (or the browser's user agent). */
    version: string;
    /** process.arch as Node reports it: 'x64', 'arm64', ... */
    arch: string;
    platform: string;
    /** V8's version where known. */
    engine: Reported<string>;
  };
  cpu: {
    model: Reported<string>;
    vendor: Reported<string>;
    /** Logical cores the OS offers. */
    logicalCores: Reported<number>;
    physicalCores: Reported<number>;
    /** GHz, as the platform reports them. */
    baseGHz: Reported<number>;
    minGHz: Reported<number>;
    maxGHz: Reported<number>;
    currentGHz: Reported<number>;
    /** CPU feature flags (e.g. 'avx2', 'neon', 'asimd'). */
    flags: Reported<string[]>;
    /** Load average over 1, 5, 15 minutes: how busy the machine was (a benchmark's noise). */
    loadAverage: Reported<number[]>;
  };
  memory: {
    totalBytes: Reported<number>;
    availableBytes: Reported<number>;
  };
  os: {
    name: Reported<string>;
    release: Reported<string>;
    kernel: Reported<string>;
  };
  device: {
    /** A board name such as 'Raspberry Pi 4 Model B Rev 1.4' (device tree), else the system's
     *  manufacturer + model where reported. */
    model: Reported<string>;
    /** A Raspberry Pi's board revision code from /proc/cpuinfo ('c03114'). */
    revision: Reported<string>;
    /** Whether this runs under a hypervisor / emulator, as reported. */
    virtual: Reported<boolean>;
  };
  thermal: {
    cpuTemperatureC: Reported<number>;
    /** vcgencmd get_throttled: the raw bit mask and what its bits mean. */
    throttled: Reported<{ raw: string; flags: string[] }>;
  };
  energy: {
    /** Where an energy counter is (Linux RAPL), for the bench's energy per token. */
    counter: Reported<string>;
  };
  wasm: WasmFeatures;
  /** The SIMD ceiling of this engine here: G multiply-adds per second, one thread, of the two
   *  instruction mixes the matrix kernels are made of (host/diag/throughput.ts). Absent from
   *  documents written before it was measured. */
  simdPeak?: SimdPeak;
}
