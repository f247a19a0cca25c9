// A pickle virtual machine that never executes anything.
//
// It reads the opcode stream of a Python pickle (protocols 0 to 5) and builds plain data: Maps
// for dicts (insertion order kept, OrderedDict included), arrays for lists, PyTuple for tuples,
// Sets, strings, numbers (bigint when an integer does not fit in 2^53), booleans, null and
// Uint8Array for bytes. A pickle may name any Python callable (GLOBAL, STACK_GLOBAL, INST); only the
// names on the allow-list the caller passes (options.globals) resolve, each a pure function that
// builds a typed node (torch-pickle.ts has PyTorch's: tensors, storages, OrderedDict). Any other name is rejected with
// IteraError 'PICKLE_GLOBAL_FORBIDDEN' the moment it is read, before anything could call it.
//
// Everything is bounded: the number of opcodes, the stack, the mark depth, the memo, and every
// length read from the stream is checked against the bytes that remain.
//
// Opcode semantics follow the documentation of Python's pickletools module (the opcode table and
// its descriptions of each argument encoding).

import { IteraError } from '../../runtime/types.js';

// ---------------------------------------------------------------------------------------------
// Values

/** A Python tuple (kept apart from lists, which are plain arrays). */
export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** What an allow-listed global is: a storage type, a dtype, a qscheme, or a pure function. */
export type GlobalSpec =
  | { kind: 'storage-type'; element: string }
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

/** A node an allow-listed function builds (a storage, a tensor): subclasses name their type. */
export abstract class PyObject {
  /** A short Python-ish type name, for error messages. */
  abstract readonly pyTypeName: string;
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
  | PyObject;

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
  return v.pyTypeName;
}

function invalid(message: string): IteraError {
  return new IteraError(message, 'PICKLE_INVALID');
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface UnpickleOptions {
  /** The globals a pickle may name ('module name' -> what it is); any other name is refused.
   *  Default: none. */
  globals?: ReadonlyMap<string, GlobalSpec>;
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
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const MAX_LONG_BYTES = 8192;
const MAX_GLOBAL_LINE = 1024;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** A value usable as a dict key (hashable in Python): refuses lists, dicts and sets. */
export function checkKey(k: PickleValue, where: string | (() => string)): PickleValue {
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
      case '\\':
        s += '\\';
        break;
      case "'":
        s += "'";
        break;
      case '"':
        s += '"';
        break;
      case 'n':
        s += '\n';
        break;
      case 'r':
        s += '\r';
        break;
      case 't':
        s += '\t';
        break;
      case 'a':
        s += '\x07';
        break;
      case 'b':
        s += '\b';
        break;
      case 'f':
        s += '\f';
        break;
      case 'v':
        s += '\v';
        break;
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
          while (oct.length < 3 && body[i + 1] !== undefined && body[i + 1]! >= '0' && body[i + 1]! <= '7')
            oct += body[++i];
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
      throw new IteraError(
        `pickle is truncated: ${what} needs ${k} bytes, ${n - pos} remain (${where()})`,
        'PICKLE_TRUNCATED',
      );
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
    if (limit === n)
      throw new IteraError(`pickle is truncated: no end of line for a text argument (${where()})`, 'PICKLE_TRUNCATED');
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
    if (stack.length >= maxStack)
      throw new IteraError(`pickle stack exceeds ${maxStack} items (${where()})`, 'PICKLE_LIMIT');
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
    if (!memo.has(index) && memo.size >= maxMemo)
      throw new IteraError(`pickle memo exceeds ${maxMemo} entries (${where()})`, 'PICKLE_LIMIT');
    memo.set(index, top());
  };
  const memoGet = (index: number): PickleValue => {
    if (!memo.has(index)) throw invalid(`memo index ${index} was never stored (${where()})`);
    return memo.get(index)!;
  };

  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const spec = options.globals?.get(`${module} ${name}`);
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
        if (proto > 5)
          throw new IteraError(`pickle protocol ${proto} is newer than 5 (${where()})`, 'PICKLE_UNSUPPORTED');
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
        if (marks.length >= maxMarks)
          throw new IteraError(`pickle MARK nesting exceeds ${maxMarks} (${where()})`, 'PICKLE_LIMIT');
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
        if (len > MAX_LONG_BYTES)
          throw new IteraError(`integer of ${len} bytes is too large (${where()})`, 'PICKLE_LIMIT');
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
        push(
          lower.endsWith('inf')
            ? lower.startsWith('-')
              ? -Infinity
              : Infinity
            : lower.endsWith('nan')
              ? NaN
              : Number(text),
        );
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
        if (!(kwargs instanceof Map) || kwargs.size)
          throw invalid(`NEWOBJ_EX with keyword arguments is not supported (${where()})`);
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
        throw new IteraError(
          `pickle uses the copyreg extension registry, which is not supported (${where()})`,
          'PICKLE_UNSUPPORTED',
        );
      case 0x97:
      case 0x98:
        throw new IteraError(
          `pickle uses out-of-band buffers, which are not supported (${where()})`,
          'PICKLE_UNSUPPORTED',
        );

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
