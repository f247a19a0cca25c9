// itera serve's HTTP API in-process, on 127.0.0.1 port 0, with the shipped default model: the
// official openai client, the same tokens as model.generate() for a seed, stop strings across
// tokens, every bad input's status, cancellation, deadlines, API keys, the Host check, draining.
import t, { type Test as Tap } from 'tap';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadModel } from '../node/index.js';
import { tokenNll } from '../runtime/api.js';
import { startServer, type IteraServer, type ServerOptions } from '../server/server.js';
import { repoRoot } from './shared.js';
import { events, LONG_STREAM_TOKENS, longStream, post, postState, until, type Reply } from './server-helpers.js';

// the earlier student (learned positions): its greedy text and its slow steps past T are what the
// stop-string and timeout cases below were written against (fixtures/models/README.md)
const model = await loadModel(join(repoRoot(), 'host/test/fixtures/models/learned-pos-student-q8_0.gguf'));
t.teardown(() => model.dispose());

const PROMPT = 'The jury said';

async function withServer(
  opts: Partial<ServerOptions>,
  fn: (s: IteraServer, logs: string[]) => Promise<void>,
): Promise<void> {
  const logs: string[] = [];
  const s = await startServer({ model, port: 0, modelId: 'student-q8_0', log: (l) => logs.push(l), ...opts });
  try {
    await fn(s, logs);
  } finally {
    await s.close();
  }
}

/** A raw request (any Host header), resolving with status and body. */
function raw(
  url: string,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    const req = request(
      { host: u.hostname, port: u.port, method: o.method ?? 'GET', path: o.path, headers: o.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', fail);
    req.end(o.body);
  });
}

/** The promise rejects with an instance of cls (the openai client's error classes). */
async function rejectsWith(t: Tap, p: Promise<unknown>, cls: new (...a: never[]) => Error): Promise<void> {
  try {
    await p;
    t.fail(`expected ${cls.name}`);
  } catch (e) {
    t.ok(e instanceof cls, `${cls.name}: got ${(e as Error).constructor.name} ${(e as Error).message}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the openai client: a completion, a stream, usage; /v1/models', async (t) => {
  await withServer({}, async (s) => {
    const client = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    const models = await client.models.list();
    t.same(
      models.data.map((m) => m.id),
      ['student-q8_0'],
    );
    const c = await client.completions.create({
      model: 'student-q8_0',
      prompt: PROMPT,
      max_tokens: 10,
      temperature: 0,
    });
    t.equal(c.object, 'text_completion');
    t.equal(c.choices[0].text, model.generate(PROMPT, { maxTokens: 10 }).text, 'greedy text as model.generate');
    t.equal(c.choices[0].finish_reason, 'length');
    t.same(c.usage, { prompt_tokens: 4, completion_tokens: 10, total_tokens: 14 });

    const stream = await client.completions.create({
      model: 'student-q8_0',
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0.8,
      seed: 3,
      stream: true,
    });
    let text = '';
    let chunks = 0;
    let last: OpenAI.Completions.Completion | undefined;
    for await (const ch of stream) {
      chunks++;
      text += ch.choices[0]?.text ?? '';
      last = ch;
    }
    const whole = await client.completions.create({
      model: 'x',
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0.8,
      seed: 3,
    });
    t.equal(text, whole.choices[0].text, 'the stream carries the same text as one response');
    t.ok(chunks >= 1 && chunks <= 41, `${chunks} events for up to 40 tokens`);
    t.equal(last?.usage?.total_tokens, whole.usage?.total_tokens, 'usage in the last event');
    const many = await post(s.url + '/v1/completions', {
      prompt: PROMPT,
      max_tokens: 100,
      ignore_eos: true,
      stream: true,
    });
    const n = events(many.json as string).length - 1;
    t.ok(n < 100, `100 tokens in ${n} events: an event carries the tokens made within 20 ms`);
  });
});

t.test('with a fixed seed the server gives model.generate()s tokens, also while others load it', async (t) => {
  await withServer({ parallel: 3 }, async (s) => {
    const o = { temperature: 0.8, topK: 40, topP: 0.95, seed: 11, maxTokens: 30 };
    const want = model.generate(PROMPT, o).ids;
    const body = { prompt: PROMPT, temperature: 0.8, top_k: 40, top_p: 0.95, seed: 11, max_tokens: 30 };
    const others = [1, 2, 3, 4].map((i) =>
      post(s.url + '/v1/completions', {
        prompt: 'She looked at him and',
        max_tokens: 40,
        seed: i,
        stream: i % 2 === 0,
      }),
    );
    const [a, b] = await Promise.all([
      post(s.url + '/v1/completions', { ...body, return_token_ids: true }),
      post(s.url + '/v1/completions', { ...body, return_token_ids: true, stream: true }),
    ]);
    await Promise.all(others);
    t.same(a.json.choices[0].token_ids, want, 'same ids as model.generate');
    t.same(a.json.choices[0].prompt_token_ids, model.encode(PROMPT));
    const last = JSON.parse(events(b.json as string).slice(-2)[0]);
    t.same(last.choices[0].token_ids, want, 'streamed: same ids');
    const ids = model.encode(PROMPT);
    const byIds = await post(s.url + '/v1/completions', { ...body, prompt: ids, return_token_ids: true });
    t.same(byIds.json.choices[0].token_ids, want, 'a token-id prompt gives the same');
  });
});

t.test('stop strings spanning tokens, in one response and while streaming', async (t) => {
  await withServer({}, async (s) => {
    // greedy: ", and the first time, the first time," as tokens , | and | the | first | time ...
    const full = model.generate(PROMPT, { maxTokens: 10 }).text;
    t.equal(full, ', and the first time, the first time,');
    for (const stop of ['d the f', ['zzz', 'e first t'], 'time, the']) {
      const want = full.slice(0, full.indexOf(Array.isArray(stop) ? stop[1] : stop));
      const one = await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 10, temperature: 0, stop });
      t.equal(one.json.choices[0].text, want, `${JSON.stringify(stop)}: cut before it`);
      t.equal(one.json.choices[0].finish_reason, 'stop');
      const st = await post(s.url + '/v1/completions', {
        prompt: PROMPT,
        max_tokens: 10,
        temperature: 0,
        stop,
        stream: true,
        logprobs: 0,
      });
      const evs = events(st.json as string);
      t.equal(evs[evs.length - 1], '[DONE]');
      const parsed = evs.slice(0, -1).map((e) => JSON.parse(e));
      t.equal(
        parsed.map((e) => e.choices[0].text).join(''),
        want,
        `${JSON.stringify(stop)}: streamed text stops before it`,
      );
      const toks = parsed.flatMap((e) => e.choices[0].logprobs?.tokens ?? []);
      t.equal(toks.join('').slice(0, want.length), want, 'logprobs tokens cover the text sent');
    }
    const none = await post(s.url + '/v1/completions', {
      prompt: PROMPT,
      max_tokens: 10,
      temperature: 0,
      stop: ', the w',
    });
    t.equal(none.json.choices[0].text, full, 'a held-back near match goes out at the end');
  });
});

t.test('logprobs: the chosen token under the model', async (t) => {
  await withServer({}, async (s) => {
    const r = await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 3, temperature: 0, logprobs: 2 });
    const lp = r.json.choices[0].logprobs;
    const ids = model.encode(PROMPT);
    const V = model.config.vocabSize;
    const row = model.logits(ids).subarray((ids.length - 1) * V, ids.length * V);
    const first = model.generate(PROMPT, { maxTokens: 1 }).ids[0];
    t.ok(Math.abs(lp.token_logprobs[0] + tokenNll(row, first)) < 1e-5, 'first token logprob = log softmax');
    t.equal(lp.tokens.length, 3);
    t.equal(Object.keys(lp.top_logprobs[0]).length, 2);
    t.same(lp.text_offset[0], 0);
  });
});

t.test('every bad input gets its status and a message naming what is wrong', async (t) => {
  await withServer({ maxBody: 4096, maxTokens: 100 }, async (s) => {
    const u = s.url + '/v1/completions';
    const cases: [string, () => Promise<Reply>, number, RegExp, string | null][] = [
      ['invalid JSON', () => post(u, '{"prompt": '), 400, /invalid JSON/, null],
      ['not an object', () => post(u, '[1,2]'), 400, /must be a JSON object/, null],
      ['body over --max-body', () => post(u, { prompt: 'x'.repeat(5000) }), 413, /larger than .* 4096 bytes/, null],
      ['not JSON', () => post(u, 'prompt=x', { 'content-type': 'text/plain' }), 415, /application\/json/, null],
      ['no prompt', () => post(u, { max_tokens: 3 }), 400, /'prompt' is required/, 'prompt'],
      [
        'wrong type',
        () => post(u, { prompt: 'x', temperature: 'hot' }),
        400,
        /'temperature' must be a number/,
        'temperature',
      ],
      [
        'wrong type stream',
        () => post(u, { prompt: 'x', stream: 'yes' }),
        400,
        /'stream' must be true or false/,
        'stream',
      ],
      ['wrong type stop', () => post(u, { prompt: 'x', stop: 5 }), 400, /'stop' must be a string or an array/, 'stop'],
      [
        'max_tokens over the cap',
        () => post(u, { prompt: 'x', max_tokens: 101 }),
        400,
        /above this server's cap of 100/,
        'max_tokens',
      ],
      ['negative max_tokens', () => post(u, { prompt: 'x', max_tokens: -1 }), 400, /at least 0/, 'max_tokens'],
      ['top_p 0', () => post(u, { prompt: 'x', top_p: 0 }), 400, /greater than 0/, 'top_p'],
      [
        'prompt past the context',
        () => post(u, { prompt: Array(200).fill(5) }),
        400,
        /200 tokens, past this model's context of 128/,
        'prompt',
      ],
      [
        'token id out of range',
        () => post(u, { prompt: [1, 99999] }),
        400,
        /token id 99999 at index 1 is out of range/,
        'prompt',
      ],
      ['empty prompt', () => post(u, { prompt: '' }), 400, /no tokens/, 'prompt'],
      ['two prompts', () => post(u, { prompt: ['a', 'b'] }), 400, /one prompt per request/, 'prompt'],
      ['n > 1', () => post(u, { prompt: 'x', n: 2 }), 400, /'n' must be 1/, 'n'],
      ['chat', () => post(s.url + '/v1/chat/completions', { messages: [] }), 400, /no chat template/, 'messages'],
      [
        'tokenize: wrong type',
        () => post(s.url + '/tokenize', { content: 3 }),
        400,
        /'content' must be a string/,
        'content',
      ],
      ['detokenize: out of range', () => post(s.url + '/detokenize', { tokens: [-1] }), 400, /out of range/, 'tokens'],
      ['unknown endpoint', () => post(s.url + '/v2/nothing', {}), 404, /no such endpoint/, null],
      ['wrong method', async () => ({ ...(await post(s.url + '/v1/models', {})) }), 405, /takes GET/, null],
    ];
    for (const [name, call, status, re, param] of cases) {
      const r = await call();
      t.equal(r.status, status, `${name}: ${status}`);
      t.match(r.json?.error?.message, re, `${name}: says why`);
      t.equal(r.json?.error?.param, param, `${name}: param`);
      t.type(r.json?.error?.type, 'string', `${name}: OpenAI's error shape`);
    }
    const cut = await post(u, { prompt: Array(200).fill(5), truncate: 'left', max_tokens: 1, unknown_field: { a: 1 } });
    t.equal(cut.status, 200, 'truncate: "left" keeps the last tokens; unknown fields are ignored');
    t.equal(cut.json.usage.prompt_tokens, 128);
    const bad = await raw(s.url, {
      method: 'POST',
      path: '/v1/completions',
      headers: { 'content-type': 'application/json' },
      body: '\u0000\u00ff{',
    });
    t.equal(bad.status, 400, 'garbage bytes: 400');
    // the server is still up after all of that
    t.equal((await fetch(s.url + '/health')).status, 200);
  });
});

t.test('the openai client gets its error classes: 400, 401, 429', async (t) => {
  await withServer({ apiKeys: ['sekret'], parallel: 1, maxQueue: 0 }, async (s) => {
    const good = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'sekret', maxRetries: 0 });
    const wrong = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'nope', maxRetries: 0 });
    await rejectsWith(
      t,
      good.completions.create({ model: 'x', prompt: 'x', max_tokens: 100000 }),
      OpenAI.BadRequestError,
    );
    await rejectsWith(t, wrong.completions.create({ model: 'x', prompt: 'x' }), OpenAI.AuthenticationError);
    await rejectsWith(
      t,
      good.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
      OpenAI.BadRequestError,
    );
    // one slot, no queue: a second request while one generates is 429 with Retry-After
    const u = new URL(s.url);
    const slot = await new Promise<{ abort(): void }>((ok) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/v1/completions',
          headers: { 'content-type': 'application/json', 'x-api-key': 'sekret' },
        },
        (res) => res.once('data', () => ok({ abort: () => req.destroy() })),
      );
      req.on('error', () => {});
      req.end(JSON.stringify({ prompt: PROMPT, max_tokens: 1000, ignore_eos: true, stream: true }));
    });
    const busy = await post(s.url + '/v1/completions', { prompt: 'x' }, { authorization: 'Bearer sekret' });
    t.equal(busy.status, 429);
    t.equal(busy.headers.get('retry-after'), '1');
    await rejectsWith(t, good.completions.create({ model: 'x', prompt: 'x' }), OpenAI.RateLimitError);
    slot.abort();
    t.ok(await until(() => s.engine.busy === 0), 'the hung-up stream freed its slot');
    const after = await good.completions.create({ model: 'x', prompt: 'x', max_tokens: 2 });
    t.equal(after.usage?.completion_tokens, 2, 'and the next request gets it');
    // keys: /health needs none, the rest need one (Bearer or X-Api-Key)
    t.equal((await fetch(s.url + '/health')).status, 200);
    t.equal((await fetch(s.url + '/metrics')).status, 401);
    t.equal((await fetch(s.url + '/metrics', { headers: { 'x-api-key': 'sekret' } })).status, 200);
    t.equal((await fetch(s.url + '/v1/models', { headers: { authorization: 'Bearer sekret' } })).status, 200);
    t.equal((await fetch(s.url + '/v1/models', { headers: { authorization: 'Bearer sekret2' } })).status, 401);
  });
});

t.test('a client that hangs up cancels its generation and frees the slot', async (t) => {
  await withServer({ parallel: 2, maxTokens: LONG_STREAM_TOKENS }, async (s) => {
    const a = await longStream(s.url);
    const b = await longStream(s.url);
    t.equal(s.engine.busy, 2);
    a.abort();
    t.ok(await until(() => s.engine.busy === 1), 'one slot freed');
    b.abort();
    t.ok(await until(() => s.engine.busy === 0), 'both freed');
    const before = s.metrics.generatedTokens;
    await new Promise((r) => setTimeout(r, 50));
    t.equal(s.metrics.generatedTokens, before, 'no more tokens are made for them');
  });
});

t.test('a request past --timeout: 504, or an error event while streaming', async (t) => {
  await withServer({ timeout: 0.15 }, async (s) => {
    const r = await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 1000, ignore_eos: true });
    t.equal(r.status, 504);
    t.match(r.json.error.message, /longer than this server's 0.15 s/);
    const st = await post(s.url + '/v1/completions', {
      prompt: PROMPT,
      max_tokens: 1000,
      ignore_eos: true,
      stream: true,
    });
    t.equal(st.status, 200);
    const evs = events(st.json as string);
    t.match(JSON.parse(evs[evs.length - 1]).error.code, 'timeout', 'the stream ends with an error event');
    t.ok(await until(() => s.engine.busy === 0), 'slots freed');
  });
});

t.test('binds, Host header, CORS', async (t) => {
  await t.rejects(
    startServer({ model, host: '0.0.0.0', port: 0 }),
    /without an API key/,
    'no key, not loopback: refused',
  );
  await withServer({ cors: ['https://app.example'] }, async (s) => {
    const evil = await raw(s.url, { path: '/v1/models', headers: { host: 'evil.example:8080' } });
    t.equal(evil.status, 403, 'a rebound name is refused');
    t.match(evil.body, /not this server's/);
    t.equal((await raw(s.url, { path: '/v1/models', headers: { host: `localhost:${s.port}` } })).status, 200);
    const pre = await fetch(s.url + '/v1/completions', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    t.equal(pre.status, 204);
    t.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    const other = await fetch(s.url + '/v1/models', { headers: { origin: 'https://other.example' } });
    t.equal(other.headers.get('access-control-allow-origin'), null, 'an origin not listed gets no CORS header');
  });
});

t.test('/metrics, /tokenize, /detokenize, one log line per request', async (t) => {
  await withServer({}, async (s, logs) => {
    const tk = await post(s.url + '/tokenize', { content: PROMPT });
    t.same(tk.json.tokens, model.encode(PROMPT));
    const dt = await post(s.url + '/detokenize', { tokens: tk.json.tokens });
    t.equal(dt.json.content, model.decode(tk.json.tokens));
    await post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 5, temperature: 0 });
    await post(s.url + '/v1/completions', { prompt: 5 });
    const m = await (await fetch(s.url + '/metrics')).text();
    t.match(m, /itera_requests_total\{route="\/v1\/completions",status="200"\} 1/);
    t.match(m, /itera_requests_total\{route="\/v1\/completions",status="400"\} 1/);
    t.match(m, /itera_prompt_tokens_total 4/);
    t.match(m, /itera_generated_tokens_total 5/);
    t.match(m, /itera_time_to_first_token_seconds_count 1/);
    t.match(m, /itera_token_latency_seconds_count 4/);
    t.match(m, /itera_queue_depth 0\nitera_busy_slots|itera_queue_depth 0/);
    t.ok(await until(() => logs.length >= 5));
    const lines = logs.map((l) => JSON.parse(l));
    const c = lines.find((l) => l.path === '/v1/completions' && l.status === 200);
    t.match(c, { method: 'POST', prompt_tokens: 4, completion_tokens: 5 });
    t.type(c.ttft_ms, 'number');
  });
});

t.test('draining: /health 503 and new requests 503 while in-flight ones finish; cut at the deadline', async (t) => {
  // 400 tokens: still going when the drain starts (60 could end first, and a server with nothing
  // in flight closes at once: the fetch below then fails), and done well within its 5 s (past T
  // each step of this model recomputes its window: about a millisecond a token here)
  const s = await startServer({ model, port: 0, log: () => {} });
  const a = await longStream(s.url, { max_tokens: 400 });
  const drained = s.drain(5000);
  t.equal((await fetch(s.url + '/health')).status, 503, '/health: 503 while draining');
  const r = await post(s.url + '/v1/completions', { prompt: 'x' });
  t.equal(r.status, 503, 'new completions: 503');
  const body = await a.rest;
  t.match(body, /"finish_reason":"length"[\s\S]*data: \[DONE\]/, 'the stream in flight finished');
  await drained;

  const s2 = await startServer({ model, port: 0, log: () => {}, maxTokens: LONG_STREAM_TOKENS });
  const b = await longStream(s2.url);
  await s2.drain(100);
  t.match(await b.rest, /"code":"draining"/, 'a stream still going at the deadline gets an error event');
  t.equal(s2.engine.busy, 0);
});

t.test('sessions: kept state continues, 409 while busy, delete, bounds, state bytes', async (t) => {
  await withServer({ maxSessions: 2 }, async (s) => {
    const u = s.url + '/v1/sessions';
    const created = await post(u, { prompt: PROMPT });
    t.equal(created.status, 201);
    const id = created.json.id as string;
    t.match(id, /^[0-9a-f]{32}$/, '128-bit random id');
    t.equal(created.json.position, 4);
    const greedy = model.generate(PROMPT, { maxTokens: 20 }).ids;
    const a = await post(`${u}/${id}/completions`, { max_tokens: 10, temperature: 0, return_token_ids: true });
    t.same(a.json.choices[0].token_ids, greedy.slice(0, 10), 'continues from the prompt');
    t.equal(a.json.usage.prompt_tokens, 0, 'costs only the new tokens');
    const b = await post(`${u}/${id}/completions`, { max_tokens: 10, temperature: 0, return_token_ids: true });
    t.same(b.json.choices[0].token_ids, greedy.slice(10, 20), 'and from where it left off');
    const more = model.encode(' and then');
    const c = await post(`${u}/${id}/completions`, {
      prompt: ' and then',
      max_tokens: 5,
      temperature: 0,
      return_token_ids: true,
    });
    t.same(
      c.json.choices[0].token_ids,
      model.generate([...model.encode(PROMPT), ...greedy, ...more], { maxTokens: 5 }).ids,
      'a further prompt is fed after the kept tokens',
    );
    t.equal(c.json.usage.prompt_tokens, more.length);

    // one request at a time per session
    const uu = new URL(s.url);
    const hold = await new Promise<{ abort(): void }>((ok) => {
      const req = request(
        {
          host: uu.hostname,
          port: uu.port,
          method: 'POST',
          path: `/v1/sessions/${id}/completions`,
          headers: { 'content-type': 'application/json' },
        },
        (res) => res.once('data', () => ok({ abort: () => req.destroy() })),
      );
      req.on('error', () => {});
      req.end(JSON.stringify({ max_tokens: 1000, ignore_eos: true, stream: true }));
    });
    t.equal((await post(`${u}/${id}/completions`, { max_tokens: 1 })).status, 409, 'a second request at once: 409');
    t.equal((await fetch(`${u}/${id}`, { method: 'DELETE' })).status, 409, 'delete while generating: 409');
    hold.abort();
    t.ok(await until(() => s.engine.busy === 0));
    await sleep(20);
    {
      // a saved and restored session continues exactly as the kept one
      const state = new Uint8Array(await (await fetch(`${u}/${id}/state`)).arrayBuffer());
      const r = await postState(u, state);
      t.equal(r.status, 201, 'restored');
      const copy = ((await r.json()) as { id: string }).id;
      const q = { max_tokens: 8, temperature: 0.8, seed: 5, return_token_ids: true };
      const x = await post(`${u}/${copy}/completions`, q);
      const y = await post(`${u}/${id}/completions`, q);
      t.same(x.json.choices[0].token_ids, y.json.choices[0].token_ids, 'the restored copy gives the same tokens');
      // the copy ends first: the test server keeps few sessions, and a full table answers 429
      await fetch(`${u}/${copy}`, { method: 'DELETE' });
      state[state.length >> 1] ^= 1;
      const bad = await postState(u, state);
      t.equal(bad.status, 400, 'a changed byte is refused');
    }
    const info = await (await fetch(`${u}/${id}`)).json();
    t.match(info, { id, object: 'session', busy: false });

    const second = await post(u, {});
    t.equal(second.status, 201, 'an empty session');
    t.equal(
      (await post(`${u}/${second.json.id}/completions`, { max_tokens: 1 })).status,
      400,
      'an empty session needs a prompt',
    );
    t.equal((await post(u, {})).status, 429, 'past --max-sessions: 429');
    const del = await fetch(`${u}/${id}`, { method: 'DELETE' });
    t.same(await del.json(), { id, object: 'session.deleted', deleted: true });
    t.equal((await post(`${u}/${id}/completions`, { max_tokens: 1 })).status, 404, 'deleted: 404');
    t.equal((await post(`${u}/zzz/completions`, { max_tokens: 1 })).status, 404, 'never existed: 404');
  });
  await withServer({ sessionIdle: 0.2 }, async (s) => {
    const k = await post(s.url + '/v1/sessions', { prompt: PROMPT });
    t.equal((await fetch(`${s.url}/v1/sessions/${k.json.id}`)).status, 200);
    await sleep(600);
    t.equal((await fetch(`${s.url}/v1/sessions/${k.json.id}`)).status, 404, 'idle past --session-idle: ended');
  });
});

t.test('nothing a client sends takes the server down (a bounded fuzz)', async (t) => {
  await withServer({ maxBody: 2048, maxTokens: 16 }, async (s) => {
    let x = 12345;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return (x >>> 8) % n;
    };
    const pool: unknown[] = [
      null,
      true,
      false,
      0,
      1,
      -1,
      0.5,
      3,
      1e300,
      'x',
      '',
      ' the',
      [],
      [1],
      ['a'],
      [-1],
      {},
      { a: 1 },
    ];
    const fields = [
      'prompt',
      'max_tokens',
      'temperature',
      'top_p',
      'top_k',
      'seed',
      'stop',
      'logprobs',
      'stream',
      'echo',
      'n',
      'truncate',
      'stream_options',
      'ignore_eos',
      'content',
      'tokens',
    ];
    const paths = [
      '/v1/completions',
      '/tokenize',
      '/detokenize',
      '/v1/sessions',
      '/v1/models',
      '/nope',
      '/v1/sessions/abc/completions',
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 150; i++) {
      const body: Record<string, unknown> = {};
      for (let k = 0; k < 1 + rnd(5); k++) body[fields[rnd(fields.length)]] = pool[rnd(pool.length)];
      if (rnd(2) === 0) body.prompt = pool[rnd(pool.length)] ?? 'a';
      const raw = rnd(10) === 0 ? '{"prompt": "a", ' + '"x": ['.repeat(rnd(3000)) : JSON.stringify(body);
      const type = ['application/json', 'application/json; charset=utf-8', 'application/json', 'text/plain', ''][
        rnd(5)
      ];
      const method = ['POST', 'POST', 'POST', 'GET', 'DELETE'][rnd(5)];
      const r = await fetch(s.url + paths[rnd(paths.length)], {
        method,
        headers: type ? { 'content-type': type } : {},
        body: method === 'GET' || rnd(8) === 0 ? undefined : raw,
      }).catch((e: Error) => t.fail(String(e)));
      if (r instanceof Response) {
        await r.text();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    }
    t.comment(JSON.stringify([...statuses].sort()));
    t.notOk(
      [...statuses.keys()].some((c) => c >= 500),
      'no 5xx',
    );
    t.equal((await fetch(s.url + '/health')).status, 200, 'still up');
    t.ok(await until(() => s.engine.idle));
  });
});

t.test('overload: every request completes or gets 429, none hangs', async (t) => {
  await withServer({ parallel: 2, maxQueue: 4 }, async (s) => {
    const rs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        post(s.url + '/v1/completions', { prompt: PROMPT, max_tokens: 8, seed: i, stream: i % 3 === 0 }),
      ),
    );
    const ok = rs.filter((r) => r.status === 200).length;
    const busy = rs.filter((r) => r.status === 429).length;
    t.equal(ok + busy, 30, `${ok} completed, ${busy} got 429`);
    t.ok(ok >= 6, 'at least parallel + queue completed');
    t.ok(await until(() => s.engine.idle), 'nothing left behind');
  });
});

t.test('slow and malformed connections: 408 for headers that do not arrive, 400 for garbage', async (t) => {
  await withServer({ headersTimeoutMs: 300 }, async (s) => {
    const talk = (text: string) =>
      new Promise<{ data: string; ms: number }>((ok) => {
        const t0 = Date.now();
        const sock = connect(s.port, '127.0.0.1', () => sock.write(text));
        let data = '';
        sock.setEncoding('utf8').on('data', (c: string) => (data += c));
        sock.on('close', () => ok({ data, ms: Date.now() - t0 }));
        setTimeout(() => sock.destroy(), 5000);
      });
    const slow = await talk('GET /health HTTP/1.1\r\nHost: localhost\r\n');
    t.match(slow.data, /^HTTP\/1\.1 408/, 'headers never finished: 408');
    t.ok(slow.ms < 3000, `closed after ${slow.ms} ms`);
    const junk = await talk('\u0001\u0002 nonsense\r\n\r\n');
    t.match(junk.data, /^HTTP\/1\.1 400/, 'not HTTP: 400');
    const big = await talk(`GET /health HTTP/1.1\r\nHost: localhost\r\nx-a: ${'a'.repeat(20000)}\r\n\r\n`);
    t.match(big.data, /^HTTP\/1\.1 431/, 'headers too large: 431');
    t.equal((await fetch(s.url + '/health')).status, 200, 'still up');
  });
});
