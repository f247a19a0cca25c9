// IEEE 754 half precision (binary16) and bfloat16 <-> binary32 conversion.
// Platform-neutral: typed arrays and DataView only.
//
// f16 layout: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
//   exponent 0      -> zero / subnormal: mantissa * 2^-24
//   exponent 1..30  -> normal: (1 + mantissa / 1024) * 2^(exponent - 15)
//   exponent 31     -> infinity (mantissa 0) or NaN (mantissa != 0)
// Every f16 value is exactly representable as an f32, so f16 -> f32 is exact.
// f32 -> f16 rounds to nearest, ties to even, overflowing to infinity and producing subnormals
// and signed zeros as IEEE 754 says. NaN stays NaN (quiet, with the top mantissa bits kept).

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** The 32 bits of `x` rounded to an f32. */
export function f32Bits(x: number): number {
  f32Buf[0] = x;
  return u32Buf[0]!;
}

/** The f32 whose bits are `bits`. */
export function f32FromBits(bits: number): number {
  u32Buf[0] = bits >>> 0;
  return f32Buf[0]!;
}

/** Decode one f16 (given as its 16 bits) to a number; exact. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** Encode `x` (first rounded to f32, as it would be stored in an f32 tensor) to f16 bits,
 *  round-to-nearest-even. */
export function f32ToF16(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;

  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00; // +-inf
    return sign | 0x7c00 | 0x200 | (mant >>> 13); // quiet NaN, top payload bits kept
  }
  const e = exp - 127 + 15; // the f16 biased exponent, if the value were normal there
  if (e >= 31) return sign | 0x7c00; // too large even before rounding: inf
  if (e <= 0) {
    // f16 subnormal (or zero). f32 subnormals (exp 0) are < 2^-126, far below half the
    // smallest f16 subnormal (2^-25): they round to a signed zero.
    if (exp === 0) return sign;
    // value = m * 2^(exp - 150); in units of 2^-24 that is m * 2^(exp - 126) = m >> shift.
    const m = mant | 0x800000;
    const shift = 126 - exp; // >= 14
    if (shift >= 25) return sign; // m / 2^25 < 0.5 unit: rounds to zero
    const q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    const up = rem > half || (rem === half && (q & 1) === 1);
    return sign | (q + (up ? 1 : 0)); // q + 1 may reach 0x400: the smallest normal, correctly
  }
  const q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  const up = rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1);
  return sign | (q + (up ? 1 : 0)); // a carry into the exponent is right, up to 0x7c00 = inf
}

let f16Table: Float32Array | null = null;

/** All 65536 f16 values as f32, built on first use (256 KiB). */
function table(): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/** Little-endian f16 bytes -> Float32Array. `bytes.length` must be even. */
export function f16BytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.length % 2 !== 0) throw new RangeError('f16 data must have an even number of bytes');
  const tab = table();
  const n = bytes.length >>> 1;
  const out = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = tab[bytes[j]! | (bytes[j + 1]! << 8)]!;
  return out;
}

/** Float32Array -> little-endian f16 bytes, round-to-nearest-even. */
export function f32ToF16Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0, j = 0; i < values.length; i++, j += 2) {
    const h = f32ToF16(values[i]!);
    out[j] = h & 0xff;
    out[j + 1] = h >>> 8;
  }
  return out;
}

/** Little-endian bfloat16 bytes -> Float32Array (exact: bf16 is the top half of an f32). */
export function bf16BytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.length % 2 !== 0) throw new RangeError('bf16 data must have an even number of bytes');
  const n = bytes.length >>> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0, j = 0; i < n; i++, j += 2) bits[i] = ((bytes[j]! | (bytes[j + 1]! << 8)) << 16) >>> 0;
  return out;
}

/** Little-endian f32 bytes (any byte offset) -> a new Float32Array. */
export function f32BytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) throw new RangeError('f32 data must have a multiple of 4 bytes');
  const out = new Float32Array(bytes.length >>> 2);
  new Uint8Array(out.buffer).set(bytes); // copies; the host and wasm are little-endian
  if (!littleEndianHost) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  }
  return out;
}

/** Float32Array -> little-endian bytes (a copy). */
export function f32ToBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  if (littleEndianHost) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  } else {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
  }
  return out;
}
