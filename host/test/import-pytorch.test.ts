// PyTorch checkpoint import: the reference checkpoint in ../shared, and the fixtures that
// scripts/fixtures/make_torch_fixtures.py generated (with PyTorch) into host/test/fixtures/.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importCheckpoint, importTorchZip, writeZip, type ImportedCheckpoint } from '../convert/import/index.js';
import type { RawTensor } from '../runtime/types.js';
import { expectIteraError, needShared, repoRoot, requireShared } from './shared.js';
import { bytesOf } from './helpers.js';

const FIXTURES = join(repoRoot(), 'host', 'test', 'fixtures');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));

interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  sha256: string;
  first: Array<number | boolean>;
  offset?: number;
  stride?: number[];
  scale?: number;
  zero_point?: number;
}
interface ExpectedFixture {
  root: string;
  wrapped: boolean;
  extra: Record<string, unknown>;
  tensors: ExpectedTensor[];
  tied: string[][];
  original_keys?: string[];
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, ExpectedFixture>;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Element i of a tensor as a JS number (or boolean), decoded by hand from its bytes. */
function element(tensor: RawTensor, i: number): number | boolean {
  const v = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  switch (tensor.dtype) {
    case 'f32':
      return v.getFloat32(i * 4, true);
    case 'f64':
      return v.getFloat64(i * 8, true);
    case 'f16':
      return halfToNumber(v.getUint16(i * 2, true));
    case 'bf16': {
      const b = new DataView(new ArrayBuffer(4));
      b.setUint32(0, v.getUint16(i * 2, true) << 16, false);
      return b.getFloat32(0, false);
    }
    case 'i64':
      return Number(v.getBigInt64(i * 8, true));
    case 'i32':
      return v.getInt32(i * 4, true);
    case 'i16':
      return v.getInt16(i * 2, true);
    case 'i8':
    case 'qint8':
      return v.getInt8(i);
    case 'u8':
      return v.getUint8(i);
    case 'bool':
      return v.getUint8(i) !== 0;
  }
}

/** Groups of tensor names that share a storageKey (more than one name each). */
function tiedGroups(ck: ImportedCheckpoint): string[][] {
  const groups = new Map<string, string[]>();
  for (const x of ck.tensors.values()) {
    if (x.storageKey === undefined || x.dtype === 'qint8') continue;
    groups.set(x.storageKey, [...(groups.get(x.storageKey) ?? []), x.name]);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

function checkAgainstExpected(t: Test, name: string, ck: ImportedCheckpoint): void {
  const exp = expected[name]!;
  t.equal(ck.format, 'pytorch-zip', 'format');
  t.ok(ck.notes.includes(`archive root '${exp.root}'`), `notes name the archive root ${exp.root}`);
  t.same(
    [...ck.tensors.keys()],
    exp.tensors.map((x) => x.name),
    'tensor names, in state_dict order',
  );
  for (const e of exp.tensors) {
    const got = ck.tensors.get(e.name);
    if (!got) {
      t.fail(`missing ${e.name}`);
      continue;
    }
    t.equal(got.name, e.name);
    t.equal(got.dtype, e.dtype, `${e.name} dtype`);
    t.same(got.shape, e.shape, `${e.name} shape`);
    t.equal(
      got.data.length,
      numel(e.shape) *
        (({ f64: 8, i64: 8, f32: 4, i32: 4, f16: 2, bf16: 2, i16: 2 } as Record<string, number>)[e.dtype] ?? 1),
      `${e.name} byte length`,
    );
    t.equal(sha256(got.data), e.sha256, `${e.name} bytes equal PyTorch's (contiguous, row-major)`);
    const first = e.first.map((_, i) => element(got, i));
    t.same(first, e.first, `${e.name} first values`);
    if (e.dtype === 'qint8') {
      t.equal(got.quant?.scale, e.scale, `${e.name} scale`);
      t.equal(got.quant?.zeroPoint, e.zero_point, `${e.name} zero point`);
    } else {
      t.equal(got.quant, undefined, `${e.name} has no quantization`);
      t.ok(
        got.storageKey?.endsWith(`:${e.offset}:${e.shape.join(',')}:${e.stride!.join(',')}`),
        `${e.name} storageKey ${got.storageKey}`,
      );
    }
  }
  t.same(tiedGroups(ck), exp.tied, 'tied tensors (equal storageKeys) are exactly the ones PyTorch shares');
  t.same(JSON.parse(JSON.stringify(ck.extra)), exp.extra, 'extra');
}

for (const name of ['tiny_itera.pt', 'tiny_itera_wrapped.pt', 'tiny_itera_f16.pt', 'views.pt', 'tiny_qint8.pt']) {
  t.test(`fixture ${name} imports with the values PyTorch recorded`, async (t) => {
    const ck = importTorchZip(fixture(name));
    checkAgainstExpected(t, name, ck);
    const viaSniff = importCheckpoint(fixture(name), name);
    t.same([...viaSniff.tensors.keys()], [...ck.tensors.keys()], 'importCheckpoint sniffs the zip');
  });
}

t.test('bare and wrapped state_dicts say which they were', async (t) => {
  const bare = importTorchZip(fixture('tiny_itera.pt'));
  t.ok(
    bare.notes.some((n) => n.startsWith('bare state_dict')),
    bare.notes.join(' | '),
  );
  const wrapped = importTorchZip(fixture('tiny_itera_wrapped.pt'));
  t.ok(
    wrapped.notes.some((n) => n.includes("under 'model_state_dict'")),
    wrapped.notes.join(' | '),
  );
  t.equal(wrapped.extra['compression_ratio'], 2.5);
  t.equal(wrapped.extra['epoch'], 7);
  t.same(JSON.parse(JSON.stringify(wrapped.extra['config'])), { vocab_size: 50, hidden_size: 8, name: 'tiny' });
  for (const [k, x] of bare.tensors) t.equal(sha256(x.data), sha256(wrapped.tensors.get(k)!.data), `${k} same in both`);
});

t.test('tied tensors share a storageKey and their bytes', async (t) => {
  const ck = importTorchZip(fixture('tiny_itera.pt'));
  const emb = ck.tensors.get('embedding.weight')!;
  const head = ck.tensors.get('lm_head.weight')!;
  t.equal(emb.storageKey, head.storageKey);
  t.equal(sha256(emb.data), sha256(head.data));
  t.ok(ck.notes.includes('tied: embedding.weight = lm_head.weight (storage 0)'), ck.notes.join(' | '));
});

t.test('views: non-contiguous, offset, expanded, 0-d and empty tensors', async (t) => {
  const ck = importTorchZip(fixture('views.pt'));
  const base = ck.tensors.get('base')!;
  const tr = ck.tensors.get('transposed')!;
  // transposed[j][i] == base[i][j]
  for (let i = 0; i < 4; i++) for (let j = 0; j < 6; j++) t.equal(element(tr, j * 4 + i), element(base, i * 6 + j));
  t.equal(base.storageKey!.split(':')[0], tr.storageKey!.split(':')[0], 'a view shares its storage key');
  t.not(base.storageKey, tr.storageKey, 'but not its storageKey (different view)');
  const scalar = ck.tensors.get('scalar')!;
  t.same(scalar.shape, []);
  t.equal(scalar.data.length, 4);
  t.equal(ck.tensors.get('empty')!.data.length, 0);
  t.same(
    [0, 1, 2, 3, 4, 5].map((i) => element(ck.tensors.get('expanded')!, i)),
    [1, 2, 3, 1, 2, 3],
  );
  t.ok(ck.notes.includes("archive root 'archive/'"), 'a checkpoint saved to a buffer has the root archive/');
});

t.test('dynamically quantized checkpoint: qint8 weights, float biases, scalars in extra', async (t) => {
  const ck = importTorchZip(fixture('tiny_qint8.pt'));
  const exp = expected['tiny_qint8.pt']!;
  const packed = exp.original_keys!.filter((k) => k.endsWith('._packed_params._packed_params'));
  t.ok(packed.length > 0);
  for (const k of packed) {
    const prefix = k.slice(0, -'._packed_params._packed_params'.length);
    const w = ck.tensors.get(`${prefix}.weight`);
    t.equal(w?.dtype, 'qint8', `${prefix}.weight is qint8`);
    t.ok(w?.quant && w.quant.scale > 0, `${prefix}.weight has a scale`);
    t.equal(ck.extra[`${prefix}._packed_params.dtype`], 'qint8');
    t.equal(typeof ck.extra[`${prefix}.scale`], 'number');
    t.equal(typeof ck.extra[`${prefix}.zero_point`], 'number');
    t.notOk(ck.tensors.has(k), 'the packed tuple itself is not a tensor');
  }
  const dp = ck.tensors.get('layers.0.ssm.ssm.delta_proj.bias')!;
  t.equal(dp.dtype, 'f32', 'a quantized Linear keeps its float bias');
  t.notOk(ck.tensors.has('layers.0.ssm.in_proj.bias'), 'no bias where the Linear had none');
  t.equal(ck.tensors.get('embedding.weight')!.dtype, 'f32', 'the embedding stays float');
  t.not(
    ck.tensors.get('embedding.weight')!.storageKey,
    ck.tensors.get('lm_head.weight')!.storageKey,
    'lm_head no longer tied',
  );
});

t.test('hostile checkpoints are refused, naming the global', async (t) => {
  expectIteraError(
    t,
    () => importTorchZip(fixture('hostile_os_system.pt')),
    'PICKLE_GLOBAL_FORBIDDEN',
    /'os\.system'/,
    'os.system',
  );
  expectIteraError(
    t,
    () => importCheckpoint(fixture('hostile_nested.pt'), 'hostile_nested.pt'),
    'PICKLE_GLOBAL_FORBIDDEN',
    /'builtins\.eval'/,
    'builtins.eval after a real tensor',
  );
});

// ---------------------------------------------------------------------------------------------
// Hand-made archives for the importer's own checks.

const enc = new TextEncoder();
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const str = (s: string): Uint8Array => bytesOf([0x58], u32(enc.encode(s).length), s);
const int = (v: number): number[] => [0x4a, ...u32(v)];
const f32 = (...vals: number[]): Uint8Array => new Uint8Array(Float32Array.from(vals).buffer);

/** Pickle of {name: _rebuild_tensor_v2(storage 'key' of numel floats, offset, size, stride)}. */
function tensorPickle(
  entries: Array<{ name: string; key: string; numel: number; offset: number; size: number[]; stride: number[] }>,
  tail: Uint8Array = new Uint8Array(),
): Uint8Array {
  const parts: Array<number[] | string | Uint8Array> = [[0x80, 2, 0x7d, 0x28]];
  for (const e of entries) {
    parts.push(
      str(e.name),
      'ctorch._utils\n_rebuild_tensor_v2\n',
      [0x28, 0x28],
      str('storage'),
      'ctorch\nFloatStorage\n',
    );
    parts.push(str(e.key), str('cpu'), int(e.numel), [0x74, 0x51], int(e.offset));
    parts.push([0x28], ...e.size.map(int), [0x74], [0x28], ...e.stride.map(int), [0x74]);
    parts.push([0x89], 'ccollections\nOrderedDict\n', [0x29, 0x52, 0x74, 0x52]);
  }
  parts.push(tail, [0x75, 0x2e]);
  return bytesOf(...parts);
}

function archive(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array>,
  root = 'ck/',
  byteorder: string | null = 'little',
): Uint8Array {
  const files = [{ name: `${root}data.pkl`, data: pkl }];
  if (byteorder !== null) files.push({ name: `${root}byteorder`, data: enc.encode(byteorder) });
  for (const [k, v] of Object.entries(storages)) files.push({ name: `${root}data/${k}`, data: v });
  return writeZip(files);
}

t.test('hand-made archives: views, bounds and structure errors', async (t) => {
  const storage = f32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
  const ok = importTorchZip(
    archive(tensorPickle([{ name: 'w', key: '0', numel: 12, offset: 1, size: [2, 3], stride: [1, 2] }]), {
      '0': storage,
    }),
  );
  const w = ok.tensors.get('w')!;
  t.same([...new Float32Array(w.data.buffer, w.data.byteOffset, 6)], [1, 3, 5, 2, 4, 6], 'offset + column-major view');
  t.equal(w.storageKey, '0:1:2,3:1,2');

  const bad = (size: number[], stride: number[], offset: number, numel = 12) =>
    archive(tensorPickle([{ name: 'layers.0.w', key: '0', numel, offset, size, stride }]), { '0': storage });
  expectIteraError(
    t,
    () => importTorchZip(bad([4, 4], [4, 1], 0)),
    'TORCH_BAD_TENSOR',
    /'layers\.0\.w'.*reaches element 15/,
    'view past the storage',
  );
  expectIteraError(
    t,
    () => importTorchZip(bad([12], [1], 1)),
    'TORCH_BAD_TENSOR',
    /'layers\.0\.w'/,
    'offset pushes past the end',
  );
  expectIteraError(
    t,
    () => importTorchZip(bad([2, 2], [1], 0)),
    'TORCH_BAD_TENSOR',
    /sizes but/,
    'size/stride rank mismatch',
  );
  expectIteraError(
    t,
    () => importTorchZip(bad([2], [1], 0, 13)),
    'TORCH_BAD_STORAGE',
    /storage '0'/,
    'storage numel larger than its entry',
  );
  expectIteraError(
    t,
    () =>
      importTorchZip(
        archive(tensorPickle([{ name: 'w', key: '7', numel: 1, offset: 0, size: [1], stride: [1] }]), { '0': storage }),
      ),
    'TORCH_STORAGE_MISSING',
    /ck\/data\/7/,
    'storage entry missing',
  );
  expectIteraError(
    t,
    () =>
      importTorchZip(
        archive(
          tensorPickle([{ name: 'w', key: '0', numel: 12, offset: 0, size: [1], stride: [1] }]),
          { '0': storage },
          'ck/',
          'big',
        ),
      ),
    'TORCH_BYTEORDER',
    /big-endian/,
    'big-endian checkpoint',
  );
  const noOrder = importTorchZip(
    archive(
      tensorPickle([{ name: 'w', key: '0', numel: 12, offset: 0, size: [1], stride: [1] }]),
      { '0': storage },
      'x/',
      null,
    ),
  );
  t.ok(
    noOrder.notes.some((n) => n.includes('no byteorder')),
    'missing byteorder is noted',
  );
  expectIteraError(
    t,
    () => importTorchZip(writeZip([{ name: 'a/b.txt', data: enc.encode('hi') }])),
    'TORCH_NO_DATA_PKL',
    /data\.pkl/,
    'no data.pkl',
  );
  expectIteraError(
    t,
    () =>
      importTorchZip(
        writeZip([
          { name: 'm/data.pkl', data: bytesOf([0x80, 2, 0x7d, 0x2e]) },
          { name: 'm/constants.pkl', data: bytesOf([0x80, 2, 0x29, 0x2e]) },
        ]),
      ),
    'TORCH_UNSUPPORTED',
    /TorchScript/,
    'TorchScript archive',
  );
  expectIteraError(
    t,
    () => importTorchZip(archive(bytesOf([0x80, 2, 0x5d, 0x2e]), {})),
    'TORCH_NOT_STATE_DICT',
    /list/,
    'a list at the top',
  );
  expectIteraError(
    t,
    () => importTorchZip(archive(bytesOf([0x80, 2, 0x7d, 0x2e]), {})),
    'TORCH_NOT_STATE_DICT',
    /no tensors/,
    'an empty dict',
  );
  expectIteraError(
    t,
    () => importCheckpoint(bytesOf([0x80, 2, 0x8a, 10, 0x6c, 0xfc]), 'old.pt'),
    'CHECKPOINT_LEGACY',
    /legacy/,
    'legacy torch.save',
  );
});

t.test('extra values: cycles, deep nesting and odd keys stay plain and bounded', async (t) => {
  const storage = f32(1, 2);
  // extra 'cyc' = a list that contains itself: EMPTY_LIST DUP APPEND
  let tail = bytesOf(str('cyc'), [0x5d, 0x32, 0x61]);
  // extra 'deep' = 5000 nested 1-tuples
  tail = bytesOf(tail, str('deep'), [0x4e], new Uint8Array(5000).fill(0x85));
  // extra '__proto__' = 1
  tail = bytesOf(tail, str('__proto__'), int(1));
  const pkl = tensorPickle([{ name: 'w', key: '0', numel: 2, offset: 0, size: [2], stride: [1] }], tail);
  const ck = importTorchZip(archive(pkl, { '0': storage }));
  t.same(ck.extra['cyc'], ['<cycle>']);
  t.ok(JSON.stringify(ck.extra['deep']).includes('<truncated>'), 'deep nesting is cut off, not overflowed');
  t.equal(Object.getOwnPropertyDescriptor(ck.extra, '__proto__')?.value, 1, '__proto__ is a plain own key');
  t.ok(
    ck.notes.some((n) => n.includes('not tensors')),
    ck.notes.join(' | '),
  );
});

t.test(
  'reference checkpoint itera_lite_micro_distilled.pt',
  {
    ...needShared('reference/checkpoints/itera_lite_micro_distilled.pt'),
    ...needShared('reference/golden/micro/reference.json'),
  },
  async (t) => {
    const path = requireShared('reference/checkpoints/itera_lite_micro_distilled.pt');
    const ck = importCheckpoint(new Uint8Array(readFileSync(path)), 'itera_lite_micro_distilled.pt');
    t.equal(ck.format, 'pytorch-zip');
    t.equal(ck.tensors.size, 61);
    t.equal(ck.extra['compression_ratio'], 3.8088647941809466);
    t.ok(
      ck.notes.some((n) => n.includes("under 'model_state_dict'")),
      ck.notes.join(' | '),
    );
    t.ok(ck.notes.includes("archive root 'itera_lite_micro_distilled/'"));
    const emb = ck.tensors.get('embedding.weight')!;
    const head = ck.tensors.get('lm_head.weight')!;
    t.same(emb.shape, [2000, 64]);
    t.equal(emb.storageKey, head.storageKey, 'embedding and lm_head are tied');
    t.equal(emb.storageKey, '0:0:2000,64:64,1');
    t.same(tiedGroups(ck), [['embedding.weight', 'lm_head.weight']], 'the only tie');
    // Values PyTorch 1.13 reads from the same file.
    const sums: Record<string, string> = {
      'embedding.weight': 'a87ca232259d146c63f30deafadfc625c1ded43c9156aa91c08f0f5c309a0c77',
      'layers.1.moe.layer.router.expert_counts': '2107de981d72faefd8643f71afc7ac5e6f0165e96ea2ad2dea82b50ac97223f6',
      'layers.2.ssm.ssm.A_log': 'c8c4c53e80a03748fb6d57ce2dd411d37cda88f256a4fe317d63239a0e16a69e',
      'norm.bias': 'f41eeec121dec0630f2f3522e823a91bf812f2d9a001e87d946c99de28b23490',
    };
    for (const [k, h] of Object.entries(sums))
      t.equal(sha256(ck.tensors.get(k)!.data), h, `${k} bytes equal PyTorch's`);
    t.same(
      [0, 1, 2].map((i) => element(emb, i)),
      [0.08874692022800446, -0.08562996983528137, -0.09532888233661652],
    );
    t.same(ck.tensors.get('layers.0.ssm.conv1d.weight')!.shape, [128, 1, 4]);

    // Parameter count: unique storages, without the router's expert_counts buffer. That is what
    // sum(p.numel() for p in model.parameters()) gives in PyTorch (tied weights counted once,
    // buffers excluded).
    const count = (skipCounts: boolean): number => {
      const seen = new Set<string>();
      let n = 0;
      for (const x of ck.tensors.values()) {
        if (skipCounts && x.name.endsWith('router.expert_counts')) continue;
        if (seen.has(x.storageKey!)) continue;
        seen.add(x.storageKey!);
        n += numel(x.shape);
      }
      return n;
    };
    t.equal(count(true), 293_656, 'parameters: unique storages, no expert_counts');
    const golden = requireShared('reference/golden/micro/reference.json');
    t.equal(
      count(true),
      (JSON.parse(readFileSync(golden, 'utf8')) as { parameters: number }).parameters,
      "the count the original's reference.json states",
    );
    t.equal(count(false), 293_660, 'with the expert_counts buffer');
    t.equal(
      [...ck.tensors.values()].reduce((a, x) => a + numel(x.shape), 0),
      421_660,
      'every state_dict entry, tied counted twice',
    );
  },
);
