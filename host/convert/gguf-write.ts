// GGUF writer (version 3), little-endian: the counterpart of host/runtime/gguf.ts's reader, which
// documents the layout. Used by the converters; devices only read.

import { IteraError } from '../runtime/types.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAX_ARRAY_DEPTH,
  GGUF_VERSION,
  INT_RANGES,
  MIN_VALUE_BYTES,
  VALUE_TYPE_CODES,
  GGUF_MAX_TENSOR_NAME_BYTES,
  alignUp,
  checkKey,
  ggmlTypeName,
  tensorByteSize,
  type GgufArray,
  type GgufKV,
  type GgufValue,
} from '../runtime/gguf.js';

const utf8Encoder = new TextEncoder();

export interface GgufTensorInput {
  name: string;
  type: number;
  shape: readonly number[];
  data: Uint8Array;
}

export interface GgufWriteInput {
  metadata: readonly GgufKV[];
  tensors: readonly GgufTensorInput[];
}

/** Serialise metadata and tensors (in the given orders) to GGUF v3. Deterministic: the same
 *  input always gives the same bytes. The alignment is 32 unless the metadata sets
 *  general.alignment (a u32 power of two). Padding bytes are zero; the data of the last tensor is
 *  padded too, so the file length is a multiple of the alignment. */
export function writeGguf(file: GgufWriteInput): Uint8Array {
  const keys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  let size = 24;
  const encodedKeys: Uint8Array[] = [];
  for (const kv of file.metadata) {
    checkKey(kv.key, 'writeGguf');
    if (keys.has(kv.key)) throw new IteraError(`metadata key '${kv.key}' given twice`, 'GGUF_DUPLICATE_KEY');
    keys.add(kv.key);
    if (kv.key === 'general.alignment') {
      const v = kv.value;
      if (v.type !== 'u32' || !Number.isInteger(v.value) || v.value <= 0 || (v.value & (v.value - 1)) !== 0) {
        throw new IteraError('general.alignment must be a u32 power of two', 'GGUF_BAD_ALIGNMENT');
      }
      alignment = v.value;
    }
    const k = utf8Encoder.encode(kv.key);
    encodedKeys.push(k);
    size += 8 + k.length + 4 + valueSize(kv.value, kv.key, 0);
  }
  const names = new Set<string>();
  const encodedNames: Uint8Array[] = [];
  const sizes: number[] = [];
  for (const t of file.tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0)
      throw new IteraError('a tensor has an empty name', 'GGUF_BAD_TENSOR');
    checkWellFormed(t.name, `tensor name '${t.name}'`);
    const n = utf8Encoder.encode(t.name);
    if (n.length > GGUF_MAX_TENSOR_NAME_BYTES) {
      throw new IteraError(
        `tensor name '${t.name}' is longer than ${GGUF_MAX_TENSOR_NAME_BYTES} bytes`,
        'GGUF_BAD_TENSOR',
      );
    }
    if (names.has(t.name)) throw new IteraError(`tensor '${t.name}' given twice`, 'GGUF_DUPLICATE_TENSOR');
    names.add(t.name);
    const bytes = tensorByteSize(t.type, t.shape, t.name);
    if (!(t.data instanceof Uint8Array) || t.data.length !== bytes) {
      throw new IteraError(
        `tensor '${t.name}' [${t.shape.join(', ')}] of type ${ggmlTypeName(t.type)} needs ${bytes} bytes of data, got ${t.data instanceof Uint8Array ? t.data.length : 'no Uint8Array'}`,
        'GGUF_BAD_TENSOR',
      );
    }
    encodedNames.push(n);
    sizes.push(bytes);
    size += 8 + n.length + 4 + 8 * t.shape.length + 4 + 8;
  }
  const dataOffset = alignUp(size, alignment);
  const offsets: number[] = [];
  let dataSize = 0;
  for (const s of sizes) {
    offsets.push(dataSize);
    dataSize = alignUp(dataSize + s, alignment);
  }
  const total = file.tensors.length > 0 ? dataOffset + dataSize : size;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let p = 0;
  out.set([0x47, 0x47, 0x55, 0x46], 0);
  dv.setUint32(4, GGUF_VERSION, true);
  dv.setBigUint64(8, BigInt(file.tensors.length), true);
  dv.setBigUint64(16, BigInt(file.metadata.length), true);
  p = 24;
  const putBytes = (b: Uint8Array): void => {
    dv.setBigUint64(p, BigInt(b.length), true);
    out.set(b, p + 8);
    p += 8 + b.length;
  };
  const putValue = (v: GgufValue): void => {
    switch (v.type) {
      case 'u8':
        dv.setUint8(p, v.value);
        p += 1;
        break;
      case 'i8':
        dv.setInt8(p, v.value);
        p += 1;
        break;
      case 'u16':
        dv.setUint16(p, v.value, true);
        p += 2;
        break;
      case 'i16':
        dv.setInt16(p, v.value, true);
        p += 2;
        break;
      case 'u32':
        dv.setUint32(p, v.value, true);
        p += 4;
        break;
      case 'i32':
        dv.setInt32(p, v.value, true);
        p += 4;
        break;
      case 'f32':
        dv.setFloat32(p, v.value, true);
        p += 4;
        break;
      case 'f64':
        dv.setFloat64(p, v.value, true);
        p += 8;
        break;
      case 'u64':
        dv.setBigUint64(p, v.value, true);
        p += 8;
        break;
      case 'i64':
        dv.setBigInt64(p, v.value, true);
        p += 8;
        break;
      case 'bool':
        dv.setUint8(p, v.value ? 1 : 0);
        p += 1;
        break;
      case 'string':
        putBytes(utf8Encoder.encode(v.value));
        break;
      case 'array': {
        dv.setUint32(p, VALUE_TYPE_CODES[v.itemType], true);
        dv.setBigUint64(p + 4, BigInt(v.value.length), true);
        p += 12;
        for (const item of v.value as unknown[]) {
          // Re-wrap each element as a value of the item type (arrays are already values).
          putValue(v.itemType === 'array' ? (item as GgufArray) : ({ type: v.itemType, value: item } as GgufValue));
        }
        break;
      }
    }
  };
  file.metadata.forEach((kv, i) => {
    putBytes(encodedKeys[i]!);
    dv.setUint32(p, VALUE_TYPE_CODES[kv.value.type], true);
    p += 4;
    putValue(kv.value);
  });
  file.tensors.forEach((t, i) => {
    putBytes(encodedNames[i]!);
    dv.setUint32(p, t.shape.length, true);
    p += 4;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      dv.setBigUint64(p, BigInt(t.shape[d]!), true);
      p += 8;
    }
    dv.setUint32(p, t.type, true);
    dv.setBigUint64(p + 4, BigInt(offsets[i]!), true);
    p += 12;
  });
  if (p !== size) throw new Error(`writeGguf internal error: header size ${p} != ${size}`);
  file.tensors.forEach((t, i) => out.set(t.data, dataOffset + offsets[i]!));
  return out;
}

/** On-disk bytes of a value (without its type code), validating it on the way. */
function valueSize(v: GgufValue, key: string, depth: number): number {
  const bad = (why: string): never => {
    throw new IteraError(`metadata '${key}': ${why}`, 'GGUF_BAD_VALUE');
  };
  if (v === null || typeof v !== 'object' || !(v.type in VALUE_TYPE_CODES))
    bad(`unknown value type ${String((v as { type?: unknown })?.type)}`);
  const val: unknown = v.value;
  switch (v.type) {
    case 'u8':
    case 'i8':
    case 'u16':
    case 'i16':
    case 'u32':
    case 'i32': {
      const [lo, hi] = INT_RANGES[v.type];
      if (!Number.isInteger(v.value) || v.value < lo || v.value > hi) bad(`${String(v.value)} is not a ${v.type}`);
      return MIN_VALUE_BYTES[v.type];
    }
    case 'f32':
    case 'f64':
      if (typeof v.value !== 'number') bad(`${String(val)} is not a number`);
      return MIN_VALUE_BYTES[v.type];
    case 'u64':
      if (typeof v.value !== 'bigint' || v.value < 0n || v.value > 0xffffffffffffffffn)
        bad(`${String(val)} is not a u64 bigint`);
      return 8;
    case 'i64':
      if (typeof v.value !== 'bigint' || v.value < -(1n << 63n) || v.value >= 1n << 63n)
        bad(`${String(val)} is not an i64 bigint`);
      return 8;
    case 'bool':
      if (typeof v.value !== 'boolean') bad(`${String(val)} is not a boolean`);
      return 1;
    case 'string':
      if (typeof v.value !== 'string') bad(`${String(val)} is not a string`);
      checkWellFormed(v.value, `metadata '${key}'`);
      return 8 + utf8Encoder.encode(v.value).length;
    case 'array': {
      if (depth >= GGUF_MAX_ARRAY_DEPTH) bad(`arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH}`);
      if (!(v.itemType in VALUE_TYPE_CODES)) bad(`unknown array item type ${String(v.itemType)}`);
      if (!Array.isArray(v.value)) bad('array value is not an array');
      let total = 12;
      for (const item of v.value as unknown[]) {
        total +=
          v.itemType === 'array'
            ? valueSize(item as GgufArray, key, depth + 1)
            : valueSize({ type: v.itemType, value: item } as GgufValue, key, depth + 1);
      }
      return total;
    }
  }
}

/** TextEncoder would silently turn a lone surrogate into U+FFFD; refuse instead. */
function checkWellFormed(s: string, what: string): void {
  if (/\p{Cs}/u.test(s))
    throw new IteraError(`${what} contains a lone UTF-16 surrogate, which UTF-8 cannot encode`, 'GGUF_BAD_STRING');
}
