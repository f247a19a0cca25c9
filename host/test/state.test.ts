// A session's saved state: restored into a new session (of this instance or another one of the
// same model file) it continues bit for bit, greedy and sampled, before and past T; anything that
// is not such a state (another model, build or version, a changed byte, a wrong length) is refused
// with an IteraError and leaves nothing behind. Tiny models, both builds; no ../shared needed.
import t from 'tap';
import { IteraModel } from '../runtime/api.js';
import { WasmModel, type WasmSession } from '../runtime/runtime.js';
import { IteraError, type IteraConfig } from '../runtime/types.js';
import { crc32, fnv1a64, STATE_HEADER_BYTES } from '../runtime/state.js';
import { SAMPLER_VERSION, ST_POS, ST_RNG, ST_SAMPLER, ST_TOPP } from '../runtime/abi.js';
import { BUILDS, exportsOf, randomWeights, TINY, tinyModelFile, wasmBytes, weightSource } from './helpers.js';

const builds = Object.keys(BUILDS) as Array<keyof typeof BUILDS>;
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const enc = new TextEncoder();

/** Identical bits (NaN payloads included), not merely equal values. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length),
    y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

/** n steps of generate_next, with the logits after each. */
function run(s: WasmSession, n: number): { ids: number[]; logits: Float32Array[] } {
  const ids: number[] = [],
    logits: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(s.next());
    logits.push(s.logits());
  }
  return { ids, logits };
}

const prompt = (n: number, V: number, seed = 3): number[] =>
  Array.from({ length: n }, (_, i) => 4 + ((i * 7 + seed * 11) % (V - 4)));

t.test('FNV-1a 64 and CRC-32 give their published values', async (t) => {
  // FNV-1a 64 (fnvhash test vectors), little-endian bytes of the 64-bit value
  const le = (h: string): string => h.match(/../g)!.reverse().join('');
  t.equal(hex(fnv1a64(new Uint8Array(0))), le('cbf29ce484222325'));
  t.equal(hex(fnv1a64(enc.encode('a'))), le('af63dc4c8601ec8c'));
  t.equal(hex(fnv1a64(enc.encode('foobar'))), le('85944171f73967e8'));
  t.equal(hex(fnv1a64(enc.encode('bar'), fnv1a64(enc.encode('foo')))), le('85944171f73967e8'), 'incremental');
  t.equal(crc32(enc.encode('123456789')), 0xcbf43926);
  t.equal(crc32(new Uint8Array(0)), 0);
});

const QC: IteraConfig = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };

for (const build of builds) {
  for (const [what, config, type] of [
    ['F32', TINY, 'F32'],
    ['Q8_0', QC, 'Q8_0'],
  ] as const) {
    t.test(
      `${build} ${what}: saved, restored and continued equals the uninterrupted session bit for bit`,
      async (t) => {
        const file = tinyModelFile(config, 4, type);
        const m1 = await IteraModel.fromBytes(file, wasmBytes(build));
        const m2 = await IteraModel.fromBytes(file, wasmBytes(build)); // another instance, same file
        t.equal(m1.modelHash, m2.modelHash);
        t.equal(m1.modelHash, hex(fnv1a64(file)), 'the hash is the model file bytes');
        const T = config.maxSeqLength;
        const samplers = [
          ['greedy', { temperature: 0 }],
          ['sampled', { temperature: 0.9, topK: 20, topP: 0.95, seed: 123456789012 }],
          // the older sampler: the saved state carries the version, so the copy keeps drawing with it
          ['sampled with sampler 1', { temperature: 0.9, topK: 20, topP: 0.95, seed: 77, sampler: 1 }],
          ['sampled with sampler 2, top-p alone', { temperature: 0.9, topK: 0, topP: 0.95, seed: 78, sampler: 2 }],
          ['sampled, top-p alone', { temperature: 1.5, topK: 0, topP: 0.99, seed: 79 }],
        ] as const;
        // [prompt length, tokens before the save, tokens after]: within T, across T, past T
        const plans = [
          ['before T', 5, 3, 6],
          ['across T', 6, 4, 12],
          ['past T', 10, 12, 8],
        ] as const;
        for (const [sName, sampler] of samplers) {
          for (const window of ['exact', 'slide'] as const) {
            for (const [pName, np, before, after] of plans) {
              const label = `${sName}, ${window} window, ${pName}`;
              const a = m1.session();
              a.setWindow(window);
              a.setSampler(sampler);
              a.prefill(prompt(np, config.vocabSize));
              run(a, before);
              t.equal(a.position, Math.min(T, np + before), `${label}: position before the save`);
              const saved = a.save();
              const want = run(a, after);
              const b = m1.restore(saved),
                c = m2.restore(saved);
              t.equal(b.position, Math.min(T, np + before));
              for (const [who, s] of [
                ['same instance', b],
                ['second instance', c],
              ] as const) {
                const got = run(s, after);
                t.same(got.ids, want.ids, `${label}, ${who}: the same tokens`);
                t.ok(
                  got.logits.every((l, i) => sameBits(l, want.logits[i])),
                  `${label}, ${who}: the same logits, bit for bit`,
                );
                t.equal(hex(s.save()), hex(a.save()), `${label}, ${who}: the same state afterwards, byte for byte`);
              }
              for (const s of [a, b, c]) s.free();
            }
          }
        }
        // restoring into an existing session replaces its state (a session that had run elsewhere)
        const a = m1.session();
        a.setSampler({ temperature: 1, seed: 5 });
        a.prefill(prompt(7, config.vocabSize));
        const saved = a.save();
        const want = run(a, 5);
        const d = m2.session();
        d.prefill(prompt(12, config.vocabSize, 9));
        d.restore(saved);
        t.same(run(d, 5).ids, want.ids, 'restore() into a used session continues the saved one');
        // a state saved before any token continues too (position 0: nothing to continue yet)
        const e = m1.restore(m1.session().save());
        t.equal(e.position, 0);
        t.throws(() => e.next(), { code: 'EMPTY_PROMPT' });
        for (const s of [a, d, e]) s.free();
        m1.dispose();
        m2.dispose();
      },
    );
  }
}

t.test('the same bytes for the same state; generate() after a restore equals generate() throughout', async (t) => {
  const file = tinyModelFile();
  const m = await IteraModel.fromBytes(file, wasmBytes('simd'));
  const a = m.session(),
    b = m.session();
  for (const s of [a, b]) {
    s.setSampler({ temperature: 0.8, seed: 7 });
    s.prefill(prompt(9, TINY.vocabSize));
  }
  t.equal(hex(a.save()), hex(b.save()), 'two sessions in the same state save the same bytes');
  const saved = a.save();
  const whole = a.generate(30, -1);
  const r = m.restore(saved);
  t.same(r.generate(30, -1), whole, 'one-call generation continues identically');
  for (const s of [a, b, r]) s.free();
  m.dispose();
});

/** Restores bytes expecting an IteraError with a STATE_* code; returns the code. */
function refusal(m: IteraModel | WasmModel, bytes: Uint8Array): string {
  try {
    m.restore(bytes).free();
  } catch (e) {
    if (e instanceof IteraError && e.code.startsWith('STATE_')) return e.code;
    throw e;
  }
  return 'ACCEPTED';
}

/** The bytes with the header and the module's state as given, and a checksum that holds. */
function resealed(bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const out = bytes.slice();
  const v = new DataView(out.buffer);
  edit(v);
  v.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

t.test('every byte changed, truncated or extended: refused with an IteraError, nothing left behind', async (t) => {
  for (const build of builds) {
    const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes(build));
    const a = m.session();
    a.setSampler({ temperature: 0.7, topK: 5, seed: 99 });
    a.prefill(prompt(20, TINY.vocabSize)); // past T: the window's tokens are all in use
    const saved = a.save();
    m.restore(saved).free(); // the first restore may grow the memory; refusals must not
    const memory = m.memoryBytes();
    const codes = new Map<string, number>();
    const count = (c: string): void => {
      codes.set(c, (codes.get(c) ?? 0) + 1);
    };
    let accepted = 0;
    for (let i = 0; i < saved.length; i++) {
      for (const mask of [0xff, 0x01, 0x80]) {
        const bad = saved.slice();
        bad[i] ^= mask;
        const c = refusal(m, bad);
        if (c === 'ACCEPTED') accepted++;
        count(c);
      }
    }
    t.equal(accepted, 0, `${build}: none of the ${saved.length * 3} changed states was accepted`);
    t.equal(codes.get('STATE_MAGIC'), 4 * 3, 'a changed magic byte: not a state');
    t.equal(codes.get('STATE_VERSION'), 4 * 3, 'a changed format version');
    t.equal(codes.get('STATE_LENGTH'), 4 * 3, 'a changed length');
    t.equal(codes.get('STATE_CHECKSUM'), (saved.length - 12) * 3, 'every other byte: the checksum');
    for (let n = 0; n < saved.length; n++) {
      const c = refusal(m, saved.subarray(0, n));
      if (c !== 'STATE_LENGTH' && !(n < 4 && c === 'STATE_MAGIC')) t.fail(`truncated to ${n} bytes: ${c}`);
    }
    t.pass(`${build}: every truncation refused`);
    for (const extra of [1, 3, 4, 100]) {
      const longer = new Uint8Array(saved.length + extra);
      longer.set(saved);
      t.equal(refusal(m, longer), 'STATE_LENGTH', `extended by ${extra} bytes`);
    }
    t.equal(m.memoryBytes(), memory, 'the refusals left nothing allocated behind (memory did not grow)');
    // the original still restores and works
    const r = m.restore(saved);
    t.same(run(r, 5).ids, run(a, 5).ids, 'the unchanged state still restores');
    r.free();
    a.free();
    m.dispose();
  }
});

t.test('a state of another model, build, version, or with a field out of range: refused clearly', async (t) => {
  const file = tinyModelFile();
  const m = await IteraModel.fromBytes(file, wasmBytes('simd'));
  const a = m.session();
  a.setSampler({ temperature: 0.5, seed: 3 });
  a.prefill(prompt(6, TINY.vocabSize));
  const saved = a.save();
  const other = await IteraModel.fromBytes(tinyModelFile(TINY, 2), wasmBytes('simd'));
  t.throws(() => other.restore(saved), { code: 'STATE_MODEL', message: /another model file/ });
  const bigger = await IteraModel.fromBytes(tinyModelFile({ ...TINY, maxSeqLength: 24 }), wasmBytes('simd'));
  t.throws(() => bigger.restore(saved), { code: 'STATE_MODEL' }, 'another configuration (another state size)');
  const scalar = await IteraModel.fromBytes(file, wasmBytes('scalar'));
  t.throws(() => scalar.restore(saved), { code: 'STATE_BUILD', message: /SIMD build.*scalar build/ });
  t.throws(() => m.restore(scalar.session().save()), { code: 'STATE_BUILD' });
  t.throws(() => m.restore(resealed(saved, (v) => v.setUint32(12, 999, true))), { code: 'STATE_ABI' });
  t.throws(() => m.restore(resealed(saved, (v) => v.setUint32(16, SAMPLER_VERSION + 1, true))), {
    code: 'STATE_SAMPLER',
    message: new RegExp(`sampler version ${SAMPLER_VERSION + 1}`),
  });
  t.throws(() => m.restore(resealed(saved, (v) => v.setUint32(16, 0, true))), { code: 'STATE_SAMPLER' });
  // a module whose newest sampler was older (version 2, before version 3 came): its states restore
  t.doesNotThrow(
    () => m.restore(resealed(saved, (v) => v.setUint32(16, SAMPLER_VERSION - 1, true))),
    'an older module',
  );
  t.throws(() => m.restore(resealed(saved, (v) => v.setUint32(4, 2, true))), { code: 'STATE_VERSION' });
  t.throws(() => m.restore(enc.encode('not a state at all, just some text')), { code: 'STATE_MAGIC' });
  t.throws(() => m.restore(new Uint8Array(0)), { code: 'STATE_MAGIC' });
  // a checksum that holds over fields out of range (a state made by hand): the module refuses it
  const H = STATE_HEADER_BYTES;
  const T = TINY.maxSeqLength;
  for (const [field, edit] of [
    ['position past T', (v: DataView) => v.setUint32(H + ST_POS, T + 1, true)],
    ['top-p 0', (v: DataView) => v.setFloat32(H + ST_TOPP, 0, true)],
    ['top-p NaN', (v: DataView) => v.setFloat32(H + ST_TOPP, NaN, true)],
    ['random state 0', (v: DataView) => v.setBigUint64(H + ST_RNG, 0n, true)],
    ['sampler version 0', (v: DataView) => v.setInt32(H + ST_SAMPLER, 0, true)],
    ['sampler version past the newest', (v: DataView) => v.setInt32(H + ST_SAMPLER, SAMPLER_VERSION + 1, true)],
    ['window mode 2', (v: DataView) => v.setUint32(H + 4, 2, true)],
    ['conv ring past K-1', (v: DataView) => v.setUint32(H + 8, TINY.ssmConvKernel - 1, true)],
  ] as const) {
    t.throws(() => m.restore(resealed(saved, edit)), { code: 'STATE_INVALID' }, field);
  }
  // a token out of range in the window, and one past the position that is not 0
  const tokens = saved.length - 4 - 4 * (TINY.vocabSize + T);
  t.throws(() => m.restore(resealed(saved, (v) => v.setInt32(tokens, TINY.vocabSize, true))), {
    code: 'STATE_INVALID',
    message: new RegExp(`byte ${tokens - H} of the session state`),
  });
  t.throws(() => m.restore(resealed(saved, (v) => v.setInt32(tokens + 4 * (T - 1), 5, true))), {
    code: 'STATE_INVALID',
  });
  // restore() into a session that fails leaves that session as it was
  const b = m.session();
  b.prefill(prompt(3, TINY.vocabSize));
  const before = b.save();
  t.throws(() => b.restore(resealed(saved, (v) => v.setUint32(H + ST_POS, T + 1, true))), { code: 'STATE_INVALID' });
  t.equal(hex(b.save()), hex(before), 'a refused restore changed nothing');
  b.free();
  a.free();
  t.throws(() => a.save(), { code: 'FREED' });
  for (const x of [m, other, bigger, scalar]) x.dispose();
});

t.test('WasmModel without a file: identified by its weights; restore across instances', async (t) => {
  for (const build of builds) {
    const w = randomWeights(TINY, 1);
    const m1 = new WasmModel(await exportsOf(build), TINY, weightSource(TINY, w));
    const m2 = new WasmModel(await exportsOf(build), TINY, weightSource(TINY, w));
    const m3 = new WasmModel(await exportsOf(build), TINY, weightSource(TINY, randomWeights(TINY, 2)));
    t.equal(hex(m1.modelHash), hex(m2.modelHash));
    t.not(hex(m1.modelHash), hex(m3.modelHash));
    const a = m1.newSession();
    a.setSampler({ temperature: 1, seed: 11 });
    a.prefill(prompt(8, TINY.vocabSize));
    const saved = a.save();
    const want = run(a, 20);
    const b = m2.restore(saved);
    const got = run(b, 20);
    t.same(got.ids, want.ids, `${build}: same tokens in another instance`);
    t.ok(
      got.logits.every((l, i) => sameBits(l, want.logits[i])),
      `${build}: same logits`,
    );
    t.throws(() => m3.restore(saved), { code: 'STATE_MODEL' });
    for (const x of [a, b]) x.free();
    for (const x of [m1, m2, m3]) x.free();
  }
});
