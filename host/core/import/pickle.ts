// A pickle virtual machine that never executes anything.
//
// It reads the opcode stream of a Python pickle (protocols 0 to 5) and builds plain data: Maps
// for dicts (insertion order kept, OrderedDict included), arrays for lists, PyTuple for tuples,
// Sets, strings, numbers (bigint when an integer does not fit in 2^53), booleans, null and
// Uint8Array for bytes. A pickle may name any Python callable (GLOBAL, STACK_GLOBAL, INST); only the
// names on ALLOWED_GLOBALS below resolve, and each of those is implemented here as a pure function
// that builds a typed node (a TorchTensor, a Map, ...). Any other name is rejected with
// IteraError 'PICKLE_GLOBAL_FORBIDDEN' the moment it is read, before anything could call it.
//
// Everything is bounded: the number of opcodes, the stack, the mark depth, the memo, and every
// length read from the stream is checked against the bytes that remain.
//
// Opcode semantics follow the documentation of Python's pickletools module (the opcode table and
// its descriptions of each argument encoding).

import { DTYPE_SIZE, IteraError, type DType } from '../types.js';

// ---------------------------------------------------------------------------------------------
// Values

/** A Python tuple (kept apart from lists, which are plain arrays). */
export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** What a storage holds: the DTypes plus quint8, which only appears inside quantized tensors. */
export type StorageElement = DType | 'quint8' | 'qint32';

export const STORAGE_ELEMENT_SIZE: Readonly<Record<StorageElement, number>> = { ...DTYPE_SIZE, quint8: 1, qint32: 4 };

/** What an allow-listed global is: a storage type, a dtype, a qscheme, or a pure function. */
export type GlobalSpec =
  | { kind: 'storage-type'; element: StorageElement }
  | { kind: 'dtype'; dtype: string }
  | { kind: 'qscheme'; scheme: string }
  | { kind: 'callable'; call: (args: readonly PickleValue[], where: string) => PickleValue };

/** An allowed global, used as a value (a storage type, a dtype, a qscheme, or a function). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly spec: GlobalSpec,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A storage as a persistent id named it; `data` is whatever bytes the loader found for it. */
export class TorchStorage {
  constructor(
    /** e.g. 'FloatStorage' */
    readonly storageType: string,
    readonly element: StorageElement,
    /** The key: the storage's file is `<archive-root>/data/<key>`. */
    readonly key: string,
    readonly location: string,
    /** Number of elements the storage holds. */
    readonly numel: number,
    readonly data: Uint8Array,
  ) {}
}

export interface TorchQuantization {
  scheme: 'per_tensor_affine';
  scale: number;
  zeroPoint: number;
}

/** A tensor as torch._utils rebuilds it: a view (offset, size, stride) into a storage. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    /** In elements. */
    readonly offset: number,
    readonly size: readonly number[],
    /** In elements. */
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    readonly quant: TorchQuantization | undefined,
    /** Saved as an nn.Parameter (through _rebuild_parameter). */
    readonly parameter: boolean,
  ) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PyTuple
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PyGlobal
  | TorchStorage
  | TorchTensor;

/** A short Python-ish name for a value's type, for error messages. */
export function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof PyGlobal) return `global ${v.qualifiedName}`;
  if (v instanceof TorchStorage) return `storage ${v.storageType}`;
  return 'tensor';
}

// ---------------------------------------------------------------------------------------------
// The allow-list. Each entry is a name torch.save writes into a state_dict checkpoint (checked by
// disassembling real files from torch 1.13 and 2.x), implemented as pure data construction.

function invalid(message: string): IteraError {
  return new IteraError(message, 'PICKLE_INVALID');
}

function expectInt(v: PickleValue | undefined, what: string, where: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw invalid(`${what} must be an int, found ${v === undefined ? 'nothing' : describe(v)} (${where})`);
}

function expectIntTuple(v: PickleValue | undefined, what: string, where: string): number[] {
  if (!(v instanceof PyTuple)) {
    throw invalid(`${what} must be a tuple of ints, found ${v === undefined ? 'nothing' : describe(v)} (${where})`);
  }
  return v.items.map((x) => expectInt(x, `every element of ${what}`, where));
}

function expectBool(v: PickleValue | undefined, what: string, where: string): boolean {
  if (typeof v === 'boolean') return v;
  throw invalid(`${what} must be a bool, found ${v === undefined ? 'nothing' : describe(v)} (${where})`);
}

function expectNumber(v: PickleValue | undefined, what: string, where: string): number {
  if (typeof v === 'number') return v;
  throw invalid(`${what} must be a number, found ${v === undefined ? 'nothing' : describe(v)} (${where})`);
}

function expectArgCount(args: readonly PickleValue[], min: number, max: number, fn: string, where: string): void {
  if (args.length < min || args.length > max) {
    throw invalid(`${fn} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length} (${where})`);
  }
}

function expectStorage(v: PickleValue | undefined, fn: string, where: string): TorchStorage {
  if (v instanceof TorchStorage) return v;
  throw invalid(`${fn}: the first argument must be a storage, found ${v === undefined ? 'nothing' : describe(v)} (${where})`);
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
function rebuildTensorV2(args: readonly PickleValue[], where: string): PickleValue {
  const fn = 'torch._utils._rebuild_tensor_v2';
  expectArgCount(args, 6, 7, fn, where);
  const storage = expectStorage(args[0], fn, where);
  const offset = expectInt(args[1], 'storage_offset', where);
  const size = expectIntTuple(args[2], 'size', where);
  const stride = expectIntTuple(args[3], 'stride', where);
  const requiresGrad = expectBool(args[4], 'requires_grad', where);
  if (storage.element === 'qint8' || storage.element === 'quint8' || storage.element === 'qint32') {
    throw invalid(`${fn} given a quantized storage ${storage.storageType} (${where})`);
  }
  return new TorchTensor(storage, offset, size, stride, requiresGrad, undefined, false);
}

// _rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks)
// quantizer_params = (torch.per_tensor_affine, scale, zero_point) for the per-tensor scheme.
function rebuildQTensor(args: readonly PickleValue[], where: string): PickleValue {
  const fn = 'torch._utils._rebuild_qtensor';
  expectArgCount(args, 7, 7, fn, where);
  const storage = expectStorage(args[0], fn, where);
  const offset = expectInt(args[1], 'storage_offset', where);
  const size = expectIntTuple(args[2], 'size', where);
  const stride = expectIntTuple(args[3], 'stride', where);
  const params = args[4];
  const requiresGrad = expectBool(args[5], 'requires_grad', where);
  if (!(params instanceof PyTuple) || params.items.length < 1) {
    throw invalid(`${fn}: quantizer_params must be a tuple (${where})`);
  }
  const scheme = params.items[0];
  if (!(scheme instanceof PyGlobal) || scheme.spec.kind !== 'qscheme') {
    throw invalid(`${fn}: quantizer_params must start with a qscheme (${where})`);
  }
  if (scheme.spec.scheme !== 'per_tensor_affine') {
    throw new IteraError(
      `quantized tensor uses the ${scheme.spec.scheme} scheme; only per_tensor_affine (what ` +
        `torch.quantization.quantize_dynamic produces by default) is supported (${where})`,
      'PICKLE_UNSUPPORTED',
    );
  }
  if (params.items.length !== 3) throw invalid(`${fn}: per_tensor_affine params must be (scheme, scale, zero_point) (${where})`);
  const scale = expectNumber(params.items[1], 'scale', where);
  const zeroPoint = expectInt(params.items[2], 'zero_point', where);
  if (storage.element !== 'qint8' && storage.element !== 'quint8') {
    throw new IteraError(
      `quantized tensor stored as ${storage.storageType}; only QInt8Storage and QUInt8Storage are supported (${where})`,
      'PICKLE_UNSUPPORTED',
    );
  }
  return new TorchTensor(storage, offset, size, stride, requiresGrad, { scheme: 'per_tensor_affine', scale, zeroPoint }, false);
}

// _rebuild_parameter(data, requires_grad, backward_hooks) and
// _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state): the tensor itself.
function rebuildParameter(fn: string, argc: number) {
  return (args: readonly PickleValue[], where: string): PickleValue => {
    expectArgCount(args, argc, argc, fn, where);
    const t = args[0];
    if (!(t instanceof TorchTensor)) throw invalid(`${fn}: the first argument must be a tensor, found ${t === undefined ? 'nothing' : describe(t)} (${where})`);
    const requiresGrad = expectBool(args[1], 'requires_grad', where);
    return new TorchTensor(t.storage, t.offset, t.size, t.stride, requiresGrad, t.quant, true);
  };
}

// collections.OrderedDict() or OrderedDict(iterable of pairs).
function orderedDict(args: readonly PickleValue[], where: string): PickleValue {
  expectArgCount(args, 0, 1, 'collections.OrderedDict', where);
  const map = new Map<PickleValue, PickleValue>();
  if (args.length === 1) {
    const src = args[0]!;
    if (src instanceof Map) {
      for (const [k, v] of src) map.set(k, v);
    } else if (Array.isArray(src) || src instanceof PyTuple) {
      const items = Array.isArray(src) ? src : src.items;
      for (const pair of items) {
        const kv = pair instanceof PyTuple ? pair.items : Array.isArray(pair) ? pair : undefined;
        if (!kv || kv.length !== 2) throw invalid(`collections.OrderedDict: expected (key, value) pairs (${where})`);
        map.set(checkKey(kv[0]!, where), kv[1]!);
      }
    } else {
      throw invalid(`collections.OrderedDict: cannot build from ${describe(src)} (${where})`);
    }
  }
  return map;
}

// _codecs.encode(text, 'latin1'): how protocol 2 pickles a Python 3 bytes object.
function codecsEncode(args: readonly PickleValue[], where: string): PickleValue {
  expectArgCount(args, 1, 2, '_codecs.encode', where);
  const text = args[0];
  const encoding = args.length > 1 ? args[1] : 'utf-8';
  if (typeof text !== 'string') throw invalid(`_codecs.encode: expected a str (${where})`);
  if (encoding === 'latin1' || encoding === 'latin-1' || encoding === 'iso-8859-1') {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0xff) throw invalid(`_codecs.encode: character outside latin-1 (${where})`);
      out[i] = c;
    }
    return out;
  }
  if (encoding === 'utf-8' || encoding === 'utf8') return new TextEncoder().encode(text);
  throw invalid(`_codecs.encode: unsupported encoding ${typeof encoding === 'string' ? encoding : describe(encoding!)} (${where})`);
}

const STORAGE_TYPES: ReadonlyArray<[string, StorageElement]> = [
  ['FloatStorage', 'f32'],
  ['DoubleStorage', 'f64'],
  ['HalfStorage', 'f16'],
  ['BFloat16Storage', 'bf16'],
  ['LongStorage', 'i64'],
  ['IntStorage', 'i32'],
  ['ShortStorage', 'i16'],
  ['CharStorage', 'i8'],
  ['ByteStorage', 'u8'],
  ['BoolStorage', 'bool'],
  ['QInt8Storage', 'qint8'],
  ['QUInt8Storage', 'quint8'],
];

// dtype constants that a quantized state_dict stores as values (`<prefix>._packed_params.dtype`).
const DTYPE_CONSTANTS = ['qint8', 'quint8', 'float16', 'float32'];

const QSCHEMES = ['per_tensor_affine', 'per_channel_affine'];

function buildAllowList(): Map<string, GlobalSpec> {
  const m = new Map<string, GlobalSpec>();
  m.set('collections OrderedDict', { kind: 'callable', call: orderedDict });
  m.set('torch._utils _rebuild_tensor_v2', { kind: 'callable', call: rebuildTensorV2 });
  m.set('torch._utils _rebuild_parameter', {
    kind: 'callable',
    call: rebuildParameter('torch._utils._rebuild_parameter', 3),
  });
  m.set('torch._utils _rebuild_parameter_with_state', {
    kind: 'callable',
    call: rebuildParameter('torch._utils._rebuild_parameter_with_state', 4),
  });
  m.set('torch._utils _rebuild_qtensor', { kind: 'callable', call: rebuildQTensor });
  m.set('_codecs encode', { kind: 'callable', call: codecsEncode });
  for (const [name, element] of STORAGE_TYPES) m.set(`torch ${name}`, { kind: 'storage-type', element });
  for (const name of DTYPE_CONSTANTS) m.set(`torch ${name}`, { kind: 'dtype', dtype: name });
  for (const name of QSCHEMES) m.set(`torch ${name}`, { kind: 'qscheme', scheme: name });
  return m;
}

/** Every global a pickle may name, as 'module name'. Nothing else resolves. */
export const ALLOWED_GLOBALS: ReadonlyMap<string, GlobalSpec> = buildAllowList();

/** The allow-list as dotted names, for messages and docs. */
export function allowedGlobalNames(): string[] {
  return [...ALLOWED_GLOBALS.keys()].map((k) => k.replace(' ', '.'));
}

// ---------------------------------------------------------------------------------------------
// Persistent ids of torch.save: ('storage', <storage type>, key, location, numel).

export interface TorchStorageRef {
  storageType: string;
  element: StorageElement;
  key: string;
  location: string;
  numel: number;
}

export function parseTorchPersistentId(pid: PickleValue): TorchStorageRef {
  if (!(pid instanceof PyTuple)) {
    throw invalid(`persistent id must be a tuple ('storage', type, key, location, numel), found ${describe(pid)}`);
  }
  const [tag, type, key, location, numel] = pid.items;
  if (tag !== 'storage' || pid.items.length !== 5) {
    throw invalid(`persistent id is not ('storage', type, key, location, numel): first item ${String(tag)}, ${pid.items.length} items`);
  }
  if (!(type instanceof PyGlobal) || type.spec.kind !== 'storage-type') {
    throw invalid(`persistent id names ${type === undefined ? 'nothing' : describe(type)} where a storage type belongs`);
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > 256 || /[/\\]|^\.\.?$/.test(key)) {
    throw invalid(`persistent id has an invalid storage key ${typeof key === 'string' ? JSON.stringify(key) : describe(key!)}`);
  }
  if (typeof location !== 'string') throw invalid(`storage '${key}' has a location that is not a str`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw invalid(`storage '${key}' has an invalid element count`);
  }
  return { storageType: type.name, element: type.spec.element, key, location, numel };
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface UnpickleOptions {
  /** Resolves BINPERSID / PERSID ids; without it, a persistent id is an error. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Maximum opcodes executed (default 50,000,000). */
  maxOps?: number;
  /** Maximum stack length (default 1,000,000). */
  maxStack?: number;
  /** Maximum MARK nesting (default 10,000). */
  maxMarks?: number;
  /** Maximum memo entries (default 10,000,000). */
  maxMemo?: number;
}

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const MAX_LONG_BYTES = 8192;
const MAX_GLOBAL_LINE = 1024;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function checkKey(k: PickleValue, where: string | (() => string)): PickleValue {
  if (Array.isArray(k) || k instanceof Map || k instanceof Set) {
    throw invalid(`unhashable key of type ${describe(k)} (${typeof where === 'string' ? where : where()})`);
  }
  return k;
}

/** Two's-complement little-endian bytes to an integer (number when it fits 2^53, else bigint). */
function decodeLong(raw: Uint8Array): number | bigint {
  if (raw.length === 0) return 0;
  let hex = '';
  for (let i = raw.length - 1; i >= 0; i--) hex += raw[i]!.toString(16).padStart(2, '0');
  let v = BigInt('0x' + hex);
  if (raw[raw.length - 1]! & 0x80) v -= 1n << BigInt(raw.length * 8);
  return normalizeInt(v);
}

function normalizeInt(v: bigint): number | bigint {
  if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return v;
}

function parseDecimalInt(text: string, where: string): number | bigint {
  const t = text.trim();
  if (!/^[+-]?[0-9]+$/.test(t) || t.length > 4096) throw invalid(`malformed integer literal (${where})`);
  return t.length <= 15 ? Number(t) : normalizeInt(BigInt(t));
}

/** Decodes Python's 'raw-unicode-escape' (UNICODE opcode): \uXXXX and \UXXXXXXXX, else latin-1. */
function decodeRawUnicodeEscape(raw: Uint8Array, where: string): string {
  let s = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x5c && i + 1 < raw.length && (raw[i + 1] === 0x75 || raw[i + 1] === 0x55)) {
      const n = raw[i + 1] === 0x75 ? 4 : 8;
      if (i + 2 + n > raw.length) throw invalid(`truncated \\u escape in UNICODE (${where})`);
      let hex = '';
      for (let j = 0; j < n; j++) hex += String.fromCharCode(raw[i + 2 + j]!);
      if (!/^[0-9a-fA-F]+$/.test(hex)) throw invalid(`bad \\u escape in UNICODE (${where})`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw invalid(`code point out of range in UNICODE (${where})`);
      s += String.fromCodePoint(cp);
      i += 1 + n;
    } else {
      s += String.fromCharCode(c);
    }
  }
  return s;
}

/** Decodes the quoted Python-repr string of the protocol 0 STRING opcode. */
function decodeReprString(line: string, where: string): string {
  const q = line[0];
  if (line.length < 2 || (q !== "'" && q !== '"') || line[line.length - 1] !== q) {
    throw invalid(`STRING argument is not a quoted string (${where})`);
  }
  const body = line.slice(1, -1);
  let s = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      s += c;
      continue;
    }
    const e = body[++i];
    switch (e) {
      case '\\': s += '\\'; break;
      case "'": s += "'"; break;
      case '"': s += '"'; break;
      case 'n': s += '\n'; break;
      case 'r': s += '\r'; break;
      case 't': s += '\t'; break;
      case 'a': s += '\x07'; break;
      case 'b': s += '\b'; break;
      case 'f': s += '\f'; break;
      case 'v': s += '\v'; break;
      case 'x': {
        const hex = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw invalid(`bad \\x escape in STRING (${where})`);
        s += String.fromCharCode(parseInt(hex, 16));
        i += 2;
        break;
      }
      default: {
        if (e !== undefined && e >= '0' && e <= '7') {
          let oct = e;
          while (oct.length < 3 && body[i + 1] !== undefined && body[i + 1]! >= '0' && body[i + 1]! <= '7') oct += body[++i];
          s += String.fromCharCode(parseInt(oct, 8) & 0xff);
        } else {
          s += '\\' + (e ?? '');
        }
      }
    }
  }
  return s;
}

/** Runs the pickle in `bytes` and returns the value it builds. Never executes anything. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): PickleValue {
  const maxOps = options.maxOps ?? 50_000_000;
  const maxStack = options.maxStack ?? 1_000_000;
  const maxMarks = options.maxMarks ?? 10_000;
  const maxMemo = options.maxMemo ?? 10_000_000;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;

  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opStart = 0;
  let op = 0;
  let ops = 0;

  const where = (): string => {
    const name = OPCODE_NAMES[op];
    return `pickle opcode ${name ?? '?'} at byte ${opStart}`;
  };
  const need = (k: number, what: string): void => {
    if (k > n - pos) {
      throw new IteraError(`pickle is truncated: ${what} needs ${k} bytes, ${n - pos} remain (${where()})`, 'PICKLE_TRUNCATED');
    }
  };
  const u8 = (): number => {
    need(1, 'an argument');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'an argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'an argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4, 'an argument');
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8, 'an argument');
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    // Any length this large is past the end of the input anyway.
    return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
  };
  const take = (len: number, what: string): Uint8Array => {
    need(len, what);
    const out = bytes.subarray(pos, pos + len);
    pos += len;
    return out;
  };
  const line = (maxLen: number): Uint8Array => {
    const limit = Math.min(n, pos + maxLen + 1);
    for (let i = pos; i < limit; i++) {
      if (bytes[i] === 0x0a) {
        const out = bytes.subarray(pos, i);
        pos = i + 1;
        return out;
      }
    }
    if (limit === n) throw new IteraError(`pickle is truncated: no end of line for a text argument (${where()})`, 'PICKLE_TRUNCATED');
    throw invalid(`text argument longer than ${maxLen} bytes (${where()})`);
  };
  const ascii = (raw: Uint8Array): string => {
    let s = '';
    for (let i = 0; i < raw.length; i++) s += String.fromCharCode(raw[i]!);
    return s;
  };
  const utf8 = (raw: Uint8Array): string => {
    try {
      return utf8Strict.decode(raw);
    } catch {
      throw invalid(`string is not valid UTF-8 (${where()})`);
    }
  };

  const base = (): number => (marks.length ? marks[marks.length - 1]! : 0);
  const push = (v: PickleValue): void => {
    if (stack.length >= maxStack) throw new IteraError(`pickle stack exceeds ${maxStack} items (${where()})`, 'PICKLE_LIMIT');
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length <= base()) throw invalid(`stack underflow (${where()})`);
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length <= base()) throw invalid(`stack underflow (${where()})`);
    return stack[stack.length - 1]!;
  };
  const popMark = (): PickleValue[] => {
    if (!marks.length) throw invalid(`no MARK to pop to (${where()})`);
    const m = marks.pop()!;
    return stack.splice(m);
  };
  const memoPut = (index: number): void => {
    if (!memo.has(index) && memo.size >= maxMemo) throw new IteraError(`pickle memo exceeds ${maxMemo} entries (${where()})`, 'PICKLE_LIMIT');
    memo.set(index, top());
  };
  const memoGet = (index: number): PickleValue => {
    if (!memo.has(index)) throw invalid(`memo index ${index} was never stored (${where()})`);
    return memo.get(index)!;
  };

  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const spec = ALLOWED_GLOBALS.get(`${module} ${name}`);
    if (!spec) {
      throw new IteraError(
        `pickle names the global '${module}.${name}' (${where()}), which is not on the allow-list: refusing to ` +
          'load. A checkpoint may only name tensor-rebuilding functions, storage types, dtypes and OrderedDict; ' +
          'this file would run that code if opened with torch.load. If it holds a whole pickled model or ' +
          'training state, save model.state_dict() with torch.save and import that.',
        'PICKLE_GLOBAL_FORBIDDEN',
      );
    }
    return new PyGlobal(module, name, spec);
  };
  const call = (fn: PickleValue, args: readonly PickleValue[]): PickleValue => {
    if (!(fn instanceof PyGlobal)) throw invalid(`cannot call a ${describe(fn)} (${where()})`);
    if (fn.spec.kind !== 'callable') throw invalid(`${fn.qualifiedName} cannot be called (${where()})`);
    return fn.spec.call(args, where());
  };
  const argsOf = (v: PickleValue): readonly PickleValue[] => {
    if (v instanceof PyTuple) return v.items;
    throw invalid(`arguments must be a tuple, found ${describe(v)} (${where()})`);
  };
  const setItems = (target: PickleValue, items: PickleValue[]): void => {
    if (!(target instanceof Map)) throw invalid(`cannot set items on a ${describe(target)} (${where()})`);
    if (items.length % 2) throw invalid(`odd number of items for SETITEMS (${where()})`);
    for (let i = 0; i < items.length; i += 2) target.set(checkKey(items[i]!, where), items[i + 1]!);
  };
  const persistent = (pid: PickleValue): PickleValue => {
    if (!options.persistentLoad) throw invalid(`pickle has a persistent id but no loader was given (${where()})`);
    return options.persistentLoad(pid);
  };

  for (;;) {
    if (pos >= n) throw new IteraError('pickle is truncated: it ends before its STOP opcode', 'PICKLE_TRUNCATED');
    if (++ops > maxOps) throw new IteraError(`pickle runs more than ${maxOps} opcodes`, 'PICKLE_LIMIT');
    opStart = pos;
    op = bytes[pos++]!;
    switch (op) {
      // --- framing and protocol
      case 0x80: {
        const proto = u8();
        if (proto > 5) throw new IteraError(`pickle protocol ${proto} is newer than 5 (${where()})`, 'PICKLE_UNSUPPORTED');
        break;
      }
      case 0x95: {
        const len = u64();
        need(len, 'a FRAME');
        break;
      }
      case 0x2e: // STOP
        return pop();

      // --- stack manipulation
      case 0x28: // MARK
        if (marks.length >= maxMarks) throw new IteraError(`pickle MARK nesting exceeds ${maxMarks} (${where()})`, 'PICKLE_LIMIT');
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (stack.length > base()) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;

      // --- memo
      case 0x70: // PUT (text)
        memoPut(Number(parseDecimalInt(ascii(line(32)), where())));
        break;
      case 0x71:
        memoPut(u8());
        break;
      case 0x72:
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x67: // GET (text)
        push(memoGet(Number(parseDecimalInt(ascii(line(32)), where()))));
        break;
      case 0x68:
        push(memoGet(u8()));
        break;
      case 0x6a:
        push(memoGet(u32()));
        break;

      // --- constants
      case 0x4e:
        push(null);
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;
      case 0x4a:
        push(i32());
        break;
      case 0x4b:
        push(u8());
        break;
      case 0x4d:
        push(u16());
        break;
      case 0x8a: // LONG1
        push(decodeLong(take(u8(), 'a LONG1')));
        break;
      case 0x8b: {
        const len = i32();
        if (len < 0) throw invalid(`negative LONG4 length (${where()})`);
        if (len > MAX_LONG_BYTES) throw new IteraError(`integer of ${len} bytes is too large (${where()})`, 'PICKLE_LIMIT');
        push(decodeLong(take(len, 'a LONG4')));
        break;
      }
      case 0x49: {
        // INT (text): also how protocol 0 writes booleans, as 01 and 00.
        const text = ascii(line(4096));
        if (text === '01') push(true);
        else if (text === '00') push(false);
        else push(parseDecimalInt(text, where()));
        break;
      }
      case 0x4c: {
        // LONG (text), with an optional trailing L.
        const text = ascii(line(4096));
        push(parseDecimalInt(text.endsWith('L') ? text.slice(0, -1) : text, where()));
        break;
      }
      case 0x46: {
        const text = ascii(line(64)).trim();
        if (!/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$/i.test(text)) {
          throw invalid(`malformed float literal (${where()})`);
        }
        const lower = text.toLowerCase();
        push(lower.endsWith('inf') ? (lower.startsWith('-') ? -Infinity : Infinity) : lower.endsWith('nan') ? NaN : Number(text));
        break;
      }
      case 0x47: {
        need(8, 'a BINFLOAT');
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }

      // --- strings and bytes
      case 0x58:
        push(utf8(take(u32(), 'a BINUNICODE')));
        break;
      case 0x8c:
        push(utf8(take(u8(), 'a SHORT_BINUNICODE')));
        break;
      case 0x8d:
        push(utf8(take(u64(), 'a BINUNICODE8')));
        break;
      case 0x56:
        push(decodeRawUnicodeEscape(line(n), where()));
        break;
      case 0x54: {
        const len = i32();
        if (len < 0) throw invalid(`negative BINSTRING length (${where()})`);
        push(utf8(take(len, 'a BINSTRING')));
        break;
      }
      case 0x55:
        push(utf8(take(u8(), 'a SHORT_BINSTRING')));
        break;
      case 0x53:
        push(decodeReprString(utf8(line(n)).trimEnd(), where()));
        break;
      case 0x42:
        push(take(u32(), 'a BINBYTES').slice());
        break;
      case 0x43:
        push(take(u8(), 'a SHORT_BINBYTES').slice());
        break;
      case 0x8e:
        push(take(u64(), 'a BINBYTES8').slice());
        break;
      case 0x96:
        push(take(u64(), 'a BYTEARRAY8').slice());
        break;

      // --- containers
      case 0x29:
        push(new PyTuple([]));
        break;
      case 0x74:
        push(new PyTuple(popMark()));
        break;
      case 0x85: {
        const a = pop();
        push(new PyTuple([a]));
        break;
      }
      case 0x86: {
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b, c]));
        break;
      }
      case 0x5d:
        push([]);
        break;
      case 0x6c:
        push(popMark());
        break;
      case 0x61: {
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw invalid(`cannot APPEND to a ${describe(list)} (${where()})`);
        list.push(v);
        break;
      }
      case 0x65: {
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw invalid(`cannot APPENDS to a ${describe(list)} (${where()})`);
        for (const v of items) list.push(v);
        break;
      }
      case 0x7d:
        push(new Map());
        break;
      case 0x64: {
        const items = popMark();
        const map = new Map<PickleValue, PickleValue>();
        setItems(map, items);
        push(map);
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f:
        push(new Set());
        break;
      case 0x90: {
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) throw invalid(`cannot ADDITEMS to a ${describe(set)} (${where()})`);
        for (const v of items) set.add(checkKey(v, where));
        break;
      }
      case 0x91: {
        const items = popMark();
        push(new Set(items.map((v) => checkKey(v, where))));
        break;
      }

      // --- globals and calls: only allow-listed names ever resolve
      case 0x63: {
        const module = utf8(line(MAX_GLOBAL_LINE));
        const name = utf8(line(MAX_GLOBAL_LINE));
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw invalid(`STACK_GLOBAL needs two strings, found ${describe(module)} and ${describe(name)} (${where()})`);
        }
        push(resolveGlobal(module, name));
        break;
      }
      case 0x69: {
        // INST: module and name as text, arguments since the last MARK.
        const module = utf8(line(MAX_GLOBAL_LINE));
        const name = utf8(line(MAX_GLOBAL_LINE));
        const fn = resolveGlobal(module, name);
        push(call(fn, popMark()));
        break;
      }
      case 0x6f: {
        // OBJ: class and arguments since the last MARK.
        const items = popMark();
        if (!items.length) throw invalid(`OBJ without a class (${where()})`);
        push(call(items[0]!, items.slice(1)));
        break;
      }
      case 0x52: {
        const args = pop();
        const fn = pop();
        push(call(fn, argsOf(args)));
        break;
      }
      case 0x81: {
        const args = pop();
        const cls = pop();
        push(call(cls, argsOf(args)));
        break;
      }
      case 0x92: {
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) throw invalid(`NEWOBJ_EX with keyword arguments is not supported (${where()})`);
        push(call(cls, argsOf(args)));
        break;
      }
      case 0x62: {
        // BUILD: sets an object's state. The only object that gets one in a state_dict is the
        // OrderedDict (its `_metadata` attribute), which is harmless and ignored.
        const state = pop();
        const obj = top();
        if (!(obj instanceof Map)) throw invalid(`BUILD on a ${describe(obj)} is not supported (${where()})`);
        void state;
        break;
      }

      // --- persistent ids
      case 0x51:
        push(persistent(pop()));
        break;
      case 0x50:
        push(persistent(ascii(line(4096))));
        break;

      case 0x82:
      case 0x83:
      case 0x84:
        throw new IteraError(`pickle uses the copyreg extension registry, which is not supported (${where()})`, 'PICKLE_UNSUPPORTED');
      case 0x97:
      case 0x98:
        throw new IteraError(`pickle uses out-of-band buffers, which are not supported (${where()})`, 'PICKLE_UNSUPPORTED');

      default:
        throw new IteraError(
          `unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}` +
            (op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : '') +
            ` at byte ${opStart}`,
          'PICKLE_UNKNOWN_OPCODE',
        );
    }
  }
}
