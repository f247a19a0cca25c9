import t from 'tap';
import { readGguf, GgmlType, tensorByteSize, metadataMap, gv, type GgufKV } from '../runtime/gguf.js';
import { writeGguf, type GgufTensorInput } from '../convert/gguf-write.js';
import {
  f16ToF32,
  f32ToF16,
  f32Bits,
  f32FromBits,
  f16BytesToF32,
  f32ToF16Bytes,
  bf16BytesToF32,
} from '../runtime/f16.js';
import { IteraError } from '../runtime/types.js';
import { expectIteraError } from './shared.js';

// ------------------------------------------------------------------ helpers

/** Builds raw GGUF bytes by hand, to make files the writer would refuse to make. */
class Raw {
  private out: number[] = [];
  get length(): number {
    return this.out.length;
  }
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.out.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint | number): this {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) {
      this.out.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this;
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u64(b.length).bytes(b);
  }
  header(version: number, nTensors: bigint | number, nKv: bigint | number): this {
    return this.bytes([0x47, 0x47, 0x55, 0x46]).u32(version).u64(nTensors).u64(nKv);
  }
  /** A tensor info; ne innermost first, as on disk. */
  tensor(name: string, ne: (number | bigint)[], type: number, offset: number | bigint): this {
    this.str(name).u32(ne.length);
    for (const n of ne) this.u64(n);
    return this.u32(type).u64(offset);
  }
  pad(align = 32): this {
    while (this.out.length % align) this.out.push(0);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.out.push(0);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function f32Data(n: number, seed = 1): Uint8Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed * 1000 + i) * 3;
  return new Uint8Array(a.buffer);
}

const expectCode = expectIteraError;

const allTypesMetadata: GgufKV[] = [
  { key: 'general.architecture', value: gv.string('test-arch') },
  { key: 'a.u8', value: { type: 'u8', value: 255 } },
  { key: 'a.i8', value: { type: 'i8', value: -128 } },
  { key: 'a.u16', value: { type: 'u16', value: 65535 } },
  { key: 'a.i16', value: { type: 'i16', value: -32768 } },
  { key: 'a.u32', value: { type: 'u32', value: 0xffffffff } },
  { key: 'a.i32', value: { type: 'i32', value: -0x80000000 } },
  { key: 'a.f32', value: { type: 'f32', value: Math.fround(1e-5) } },
  { key: 'a.f64', value: { type: 'f64', value: -1.2345678901234567e-300 } },
  { key: 'a.u64', value: { type: 'u64', value: 0xffffffffffffffffn } },
  { key: 'a.i64', value: { type: 'i64', value: -(1n << 63n) } },
  { key: 'a.bool.true', value: { type: 'bool', value: true } },
  { key: 'a.bool.false', value: { type: 'bool', value: false } },
  { key: 'a.string', value: gv.string('héllo, wörld \u{1F600} \uFEFFbom') },
  { key: 'a.string.empty', value: gv.string('') },
  { key: 'a.arr.u8', value: { type: 'array', itemType: 'u8', value: [0, 1, 255] } },
  { key: 'a.arr.i8', value: { type: 'array', itemType: 'i8', value: [-128, 0, 127] } },
  { key: 'a.arr.u16', value: { type: 'array', itemType: 'u16', value: [7, 65535] } },
  { key: 'a.arr.i16', value: { type: 'array', itemType: 'i16', value: [-7] } },
  { key: 'a.arr.u32', value: gv.u32s([1, 3, 5]) },
  { key: 'a.arr.i32', value: { type: 'array', itemType: 'i32', value: [-1, 2] } },
  { key: 'a.arr.f32', value: { type: 'array', itemType: 'f32', value: [0.5, -Infinity, Math.fround(0.1)] } },
  { key: 'a.arr.f64', value: { type: 'array', itemType: 'f64', value: [0.1, 1e308] } },
  { key: 'a.arr.u64', value: { type: 'array', itemType: 'u64', value: [0n, 1n << 60n] } },
  { key: 'a.arr.i64', value: { type: 'array', itemType: 'i64', value: [-5n] } },
  { key: 'a.arr.bool', value: { type: 'array', itemType: 'bool', value: [true, false, true] } },
  { key: 'a.arr.string', value: gv.strings(['<PAD>', '', 'day,', '日本']) },
  { key: 'a.arr.empty', value: { type: 'array', itemType: 'u32', value: [] } },
  {
    key: 'a.arr.nested',
    value: {
      type: 'array',
      itemType: 'array',
      value: [
        { type: 'array', itemType: 'string', value: ['x', 'y'] },
        { type: 'array', itemType: 'u64', value: [3n] },
        { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'bool', value: [false] }] },
      ],
    },
  },
];

function sampleTensors(): GgufTensorInput[] {
  const f16 = f32ToF16Bytes(new Float32Array([1, -2, 0.5, 65504, -0, 3.140625]));
  return [
    { name: 'token_embd.weight', type: GgmlType.F32, shape: [5, 3], data: f32Data(15) },
    { name: 'blk.0.ssm_a_log', type: GgmlType.F32, shape: [7], data: f32Data(7, 2) },
    { name: 'half', type: GgmlType.F16, shape: [2, 3], data: f16 },
    { name: 'q8', type: GgmlType.Q8_0, shape: [2, 32], data: new Uint8Array(68).map((_, i) => i) },
    { name: 'four.d', type: GgmlType.F32, shape: [2, 1, 2, 2], data: f32Data(8, 3) },
  ];
}

// ------------------------------------------------------------------ round trips

t.test('round trip: every metadata type and several tensor types', async (t) => {
  const bytes = writeGguf({ metadata: allTypesMetadata, tensors: sampleTensors() });
  const f = readGguf(bytes);
  t.equal(f.version, 3);
  t.equal(f.alignment, 32);
  t.same(f.metadata, allTypesMetadata, 'metadata equal, in order, types preserved');
  t.equal(f.dataOffset % 32, 0);
  const want = sampleTensors();
  t.equal(f.tensors.length, want.length);
  f.tensors.forEach((got, i) => {
    const w = want[i]!;
    t.equal(got.name, w.name);
    t.equal(got.type, w.type);
    t.same(got.shape, w.shape, `${w.name} shape in PyTorch order`);
    t.equal(got.offset % 32, 0);
    t.same(Array.from(got.data), Array.from(w.data), `${w.name} data`);
  });
  t.equal(bytes.length % 32, 0, 'file length padded to the alignment');
  const m = metadataMap(f.metadata);
  t.same(m.get('a.u32'), { type: 'u32', value: 0xffffffff });
});

t.test('on disk the dims are innermost first', async (t) => {
  const bytes = writeGguf({
    metadata: [],
    tensors: [{ name: 'w', type: GgmlType.F32, shape: [2, 3], data: f32Data(6) }],
  });
  const dv = new DataView(bytes.buffer);
  // header 24, name: 8 + 1, n_dims: 4, then ne[0], ne[1]
  t.equal(dv.getUint32(33, true), 2, 'n_dims');
  t.equal(Number(dv.getBigUint64(37, true)), 3, 'ne[0] is the row length (last PyTorch dim)');
  t.equal(Number(dv.getBigUint64(45, true)), 2, 'ne[1]');
});

t.test('deterministic: same input -> same bytes; read -> write reproduces the file', async (t) => {
  const a = writeGguf({ metadata: allTypesMetadata, tensors: sampleTensors() });
  const b = writeGguf({ metadata: allTypesMetadata, tensors: sampleTensors() });
  t.same(Buffer.from(a), Buffer.from(b));
  const f = readGguf(a);
  const c = writeGguf({ metadata: f.metadata, tensors: f.tensors });
  t.ok(Buffer.from(a).equals(Buffer.from(c)), 'rewrite is byte-identical');
});

t.test('other alignment via general.alignment; empty file; version 2 accepted', async (t) => {
  const md: GgufKV[] = [{ key: 'general.alignment', value: gv.u32(64) }];
  const bytes = writeGguf({ metadata: md, tensors: sampleTensors() });
  const f = readGguf(bytes);
  t.equal(f.alignment, 64);
  for (const x of f.tensors) t.equal(x.offset % 64, 0);
  t.equal(f.dataOffset % 64, 0);

  const empty = writeGguf({ metadata: [], tensors: [] });
  t.equal(empty.length, 24);
  t.same(readGguf(empty), { version: 3, alignment: 32, metadata: [], tensors: [], dataOffset: 32 });

  const v2 = writeGguf({ metadata: allTypesMetadata, tensors: sampleTensors() });
  v2[4] = 2;
  t.same(readGguf(v2).metadata, allTypesMetadata, 'v2 has the v3 layout');

  // a view into a larger buffer, at an odd offset
  const big = new Uint8Array(bytes.length + 3);
  big.set(bytes, 3);
  t.same(readGguf(big.subarray(3)).metadata, md);
});

// ------------------------------------------------------------------ hostile input

t.test('truncated at every offset: always an IteraError', async (t) => {
  // the last tensor's size is a multiple of 32, so the file ends exactly where its data ends
  const tensors = [...sampleTensors(), { name: 'last', type: GgmlType.F32, shape: [8], data: f32Data(8) }];
  const bytes = writeGguf({ metadata: allTypesMetadata, tensors });
  const f = readGguf(bytes);
  const lastEnd = f.dataOffset + f.tensors[f.tensors.length - 1]!.offset + 32;
  t.equal(lastEnd, bytes.length);
  let failures = 0;
  const codes = new Set<string>();
  for (let n = 0; n < bytes.length; n++) {
    try {
      readGguf(bytes.subarray(0, n));
      failures++;
      t.fail(`truncated to ${n} bytes was accepted`);
    } catch (e) {
      if (e instanceof IteraError) codes.add(e.code);
      else {
        failures++;
        t.fail(`truncated to ${n} bytes: ${String(e)}`);
      }
    }
  }
  t.equal(failures, 0, `all ${bytes.length} truncations rejected with IteraError (codes: ${[...codes].join(', ')})`);
  expectCode(
    t,
    () => readGguf(bytes.subarray(0, lastEnd - 1)),
    'GGUF_TRUNCATED',
    /tensor 'last' data ends at byte \d+ but the file has \d+ bytes/,
    'cut in the last tensor',
  );
});

t.test('bit flips: read fine or IteraError, never anything else', async (t) => {
  const bytes = writeGguf({ metadata: allTypesMetadata, tensors: sampleTensors() });
  const headerEnd = readGguf(bytes).dataOffset;
  let other = 0;
  let ok = 0;
  let rejected = 0;
  const tryIt = (b: Uint8Array, what: string): void => {
    try {
      readGguf(b);
      ok++;
    } catch (e) {
      if (e instanceof IteraError) rejected++;
      else {
        other++;
        t.fail(`${what}: ${String((e as Error)?.stack ?? e)}`);
      }
    }
  };
  for (let pos = 0; pos < headerEnd; pos++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = bytes.slice();
      b[pos]! ^= 1 << bit;
      tryIt(b, `flip byte ${pos} bit ${bit}`);
    }
    for (const v of [0x00, 0xff, 0x7f, 0x80]) {
      const b = bytes.slice();
      b[pos] = v;
      tryIt(b, `byte ${pos} = ${v}`);
    }
  }
  // random multi-byte corruption, seeded
  let s = 12345;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  for (let i = 0; i < 3000; i++) {
    const b = bytes.slice();
    const k = 1 + Math.floor(rnd() * 4);
    for (let j = 0; j < k; j++) b[Math.floor(rnd() * headerEnd)] = Math.floor(rnd() * 256);
    tryIt(b, `random corruption ${i}`);
  }
  t.equal(other, 0, `no non-IteraError (read fine: ${ok}, rejected: ${rejected})`);
});

t.test('bad magic and version', async (t) => {
  const good = writeGguf({ metadata: [], tensors: [] });
  expectCode(t, () => readGguf(new Uint8Array(0)), 'GGUF_BAD_MAGIC', /too short/, 'empty');
  expectCode(t, () => readGguf(Uint8Array.from([0x47, 0x47])), 'GGUF_BAD_MAGIC', /too short/, '2 bytes');
  const pk = good.slice();
  pk.set([0x50, 0x4b, 0x03, 0x04]);
  expectCode(t, () => readGguf(pk), 'GGUF_BAD_MAGIC', /50 4b 03 04/, 'zip file');
  for (const [v, re] of [
    [1, /version 1.*obsolete/],
    [4, /unsupported GGUF version 4/],
    [0x03000000, /big-endian/],
    [0, /version 0/],
  ] as const) {
    const b = good.slice();
    new DataView(b.buffer).setUint32(4, v, true);
    expectCode(t, () => readGguf(b), 'GGUF_BAD_VERSION', re, `version ${v}`);
  }
  expectCode(t, () => readGguf(good.subarray(0, 6)), 'GGUF_TRUNCATED', /version/, 'cut in version');
});

t.test('huge claimed counts and lengths are errors, not allocations', async (t) => {
  const huge = 1n << 60n;
  expectCode(
    t,
    () => readGguf(new Raw().header(3, huge, 0).build()),
    'GGUF_BAD_COUNT',
    /claims 1152921504606846976 tensors/,
    'tensor count 2^60',
  );
  expectCode(t, () => readGguf(new Raw().header(3, 0, huge).build()), 'GGUF_BAD_COUNT', /metadata/, 'kv count 2^60');
  expectCode(
    t,
    () => readGguf(new Raw().header(3, 0, 0xffffffffffffffffn).zeros(100).build()),
    'GGUF_BAD_COUNT',
    null,
    'kv count 2^64-1',
  );
  // a key length of 2^60
  expectCode(
    t,
    () => readGguf(new Raw().header(3, 0, 1).u64(huge).zeros(20).build()),
    'GGUF_TRUNCATED',
    /claims 1152921504606846976 bytes/,
    'key length 2^60',
  );
  // a string value length of 2^60
  expectCode(
    t,
    () => readGguf(new Raw().header(3, 0, 1).str('k').u32(8).u64(huge).zeros(20).build()),
    'GGUF_TRUNCATED',
    /value of 'k'/,
    'string length 2^60',
  );
  // an array of 2^60 u8, of 2^62 strings, of 2^61 u64
  for (const [itemType, n] of [
    [0, huge],
    [8, 1n << 62n],
    [10, 1n << 61n],
    [9, 1n << 59n],
  ] as const) {
    expectCode(
      t,
      () => readGguf(new Raw().header(3, 0, 1).str('k').u32(9).u32(itemType).u64(n).zeros(40).build()),
      'GGUF_TRUNCATED',
      /array 'k'/,
      `array of type ${itemType} with ${n} items`,
    );
  }
  // a tensor whose dims multiply to 2^80 elements
  const r = new Raw()
    .header(3, 1, 0)
    .tensor('w', [1n << 40n, 1n << 40n], GgmlType.F32, 0)
    .pad()
    .zeros(64)
    .build();
  expectCode(t, () => readGguf(r), 'GGUF_TRUNCATED', /tensor 'w'.*needs \d+ bytes/, 'dims 2^40 x 2^40');
  const r2 = new Raw()
    .header(3, 1, 0)
    .tensor('w', [4], GgmlType.F32, 1n << 62n)
    .pad()
    .zeros(64)
    .build();
  expectCode(t, () => readGguf(r2), 'GGUF_TRUNCATED', /tensor 'w'/, 'offset 2^62');
  // arrays nested too deep
  let deep = new Raw().header(3, 0, 1).str('deep').u32(9);
  for (let i = 0; i < 20; i++) deep = deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  expectCode(t, () => readGguf(deep.build()), 'GGUF_BAD_VALUE', /nested deeper/, 'deep nesting');
});

t.test('metadata validation', async (t) => {
  const one = (build: (r: Raw) => Raw): Uint8Array => build(new Raw().header(3, 0, 1)).build();
  expectCode(
    t,
    () => readGguf(one((r) => r.str('k').u32(13).u8(0))),
    'GGUF_BAD_VALUE_TYPE',
    /'k' has unknown value type 13/,
    'value type 13',
  );
  expectCode(
    t,
    () => readGguf(one((r) => r.str('k').u32(9).u32(77).u64(0))),
    'GGUF_BAD_VALUE_TYPE',
    /unknown value type 77/,
    'array item type 77',
  );
  expectCode(t, () => readGguf(one((r) => r.str('k').u32(7).u8(2))), 'GGUF_BAD_VALUE', /bool stored as 2/, 'bool 2');
  expectCode(
    t,
    () => readGguf(one((r) => r.str('k').u32(8).u64(2).bytes([0xc3, 0x28]))),
    'GGUF_BAD_STRING',
    /not valid UTF-8/,
    'bad utf-8',
  );
  expectCode(t, () => readGguf(one((r) => r.str('').u32(0).u8(0).zeros(4))), 'GGUF_BAD_KEY', /empty/, 'empty key');
  expectCode(
    t,
    () => readGguf(one((r) => r.str('a key').u32(0).u8(0))),
    'GGUF_BAD_KEY',
    /printable ASCII/,
    'key with a space',
  );
  const dup = new Raw().header(3, 0, 2).str('k').u32(0).u8(1).str('k').u32(0).u8(2).build();
  expectCode(t, () => readGguf(dup), 'GGUF_DUPLICATE_KEY', /'k' appears twice/, 'duplicate key');
  const align = (type: number, v: number): Uint8Array =>
    new Raw().header(3, 0, 1).str('general.alignment').u32(type).u32(v).build();
  expectCode(t, () => readGguf(align(4, 48)), 'GGUF_BAD_ALIGNMENT', /48.*power of two/, 'alignment 48');
  expectCode(t, () => readGguf(align(4, 0)), 'GGUF_BAD_ALIGNMENT', /power of two/, 'alignment 0');
  expectCode(t, () => readGguf(align(5, 32)), 'GGUF_BAD_ALIGNMENT', /must be a u32, found i32/, 'alignment as i32');
});

t.test('tensor info validation', async (t) => {
  const file = (...tensors: [string, (number | bigint)[], number, number | bigint][]): Uint8Array => {
    const r = new Raw().header(3, tensors.length, 0);
    for (const x of tensors) r.tensor(...x);
    return r.pad().zeros(512).build();
  };
  expectCode(
    t,
    () => readGguf(file(['w', [4], 99, 0])),
    'GGUF_UNKNOWN_TENSOR_TYPE',
    /tensor 'w' has unknown ggml type 99/,
    'type 99',
  );
  expectCode(t, () => readGguf(file(['w', [4], 4, 0])), 'GGUF_UNKNOWN_TENSOR_TYPE', /type 4/, 'removed type 4 (Q4_2)');
  expectCode(
    t,
    () => readGguf(file(['w', [4], 0, 16])),
    'GGUF_MISALIGNED_TENSOR',
    /'w' data offset 16 is not a multiple of the alignment 32/,
    'misaligned',
  );
  expectCode(
    t,
    () => readGguf(file(['a', [16], 0, 0], ['b', [4], 0, 32])),
    'GGUF_TENSOR_OVERLAP',
    /'a'.*'b'.*overlap/,
    'overlap',
  );
  expectCode(
    t,
    () => readGguf(file(['a', [4], 0, 0], ['b', [4], 0, 0])),
    'GGUF_TENSOR_OVERLAP',
    /overlap/,
    'same offset',
  );
  expectCode(
    t,
    () => readGguf(file(['b', [4], 0, 64], ['a', [32], 0, 0])),
    'GGUF_TENSOR_OVERLAP',
    /'a'.*'b'/,
    'overlap, listed out of order',
  );
  t.ok(readGguf(file(['b', [4], 0, 64], ['a', [16], 0, 0])), 'adjacent out of order is fine');
  expectCode(
    t,
    () => readGguf(file(['a', [4], 0, 0], ['a', [4], 0, 32])),
    'GGUF_DUPLICATE_TENSOR',
    /'a' appears twice/,
    'duplicate name',
  );
  expectCode(t, () => readGguf(file(['w', [], 0, 0])), 'GGUF_BAD_TENSOR', /0 dimensions/, 'n_dims 0');
  expectCode(t, () => readGguf(file(['w', [1, 1, 1, 1, 1], 0, 0])), 'GGUF_BAD_TENSOR', /5 dimensions/, 'n_dims 5');
  expectCode(t, () => readGguf(file(['w', [4, 0], 0, 0])), 'GGUF_BAD_TENSOR', /dimension 1 of size 0/, 'dim 0');
  expectCode(
    t,
    () => readGguf(file(['w', [33, 2], GgmlType.Q8_0, 0])),
    'GGUF_BAD_TENSOR',
    /Q8_0.*33.*block size 32/,
    'Q8_0 row of 33',
  );
  expectCode(t, () => readGguf(file(['', [4], 0, 0])), 'GGUF_BAD_TENSOR', /empty name/, 'empty name');
  expectCode(
    t,
    () => readGguf(file(['x'.repeat(64), [4], 0, 0])),
    'GGUF_BAD_TENSOR',
    /longer than 63 bytes/,
    '64-byte name',
  );
  const short = new Raw().header(3, 1, 0).tensor('w', [100], 0, 0).pad().zeros(360).build();
  expectCode(
    t,
    () => readGguf(short),
    'GGUF_TRUNCATED',
    /tensor 'w' data ends at byte 464 but the file has 424 bytes/,
    'data past the end',
  );
  // Q4_0: 18 bytes per block of 32
  const q4 = readGguf(
    new Raw()
      .header(3, 1, 0)
      .tensor('q', [64, 3], GgmlType.Q4_0, 0)
      .pad()
      .zeros(6 * 18)
      .build(),
  );
  t.equal(q4.tensors[0]!.data.length, 108, 'Q4_0 size from the block table');
  t.same(q4.tensors[0]!.shape, [3, 64]);
});

t.test('writer refuses bad input', async (t) => {
  const w =
    (metadata: GgufKV[], tensors: GgufTensorInput[] = []) =>
    () =>
      writeGguf({ metadata, tensors });
  expectCode(t, w([{ key: 'k', value: gv.u8(256) }]), 'GGUF_BAD_VALUE', /256 is not a u8/, 'u8 256');
  expectCode(t, w([{ key: 'k', value: gv.u32(1.5) }]), 'GGUF_BAD_VALUE', /not a u32/, 'u32 1.5');
  expectCode(t, w([{ key: 'k', value: gv.i32(-0x80000001) }]), 'GGUF_BAD_VALUE', /not a i32/, 'i32 underflow');
  expectCode(t, w([{ key: 'k', value: gv.u64(-1n) }]), 'GGUF_BAD_VALUE', /u64/, 'u64 -1');
  expectCode(
    t,
    w([{ key: 'k', value: { type: 'u64', value: 3 as unknown as bigint } }]),
    'GGUF_BAD_VALUE',
    /u64/,
    'u64 as number',
  );
  expectCode(
    t,
    w([{ key: 'k', value: gv.string('a\uD800b') }]),
    'GGUF_BAD_STRING',
    /lone UTF-16 surrogate/,
    'lone surrogate',
  );
  expectCode(t, w([{ key: 'k', value: gv.u32s([1, -1]) }]), 'GGUF_BAD_VALUE', /-1 is not a u32/, 'array element');
  expectCode(
    t,
    w([{ key: 'k', value: { type: 'x' } as never }]),
    'GGUF_BAD_VALUE',
    /unknown value type x/,
    'unknown type',
  );
  expectCode(
    t,
    w([
      { key: 'k', value: gv.u8(1) },
      { key: 'k', value: gv.u8(1) },
    ]),
    'GGUF_DUPLICATE_KEY',
    /'k'/,
    'duplicate key',
  );
  expectCode(t, w([{ key: 'general.alignment', value: gv.u32(24) }]), 'GGUF_BAD_ALIGNMENT', null, 'alignment 24');
  expectCode(
    t,
    w([], [{ name: 'w', type: 0, shape: [2, 2], data: new Uint8Array(15) }]),
    'GGUF_BAD_TENSOR',
    /'w' \[2, 2\] of type F32 needs 16 bytes of data, got 15/,
    'short data',
  );
  expectCode(
    t,
    w([], [{ name: 'w', type: 55, shape: [2], data: new Uint8Array(8) }]),
    'GGUF_UNKNOWN_TENSOR_TYPE',
    /'w'.*55/,
    'unknown type',
  );
  expectCode(
    t,
    w([], [{ name: 'w', type: 0, shape: [2, 0], data: new Uint8Array(0) }]),
    'GGUF_BAD_TENSOR',
    /bad dimension 0/,
    'dim 0',
  );
  expectCode(
    t,
    w([], [{ name: 'w', type: 0, shape: [1, 1, 1, 1, 1], data: new Uint8Array(4) }]),
    'GGUF_BAD_TENSOR',
    /5 dimensions/,
    '5 dims',
  );
  const ok: GgufTensorInput = { name: 'w', type: 0, shape: [1], data: new Uint8Array(4) };
  expectCode(t, w([], [ok, ok]), 'GGUF_DUPLICATE_TENSOR', /'w'/, 'duplicate tensor');
  t.equal(tensorByteSize(GgmlType.Q8_0, [4, 64]), 4 * 2 * 34);
  t.equal(tensorByteSize(GgmlType.F16, [3, 5]), 30);
});

// ------------------------------------------------------------------ f16

t.test('f16 -> f32 -> f16 is the identity on all 65536 values (NaNs stay NaN)', async (t) => {
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    const back = f32ToF16(x);
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16) {
      if (!Number.isNaN(x) || (back & 0x7c00) !== 0x7c00 || (back & 0x3ff) === 0) bad++;
    } else if (back !== h) {
      bad++;
      if (bad < 5) t.fail(`0x${h.toString(16)} -> ${x} -> 0x${back.toString(16)}`);
    }
  }
  t.equal(bad, 0);
  // the bulk helpers agree with the scalar ones
  const all = new Uint8Array(131072);
  for (let h = 0; h < 65536; h++) {
    all[2 * h] = h & 0xff;
    all[2 * h + 1] = h >> 8;
  }
  const f = f16BytesToF32(all);
  let mismatch = 0;
  for (let h = 0; h < 65536; h++) {
    const a = f[h]!;
    const b = f16ToF32(h);
    if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) mismatch++;
  }
  t.equal(mismatch, 0, 'f16BytesToF32 matches f16ToF32');
});

t.test('f32 -> f16 rounding: nearest, ties to even, subnormals, overflow', async (t) => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [1e10, 0x7c00],
    [-Infinity, 0xfc00],
    [Infinity, 0x7c00],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [-(2 ** -25), 0x8000],
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002],
    [5 * 2 ** -25, 0x0002],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [2 ** -14 - 2 ** -25, 0x0400],
    [1023.5 * 2 ** -24, 0x0400],
    [1e-30, 0],
    [f32FromBits(1), 0],
  ];
  for (const [x, h] of cases) t.equal(f32ToF16(x), h, `${x} -> 0x${h.toString(16)}`);
  t.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))), 'NaN');
  t.equal(f32ToF16(f32FromBits(0xffc00001)) & 0xfe00, 0xfe00, 'negative quiet NaN keeps sign');

  // property test on random f32 bit patterns: the result is a nearest f16, ties to even
  let s = 987654321;
  let bad = 0;
  for (let i = 0; i < 200000; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const x = f32FromBits(s);
    if (!Number.isFinite(x)) continue;
    const h = f32ToF16(x);
    const ax = Math.abs(x);
    const mag = h & 0x7fff;
    const v = f16ToF32(mag);
    if (mag === 0x7c00) {
      if (ax < 65520) bad++;
      continue;
    }
    const lo = mag > 0 ? f16ToF32(mag - 1) : -Infinity;
    const hi = mag < 0x7bff ? f16ToF32(mag + 1) : 65520; // 65520 rounds up to inf
    const d = Math.abs(ax - v);
    if (d > Math.abs(ax - lo) || d > Math.abs(hi - ax)) bad++;
    else if ((d === Math.abs(ax - lo) || d === Math.abs(hi - ax)) && d !== 0 && (mag & 1) !== 0) bad++;
    if (((h & 0x8000) !== 0) !== (f32Bits(x) >>> 31 === 1)) bad++;
  }
  t.equal(bad, 0, 'random f32 values round to the nearest f16, ties to even');
});

t.test('bf16', async (t) => {
  const b = bf16BytesToF32(Uint8Array.from([0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f]));
  t.same(Array.from(b), [1, -2, Infinity]);
});
