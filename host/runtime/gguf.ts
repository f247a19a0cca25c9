// GGUF reader (versions 3 and 2), little-endian only. The writer is host/convert/gguf-write.ts.
// Platform-neutral: Uint8Array, DataView, TextEncoder/TextDecoder; no Node APIs.
//
// Layout (all integers little-endian):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding up to a multiple of `alignment` | tensor data (each tensor at data_start + offset)
// where string = u64 byte length + UTF-8 bytes (no terminator), and alignment is the u32 value of
// `general.alignment` (default 32). Version 2 has the same layout as version 3 (3 only added
// big-endian files, which this reader rejects); version 1 had 32-bit counts and is rejected.
//
// SHAPES: this API uses PyTorch order (outermost dimension first, e.g. a Linear weight [out, in]).
// On disk GGUF stores ne[] innermost first (ne[0] is the row length), so `shape` is ne reversed.
//
// readGguf validates everything before it returns and throws only IteraError on bad input
// (codes GGUF_*), never a RangeError/TypeError, and never allocates from an unchecked count.

import { IteraError } from './types.js';

export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME is 64 bytes including the terminating NUL. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
export const GGUF_MAX_KEY_BYTES = 65535;
/** Arrays of arrays are legal in GGUF; we refuse nesting deeper than this. */
export const GGUF_MAX_ARRAY_DEPTH = 8;

// ---------------------------------------------------------------------------------------------
// Metadata values

export type GgufNumberType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigIntType = 'u64' | 'i64';
export type GgufScalarType = GgufNumberType | GgufBigIntType | 'bool' | 'string';
export type GgufValueType = GgufScalarType | 'array';

/** A GGUF array value. 64-bit integers are bigints so that every value round-trips exactly. */
export type GgufArray =
  | { type: 'array'; itemType: GgufNumberType; value: number[] }
  | { type: 'array'; itemType: GgufBigIntType; value: bigint[] }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: 'array'; value: GgufArray[] };

/** A typed GGUF metadata value, e.g. {type: 'u32', value: 3}. f32 values read back as the
 *  f32-rounded number; u64/i64 are bigints. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArray;

export interface GgufKV {
  key: string;
  value: GgufValue;
}

/** GGUF value type codes (gguf_type). */
export const VALUE_TYPE_CODES: Record<GgufValueType, number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const VALUE_TYPE_BY_CODE: readonly GgufValueType[] = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
];
/** Bytes of one value of each type on disk; for string and array, the least possible. */
export const MIN_VALUE_BYTES: Record<GgufValueType, number> = {
  u8: 1,
  i8: 1,
  bool: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  f64: 8,
  string: 8, // u64 length
  array: 12, // u32 item type + u64 length
};
export const INT_RANGES: Record<'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32', [number, number]> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

// Small constructors, for readable metadata lists.
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: bigint): GgufValue => ({ type: 'u64', value }),
  i64: (value: bigint): GgufValue => ({ type: 'i64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  u32s: (value: number[]): GgufValue => ({ type: 'array', itemType: 'u32', value }),
  strings: (value: string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
};

/** Metadata as a Map (keys are unique in a valid file). */
export function metadataMap(metadata: readonly GgufKV[]): Map<string, GgufValue> {
  const m = new Map<string, GgufValue>();
  for (const kv of metadata) m.set(kv.key, kv.value);
  return m;
}

// ---------------------------------------------------------------------------------------------
// ggml tensor types

/** ggml_type ids. Only those in GGML_TYPES are known to this reader. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30,
} as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Elements per block (1 for plain types). The row length ne[0] must be a multiple. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** Size table. To add a type, add a row: nothing else in the reader or writer changes. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  (
    [
      [GgmlType.F32, 'F32', 1, 4],
      [GgmlType.F16, 'F16', 1, 2],
      [GgmlType.Q4_0, 'Q4_0', 32, 18], // f16 scale + 16 bytes of 4-bit values
      [GgmlType.Q4_1, 'Q4_1', 32, 20], // f16 scale, f16 min + 16 bytes
      [GgmlType.Q5_0, 'Q5_0', 32, 22], // f16 scale + 4 bytes high bits + 16 bytes
      [GgmlType.Q5_1, 'Q5_1', 32, 24], // f16 scale, f16 min + 4 + 16 bytes
      [GgmlType.Q8_0, 'Q8_0', 32, 34], // f16 scale + 32 int8
      [GgmlType.I8, 'I8', 1, 1],
      [GgmlType.I16, 'I16', 1, 2],
      [GgmlType.I32, 'I32', 1, 4],
      [GgmlType.I64, 'I64', 1, 8],
      [GgmlType.F64, 'F64', 1, 8],
      [GgmlType.BF16, 'BF16', 1, 2],
    ] as const
  ).map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);

/** 'F32', or 'unknown type 99'. */
export function ggmlTypeName(type: number): string {
  return GGML_TYPES.get(type)?.name ?? `unknown type ${type}`;
}

/** Bytes of a tensor of `type` and `shape` (PyTorch order). Throws IteraError for an unknown
 *  type, a bad shape, or a row length that is not a whole number of blocks. */
export function tensorByteSize(type: number, shape: readonly number[], name = '(unnamed)'): number {
  const info = GGML_TYPES.get(type);
  if (!info) throw new IteraError(`tensor '${name}' has unknown ggml type ${type}`, 'GGUF_UNKNOWN_TENSOR_TYPE');
  checkShape(shape, name);
  const rowLength = shape[shape.length - 1]!;
  if (rowLength % info.blockSize !== 0) {
    throw new IteraError(
      `tensor '${name}' of type ${info.name} has rows of ${rowLength} elements, not a multiple of its block size ${info.blockSize}`,
      'GGUF_BAD_TENSOR',
    );
  }
  const elements = shape.reduce((a, b) => a * b, 1);
  const bytes = (elements / info.blockSize) * info.typeSize;
  if (!Number.isSafeInteger(bytes))
    throw new IteraError(`tensor '${name}' is too large (${shape.join('x')})`, 'GGUF_BAD_TENSOR');
  return bytes;
}

function checkShape(shape: readonly number[], name: string): void {
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > GGUF_MAX_DIMS) {
    throw new IteraError(
      `tensor '${name}' has ${Array.isArray(shape) ? shape.length : 'no'} dimensions; GGUF allows 1 to ${GGUF_MAX_DIMS}`,
      'GGUF_BAD_TENSOR',
    );
  }
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new IteraError(
        `tensor '${name}' has a bad dimension ${String(d)} in shape [${shape.join(', ')}]; every dimension must be an integer >= 1`,
        'GGUF_BAD_TENSOR',
      );
    }
  }
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---------------------------------------------------------------------------------------------
// The file

export interface GgufTensor {
  name: string;
  /** ggml_type id (GgmlType.F32, ...). */
  type: number;
  /** PyTorch order: outermost first (on disk: reversed). */
  shape: number[];
  /** Offset of the data from the start of the data section (a multiple of the alignment). */
  offset: number;
  /** The tensor's bytes. From readGguf: a view into the input, not a copy. */
  data: Uint8Array;
}

export interface GgufFile {
  version: number;
  alignment: number;
  /** In file order. */
  metadata: GgufKV[];
  /** In file order. */
  tensors: GgufTensor[];
  /** Absolute byte offset of the data section. */
  dataOffset: number;
}

// ---------------------------------------------------------------------------------------------
// Reader

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

class Cursor {
  pos = 0;
  readonly dv: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new IteraError(
        `model file truncated: ${what} at byte ${this.pos} needs ${n} bytes but the file has ${this.bytes.length} bytes`,
        'GGUF_TRUNCATED',
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.dv.getUint8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.dv.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.dv.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must fit in the file (a length, a count of bytes): checked, then a number. */
  length(what: string, unitBytes: number): number {
    const at = this.pos;
    const n = this.u64(`length of ${what}`);
    if (n * BigInt(unitBytes) > BigInt(this.remaining)) {
      throw new IteraError(
        `model file truncated or corrupt: ${what} at byte ${at} claims ${n} ${unitBytes === 1 ? 'bytes' : 'items'}, more than the ${this.remaining} bytes left in the file`,
        'GGUF_TRUNCATED',
      );
    }
    return Number(n);
  }
  string(what: string): string {
    const len = this.length(what, 1);
    const at = this.pos;
    const raw = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new IteraError(`${what} at byte ${at} is not valid UTF-8`, 'GGUF_BAD_STRING');
    }
  }
}

/** Parse and fully validate a GGUF file. Tensor data are views into `bytes`. */
export function readGguf(bytes: Uint8Array): GgufFile {
  if (!(bytes instanceof Uint8Array)) throw new IteraError('readGguf needs a Uint8Array', 'GGUF_BAD_INPUT');
  const c = new Cursor(bytes);
  if (bytes.length < 4) {
    throw new IteraError(
      `not a GGUF file: ${bytes.length} bytes, too short for the 4-byte magic "GGUF"`,
      'GGUF_BAD_MAGIC',
    );
  }
  if (bytes[0] !== 0x47 || bytes[1] !== 0x47 || bytes[2] !== 0x55 || bytes[3] !== 0x46) {
    const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new IteraError(`not a GGUF file: it starts with bytes ${hex}, not "GGUF" (47 47 55 46)`, 'GGUF_BAD_MAGIC');
  }
  c.pos = 4;
  const version = c.u32('version');
  if (version !== 3 && version !== 2) {
    const swapped =
      (((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24)) >>> 0;
    const hint =
      swapped === 2 || swapped === 3
        ? ' (this looks like a big-endian GGUF, which is not supported)'
        : version === 1
          ? ' (version 1 had 32-bit counts and is obsolete: re-convert the model)'
          : '';
    throw new IteraError(
      `unsupported GGUF version ${version}: versions 3 and 2 can be read${hint}`,
      'GGUF_BAD_VERSION',
    );
  }
  const tensorCountBig = c.u64('tensor count');
  const kvCountBig = c.u64('metadata count');
  // The smallest KV is 14 bytes (8 length + 1-byte key + 4 type + 1-byte value); the smallest
  // tensor info is 33 bytes (8 + 1-byte name + 4 n_dims + 8 ne[0] + 4 type + 8 offset).
  if (kvCountBig * 14n + tensorCountBig * 33n > BigInt(c.remaining)) {
    throw new IteraError(
      `model file corrupt or truncated: it claims ${tensorCountBig} tensors and ${kvCountBig} metadata entries, more than its ${bytes.length} bytes can hold`,
      'GGUF_BAD_COUNT',
    );
  }
  const tensorCount = Number(tensorCountBig);
  const kvCount = Number(kvCountBig);

  const metadata: GgufKV[] = [];
  const keys = new Set<string>();
  for (let i = 0; i < kvCount; i++) {
    const at = c.pos;
    const key = c.string(`key of metadata entry ${i}`);
    checkKey(key, `metadata entry ${i} at byte ${at}`);
    if (keys.has(key)) throw new IteraError(`metadata key '${key}' appears twice`, 'GGUF_DUPLICATE_KEY');
    keys.add(key);
    const typeCode = c.u32(`value type of '${key}'`);
    const type = valueTypeOf(typeCode, key);
    metadata.push({ key, value: readValue(c, type, key, 0) });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignKV = metadata.find((kv) => kv.key === 'general.alignment');
  if (alignKV) {
    const v = alignKV.value;
    if (v.type !== 'u32') {
      throw new IteraError(`general.alignment must be a u32, found ${v.type}`, 'GGUF_BAD_ALIGNMENT');
    }
    if (v.value === 0 || (v.value & (v.value - 1)) !== 0) {
      throw new IteraError(`general.alignment is ${v.value}; it must be a power of two`, 'GGUF_BAD_ALIGNMENT');
    }
    alignment = v.value;
  }

  interface Info {
    name: string;
    type: number;
    shape: number[];
    offset: number;
    size: number;
  }
  const infos: Info[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos;
    const name = c.string(`name of tensor ${i}`);
    if (name.length === 0) throw new IteraError(`tensor ${i} at byte ${at} has an empty name`, 'GGUF_BAD_TENSOR');
    if (utf8Encoder.encode(name).length > GGUF_MAX_TENSOR_NAME_BYTES) {
      throw new IteraError(
        `tensor ${i} name '${name.slice(0, 80)}...' is longer than ${GGUF_MAX_TENSOR_NAME_BYTES} bytes`,
        'GGUF_BAD_TENSOR',
      );
    }
    if (names.has(name)) throw new IteraError(`tensor '${name}' appears twice`, 'GGUF_DUPLICATE_TENSOR');
    names.add(name);
    const nDims = c.u32(`dimension count of tensor '${name}'`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
      throw new IteraError(
        `tensor '${name}' has ${nDims} dimensions; GGUF allows 1 to ${GGUF_MAX_DIMS}`,
        'GGUF_BAD_TENSOR',
      );
    }
    const ne: bigint[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`dimension ${d} of tensor '${name}'`);
      if (n < 1n)
        throw new IteraError(
          `tensor '${name}' has dimension ${d} of size 0; every dimension must be >= 1`,
          'GGUF_BAD_TENSOR',
        );
      ne.push(n);
      elements *= n;
    }
    const type = c.u32(`type of tensor '${name}'`);
    const info = GGML_TYPES.get(type);
    if (!info) {
      throw new IteraError(`tensor '${name}' has unknown ggml type ${type}`, 'GGUF_UNKNOWN_TENSOR_TYPE');
    }
    if (ne[0]! % BigInt(info.blockSize) !== 0n) {
      throw new IteraError(
        `tensor '${name}' of type ${info.name} has rows of ${ne[0]} elements, not a multiple of its block size ${info.blockSize}`,
        'GGUF_BAD_TENSOR',
      );
    }
    const sizeBig = (elements / BigInt(info.blockSize)) * BigInt(info.typeSize);
    const offsetBig = c.u64(`data offset of tensor '${name}'`);
    if (sizeBig > BigInt(bytes.length) || offsetBig > BigInt(bytes.length)) {
      throw new IteraError(
        `model file truncated or corrupt: tensor '${name}' [${ne.slice().reverse().join(', ')}] of type ${info.name} needs ${sizeBig} bytes at data offset ${offsetBig}, but the file has ${bytes.length} bytes`,
        'GGUF_TRUNCATED',
      );
    }
    const offset = Number(offsetBig);
    if (offset % alignment !== 0) {
      throw new IteraError(
        `tensor '${name}' data offset ${offset} is not a multiple of the alignment ${alignment}`,
        'GGUF_MISALIGNED_TENSOR',
      );
    }
    infos.push({ name, type, shape: ne.map(Number).reverse(), offset, size: Number(sizeBig) });
  }

  const dataOffset = alignUp(c.pos, alignment);
  const tensors: GgufTensor[] = [];
  for (const t of infos) {
    const start = dataOffset + t.offset;
    const end = start + t.size;
    if (end > bytes.length) {
      throw new IteraError(
        `model file truncated: tensor '${t.name}' data ends at byte ${end} but the file has ${bytes.length} bytes`,
        'GGUF_TRUNCATED',
      );
    }
    tensors.push({ name: t.name, type: t.type, shape: t.shape, offset: t.offset, data: bytes.subarray(start, end) });
  }
  const byOffset = infos.slice().sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const next = byOffset[i]!;
    if (prev.offset + prev.size > next.offset) {
      throw new IteraError(
        `tensors '${prev.name}' (bytes ${prev.offset}..${prev.offset + prev.size} of the data section) and '${next.name}' (from ${next.offset}) overlap`,
        'GGUF_TENSOR_OVERLAP',
      );
    }
  }
  return { version, alignment, metadata, tensors, dataOffset };
}

function valueTypeOf(code: number, key: string): GgufValueType {
  const type = VALUE_TYPE_BY_CODE[code];
  if (type === undefined) {
    throw new IteraError(`metadata '${key}' has unknown value type ${code} (known: 0 to 12)`, 'GGUF_BAD_VALUE_TYPE');
  }
  return type;
}

function readValue(c: Cursor, type: GgufValueType, key: string, depth: number): GgufValue {
  const what = `value of '${key}'`;
  switch (type) {
    case 'u8':
      return { type, value: c.u8(what) };
    case 'i8':
      return { type, value: c.i8(what) };
    case 'u16':
      return { type, value: c.u16(what) };
    case 'i16':
      return { type, value: c.i16(what) };
    case 'u32':
      return { type, value: c.u32(what) };
    case 'i32':
      return { type, value: c.i32(what) };
    case 'f32':
      return { type, value: c.f32(what) };
    case 'f64':
      return { type, value: c.f64(what) };
    case 'u64':
      return { type, value: c.u64(what) };
    case 'i64':
      return { type, value: c.i64(what) };
    case 'bool':
      return { type, value: readBool(c, what) };
    case 'string':
      return { type, value: c.string(what) };
    case 'array':
      return readArray(c, key, depth);
  }
}

function readBool(c: Cursor, what: string): boolean {
  const at = c.pos;
  const b = c.u8(what);
  if (b > 1)
    throw new IteraError(`${what} at byte ${at} is a bool stored as ${b}; only 0 and 1 are valid`, 'GGUF_BAD_VALUE');
  return b === 1;
}

function readArray(c: Cursor, key: string, depth: number): GgufArray {
  if (depth >= GGUF_MAX_ARRAY_DEPTH) {
    throw new IteraError(`metadata '${key}' has arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH}`, 'GGUF_BAD_VALUE');
  }
  const itemType = valueTypeOf(c.u32(`array item type of '${key}'`), key);
  const n = c.length(`array '${key}'`, MIN_VALUE_BYTES[itemType]);
  const what = `element of array '${key}'`;
  switch (itemType) {
    case 'u64':
    case 'i64': {
      const value: bigint[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = itemType === 'u64' ? c.u64(what) : c.i64(what);
      return { type: 'array', itemType, value };
    }
    case 'bool': {
      const value: boolean[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = readBool(c, what);
      return { type: 'array', itemType, value };
    }
    case 'string': {
      const value: string[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = c.string(what);
      return { type: 'array', itemType, value };
    }
    case 'array': {
      const value: GgufArray[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = readArray(c, key, depth + 1);
      return { type: 'array', itemType, value };
    }
    default: {
      const value: number[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = (readValue(c, itemType, key, depth) as { value: number }).value;
      return { type: 'array', itemType, value };
    }
  }
}

/** Metadata keys: non-empty printable ASCII without spaces, at most GGUF_MAX_KEY_BYTES. */
export function checkKey(key: string, where: string): void {
  if (key.length === 0) throw new IteraError(`${where}: empty metadata key`, 'GGUF_BAD_KEY');
  if (key.length > GGUF_MAX_KEY_BYTES)
    throw new IteraError(`${where}: metadata key longer than ${GGUF_MAX_KEY_BYTES} bytes`, 'GGUF_BAD_KEY');
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    if (ch < 0x21 || ch > 0x7e) {
      throw new IteraError(
        `${where}: metadata key '${key.slice(0, 80)}' has character code ${ch} at ${i}; keys are printable ASCII without spaces`,
        'GGUF_BAD_KEY',
      );
    }
  }
}
