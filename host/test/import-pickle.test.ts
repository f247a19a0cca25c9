// The pickle VM: Python's own pickles of plain data (protocols 0-5), the allow-list, limits and
// malformed input.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importTorchZip, writeZip } from '../convert/import/index.js';
import { PyTuple, type PickleValue } from '../convert/import/pickle.js';
import {
  TorchStorage,
  TorchTensor,
  allowedGlobalNames,
  unpickleCheckpoint as unpickle,
} from '../convert/import/torch-pickle.js';
import { IteraError } from '../runtime/types.js';
import { expectIteraError, repoRoot } from './shared.js';
import { mulberry32, bytesOf } from './helpers.js';

const FIXTURES = join(repoRoot(), 'host', 'test', 'fixtures');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  { value?: unknown; same_as?: string }
>;

const enc = new TextEncoder();
const shortStr = (s: string): Uint8Array => bytesOf([0x8c, enc.encode(s).length], s);

/** The tagged-JSON form the generator writes (see make_torch_fixtures.py `tag`). */
function tag(v: PickleValue): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) return v;
    return { float: Number.isFinite(v) ? v : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan' };
  }
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (v instanceof PyTuple) return { tuple: v.items.map(tag) };
  if (Array.isArray(v)) return v.map(tag);
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [tag(k), tag(x)]) };
  if (v instanceof Set) return { set: [...v].map(tag) };
  throw new Error(`unexpected value in a plain pickle: ${String(v)}`);
}

t.test("Python's pickles of plain data, protocols 0 to 5", async (t) => {
  for (let p = 0; p <= 5; p++) {
    const name = `plain_p${p}.pkl`;
    let e = expected[name]!;
    while (e.same_as) e = expected[e.same_as]!;
    t.same(tag(unpickle(fixture(name))), e.value, name);
  }
});

t.test('shared references stay shared, order is kept, big ints are bigint', async (t) => {
  const v = unpickle(fixture('plain_p2.pkl')) as Map<PickleValue, PickleValue>;
  t.equal(v.get('shared1'), v.get('shared2'), 'memo gives the same object');
  t.same([...(v.get('ordered') as Map<PickleValue, PickleValue>).keys()], ['z', 'a', 'm']);
  t.equal(v.get('big'), 2n ** 70n);
  t.equal(v.get('bigneg'), -(2n ** 80n) + 1n);
  t.equal(v.get('unsafe'), 2n ** 53n + 1n);
  t.equal(v.get('safe'), 2 ** 53 - 1);
});

// ---------------------------------------------------------------------------------------------
// The allow-list

t.test('the allow-list is exactly what a state_dict checkpoint needs', async (t) => {
  t.same(allowedGlobalNames().sort(), [
    '_codecs.encode',
    'collections.OrderedDict',
    'torch.BFloat16Storage',
    'torch.BoolStorage',
    'torch.ByteStorage',
    'torch.CharStorage',
    'torch.DoubleStorage',
    'torch.FloatStorage',
    'torch.HalfStorage',
    'torch.IntStorage',
    'torch.LongStorage',
    'torch.QInt8Storage',
    'torch.QUInt8Storage',
    'torch.ShortStorage',
    'torch._utils._rebuild_parameter',
    'torch._utils._rebuild_parameter_with_state',
    'torch._utils._rebuild_qtensor',
    'torch._utils._rebuild_tensor_v2',
    'torch.float16',
    'torch.float32',
    'torch.per_channel_affine',
    'torch.per_tensor_affine',
    'torch.qint8',
    'torch.quint8',
  ]);
});

const FORBIDDEN: Array<[string, string]> = [
  ['os', 'system'],
  ['posix', 'system'],
  ['nt', 'system'],
  ['os', 'popen'],
  ['os', 'execv'],
  ['builtins', 'eval'],
  ['builtins', 'exec'],
  ['builtins', 'compile'],
  ['builtins', 'getattr'],
  ['builtins', '__import__'],
  ['builtins', 'open'],
  ['builtins', 'set'],
  ['__builtin__', 'eval'],
  ['__builtin__', 'getattr'],
  ['subprocess', 'Popen'],
  ['subprocess', 'call'],
  ['subprocess', 'check_output'],
  ['subprocess', 'run'],
  ['torch', 'load'],
  ['torch.serialization', 'load'],
  ['torch.jit', 'load'],
  ['torch', 'Tensor'],
  ['torch._utils', '_rebuild_tensor'],
  ['torch._utils', '_rebuild_device_tensor_from_numpy'],
  ['torch._tensor', '_rebuild_from_type_v2'],
  ['torch.nn.modules.linear', 'Linear'],
  ['pickle', 'loads'],
  ['_pickle', 'loads'],
  ['marshal', 'loads'],
  ['importlib', 'import_module'],
  ['runpy', '_run_code'],
  ['shutil', 'rmtree'],
  ['socket', 'socket'],
  ['webbrowser', 'open'],
  ['sys', 'exit'],
  ['functools', 'partial'],
  ['operator', 'attrgetter'],
  ['copyreg', '_reconstructor'],
  ['collections', 'defaultdict'],
  ['numpy.core.multiarray', '_reconstruct'],
  ['__main__', 'Model'],
  ['collections', 'OrderedDict '],
  ['Collections', 'OrderedDict'],
  ['torch', '_utils _rebuild_tensor_v2'],
  ['torch ', 'FloatStorage'],
  ['', ''],
];

t.test('every other global is refused, by GLOBAL, STACK_GLOBAL and INST, before any call', async (t) => {
  for (const [mod, name] of FORBIDDEN) {
    const dotted = `'${mod}.${name}'`;
    const re = new RegExp(dotted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const arg = bytesOf([0x58, 4, 0, 0, 0], 'echo', [0x85]);
    // GLOBAL; argument; REDUCE; then an invalid opcode: the global must be refused first.
    expectIteraError(
      t,
      () => unpickle(bytesOf([0x80, 2], `c${mod}\n${name}\n`, arg, [0x52, 0xff])),
      'PICKLE_GLOBAL_FORBIDDEN',
      re,
      `GLOBAL ${dotted}`,
    );
    expectIteraError(
      t,
      () => unpickle(bytesOf([0x80, 4], shortStr(mod), shortStr(name), [0x93], arg, [0x52, 0x2e])),
      'PICKLE_GLOBAL_FORBIDDEN',
      re,
      `STACK_GLOBAL ${dotted}`,
    );
    expectIteraError(
      t,
      () => unpickle(bytesOf([0x28], shortStr('x'), `i${mod}\n${name}\n`, [0x2e])),
      'PICKLE_GLOBAL_FORBIDDEN',
      re,
      `INST ${dotted}`,
    );
    // Never called, only named: still refused.
    expectIteraError(
      t,
      () => unpickle(bytesOf([0x80, 2], `c${mod}\n${name}\n`, [0x2e])),
      'PICKLE_GLOBAL_FORBIDDEN',
      re,
      `bare ${dotted}`,
    );
  }
  // And through the checkpoint importer, inside an otherwise valid archive.
  const z = writeZip([
    {
      name: 'evil/data.pkl',
      data: bytesOf([0x80, 2], 'cposix\nsystem\n', [0x58, 2, 0, 0, 0], 'ls', [0x85, 0x52, 0x2e]),
    },
  ]);
  expectIteraError(t, () => importTorchZip(z), 'PICKLE_GLOBAL_FORBIDDEN', /'posix\.system'/, 'importTorchZip');
});

t.test('allowed names used the wrong way are errors, not calls', async (t) => {
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2], 'ctorch\nFloatStorage\n', [0x29, 0x52, 0x2e])),
    'PICKLE_INVALID',
    /cannot be called/,
    'calling a storage type',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2], shortStr('abc'), [0x29, 0x52, 0x2e])),
    'PICKLE_INVALID',
    /cannot call a str/,
    'calling a string',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2], 'ctorch._utils\n_rebuild_tensor_v2\n', [0x29, 0x52, 0x2e])),
    'PICKLE_INVALID',
    /takes 6 to 7 arguments/,
    'wrong arity',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2, 0x5d, 0x7d, 0x62, 0x2e])),
    'PICKLE_INVALID',
    /BUILD on a list/,
    'BUILD on a list',
  );
  // BUILD on an OrderedDict (state_dict _metadata) is accepted and ignored.
  const od = unpickle(bytesOf([0x80, 2], 'ccollections\nOrderedDict\n', [0x29, 0x52, 0x7d, 0x62, 0x2e]));
  t.ok(od instanceof Map);
  // A persistent id with no loader.
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2, 0x4e, 0x51, 0x2e])),
    'PICKLE_INVALID',
    /no loader/,
    'persistent id without loader',
  );
  // _codecs.encode builds bytes, latin-1 only.
  const b = unpickle(
    bytesOf([0x80, 2], 'c_codecs\nencode\n', shortStr('\u00ff\u0001'), shortStr('latin1'), [0x86, 0x52, 0x2e]),
  );
  t.same([...(b as Uint8Array)], [0xff, 1]);
});

t.test('a storage persistent id and _rebuild_tensor_v2 build a tensor node', async (t) => {
  const pkl = bytesOf(
    [0x80, 2],
    'ctorch._utils\n_rebuild_tensor_v2\n',
    [0x28, 0x28],
    shortStr('storage'),
    'ctorch\nHalfStorage\n',
    shortStr('5'),
    shortStr('cuda:0'),
    [0x4b, 6, 0x74, 0x51],
    [0x4b, 2],
    [0x4b, 2, 0x4b, 2, 0x86],
    [0x4b, 1, 0x4b, 2, 0x86],
    [0x88],
    [0x7d],
    [0x74, 0x52, 0x2e],
  );
  const seen: PickleValue[] = [];
  const v = unpickle(pkl, {
    persistentLoad: (pid) => {
      seen.push(pid);
      // Stand in for the storage, as the importer does.
      return new TorchStorage('HalfStorage', 'f16', '5', 'cuda:0', 6, new Uint8Array(12));
    },
  });
  t.ok(v instanceof TorchTensor);
  const tensor = v as TorchTensor;
  t.equal(tensor.offset, 2);
  t.same(tensor.size, [2, 2]);
  t.same(tensor.stride, [1, 2]);
  t.equal(tensor.requiresGrad, true);
  const pid = seen[0] as PyTuple;
  t.same(
    [pid.items[0], pid.items[2], pid.items[3], pid.items[4]],
    ['storage', '5', 'cuda:0', 6],
    'the persistent id as pickled',
  );
});

// ---------------------------------------------------------------------------------------------
// Malformed input and limits

t.test('unknown opcodes are named with their offset', async (t) => {
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2, 0x4e, 0xff])),
    'PICKLE_UNKNOWN_OPCODE',
    /0xff at byte 3/,
    '0xff',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2, 0x4e, 0x21])),
    'PICKLE_UNKNOWN_OPCODE',
    /0x21 \('!'\) at byte 3/,
    "'!'",
  );
  expectIteraError(t, () => unpickle(bytesOf([0x80, 6, 0x2e])), 'PICKLE_UNSUPPORTED', /protocol 6/, 'protocol 6');
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 2, 0x82, 1, 0x2e])),
    'PICKLE_UNSUPPORTED',
    /extension registry/,
    'EXT1',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x80, 5, 0x97, 0x2e])),
    'PICKLE_UNSUPPORTED',
    /out-of-band/,
    'NEXT_BUFFER',
  );
});

t.test('structural errors', async (t) => {
  expectIteraError(t, () => unpickle(bytesOf([0x2e])), 'PICKLE_INVALID', /underflow/, 'STOP on an empty stack');
  expectIteraError(t, () => unpickle(bytesOf([0x74, 0x2e])), 'PICKLE_INVALID', /no MARK/, 'TUPLE without MARK');
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x4e, 0x28, 0x85, 0x2e])),
    'PICKLE_INVALID',
    /underflow/,
    'TUPLE1 reaching below a MARK',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x68, 3, 0x2e])),
    'PICKLE_INVALID',
    /memo index 3/,
    'BINGET of a missing index',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x4e, 0x4e, 0x61, 0x2e])),
    'PICKLE_INVALID',
    /APPEND to a None/,
    'APPEND to None',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x7d, 0x5d, 0x4e, 0x73, 0x2e])),
    'PICKLE_INVALID',
    /unhashable/,
    'list as a dict key',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x7d, 0x28, 0x4e, 0x75, 0x2e])),
    'PICKLE_INVALID',
    /odd number/,
    'SETITEMS with an odd count',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x58, 0xff, 0xff, 0xff, 0xff, 0x61])),
    'PICKLE_TRUNCATED',
    /4294967295/,
    'string longer than the input',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80])),
    'PICKLE_TRUNCATED',
    /BINUNICODE8/,
    'huge BINUNICODE8',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x95, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x2e])),
    'PICKLE_TRUNCATED',
    /FRAME/,
    'FRAME longer than the input',
  );
  expectIteraError(t, () => unpickle(bytesOf([0x8c, 2, 0xc3, 0x28, 0x2e])), 'PICKLE_INVALID', /UTF-8/, 'invalid UTF-8');
  expectIteraError(t, () => unpickle(bytesOf([0x4e])), 'PICKLE_TRUNCATED', /STOP/, 'no STOP');
  expectIteraError(t, () => unpickle(bytesOf('cos\nsys')), 'PICKLE_TRUNCATED', /end of line/, 'GLOBAL without newline');
  expectIteraError(
    t,
    () => unpickle(bytesOf('c', 'a'.repeat(2000), '\nb\n.')),
    'PICKLE_INVALID',
    /longer than 1024/,
    'GLOBAL name too long',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x8b, 0, 0, 1, 0], new Uint8Array(65536), [0x2e])),
    'PICKLE_LIMIT',
    /too large/,
    'LONG4 of 64 KiB',
  );
  expectIteraError(
    t,
    () => unpickle(bytesOf([0x8b, 0xff, 0xff, 0xff, 0xff, 0x2e])),
    'PICKLE_INVALID',
    /negative LONG4/,
    'negative LONG4 length',
  );
  expectIteraError(t, () => unpickle(bytesOf('Ixyz\n.')), 'PICKLE_INVALID', /malformed integer/, 'bad INT');
  expectIteraError(t, () => unpickle(bytesOf('F1.2.3\n.')), 'PICKLE_INVALID', /malformed float/, 'bad FLOAT');
  expectIteraError(t, () => unpickle(bytesOf('Snot quoted\n.')), 'PICKLE_INVALID', /not a quoted/, 'bad STRING');
});

t.test('protocol 0 text opcodes', async (t) => {
  t.equal(unpickle(bytesOf('I01\n.')), true);
  t.equal(unpickle(bytesOf('I00\n.')), false);
  t.equal(unpickle(bytesOf('L123456789012345678901234567890L\n.')), 123456789012345678901234567890n);
  t.equal(unpickle(bytesOf('F-2.5e-3\n.')), -0.0025);
  t.equal(unpickle(bytesOf("S'a\\'b\\x41\\n'\n.")), "a'bA\n");
  t.equal(unpickle(bytesOf('Vx\\u00e9\\U0001f600\n.')), 'x\u00e9\u{1f600}');
  t.same(tag(unpickle(bytesOf('(I1\nI2\nl.'))), [1, 2]);
  t.same(tag(unpickle(bytesOf('(S"k"\nI3\nd.'))), { dict: [['k', 3]] });
  t.same(tag(unpickle(bytesOf('I7\np0\n0g0\n.'))), 7, 'PUT, POP, GET');
  t.same(tag(unpickle(bytesOf([0x4b, 1, 0x28, 0x4b, 2, 0x31, 0x2e]))), 1, 'POP_MARK');
  t.same(tag(unpickle(bytesOf([0x4b, 1, 0x28, 0x30, 0x2e]))), 1, 'POP of a MARK');
  t.same(tag(unpickle(bytesOf([0x8a, 0, 0x2e]))), 0, 'LONG1 of no bytes');
  t.same(tag(unpickle(bytesOf([0x8a, 2, 0x00, 0x80, 0x2e]))), -32768, 'LONG1 negative');
  t.same(
    tag(unpickle(bytesOf([0x8a, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x2e]))),
    { int: (2n ** 64n + 1n).toString() },
    'LONG1 past 64 bits',
  );
});

t.test('limits: ops, stack, marks, memo', async (t) => {
  const nones = bytesOf(new Uint8Array(100).fill(0x4e), [0x2e]);
  expectIteraError(t, () => unpickle(nones, { maxOps: 50 }), 'PICKLE_LIMIT', /more than 50 opcodes/, 'maxOps');
  expectIteraError(t, () => unpickle(nones, { maxStack: 10 }), 'PICKLE_LIMIT', /stack exceeds 10/, 'maxStack');
  expectIteraError(
    t,
    () => unpickle(bytesOf(new Uint8Array(20000).fill(0x28), [0x2e])),
    'PICKLE_LIMIT',
    /MARK nesting/,
    'maxMarks',
  );
  const puts = bytesOf([0x4e], ...Array.from({ length: 20 }, (_, i) => [0x71, i]), [0x2e]);
  expectIteraError(t, () => unpickle(puts, { maxMemo: 10 }), 'PICKLE_LIMIT', /memo exceeds 10/, 'maxMemo');
  // A self-containing list is built (by reference), not expanded.
  const cyc = unpickle(bytesOf([0x5d, 0x32, 0x61, 0x2e])) as PickleValue[];
  t.equal(cyc[0], cyc);
  // 200k nested tuples: no recursion in the machine.
  const deep = unpickle(bytesOf([0x4e], new Uint8Array(200_000).fill(0x85), [0x2e]));
  t.ok(deep instanceof PyTuple);
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: every prefix, and random mutations, end in an IteraError or a value.

function onlyIteraErrors(t: { fail(m: string): unknown }, fn: () => unknown, what: string): 'ok' | 'error' | 'bad' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof IteraError) return 'error';
    t.fail(`${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return 'bad';
  }
}

t.test('truncated pickles: prefixes are IteraErrors', async (t) => {
  let bad = 0;
  for (let p = 0; p <= 5; p++) {
    const full = fixture(`plain_p${p}.pkl`);
    // Every prefix of the first and last 600 bytes, every 5th in between (parsing is linear, so
    // all prefixes of all six files would cost a few seconds).
    for (let n = 0; n < full.length; n += n < 600 || n > full.length - 600 ? 1 : 5) {
      const r = onlyIteraErrors(t, () => unpickle(full.subarray(0, n)), `p${p} prefix ${n}`);
      if (r !== 'error') bad++;
    }
  }
  t.equal(bad, 0, 'no prefix parses, none throws anything but IteraError');
});

t.test('mutated pickles: IteraError or a value, never anything else', async (t) => {
  const rnd = mulberry32(0x1234);
  let outcomes = { ok: 0, error: 0, bad: 0 };
  for (let p = 0; p <= 5; p++) {
    const full = fixture(`plain_p${p}.pkl`);
    for (let i = 0; i < 800; i++) {
      const m = full.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rnd() * m.length);
        m[at] = rnd() < 0.5 ? m[at]! ^ (1 << Math.floor(rnd() * 8)) : Math.floor(rnd() * 256);
      }
      outcomes[onlyIteraErrors(t, () => unpickle(m, { persistentLoad: () => null }), `p${p} mutation ${i}`)]++;
    }
  }
  t.equal(outcomes.bad, 0, `outcomes: ${JSON.stringify(outcomes)}`);
});
