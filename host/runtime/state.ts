// A session's saved state as a host hands it around: a header saying what it belongs to (the model
// file, the module build, the interface and sampler versions), the module's own state bytes
// (assembly/state.ts, layout in assembly/abi.ts ST_*), and a CRC-32 over everything before it.
// Platform-neutral: plain Uint8Array and DataView, no Node modules.
//
// Layout, little-endian:
//   0  'ITST'           magic
//   4  u32              format version (STATE_VERSION)
//   8  u32              bytes of the module's state that follow the header
//  12  u32              ABI version of the module that saved it
//  16  u32              the saving module's newest sampler version (SAMPLER_VERSION); a module
//                       restores states of its own and older ones (it keeps every older sampler)
//  20  u32              build: 1 SIMD, 0 scalar, 2 relaxed SIMD (their kernels may round differently)
//  24  8 bytes          FNV-1a 64 of the model file's bytes
//  32  ...              the module's state
//  end u32              CRC-32 (IEEE) of every byte before it

import { IteraError } from './types.js';
import { ABI_VERSION, SAMPLER_VERSION, STATE_VERSION } from './abi.js';

export const STATE_MAGIC = Uint8Array.of(0x49, 0x54, 0x53, 0x54); // 'ITST'
export const STATE_HEADER_BYTES = 32;
export const STATE_CHECKSUM_BYTES = 4;

/** What a saved state must match to be restored: the model's identity and the module build. */
export interface StateOwner {
  /** FNV-1a 64 of the model file (8 bytes), or of the weights when there is no file. */
  modelHash: Uint8Array;
  /** 1 for the SIMD build, 0 for the scalar one, 2 for the relaxed-SIMD one. */
  simd: number;
}

/** FNV-1a, 64 bits, of some bytes, as 8 little-endian bytes. Incremental: pass the previous
 *  result as `seed` to continue over more bytes. */
export function fnv1a64(bytes: Uint8Array, seed?: Uint8Array): Uint8Array {
  // h in four 16-bit limbs (v0 lowest), so that every product stays a small integer; the prime
  // is 2^40 + 0x1b3: h * prime = h * 0x1b3 + (h << 40)
  let v0 = 0x2325,
    v1 = 0x8422,
    v2 = 0x9ce4,
    v3 = 0xcbf2;
  if (seed) {
    v0 = seed[0] | (seed[1] << 8);
    v1 = seed[2] | (seed[3] << 8);
    v2 = seed[4] | (seed[5] << 8);
    v3 = seed[6] | (seed[7] << 8);
  }
  for (let i = 0; i < bytes.length; i++) {
    v0 ^= bytes[i];
    const t0 = v0 * 0x1b3;
    let t1 = v1 * 0x1b3,
      t2 = v2 * 0x1b3 + (v0 << 8);
    const t3 = v3 * 0x1b3 + (v1 << 8);
    t1 += t0 >>> 16;
    v0 = t0 & 0xffff;
    t2 += t1 >>> 16;
    v1 = t1 & 0xffff;
    v3 = (t3 + (t2 >>> 16)) & 0xffff;
    v2 = t2 & 0xffff;
  }
  return Uint8Array.of(v0 & 0xff, v0 >>> 8, v1 & 0xff, v1 >>> 8, v2 & 0xff, v2 >>> 8, v3 & 0xff, v3 >>> 8);
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, as zip and PNG use it) of some bytes. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** The module's state bytes wrapped in the header and the checksum. */
export function encodeState(owner: StateOwner, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(STATE_HEADER_BYTES + body.length + STATE_CHECKSUM_BYTES);
  const v = new DataView(out.buffer);
  out.set(STATE_MAGIC, 0);
  v.setUint32(4, STATE_VERSION, true);
  v.setUint32(8, body.length, true);
  v.setUint32(12, ABI_VERSION, true);
  v.setUint32(16, SAMPLER_VERSION, true);
  v.setUint32(20, owner.simd, true);
  out.set(owner.modelHash.subarray(0, 8), 24);
  out.set(body, STATE_HEADER_BYTES);
  v.setUint32(out.length - STATE_CHECKSUM_BYTES, crc32(out.subarray(0, out.length - STATE_CHECKSUM_BYTES)), true);
  return out;
}

/** Checks a saved state's header and checksum against what it is to be restored into and returns
 *  the module's state bytes (a view into `bytes`). Throws an IteraError whose code names the first
 *  thing wrong: STATE_MAGIC (not a saved state), STATE_VERSION (another format), STATE_LENGTH
 *  (truncated or extended), STATE_CHECKSUM (a byte changed), STATE_MODEL (another model file),
 *  STATE_BUILD (another build: SIMD, scalar or relaxed SIMD), STATE_ABI (another module version),
 *  STATE_SAMPLER (another sampler version). */
export function decodeState(owner: StateOwner, bytes: Uint8Array, expectedBody: number): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new IteraError('a saved state must be a Uint8Array', 'STATE_MAGIC');
  const min = STATE_HEADER_BYTES + STATE_CHECKSUM_BYTES;
  if (bytes.length < STATE_MAGIC.length || STATE_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new IteraError('not a saved session state: it does not begin with the magic bytes "ITST"', 'STATE_MAGIC');
  }
  const truncated = (): IteraError =>
    new IteraError(
      `saved state is ${bytes.length} bytes, its header says ${bytes.length < min ? 'at least ' + min : min + bodyBytes}: it was truncated or extended`,
      'STATE_LENGTH',
    );
  let bodyBytes = -1;
  if (bytes.length < min) throw truncated();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint32(4, true);
  if (version !== STATE_VERSION) {
    throw new IteraError(
      `saved state is format version ${version}, this runtime reads version ${STATE_VERSION}`,
      'STATE_VERSION',
    );
  }
  bodyBytes = v.getUint32(8, true);
  if (bytes.length !== min + bodyBytes) throw truncated();
  const end = bytes.length - STATE_CHECKSUM_BYTES;
  const want = v.getUint32(end, true),
    have = crc32(bytes.subarray(0, end));
  if (want !== have) {
    throw new IteraError(
      `saved state is corrupt: its checksum is ${want.toString(16).padStart(8, '0')}, its bytes give ${have.toString(16).padStart(8, '0')}`,
      'STATE_CHECKSUM',
    );
  }
  const hash = bytes.subarray(24, 32);
  if (hex(hash) !== hex(owner.modelHash.subarray(0, 8))) {
    throw new IteraError(
      `saved state belongs to another model file (hash ${hex(hash)}; this model's is ${hex(owner.modelHash)})`,
      'STATE_MODEL',
    );
  }
  const build = v.getUint32(20, true);
  if (build !== owner.simd) {
    const name = (b: number): string =>
      b === 1 ? 'SIMD' : b === 0 ? 'scalar' : b === 2 ? 'relaxed-SIMD' : `unknown (${b})`;
    throw new IteraError(
      `saved state comes from the ${name(build)} build of the module, this is the ${name(owner.simd)} build: their kernels may round differently, so it cannot continue bit for bit here`,
      'STATE_BUILD',
    );
  }
  const abi = v.getUint32(12, true);
  if (abi !== ABI_VERSION) {
    throw new IteraError(`saved state comes from module ABI ${abi}, this module speaks ${ABI_VERSION}`, 'STATE_ABI');
  }
  // a module keeps every older sampler bit for bit, and the session's own version is in the body:
  // a state from a module whose newest sampler was older continues here as it would have there
  const sampler = v.getUint32(16, true);
  if (sampler < 1 || sampler > SAMPLER_VERSION) {
    throw new IteraError(
      `saved state comes from sampler version ${sampler}, this module has samplers 1 to ${SAMPLER_VERSION}: restore it with the module that saved it (or a newer one)`,
      'STATE_SAMPLER',
    );
  }
  if (bodyBytes !== expectedBody) {
    throw new IteraError(
      `saved state holds ${bodyBytes} bytes of session state, this model's sessions have ${expectedBody}`,
      'STATE_LENGTH',
    );
  }
  return bytes.subarray(STATE_HEADER_BYTES, end);
}
