// PyTorch's side of a torch.save pickle: the storage and tensor nodes, the allow-list of the
// globals a state_dict checkpoint names (each a pure function that builds data), and the
// persistent ids that point at storages. The pickle machine itself is pickle.ts.

import { DTYPE_SIZE, IteraError, type DType } from '../../runtime/types.js';
import {
  PyGlobal,
  PyObject,
  PyTuple,
  checkKey,
  describe,
  unpickle,
  type GlobalSpec,
  type PickleValue,
  type UnpickleOptions,
} from './pickle.js';

/** What a storage holds: the DTypes plus quint8, which only appears inside quantized tensors. */
export type StorageElement = DType | 'quint8' | 'qint32';

export const STORAGE_ELEMENT_SIZE: Readonly<Record<StorageElement, number>> = { ...DTYPE_SIZE, quint8: 1, qint32: 4 };

/** A storage as a persistent id named it; `data` is whatever bytes the loader found for it. */
export class TorchStorage extends PyObject {
  get pyTypeName(): string {
    return `storage ${this.storageType}`;
  }
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
  ) {
    super();
  }
}

export interface TorchQuantization {
  scheme: 'per_tensor_affine';
  scale: number;
  zeroPoint: number;
}

/** A tensor as torch._utils rebuilds it: a view (offset, size, stride) into a storage. */
export class TorchTensor extends PyObject {
  readonly pyTypeName = 'tensor';
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
  ) {
    super();
  }
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
  throw invalid(
    `${fn}: the first argument must be a storage, found ${v === undefined ? 'nothing' : describe(v)} (${where})`,
  );
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
  if (params.items.length !== 3)
    throw invalid(`${fn}: per_tensor_affine params must be (scheme, scale, zero_point) (${where})`);
  const scale = expectNumber(params.items[1], 'scale', where);
  const zeroPoint = expectInt(params.items[2], 'zero_point', where);
  if (storage.element !== 'qint8' && storage.element !== 'quint8') {
    throw new IteraError(
      `quantized tensor stored as ${storage.storageType}; only QInt8Storage and QUInt8Storage are supported (${where})`,
      'PICKLE_UNSUPPORTED',
    );
  }
  return new TorchTensor(
    storage,
    offset,
    size,
    stride,
    requiresGrad,
    { scheme: 'per_tensor_affine', scale, zeroPoint },
    false,
  );
}

// _rebuild_parameter(data, requires_grad, backward_hooks) and
// _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state): the tensor itself.
function rebuildParameter(fn: string, argc: number) {
  return (args: readonly PickleValue[], where: string): PickleValue => {
    expectArgCount(args, argc, argc, fn, where);
    const t = args[0];
    if (!(t instanceof TorchTensor))
      throw invalid(
        `${fn}: the first argument must be a tensor, found ${t === undefined ? 'nothing' : describe(t)} (${where})`,
      );
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
  throw invalid(
    `_codecs.encode: unsupported encoding ${typeof encoding === 'string' ? encoding : describe(encoding!)} (${where})`,
  );
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
    throw invalid(
      `persistent id is not ('storage', type, key, location, numel): first item ${String(tag)}, ${pid.items.length} items`,
    );
  }
  if (!(type instanceof PyGlobal) || type.spec.kind !== 'storage-type') {
    throw invalid(
      `persistent id names ${type === undefined ? 'nothing' : describe(type)} where a storage type belongs`,
    );
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > 256 || /[/\\]|^\.\.?$/.test(key)) {
    throw invalid(
      `persistent id has an invalid storage key ${typeof key === 'string' ? JSON.stringify(key) : describe(key!)}`,
    );
  }
  if (typeof location !== 'string') throw invalid(`storage '${key}' has a location that is not a str`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw invalid(`storage '${key}' has an invalid element count`);
  }
  // the element came from this file's own allow-list (STORAGE_TYPES), so it is a StorageElement
  return { storageType: type.name, element: type.spec.element as StorageElement, key, location, numel };
}

/** Unpickles a torch.save state_dict pickle: only the PyTorch allow-list above resolves. */
export function unpickleCheckpoint(bytes: Uint8Array, options: Omit<UnpickleOptions, 'globals'> = {}): PickleValue {
  return unpickle(bytes, { ...options, globals: ALLOWED_GLOBALS });
}
