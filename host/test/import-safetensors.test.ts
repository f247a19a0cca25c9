// safetensors: round trips through our writer, the training code's Python writer, and each
// validation error; plus importCheckpoint's sniffing.
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importCheckpoint, readSafetensors, sniffCheckpoint, writeSafetensors } from '../convert/import/index.js';
import type { DType, RawTensor } from '../runtime/types.js';
import { expectIteraError, repoRoot } from './shared.js';

const FIXTURES = join(repoRoot(), 'host', 'test', 'fixtures');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  { metadata: Record<string, string>; tensors: Array<{ name: string; dtype: string; shape: number[]; sha256: string }> }
>;

const SIZE: Record<string, number> = { f32: 4, f16: 2, bf16: 2, f64: 8, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

function tensor(name: string, dtype: DType, shape: number[], seed = 1): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1) * SIZE[dtype]!;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = dtype === 'bool' ? (i + seed) % 2 : (i * 31 + seed * 7) & 0xff;
  return { name, dtype, shape, data };
}

const enc = new TextEncoder();
/** A safetensors file from a raw header string and a data buffer. */
function raw(header: string, data: Uint8Array = new Uint8Array(0), lengthOverride?: number): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, lengthOverride ?? h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

t.test('round trip of every dtype, with metadata', async (t) => {
  const tensors = [
    tensor('w.f32', 'f32', [3, 4]),
    tensor('w.f16', 'f16', [5]),
    tensor('w.bf16', 'bf16', [2, 2]),
    tensor('w.f64', 'f64', [2]),
    tensor('w.i64', 'i64', [3]),
    tensor('w.i32', 'i32', [1, 3]),
    tensor('w.i16', 'i16', [4]),
    tensor('w.i8', 'i8', [7]),
    tensor('w.u8', 'u8', [2, 3]),
    tensor('w.bool', 'bool', [5]),
    tensor('scalar', 'f32', []),
    tensor('empty', 'f32', [0, 4]),
    tensor('ünïcode name', 'f32', [1]),
  ];
  const meta = { format: 'itera-lite', note: 'quotes " and \\ and\nnewline' };
  const bytes = writeSafetensors(tensors, meta);
  const headerLen = new DataView(bytes.buffer).getUint32(0, true);
  t.equal(headerLen % 8, 0, 'header padded to a multiple of 8');
  t.same(writeSafetensors(tensors, meta), bytes, 'deterministic');
  const ck = readSafetensors(bytes);
  t.equal(ck.format, 'safetensors');
  t.same(
    [...ck.tensors.keys()],
    tensors.map((x) => x.name),
    'order kept',
  );
  for (const x of tensors) {
    const got = ck.tensors.get(x.name)!;
    t.equal(got.dtype, x.dtype, `${x.name} dtype`);
    t.same(got.shape, x.shape, `${x.name} shape`);
    t.same([...got.data], [...x.data], `${x.name} bytes`);
    t.equal(got.storageKey, undefined);
  }
  t.same({ ...ck.extra }, meta, 'metadata in extra');
  t.equal(sniffCheckpoint(bytes), 'safetensors');
  t.same([...importCheckpoint(bytes).tensors.keys()], [...ck.tensors.keys()], 'importCheckpoint sniffs it');
  const bare = readSafetensors(writeSafetensors([tensor('a', 'f32', [2])]));
  t.same({ ...bare.extra }, {}, 'no metadata');
  t.equal(readSafetensors(writeSafetensors([])).tensors.size, 0, 'no tensors at all');
});

t.test("the training code's Python writer (scripts/train/safetensors_io.py)", async (t) => {
  const ck = readSafetensors(fixture('tiny_itera_py.safetensors'));
  const exp = expected['tiny_itera_py.safetensors']!;
  t.same(
    [...ck.tensors.keys()],
    exp.tensors.map((x) => x.name),
    'sorted names, in byte order',
  );
  for (const e of exp.tensors) {
    const got = ck.tensors.get(e.name)!;
    t.equal(got.dtype, e.dtype);
    t.same(got.shape, e.shape);
    t.equal(sha256(got.data), e.sha256, `${e.name} bytes`);
  }
  t.same({ ...ck.extra }, exp.metadata);
  // Tied tensors are simply duplicated: same bytes, no storageKey.
  t.equal(sha256(ck.tensors.get('embedding.weight')!.data), sha256(ck.tensors.get('lm_head.weight')!.data));
  // And what we write from those tensors reads back the same.
  const again = readSafetensors(writeSafetensors([...ck.tensors.values()], exp.metadata));
  for (const [k, x] of ck.tensors) t.equal(sha256(again.tensors.get(k)!.data), sha256(x.data), `${k} rewritten`);
});

t.test('validation errors', async (t) => {
  const four = new Uint8Array(4);
  const good = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  t.equal(readSafetensors(raw(good, four)).tensors.size, 1, 'the baseline is valid');
  const cases: Array<[string, Uint8Array, string, RegExp]> = [
    ['shorter than 8 bytes', new Uint8Array(5), 'SAFETENSORS_TRUNCATED', /shorter than the 8-byte/],
    ['header length past the end', raw(good, four, 5000), 'SAFETENSORS_TRUNCATED', /runs past the end/],
    [
      'header length in the high word',
      (() => {
        const b = raw(good, four);
        b[7] = 1;
        return b;
      })(),
      'SAFETENSORS_TRUNCATED',
      /runs past the end/,
    ],
    [
      'header not UTF-8',
      (() => {
        const b = raw('{"ab":1}');
        b[10] = 0xff;
        return b;
      })(),
      'SAFETENSORS_HEADER',
      /not valid UTF-8/,
    ],
    ['header not JSON', raw('{"a":', four), 'SAFETENSORS_HEADER', /not valid JSON/],
    ['header a JSON array', raw('[1,2]', four), 'SAFETENSORS_HEADER', /JSON object/],
    ['entry not an object', raw('{"a":3}', four), 'SAFETENSORS_HEADER', /'a' is not an object/],
    ['missing dtype', raw('{"a":{"shape":[1],"data_offsets":[0,4]}}', four), 'SAFETENSORS_HEADER', /no dtype/],
    [
      'unknown dtype',
      raw('{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}', four),
      'SAFETENSORS_DTYPE',
      /F8_E4M3/,
    ],
    [
      'inherited name as dtype',
      raw('{"a":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}', four),
      'SAFETENSORS_DTYPE',
      /toString/,
    ],
    [
      'negative shape',
      raw('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', four),
      'SAFETENSORS_HEADER',
      /invalid shape/,
    ],
    [
      'fractional shape',
      raw('{"a":{"dtype":"F32","shape":[0.5],"data_offsets":[0,4]}}', four),
      'SAFETENSORS_HEADER',
      /invalid shape/,
    ],
    [
      'shape not a list',
      raw('{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}', four),
      'SAFETENSORS_HEADER',
      /invalid shape/,
    ],
    [
      'offsets not a pair',
      raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', four),
      'SAFETENSORS_HEADER',
      /invalid data_offsets/,
    ],
    [
      'offsets reversed',
      raw('{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', four),
      'SAFETENSORS_OFFSETS',
      /outside/,
    ],
    [
      'offsets past the buffer',
      raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', four),
      'SAFETENSORS_OFFSETS',
      /outside the 4-byte buffer/,
    ],
    [
      'byte length ≠ numel × size',
      raw('{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}}', four),
      'SAFETENSORS_OFFSETS',
      /needs 2 bytes/,
    ],
    [
      'overlap',
      raw(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I16","shape":[2],"data_offsets":[2,6]}}',
        new Uint8Array(6),
      ),
      'SAFETENSORS_OVERLAP',
      /'b' overlaps/,
    ],
    [
      'hole',
      raw('{"a":{"dtype":"I16","shape":[1],"data_offsets":[2,4]}}', four),
      'SAFETENSORS_OFFSETS',
      /bytes 0 to 2/,
    ],
    ['trailing bytes', raw(good, new Uint8Array(6)), 'SAFETENSORS_OFFSETS', /2 trailing bytes/],
    ['metadata not an object', raw('{"__metadata__":[1]}'), 'SAFETENSORS_HEADER', /__metadata__ is not an object/],
    ['metadata value not a string', raw('{"__metadata__":{"k":1}}'), 'SAFETENSORS_HEADER', /'k' is not a string/],
  ];
  for (const [what, bytes, code, msg] of cases) expectIteraError(t, () => readSafetensors(bytes), code, msg, what);
  const proto = readSafetensors(raw('{"__metadata__":{"__proto__":"x"}}'));
  t.equal(Object.getOwnPropertyDescriptor(proto.extra, '__proto__')?.value, 'x', '__proto__ metadata is a plain key');
});

t.test('writer refusals', async (t) => {
  const q: RawTensor = {
    name: 'q',
    dtype: 'qint8',
    shape: [2],
    data: new Uint8Array(2),
    quant: { scale: 0.1, zeroPoint: 0 },
  };
  expectIteraError(t, () => writeSafetensors([q]), 'SAFETENSORS_WRITE', /qint8/, 'qint8');
  expectIteraError(
    t,
    () => writeSafetensors([tensor('a', 'f32', [1]), tensor('a', 'f32', [1])]),
    'SAFETENSORS_WRITE',
    /duplicate/,
    'duplicate names',
  );
  expectIteraError(
    t,
    () => writeSafetensors([tensor('__metadata__', 'f32', [1])]),
    'SAFETENSORS_WRITE',
    /reserved/,
    'reserved name',
  );
  expectIteraError(
    t,
    () => writeSafetensors([{ ...tensor('a', 'f32', [2]), data: new Uint8Array(7) }]),
    'SAFETENSORS_WRITE',
    /7 bytes, expected 8/,
    'wrong byte length',
  );
  expectIteraError(
    t,
    () => writeSafetensors([], { k: 3 as unknown as string }),
    'SAFETENSORS_WRITE',
    /not a string/,
    'metadata value',
  );
});

t.test('importCheckpoint: sniffing and refusals', async (t) => {
  expectIteraError(
    t,
    () => importCheckpoint(enc.encode('GGUF\x03\x00\x00\x00'), 'm.gguf'),
    'CHECKPOINT_IS_GGUF',
    /'m\.gguf' is a GGUF/,
    'GGUF',
  );
  expectIteraError(
    t,
    () => importCheckpoint(enc.encode('hello world, not a model'), 'notes.txt'),
    'CHECKPOINT_UNKNOWN_FORMAT',
    /'notes\.txt'/,
    'unknown',
  );
  expectIteraError(
    t,
    () => importCheckpoint(new Uint8Array(3), 'x.safetensors'),
    'SAFETENSORS_TRUNCATED',
    /shorter/,
    'named .safetensors, too short',
  );
  expectIteraError(
    t,
    () => importCheckpoint(new Uint8Array(30), 'x.pt'),
    'ZIP_TRUNCATED',
    /end-of-central-directory/,
    'named .pt, not a zip',
  );
  t.equal(sniffCheckpoint(fixture('tiny_itera.pt')), 'pytorch-zip');
  t.equal(sniffCheckpoint(fixture('tiny_itera_py.safetensors')), 'safetensors');
});
