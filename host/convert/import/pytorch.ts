// Import of PyTorch `torch.save` zip checkpoints (state_dicts), without executing anything.
//
// Layout of such an archive: every entry sits under one folder (the checkpoint's basename, or
// 'archive'): `<root>/data.pkl` is a pickle that describes the object; each tensor's storage is a
// raw little-endian entry `<root>/data/<key>`, named by a persistent id in the pickle;
// `<root>/byteorder` (recent versions) says 'little' or 'big'. The pickle is run by our own
// allow-listed machine (pickle.ts); tensors are then copied out of their storages honouring
// offset, size and stride into contiguous row-major RawTensors.

import { IteraError, type DType, type RawTensor } from '../../runtime/types.js';
import type { ImportedCheckpoint } from './checkpoint.js';
import { PyGlobal, PyTuple, describe, type PickleValue } from './pickle.js';
import {
  STORAGE_ELEMENT_SIZE,
  TorchStorage,
  TorchTensor,
  parseTorchPersistentId,
  unpickleCheckpoint,
} from './torch-pickle.js';
import { openZip, type ZipArchive } from './zip.js';

export interface TorchImportOptions {
  /** Verify each entry's CRC-32 as it is read (default true). */
  verifyCrc?: boolean;
}

const PACKED_SUFFIX = '._packed_params._packed_params';
const PACKED_DTYPE_SUFFIX = '._packed_params.dtype';
const MAX_DIMS = 64;

function bad(message: string, code = 'TORCH_BAD_TENSOR'): IteraError {
  return new IteraError(message, code);
}

/** Sets an own property even for names like '__proto__'. */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function findRoot(zip: ZipArchive): string {
  const roots: string[] = [];
  for (const name of zip.entries.keys()) {
    if (name === 'data.pkl') roots.push('');
    else if (name.endsWith('/data.pkl') && name.indexOf('/') === name.length - '/data.pkl'.length) {
      roots.push(name.slice(0, -'data.pkl'.length));
    }
  }
  if (roots.length === 0) {
    throw new IteraError(
      'not a torch.save checkpoint: the ZIP archive has no <name>/data.pkl entry',
      'TORCH_NO_DATA_PKL',
    );
  }
  if (roots.length > 1) {
    throw new IteraError(
      `ambiguous torch.save archive: several pickles (${roots.map((r) => r + 'data.pkl').join(', ')})`,
      'TORCH_NO_DATA_PKL',
    );
  }
  const root = roots[0]!;
  if (zip.has(root + 'constants.pkl') || zip.names.some((n) => n.startsWith(root + 'code/'))) {
    throw new IteraError(
      'this is a TorchScript archive (torch.jit.save), not a state_dict checkpoint: save the weights with ' +
        'torch.save(model.state_dict(), path) and import that',
      'TORCH_UNSUPPORTED',
    );
  }
  return root;
}

function readByteorder(zip: ZipArchive, root: string, notes: string[]): void {
  const name = root + 'byteorder';
  if (!zip.has(name)) {
    notes.push('no byteorder record (older torch versions write none): storages read as little-endian');
    return;
  }
  const raw = zip.read(name);
  let text = '';
  for (let i = 0; i < raw.length && i < 16; i++) text += String.fromCharCode(raw[i]!);
  text = text.trim();
  if (text !== 'little') {
    throw new IteraError(
      `checkpoint storages are ${text === 'big' ? 'big-endian' : `in byte order '${text.slice(0, 16)}'`}; only ` +
        'little-endian checkpoints are supported: re-save it with torch.save on a little-endian machine',
      'TORCH_BYTEORDER',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Tensors

interface Materializer {
  /** Byte budget left for tensor copies. */
  budget: number;
  /** Copies already made, by storageKey, so tied tensors share one array. */
  cache: Map<string, { dtype: DType; data: Uint8Array }>;
}

function storageKeyOf(t: TorchTensor): string {
  return `${t.storage.key}:${t.offset}:${t.size.join(',')}:${t.stride.join(',')}`;
}

/** Copies the view (offset, size, stride) of a storage into contiguous row-major bytes. */
function copyView(
  src: Uint8Array,
  es: number,
  offset: number,
  size: readonly number[],
  stride: readonly number[],
  out: Uint8Array,
): void {
  const nd = size.length;
  if (nd === 0) {
    out.set(src.subarray(offset * es, offset * es + es));
    return;
  }
  const inner = size[nd - 1]!;
  const innerStride = stride[nd - 1]!;
  const runBytes = inner * es;
  const outer = size.slice(0, nd - 1);
  let rows = 1;
  for (const s of outer) rows *= s;
  const idx = new Array<number>(nd - 1).fill(0);
  let srcElem = offset;
  let o = 0;
  for (let r = 0; r < rows; r++) {
    if (innerStride === 1) {
      out.set(src.subarray(srcElem * es, srcElem * es + runBytes), o);
      o += runBytes;
    } else {
      let e = srcElem * es;
      for (let j = 0; j < inner; j++) {
        for (let b = 0; b < es; b++) out[o++] = src[e + b]!;
        e += innerStride * es;
      }
    }
    // Advance the odometer over the outer dimensions.
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      srcElem += stride[d]!;
      if (idx[d]! < size[d]!) break;
      srcElem -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
}

function materialize(name: string, t: TorchTensor, m: Materializer): RawTensor {
  const where = `tensor '${name}'`;
  const { storage, offset, size, stride } = t;
  const element = storage.element;
  const es = STORAGE_ELEMENT_SIZE[element];
  if (size.length !== stride.length) throw bad(`${where} has ${size.length} sizes but ${stride.length} strides`);
  if (size.length > MAX_DIMS) throw bad(`${where} has ${size.length} dimensions`);
  if (offset < 0) throw bad(`${where} has a negative storage offset ${offset}`);
  let numel = 1;
  let last = offset;
  for (let d = 0; d < size.length; d++) {
    const s = size[d]!;
    const st = stride[d]!;
    if (s < 0 || st < 0)
      throw bad(`${where} has a negative size or stride (size ${size.join('x')}, stride ${stride.join(',')})`);
    numel *= s;
    if (numel > Number.MAX_SAFE_INTEGER) throw bad(`${where} has an impossible element count`);
    if (s > 0) last += (s - 1) * st;
  }
  if (numel > 0 && last >= storage.numel) {
    throw bad(
      `${where} (offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} ` +
        `of storage '${storage.key}', which holds only ${storage.numel}`,
    );
  }
  if (numel === 0 && offset > storage.numel)
    throw bad(`${where} has offset ${offset} past its storage's ${storage.numel} elements`);

  let dtype: DType;
  let quant: RawTensor['quant'];
  if (element === 'qint8' || element === 'quint8') {
    if (!t.quant) throw bad(`${where} has a quantized storage but no quantization parameters`);
    dtype = 'qint8';
    // quint8 q in [0, 255] becomes q - 128 in [-128, 127] with the zero point moved alike:
    // scale * (q - zp) is unchanged, so every value is exact.
    quant = { scale: t.quant.scale, zeroPoint: element === 'quint8' ? t.quant.zeroPoint - 128 : t.quant.zeroPoint };
  } else if (element === 'qint32') {
    throw bad(`${where} is a qint32 tensor, which is not supported`, 'TORCH_UNSUPPORTED');
  } else {
    dtype = element;
  }

  const storageKey = storageKeyOf(t);
  const cached = m.cache.get(storageKey);
  if (cached && cached.dtype === dtype) {
    return { name, dtype, shape: [...size], data: cached.data, storageKey, ...(quant ? { quant } : {}) };
  }

  const bytes = numel * es;
  if (bytes > m.budget) {
    throw bad(
      `${where} needs ${bytes} bytes, more than this checkpoint can plausibly hold (views overlap too much)`,
      'TORCH_TOO_LARGE',
    );
  }
  m.budget -= bytes;
  let data: Uint8Array;
  try {
    data = new Uint8Array(bytes);
  } catch {
    throw bad(`${where} needs ${bytes} bytes, which could not be allocated`, 'TORCH_TOO_LARGE');
  }
  if (numel > 0) copyView(storage.data, es, offset, size, stride, data);
  if (element === 'quint8') for (let i = 0; i < data.length; i++) data[i] = (data[i]! - 128) & 0xff;
  m.cache.set(storageKey, { dtype, data });
  return { name, dtype, shape: [...size], data, storageKey, ...(quant ? { quant } : {}) };
}

/** The value of a 0-d or one-element tensor, for the scalars a quantized state_dict keeps. */
function scalarOf(name: string, t: TorchTensor): number {
  const numel = t.size.reduce((a, b) => a * b, 1);
  if (numel !== 1) throw bad(`'${name}' should be a single number, found a tensor of shape [${t.size.join(', ')}]`);
  const es = STORAGE_ELEMENT_SIZE[t.storage.element];
  const at = t.offset * es;
  if (t.offset >= t.storage.numel) throw bad(`'${name}' points past its storage`);
  const v = new DataView(t.storage.data.buffer, t.storage.data.byteOffset + at, es);
  switch (t.storage.element) {
    case 'f32':
      return v.getFloat32(0, true);
    case 'f64':
      return v.getFloat64(0, true);
    case 'i64':
      return Number(v.getBigInt64(0, true));
    case 'i32':
      return v.getInt32(0, true);
    case 'i16':
      return v.getInt16(0, true);
    case 'i8':
      return v.getInt8(0);
    case 'u8':
      return v.getUint8(0);
    default:
      throw bad(`'${name}' is a ${t.storage.storageType} scalar, expected a float or int`);
  }
}

// ---------------------------------------------------------------------------------------------
// Values that are not tensors, turned into plain data for `extra`.

function toPlain(v: PickleValue, depth: number, seen: Set<object>, budget: { nodes: number }): unknown {
  if (--budget.nodes < 0) return '<truncated>';
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return v;
  if (v instanceof PyGlobal) return v.qualifiedName;
  if (v instanceof TorchStorage) return { storage: v.key, type: v.storageType };
  if (v instanceof TorchTensor) {
    return { tensor: { storage: v.storage.storageType, shape: [...v.size] } };
  }
  if (depth > 32) return '<truncated>';
  if (seen.has(v)) return '<cycle>';
  seen.add(v);
  try {
    if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1, seen, budget));
    if (v instanceof PyTuple) return v.items.map((x) => toPlain(x, depth + 1, seen, budget));
    if (v instanceof Set) return [...v].map((x) => toPlain(x, depth + 1, seen, budget));
    if (!(v instanceof Map)) return `<${describe(v)}>`; // a node of another allow-list
    // A dict: an object when every key is a string, else a list of [key, value] pairs.
    if ([...v.keys()].every((k) => typeof k === 'string')) {
      const obj: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const [k, x] of v) setOwn(obj, k as string, toPlain(x, depth + 1, seen, budget));
      return obj;
    }
    return [...v].map(([k, x]) => [toPlain(k, depth + 1, seen, budget), toPlain(x, depth + 1, seen, budget)]);
  } finally {
    seen.delete(v);
  }
}

/** A printable label for a dict key that is not a string (never throws). */
function keyLabel(k: PickleValue): string {
  if (typeof k === 'string') return k;
  if (k === null || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  return `<${describe(k)} key>`;
}

function plain(v: PickleValue): unknown {
  return toPlain(v, 0, new Set(), { nodes: 100_000 });
}

function holdsTensor(v: PickleValue, depth = 0, budget = { nodes: 100_000 }): boolean {
  if (--budget.nodes < 0 || depth > 32) return false;
  if (v instanceof TorchTensor) return true;
  if (Array.isArray(v)) return v.some((x) => holdsTensor(x, depth + 1, budget));
  if (v instanceof PyTuple) return v.items.some((x) => holdsTensor(x, depth + 1, budget));
  if (v instanceof Map) return [...v.values()].some((x) => holdsTensor(x, depth + 1, budget));
  return false;
}

// ---------------------------------------------------------------------------------------------

/** Imports a torch.save zip checkpoint holding a state_dict (bare, or under 'model_state_dict'). */
export function importTorchZip(bytes: Uint8Array, options: TorchImportOptions = {}): ImportedCheckpoint {
  const notes: string[] = [];
  const zip = openZip(bytes, { verifyCrc: options.verifyCrc ?? true });
  const root = findRoot(zip);
  notes.push(`archive root '${root}'`);
  readByteorder(zip, root, notes);

  const storages = new Map<string, TorchStorage>();
  const locations = new Set<string>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const ref = parseTorchPersistentId(pid);
    const cacheKey = `${ref.key}\u0000${ref.storageType}`;
    const known = storages.get(cacheKey);
    if (known) return known;
    const entry = `${root}data/${ref.key}`;
    if (!zip.has(entry)) {
      throw new IteraError(
        `storage '${ref.key}' is named by the pickle but the archive has no entry '${entry}'`,
        'TORCH_STORAGE_MISSING',
      );
    }
    const data = zip.read(entry);
    const need = ref.numel * STORAGE_ELEMENT_SIZE[ref.element];
    if (data.length < need) {
      throw new IteraError(
        `storage '${ref.key}' should hold ${ref.numel} ${ref.storageType} elements (${need} bytes) but its entry has ${data.length} bytes`,
        'TORCH_BAD_STORAGE',
      );
    }
    locations.add(ref.location);
    const s = new TorchStorage(ref.storageType, ref.element, ref.key, ref.location, ref.numel, data);
    storages.set(cacheKey, s);
    return s;
  };
  const top = unpickleCheckpoint(zip.read(root + 'data.pkl'), { persistentLoad });
  if ([...locations].some((l) => l !== 'cpu'))
    notes.push(`storages saved on ${[...locations].join(', ')} were read as plain bytes`);

  if (!(top instanceof Map)) {
    throw new IteraError(
      `checkpoint holds a ${describe(top)}, not a state_dict: save model.state_dict() (or a dict with 'model_state_dict')`,
      'TORCH_NOT_STATE_DICT',
    );
  }
  const extra: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let stateDict = top;
  const wrapperKey = ['model_state_dict', 'state_dict'].find((k) => top.get(k) instanceof Map);
  if (wrapperKey !== undefined) {
    stateDict = top.get(wrapperKey) as Map<PickleValue, PickleValue>;
    const others: string[] = [];
    for (const [k, v] of top) {
      if (k === wrapperKey) continue;
      const key = keyLabel(k);
      others.push(key);
      setOwn(extra, key, plain(v));
      if (holdsTensor(v))
        notes.push(`top-level key '${key}' holds tensors that were not imported (only '${wrapperKey}' is)`);
    }
    notes.push(
      `state_dict found under '${wrapperKey}'` + (others.length ? `; other top-level keys: ${others.join(', ')}` : ''),
    );
  } else {
    notes.push(`bare state_dict (${top.size} entries at the top level)`);
  }

  const m: Materializer = { budget: 4 * bytes.length + 64 * 1024 * 1024, cache: new Map() };
  const tensors = new Map<string, RawTensor>();
  const add = (t: RawTensor): void => {
    if (tensors.has(t.name)) throw bad(`two tensors are named '${t.name}'`, 'TORCH_DUPLICATE_NAME');
    tensors.set(t.name, t);
  };
  const packedPrefixes = new Set<string>();
  for (const k of stateDict.keys()) {
    if (typeof k === 'string' && k.endsWith(PACKED_SUFFIX)) packedPrefixes.add(k.slice(0, -PACKED_SUFFIX.length));
  }
  const skipped: string[] = [];
  for (const [k, v] of stateDict) {
    if (typeof k !== 'string') {
      skipped.push(keyLabel(k));
      continue;
    }
    if (k.endsWith(PACKED_SUFFIX) && v instanceof PyTuple) {
      // A dynamically quantized Linear: (qint8 weight, float bias or None).
      const prefix = k.slice(0, -PACKED_SUFFIX.length);
      const [w, b] = v.items;
      if (v.items.length !== 2 || !(w instanceof TorchTensor) || !(b === null || b instanceof TorchTensor)) {
        throw bad(
          `'${k}' should be (weight, bias or None), found a tuple of ${v.items.map((x) => describe(x)).join(', ')}`,
        );
      }
      add(materialize(`${prefix}.weight`, w, m));
      if (b) add(materialize(`${prefix}.bias`, b, m));
      continue;
    }
    const prefix = k.endsWith('.scale')
      ? k.slice(0, -'.scale'.length)
      : k.endsWith('.zero_point')
        ? k.slice(0, -'.zero_point'.length)
        : undefined;
    if (prefix !== undefined && packedPrefixes.has(prefix) && v instanceof TorchTensor) {
      setOwn(extra, k, scalarOf(k, v));
      continue;
    }
    if (k.endsWith(PACKED_DTYPE_SUFFIX) && v instanceof PyGlobal) {
      setOwn(extra, k, v.spec.kind === 'dtype' ? v.spec.dtype : v.qualifiedName);
      continue;
    }
    if (v instanceof TorchTensor) {
      add(materialize(k, v, m));
      continue;
    }
    setOwn(extra, k, plain(v));
    skipped.push(k);
  }
  if (packedPrefixes.size) {
    notes.push(
      `${packedPrefixes.size} dynamically quantized Linear layer(s) flattened to <prefix>.weight (qint8) and ` +
        '<prefix>.bias; their output scale, zero_point and packed dtype are in extra',
    );
  }
  if (skipped.length) notes.push(`state_dict entries that are not tensors (kept in extra): ${skipped.join(', ')}`);
  if (tensors.size === 0) {
    throw new IteraError(
      "checkpoint holds no tensors: expected a state_dict or a dict with 'model_state_dict'",
      'TORCH_NOT_STATE_DICT',
    );
  }

  // Say which tensors are tied (share one storage view).
  const byKey = new Map<string, string[]>();
  for (const t of tensors.values()) {
    if (t.storageKey === undefined) continue;
    const list = byKey.get(t.storageKey) ?? [];
    list.push(t.name);
    byKey.set(t.storageKey, list);
  }
  for (const [key, names] of byKey) {
    if (names.length > 1) notes.push(`tied: ${names.join(' = ')} (storage ${key.split(':')[0]})`);
  }
  return { format: 'pytorch-zip', tensors, extra, notes };
}
