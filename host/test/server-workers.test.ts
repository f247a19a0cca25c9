// itera serve with worker threads (--workers 2) in-process on 127.0.0.1 port 0: a fixed seed gives
// model.generate()'s tokens also under concurrent load spread over both workers; a session saved on
// one worker and restored on the other continues exactly as the kept one; stop strings end a kept
// session where the client saw it end (as the one-thread server does); a hang-up frees its slot in
// its worker; /metrics adds up the workers; draining finishes the streams in flight; a worker thread
// that crashes ends its requests with an error and loses its sessions, and a new thread takes its
// place (or, once threads stop too often, /health says the server is unhealthy).
import t, { type Test as Tap } from 'tap';
import { join } from 'node:path';
import { loadModel } from '../node/index.js';
import type { ToWorker, WorkerPool } from '../server/pool.js';
import { startServer, type IteraServer, type ServerOptions } from '../server/server.js';
import { repoRoot } from './shared.js';
import { events, LONG_STREAM_TOKENS, longStream, post, postState, until } from './server-helpers.js';

const MODEL = join(repoRoot(), 'models', 'student-q8_0.gguf');
const model = await loadModel(MODEL);
t.teardown(() => model.dispose());
const PROMPT = 'The jury said';

async function withServer(opts: Partial<ServerOptions>, fn: (s: IteraServer, pool: WorkerPool) => Promise<void>) {
  const s = await startServer({
    model,
    port: 0,
    log: () => {},
    workers: { count: 2, model: MODEL },
    parallel: 3,
    ...opts,
  });
  try {
    await fn(s, s.engine as WorkerPool);
  } finally {
    await s.close();
  }
}

t.test('a fixed seed gives model.generate()s tokens on every worker, under concurrent load', async (t) => {
  await withServer({}, async (s, pool) => {
    t.equal(pool.slots, 6, '2 workers x 3 slots');
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const o = { temperature: 0.8, topK: 40, topP: 0.95, maxTokens: 24 };
    const replies = seeds.map((seed) =>
      post(s.url + '/v1/completions', {
        prompt: PROMPT,
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        max_tokens: 24,
        seed,
        return_token_ids: true,
        stream: seed % 2 === 0,
      }),
    );
    t.ok(await until(() => pool.loads().every((l) => l.busy > 0)), 'both workers generate');
    const got = await Promise.all(replies);
    let total = 0;
    got.forEach((r, i) => {
      t.equal(r.status, 200);
      const choice =
        seeds[i] % 2 === 0 ? JSON.parse(events(r.json as string).slice(-2)[0]).choices[0] : r.json.choices[0];
      t.same(choice.token_ids, model.generate(PROMPT, { ...o, seed: seeds[i] }).ids, `seed ${seeds[i]}`);
      total += choice.token_ids.length;
    });
    const m = await (await fetch(s.url + '/metrics')).text();
    t.match(m, new RegExp(`^itera_generated_tokens_total ${total}$`, 'm'), '/metrics adds up both workers');
    t.match(m, /^itera_slots 6$/m);
    t.match(m, /^itera_time_to_first_token_seconds_count 8$/m);
    t.match(m, /^itera_requests_total\{route="\/v1\/completions",status="200"\} 8$/m);
  });
});

/** The same requests on a session in the one-thread server and with workers give the same. */
async function sessionStory(url: string): Promise<unknown[]> {
  const u = url + '/v1/sessions';
  const steps: unknown[] = [];
  const k = await post(u, { prompt: PROMPT });
  const id = k.json.id as string;
  for (const body of [
    { max_tokens: 12, temperature: 0, stop: [' the'] },
    { prompt: ' and', max_tokens: 10, seed: 3, temperature: 0.9 },
    { max_tokens: 8, temperature: 0, stop: ['e'] },
  ]) {
    const r = await post(`${u}/${id}/completions`, { ...body, return_token_ids: true });
    const s = await (await fetch(`${u}/${id}`)).json();
    steps.push([r.json.choices[0].text, r.json.choices[0].finish_reason, s.position]);
  }
  return steps;
}

t.test('kept sessions: stop strings end them where the client saw, as in one thread', async (t) => {
  let one: unknown[] = [];
  await withServer({ workers: undefined }, async (s) => void (one = await sessionStory(s.url)));
  await withServer({}, async (s) => {
    t.same(await sessionStory(s.url), one, 'the same texts and positions');
  });
});

t.test('a session saved on one worker and restored on the other continues exactly', async (t) => {
  await withServer({}, async (s, pool) => {
    const u = s.url + '/v1/sessions';
    const id = (await post(u, { prompt: PROMPT })).json.id as string;
    const first = await post(`${u}/${id}/completions`, { max_tokens: 10, temperature: 0, return_token_ids: true });
    const state = new Uint8Array(await (await fetch(`${u}/${id}/state`)).arrayBuffer());
    const r = await postState(u, state);
    t.equal(r.status, 201);
    const copy = ((await r.json()) as { id: string; position: number }).id;
    t.same(
      pool.loads().map((l) => l.sessions),
      [1, 1],
      'the restored copy lives on the other worker',
    );
    const cont = { max_tokens: 10, temperature: 0.8, seed: 9, return_token_ids: true };
    const [a, b] = await Promise.all([post(`${u}/${id}/completions`, cont), post(`${u}/${copy}/completions`, cont)]);
    t.same(b.json.choices[0].token_ids, a.json.choices[0].token_ids, 'the copy gives the tokens of the kept one');
    const greedy = model.generate(PROMPT, { temperature: 0, maxTokens: 10 }).ids;
    t.same(first.json.choices[0].token_ids, greedy);
    state[state.length >> 1] ^= 1;
    const bad = await postState(u, state);
    t.equal(bad.status, 400, 'a changed byte is refused');
    t.match(((await bad.json()) as { error: { message: string } }).error.message, /cannot restore this state/);
    t.equal((await fetch(`${u}/${copy}`, { method: 'DELETE' })).status, 200);
    t.same(
      pool.loads().map((l) => l.sessions),
      [1, 0],
    );
  });
});

/** Two long streams on a server of two workers with one slot each: one on each worker. */
async function streamOnEach(t: Tap, s: IteraServer, pool: WorkerPool) {
  const a = await longStream(s.url);
  const b = await longStream(s.url);
  t.same(
    pool.loads().map((l) => l.busy),
    [1, 1],
    'one stream on each worker',
  );
  return [a, b];
}

t.test('a client that hangs up frees its slot in its worker', async (t) => {
  await withServer({ parallel: 1, maxTokens: LONG_STREAM_TOKENS }, async (s, pool) => {
    const [a, b] = await streamOnEach(t, s, pool);
    a.abort();
    t.ok(await until(() => s.engine.busy === 1), 'its slot is free');
    const c = await longStream(s.url);
    t.same(
      pool.loads().map((l) => l.busy),
      [1, 1],
      'a new stream takes the freed slot',
    );
    b.abort();
    c.abort();
    t.ok(await until(() => s.engine.busy === 0), 'all freed');
  });
});

t.test('draining with workers: in-flight streams finish, /health 503, then the workers stop', async (t) => {
  // 4,000 tokens each, so that they are still going when the drain starts (120 took a few ms here,
  // and a server with nothing in flight closes at once), yet end well within the drain's 20 s
  await withServer({ maxTokens: 4000 }, async (s) => {
    const streams = [1, 2, 3, 4].map((seed) =>
      post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 4000, seed, stream: true, ignore_eos: true }),
    );
    t.ok(await until(() => s.engine.busy === 4), 'four streams generating');
    const drained = s.drain(20_000);
    t.equal((await fetch(s.url + '/health')).status, 503, '/health 503 while draining');
    await drained;
    for (const r of await Promise.all(streams)) {
      const ev = events(r.json as string);
      t.equal(ev[ev.length - 1], '[DONE]', 'finished');
    }
    t.ok(s.engine.idle);
  });
});

/** Crashes worker i from inside: a job message without its stop list throws in the thread's
 *  message handler, an uncaught exception that ends the thread. */
function crash(pool: WorkerPool, i: number): void {
  pool.workerThread(i).postMessage({ t: 'job', id: -1 } as unknown as ToWorker);
}

t.test(
  'a worker thread that crashes: its requests get an error, its sessions are gone, a new thread serves',
  async (t) => {
    const lines: string[] = [];
    await withServer(
      { parallel: 1, maxQueue: 0, maxTokens: LONG_STREAM_TOKENS, log: (l) => lines.push(l) },
      async (s, pool) => {
        const ids: string[] = [];
        for (let i = 0; i < 2; i++)
          ids.push((await post(s.url + '/v1/sessions', { prompt: PROMPT })).json.id as string);
        t.same(
          pool.loads().map((l) => l.sessions),
          [1, 1],
          'a kept session on each worker',
        );
        const [a, b] = await streamOnEach(t, s, pool);
        const old = pool.workerThread(0);
        crash(pool, 0);
        const ended = await Promise.race([a.rest, b.rest]);
        const last = events(ended).slice(-1)[0];
        t.match(
          JSON.parse(last),
          { error: { message: /worker thread serving this request stopped/ } },
          'an error event',
        );
        t.ok(await until(() => s.engine.busy === 1, 10_000), 'its slot is free; the other stream goes on');
        t.equal((await fetch(s.url + '/health')).status, 200, '/health: still ok');
        const statuses = await Promise.all(ids.map(async (id) => (await fetch(`${s.url}/v1/sessions/${id}`)).status));
        t.same(statuses.slice().sort(), [200, 404], "the crashed worker's session is gone (404), the other's kept");
        // the replacement takes new requests: a stream on each worker again
        t.ok(await until(() => pool.workerThread(0) !== old, 10_000), 'a new thread in its place');
        const c = await longStream(s.url);
        t.same(
          pool.loads().map((l) => l.busy),
          [1, 1],
          'the new thread generates',
        );
        const r = await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 8, seed: 3 });
        t.equal(r.status, 429, 'every slot busy: the queue (0 here) is full');
        a.abort();
        b.abort();
        c.abort();
        t.ok(await until(() => s.engine.busy === 0), 'all freed');
        const again = await post(s.url + '/v1/completions', {
          prompt: PROMPT,
          max_tokens: 8,
          temperature: 0.8,
          seed: 3,
          return_token_ids: true,
        });
        t.same(
          again.json.choices[0].token_ids,
          model.generate(PROMPT, { maxTokens: 8, temperature: 0.8, seed: 3 }).ids,
          "model.generate()'s tokens, as before the crash",
        );
        t.ok(
          lines.some((l) => /worker thread 0 stopped/.test(l)) && lines.some((l) => /worker thread 0 replaced/.test(l)),
          'logged',
        );
      },
    );
  },
);

t.test('worker threads that keep stopping are not replaced for ever: /health 503, requests 500', async (t) => {
  await withServer({ workers: { count: 2, model: MODEL, restartsPerMinute: 0 }, log: () => {} }, async (s, pool) => {
    crash(pool, 0); // an uncaught exception in the thread
    void pool.workerThread(1).terminate(); // a thread that just exits, as process.exit there does
    t.ok(await until(() => !s.engine.healthy, 10_000), 'no thread left');
    const h = await fetch(s.url + '/health');
    t.equal(h.status, 503, '/health 503');
    t.match(await h.json(), { status: 'unhealthy' });
    const r = await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 8 });
    t.equal(r.status, 500, 'a request gets an error, not a hang');
    t.match(r.json, { error: { message: /no worker thread is running/ } });
  });
});
