// The diagnostics document: what the machine and the JavaScript engine are, as reported by the
// platform. Platform-neutral (a browser host can fill the same shape later).
//
// Every field the platform may not report is a Reported<T>: either {value, source} (where it came
// from) or {value: null, reason} (why it is not known). Never a guess.

import type { Reported } from '../runtime/probe/report.js';
import type { SimdPeak } from '../runtime/probe/throughput.js';

export { known, reported, unknown, type Reported } from '../runtime/probe/report.js';
export type { WasmFeatures } from '../runtime/probe/probes.js';
import type { WasmFeatures } from '../runtime/probe/probes.js';

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
