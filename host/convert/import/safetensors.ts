// safetensors: an 8-byte little-endian header length N, N bytes of JSON header, then the tensor
// bytes. The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
// relative to the start of the byte buffer) and may hold '__metadata__': {string: string}.
//
// The reader checks what the format's documentation requires: the header fits the file, is UTF-8
// JSON object text, every tensor's byte range lies in the buffer and has exactly numel × size
// bytes, and the ranges tile the buffer without overlaps or holes. The writer is deterministic:
// tensors in the order given, header padded with spaces to a multiple of 8 bytes.

import { DTYPE_SIZE, IteraError, type DType, type RawTensor } from '../../runtime/types.js';
import type { ImportedCheckpoint } from './checkpoint.js';

/** A header larger than this is refused (the reference implementation uses the same bound). */
const MAX_HEADER = 100_000_000;

const FROM_SAFETENSORS: Readonly<Record<string, DType>> = {
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
  F64: 'f64',
  I64: 'i64',
  I32: 'i32',
  I16: 'i16',
  I8: 'i8',
  U8: 'u8',
  BOOL: 'bool',
};

const TO_SAFETENSORS: Partial<Record<DType, string>> = Object.fromEntries(
  Object.entries(FROM_SAFETENSORS).map(([k, v]) => [v, k]),
);

function err(message: string, code: string): IteraError {
  return new IteraError(`safetensors: ${message}`, code);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** True if the bytes start like a safetensors file (a plausible header length, then '{'). */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hi = view.getUint32(4, true);
  const lo = view.getUint32(0, true);
  return hi === 0 && lo >= 2 && lo <= bytes.length - 8 && bytes[8] === 0x7b;
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length > 64)
    throw err(`tensor '${name}' has an invalid shape`, 'SAFETENSORS_HEADER');
  for (const s of shape) {
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
      throw err(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`, 'SAFETENSORS_HEADER');
    }
  }
  const shapeNums = shape as number[];
  if (numelOf(shapeNums) > Number.MAX_SAFE_INTEGER)
    throw err(`tensor '${name}' has an impossible element count`, 'SAFETENSORS_HEADER');
  return [...shapeNums];
}

/** Reads a safetensors file. Tensors come in the order of their bytes in the file. */
export function readSafetensors(bytes: Uint8Array): ImportedCheckpoint {
  if (bytes.length < 8)
    throw err(`file of ${bytes.length} bytes is shorter than the 8-byte header length`, 'SAFETENSORS_TRUNCATED');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * 0x100000000 + lo;
  if (headerLen > bytes.length - 8) {
    throw err(
      `header length ${headerLen} runs past the end of the ${bytes.length}-byte file (truncated?)`,
      'SAFETENSORS_TRUNCATED',
    );
  }
  if (headerLen > MAX_HEADER) throw err(`header length ${headerLen} exceeds ${MAX_HEADER} bytes`, 'SAFETENSORS_HEADER');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw err('header is not valid UTF-8', 'SAFETENSORS_HEADER');
  }
  if (!text.startsWith('{')) throw err('header does not start with a JSON object', 'SAFETENSORS_HEADER');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw err(`header is not valid JSON (${(e as Error).message})`, 'SAFETENSORS_HEADER');
  }
  if (!isPlainObject(header)) throw err('header is not a JSON object', 'SAFETENSORS_HEADER');

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const extra: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const notes: string[] = [];
  interface Entry {
    name: string;
    dtype: DType;
    shape: number[];
    begin: number;
    end: number;
    order: number;
  }
  const entries: Entry[] = [];
  let order = 0;
  for (const name of Object.keys(header)) {
    const info = header[name];
    if (name === '__metadata__') {
      if (!isPlainObject(info)) throw err('__metadata__ is not an object', 'SAFETENSORS_HEADER');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw err(`__metadata__ value '${k}' is not a string`, 'SAFETENSORS_HEADER');
        setOwn(extra, k, v);
      }
      continue;
    }
    if (!isPlainObject(info)) throw err(`entry '${name}' is not an object`, 'SAFETENSORS_HEADER');
    const st = info['dtype'];
    if (typeof st !== 'string') throw err(`tensor '${name}' has no dtype`, 'SAFETENSORS_HEADER');
    const dtype = Object.prototype.hasOwnProperty.call(FROM_SAFETENSORS, st) ? FROM_SAFETENSORS[st] : undefined;
    if (!dtype) {
      throw err(
        `tensor '${name}' has dtype ${st}, which is not supported (${Object.keys(FROM_SAFETENSORS).join(', ')})`,
        'SAFETENSORS_DTYPE',
      );
    }
    const shape = checkShape(name, info['shape']);
    const offsets = info['data_offsets'];
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw err(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`, 'SAFETENSORS_HEADER');
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) {
      throw err(
        `tensor '${name}' has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte buffer`,
        'SAFETENSORS_OFFSETS',
      );
    }
    const expected = numelOf(shape) * DTYPE_SIZE[dtype];
    if (end - begin !== expected) {
      throw err(
        `tensor '${name}' (${st} [${shape.join(', ')}]) needs ${expected} bytes but data_offsets give ${end - begin}`,
        'SAFETENSORS_OFFSETS',
      );
    }
    entries.push({ name, dtype, shape, begin, end, order: order++ });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end || a.order - b.order);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin < cursor)
      throw err(`tensor '${e.name}' overlaps the tensor before it in the buffer`, 'SAFETENSORS_OVERLAP');
    if (e.begin > cursor)
      throw err(`bytes ${cursor} to ${e.begin} of the buffer belong to no tensor`, 'SAFETENSORS_OFFSETS');
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    throw err(`the buffer has ${dataLen - cursor} trailing bytes that belong to no tensor`, 'SAFETENSORS_OFFSETS');
  }

  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    const data = bytes.slice(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, data });
  }
  notes.push(`${tensors.size} tensors`);
  const metaCount = Object.keys(extra).length;
  if (metaCount) notes.push(`${metaCount} __metadata__ entries (in extra)`);
  return { format: 'safetensors', tensors, extra, notes };
}

/** Writes tensors (in the order given) and optional string metadata as a safetensors file. */
export function writeSafetensors(tensors: readonly RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const seen = new Set<string>();
  const parts: string[] = [];
  if (metadata) {
    const meta: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw err(`metadata value '${k}' is not a string`, 'SAFETENSORS_WRITE');
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || seen.has(t.name)) {
      throw err(
        `cannot write a tensor named '${t.name}' (${seen.has(t.name) ? 'duplicate' : 'reserved'})`,
        'SAFETENSORS_WRITE',
      );
    }
    seen.add(t.name);
    const st = TO_SAFETENSORS[t.dtype];
    if (!st) {
      throw err(
        `tensor '${t.name}' is ${t.dtype}, which safetensors cannot hold (store quantized values as I8 and their scale separately)`,
        'SAFETENSORS_WRITE',
      );
    }
    const shape = checkShape(t.name, t.shape);
    const size = numelOf(shape) * DTYPE_SIZE[t.dtype];
    if (t.data.length !== size) {
      throw err(
        `tensor '${t.name}' has ${t.data.length} bytes, expected ${size} for ${t.dtype} [${shape.join(', ')}]`,
        'SAFETENSORS_WRITE',
      );
    }
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${st}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + size}]}`,
    );
    offset += size;
  }
  let header = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded !== header.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(header);
    header = p;
  }
  const out = new Uint8Array(8 + header.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length % 0x100000000, true);
  view.setUint32(4, Math.floor(header.length / 0x100000000), true);
  out.set(header, 8);
  let p = 8 + header.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}
