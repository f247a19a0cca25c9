// The Itera-Lite model file (GGUF v3/v2, little-endian; docs/model-file.md), parsed and validated
// inside the module. Every length and count is checked against the bytes that remain before it is
// used, so a truncated or corrupt file ends in die() with a message, never in a trap.

import { die } from './io';

export const GGML_F32: u32 = 0;
export const GGML_F16: u32 = 1;

const T_UINT8: u32 = 0, T_INT8: u32 = 1, T_UINT16: u32 = 2, T_INT16: u32 = 3, T_UINT32: u32 = 4, T_INT32: u32 = 5;
const T_FLOAT32: u32 = 6, T_BOOL: u32 = 7, T_STRING: u32 = 8, T_ARRAY: u32 = 9, T_UINT64: u32 = 10, T_INT64: u32 = 11, T_FLOAT64: u32 = 12;
const TYPE_NAMES: string[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
const MAX_DIMS: u32 = 4;
const MAX_ARRAY_DEPTH: i32 = 8;

function typeName(t: u32): string { return t < <u32>TYPE_NAMES.length ? TYPE_NAMES[t] : 'type ' + t.toString(); }

/** Block size and bytes per block of the ggml types this reader knows; [0, 0] if unknown. */
function ggmlBlock(t: u32): u64 {
  // (block << 32) | typeSize
  switch (t) {
    case 0: return (1 << 32) | 4; // F32
    case 1: return (1 << 32) | 2; // F16
    case 2: return (32 << 32) | 18; // Q4_0
    case 3: return (32 << 32) | 20; // Q4_1
    case 6: return (32 << 32) | 22; // Q5_0
    case 7: return (32 << 32) | 24; // Q5_1
    case 8: return (32 << 32) | 34; // Q8_0
    case 24: return (1 << 32) | 1; // I8
    case 25: return (1 << 32) | 2; // I16
    case 26: return (1 << 32) | 4; // I32
    case 27: return (1 << 32) | 8; // I64
    case 28: return (1 << 32) | 8; // F64
    case 30: return (1 << 32) | 2; // BF16
    default: return 0;
  }
}

export function ggmlTypeName(t: u32): string {
  switch (t) {
    case 0: return 'F32'; case 1: return 'F16'; case 2: return 'Q4_0'; case 3: return 'Q4_1';
    case 6: return 'Q5_0'; case 7: return 'Q5_1'; case 8: return 'Q8_0'; case 24: return 'I8';
    case 25: return 'I16'; case 26: return 'I32'; case 27: return 'I64'; case 28: return 'F64';
    case 30: return 'BF16'; default: return 'unknown type ' + t.toString();
  }
}

/** A metadata value the model needs, kept as its type and where its bytes are. */
export class KV {
  constructor(public key: string, public type: u32, public at: usize, public itemType: u32, public count: u64) {}
}

export class TensorInfo {
  name: string = '';
  /** PyTorch order (outermost first): ne[] reversed. */
  shape: u64[] = [];
  type: u32 = 0;
  offset: u64 = 0;
  bytes: u64 = 0;
  /** Absolute address of the data in memory, once the data section is known. */
  ptr: usize = 0;
}

export class GgufFile {
  version: u32 = 0;
  alignment: u64 = 32;
  kvs: Map<string, KV> = new Map<string, KV>();
  tensors: Map<string, TensorInfo> = new Map<string, TensorInfo>();
  tensorOrder: string[] = [];
}

class Cursor {
  pos: u64 = 0;
  constructor(public base: usize, public len: u64) {}
  remaining(): u64 { return this.len - this.pos; }
  need(n: u64, what: string): void {
    if (n > this.remaining()) {
      die('model file truncated: ' + what + ' at byte ' + this.pos.toString() + ' needs ' + n.toString() +
        ' bytes but the file has ' + this.len.toString() + ' bytes');
    }
  }
  addr(): usize { return this.base + <usize>this.pos; }
  u8(what: string): u8 { this.need(1, what); const v = load<u8>(this.addr()); this.pos += 1; return v; }
  u32(what: string): u32 { this.need(4, what); const v = load<u32>(this.addr()); this.pos += 4; return v; }
  u64(what: string): u64 { this.need(8, what); const v = load<u64>(this.addr()); this.pos += 8; return v; }
  skip(n: u64, what: string): void { this.need(n, what); this.pos += n; }
  /** A u64 count of units of unitBytes each that must fit in what is left. */
  count(what: string, unitBytes: u64): u64 {
    const at = this.pos;
    const n = this.u64('length of ' + what);
    // n * unitBytes > remaining, without overflow
    if (unitBytes > 0 && n > this.remaining() / unitBytes) {
      die('model file truncated or corrupt: ' + what + ' at byte ' + at.toString() + ' claims ' + n.toString() +
        (unitBytes == 1 ? ' bytes' : ' items') + ', more than the ' + this.remaining().toString() + ' bytes left in the file');
    }
    return n;
  }
  /** A string: returns its byte offset; sets lastLen. */
  lastLen: usize = 0;
  str(what: string): usize {
    const n = this.count(what, 1);
    const at = this.addr();
    this.lastLen = <usize>n;
    this.pos += n;
    return at;
  }
  string(what: string): string {
    const p = this.str(what);
    return String.UTF8.decodeUnsafe(p, this.lastLen);
  }
}

function scalarBytes(t: u32): u64 {
  switch (t) {
    case T_UINT8: case T_INT8: case T_BOOL: return 1;
    case T_UINT16: case T_INT16: return 2;
    case T_UINT32: case T_INT32: case T_FLOAT32: return 4;
    case T_UINT64: case T_INT64: case T_FLOAT64: return 8;
    default: return 0;
  }
}

function skipValue(c: Cursor, t: u32, key: string, depth: i32): void {
  if (t == T_STRING) { c.str('string value of ' + key); return; }
  if (t == T_ARRAY) {
    if (depth >= MAX_ARRAY_DEPTH) die("model file corrupt: metadata '" + key + "' nests arrays deeper than " + MAX_ARRAY_DEPTH.toString());
    const it = c.u32('item type of ' + key);
    if (it > T_FLOAT64) die("model file corrupt: metadata '" + key + "' has an array of unknown type " + it.toString());
    const unit: u64 = it == T_STRING ? 8 : it == T_ARRAY ? 12 : scalarBytes(it);
    const n = c.count('array ' + key, unit);
    if (it == T_STRING || it == T_ARRAY) {
      for (let i: u64 = 0; i < n; i++) skipValue(c, it, key, depth + 1);
    } else {
      c.skip(n * unit, 'array ' + key);
    }
    return;
  }
  const b = scalarBytes(t);
  if (b == 0) die("model file corrupt: metadata '" + key + "' has unknown value type " + t.toString());
  c.skip(b, 'value of ' + key);
}

/** Parses the GGUF structure of the bytes at base (len bytes). Tensor data pointers are absolute. */
export function readGguf(base: usize, len: u64): GgufFile {
  const f = new GgufFile();
  const c = new Cursor(base, len);
  if (len < 4) die('not a GGUF model file: ' + len.toString() + ' bytes, too short for the magic "GGUF"');
  if (load<u32>(base) != 0x46554747) die('not a GGUF model file: it does not start with "GGUF"');
  c.pos = 4;
  f.version = c.u32('version');
  if (f.version != 3 && f.version != 2) die('unsupported GGUF version ' + f.version.toString() + ': versions 3 and 2 can be read');
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('metadata count');
  // smallest KV 14 bytes, smallest tensor info 33 bytes
  if (nKv > c.remaining() / 14 || nTensors > c.remaining() / 33 || nKv * 14 + nTensors * 33 > c.remaining()) {
    die('model file corrupt or truncated: it claims ' + nTensors.toString() + ' tensors and ' + nKv.toString() +
      ' metadata entries, more than its ' + len.toString() + ' bytes can hold');
  }
  for (let i: u64 = 0; i < nKv; i++) {
    const key = c.string('key of metadata entry ' + i.toString());
    if (key.length == 0) die('model file corrupt: metadata entry ' + i.toString() + ' has an empty key');
    if (f.kvs.has(key)) die("model file corrupt: metadata key '" + key + "' appears twice");
    const t = c.u32("value type of '" + key + "'");
    let itemType: u32 = 0;
    let count: u64 = 0;
    let at = c.addr();
    if (t == T_ARRAY) {
      const save = c.pos;
      itemType = c.u32('item type of ' + key);
      count = c.u64('length of ' + key);
      at = c.addr();
      c.pos = save;
    }
    skipValue(c, t, key, 0);
    f.kvs.set(key, new KV(key, t, at, itemType, count));
  }
  if (f.kvs.has('general.alignment')) {
    const a = f.kvs.get('general.alignment');
    if (a.type != T_UINT32) die('model file: general.alignment must be a u32, found ' + typeName(a.type));
    const v = load<u32>(a.at);
    if (v == 0 || (v & (v - 1)) != 0) die('model file: general.alignment is ' + v.toString() + '; it must be a power of two');
    f.alignment = v;
  }
  for (let i: u64 = 0; i < nTensors; i++) {
    const ti = new TensorInfo();
    ti.name = c.string('name of tensor ' + i.toString());
    if (c.lastLen == 0) die('model file corrupt: tensor ' + i.toString() + ' has an empty name');
    if (c.lastLen > 63) die('model file corrupt: tensor ' + i.toString() + ' has a name longer than 63 bytes');
    if (f.tensors.has(ti.name)) die("model file corrupt: tensor '" + ti.name + "' appears twice");
    const nd = c.u32("dimension count of tensor '" + ti.name + "'");
    if (nd < 1 || nd > MAX_DIMS) die("model file corrupt: tensor '" + ti.name + "' has " + nd.toString() + ' dimensions; GGUF allows 1 to 4');
    const ne = new Array<u64>(<i32>nd);
    let elements: u64 = 1;
    for (let d: u32 = 0; d < nd; d++) {
      const n = c.u64('dimension ' + d.toString() + " of tensor '" + ti.name + "'");
      if (n < 1) die("model file corrupt: tensor '" + ti.name + "' has a dimension of size 0");
      // a runnable tensor has fewer elements than 2 x the file's bytes (Q4_0 packs 32 in 18 bytes)
      if (n > len * 2 + 64 || elements > (len * 2 + 64) / n) die("model file truncated or corrupt: tensor '" + ti.name + "' is larger than the file");
      ne[d] = n;
      elements *= n;
    }
    ti.type = c.u32("type of tensor '" + ti.name + "'");
    const blk = ggmlBlock(ti.type);
    if (blk == 0) die("model file corrupt: tensor '" + ti.name + "' has unknown ggml type " + ti.type.toString());
    const block = blk >> 32, typeSize = blk & 0xffffffff;
    if (ne[0] % block != 0) die("model file corrupt: tensor '" + ti.name + "' rows are not a whole number of " + ggmlTypeName(ti.type) + ' blocks');
    ti.bytes = elements / block * typeSize;
    ti.offset = c.u64("data offset of tensor '" + ti.name + "'");
    if (ti.bytes > len || ti.offset > len) {
      die("model file truncated or corrupt: tensor '" + ti.name + "' needs " + ti.bytes.toString() + ' bytes at data offset ' +
        ti.offset.toString() + ', but the file has ' + len.toString() + ' bytes');
    }
    if (ti.offset % f.alignment != 0) die("model file corrupt: tensor '" + ti.name + "' data offset is not a multiple of the alignment");
    const shape = new Array<u64>(<i32>nd);
    for (let d: i32 = 0; d < <i32>nd; d++) shape[d] = ne[<i32>nd - 1 - d];
    ti.shape = shape;
    f.tensors.set(ti.name, ti);
    f.tensorOrder.push(ti.name);
  }
  const dataStart = (c.pos + f.alignment - 1) / f.alignment * f.alignment;
  for (let i = 0; i < f.tensorOrder.length; i++) {
    const ti = f.tensors.get(f.tensorOrder[i]);
    const end = dataStart + ti.offset + ti.bytes;
    if (end > len) {
      die("model file truncated: tensor '" + ti.name + "' data ends at byte " + end.toString() + ' but the file has ' + len.toString() + ' bytes');
    }
    ti.ptr = base + <usize>(dataStart + ti.offset);
  }
  return f;
}

// ---- Typed access to metadata

export function hasKey(f: GgufFile, key: string): bool { return f.kvs.has(key); }

function getKV(f: GgufFile, key: string, t: u32): KV {
  if (!f.kvs.has(key)) die('model file: ' + key + ' is missing');
  const kv = f.kvs.get(key);
  if (kv.type != t) die('model file: ' + key + ' must be a ' + typeName(t) + ', found ' + typeName(kv.type));
  return kv;
}

export function getU32(f: GgufFile, key: string): u32 { return load<u32>(getKV(f, key, T_UINT32).at); }
export function getF32(f: GgufFile, key: string): f32 { return load<f32>(getKV(f, key, T_FLOAT32).at); }
export function getBool(f: GgufFile, key: string): bool {
  const v = load<u8>(getKV(f, key, T_BOOL).at);
  if (v > 1) die('model file: ' + key + ' is not a valid bool (' + v.toString() + ')');
  return v == 1;
}
export function getString(f: GgufFile, key: string): string {
  const kv = getKV(f, key, T_STRING);
  const n = load<u64>(kv.at); // checked by the parser
  return String.UTF8.decodeUnsafe(kv.at + 8, <usize>n);
}
export function getU32Array(f: GgufFile, key: string): u32[] {
  const kv = getKV(f, key, T_ARRAY);
  if (kv.itemType != T_UINT32) die('model file: ' + key + ' must be an array of u32, found an array of ' + typeName(kv.itemType));
  const out = new Array<u32>(<i32>kv.count);
  for (let i = 0; i < <i32>kv.count; i++) out[i] = load<u32>(kv.at + (<usize>i << 2));
  return out;
}
export function getI32Array(f: GgufFile, key: string): i32[] {
  const kv = getKV(f, key, T_ARRAY);
  if (kv.itemType != T_INT32) die('model file: ' + key + ' must be an array of i32, found an array of ' + typeName(kv.itemType));
  const out = new Array<i32>(<i32>kv.count);
  for (let i = 0; i < <i32>kv.count; i++) out[i] = load<i32>(kv.at + (<usize>i << 2));
  return out;
}
/** Strings of a string array, as [byte address, byte length] pairs (already bounds-checked). */
export function getStringArray(f: GgufFile, key: string): StringRef[] {
  const kv = getKV(f, key, T_ARRAY);
  if (kv.itemType != T_STRING) die('model file: ' + key + ' must be an array of strings, found an array of ' + typeName(kv.itemType));
  const out = new Array<StringRef>(<i32>kv.count);
  let p = kv.at;
  for (let i = 0; i < <i32>kv.count; i++) {
    const n = <usize>load<u64>(p);
    out[i] = new StringRef(p + 8, n);
    p += 8 + n;
  }
  return out;
}

export class StringRef {
  constructor(public ptr: usize, public len: usize) {}
  toString(): string { return String.UTF8.decodeUnsafe(this.ptr, this.len); }
}
