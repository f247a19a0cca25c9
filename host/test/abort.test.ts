// An AbortSignal stops a generation of the runtime API within one step, ends it with an IteraError
// of code 'ABORTED', and frees its session at once. Tiny model; no ../shared needed.
import t from 'tap';
import { IteraModel } from '../runtime/api.js';
import type { WasmSession } from '../runtime/runtime.js';
import { IteraError } from '../runtime/types.js';
import { tinyModelFile, wasmBytes } from './helpers.js';

/** The model, with every session it opens recorded (to see whether each was freed). */
async function watched(): Promise<{ m: IteraModel; opened: WasmSession[] }> {
  const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  const opened: WasmSession[] = [];
  const newSession = m.wasmModel.newSession.bind(m.wasmModel);
  m.wasmModel.newSession = () => {
    const s = newSession();
    opened.push(s);
    return s;
  };
  return { m, opened };
}

const o = { temperature: 0.9, seed: 4, maxTokens: 40, stopAtEos: false };
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a signal aborted while the reader waits: the next step ends with ABORTED', async (t) => {
  const { m, opened } = await watched();
  const whole = m.generate('hello', o).ids;
  const ctl = new AbortController();
  const ids: number[] = [];
  let error: unknown = null;
  try {
    for await (const tok of m.stream('hello', { ...o, signal: ctl.signal })) {
      ids.push(tok.id);
      if (ids.length === 5) setTimeout(() => ctl.abort(new Error('client went away')), 0);
      await tick(5); // the reader's own work, during which the timer aborts
    }
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof IteraError, 'an IteraError');
  const e = error as IteraError;
  t.equal(e.code, 'ABORTED');
  t.equal(e.name, 'AbortError', 'named like the platform AbortError');
  t.match(e.message, /generation aborted: client went away/);
  t.equal((e as { cause?: Error }).cause?.message, 'client went away', 'the reason is its cause');
  t.same(ids, whole.slice(0, 5), 'no token after the abort; those before it are the unaborted ones');
  t.ok(
    opened.every((s) => s.isFreed),
    'every session freed',
  );
  m.dispose();
});

t.test('the session is freed at the abort, even if the reader never comes back', async (t) => {
  const { m, opened } = await watched();
  const ctl = new AbortController();
  const it = m.stream('hello', { ...o, signal: ctl.signal });
  t.notOk((await it.next()).done);
  t.notOk((await it.next()).done);
  t.equal(opened.length, 1);
  t.notOk(opened[0].isFreed, 'open while streaming');
  ctl.abort();
  t.ok(opened[0].isFreed, 'freed by the abort itself, with the stream suspended');
  await t.rejects(it.next(), { code: 'ABORTED', name: 'AbortError' }, 'the stream then ends with ABORTED');
  t.same(await it.next(), { done: true, value: undefined }, 'and stays ended');
  m.dispose();
});

t.test('already aborted: nothing runs; generate() checks its signal; bad signals refused', async (t) => {
  const { m, opened } = await watched();
  const gone = AbortSignal.abort('too late');
  await t.rejects(m.stream('hello', { ...o, signal: gone }).next(), { code: 'ABORTED', message: /too late/ });
  t.throws(() => m.generate('hello', { ...o, signal: gone }), { code: 'ABORTED' });
  t.equal(opened.length, 0, 'no session was opened for an aborted signal');
  // a live signal changes nothing
  const live = new AbortController().signal;
  t.same(m.generate('hello', { ...o, signal: live }).ids, m.generate('hello', o).ids);
  const streamed: number[] = [];
  for await (const tok of m.stream('hello', { ...o, signal: live })) streamed.push(tok.id);
  t.same(streamed, m.generate('hello', o).ids, 'stream() with a live signal gives the same tokens');
  t.ok(
    opened.every((s) => s.isFreed),
    'every session freed',
  );
  t.throws(() => m.generate('hello', { ...o, signal: {} as AbortSignal }), {
    code: 'BAD_PARAM',
    message: /signal must be an AbortSignal/,
  });
  m.dispose();
});

t.test('a timeout signal cuts a long stream within one step', async (t) => {
  const { m, opened } = await watched();
  const signal = AbortSignal.timeout(30);
  let n = 0;
  let seenAbort = -1;
  await t.rejects(
    (async () => {
      for await (const _ of m.stream('hello', { ...o, maxTokens: 100000, signal })) {
        void _;
        if (signal.aborted && seenAbort < 0) seenAbort = n;
        n++;
        await tick(2);
      }
    })(),
    { code: 'ABORTED' },
  );
  t.ok(n > 0 && n < 100000, `stopped after ${n} tokens`);
  t.ok(seenAbort < 0 || n - seenAbort <= 1, 'at most the step in flight ran after the abort');
  t.ok(opened[0].isFreed);
  m.dispose();
});
