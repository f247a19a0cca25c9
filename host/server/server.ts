// itera serve's HTTP layer (node:http, no framework): OpenAI-compatible completions, native
// endpoints (/health, /metrics, /tokenize, /detokenize), API keys, limits, draining. docs/server.md
// describes the endpoints and the security defaults.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Build } from '../node/index.js';
import type { IteraModel } from '../runtime/api.js';
import { IteraError } from '../runtime/types.js';
import { LocalEngine, type Engine, type EngineJob, type SessionRef } from './engine.js';
import { Metrics } from './metrics.js';
import { WorkerPool } from './pool.js';
import { ApiError, badParam, describe, readCompletion, readPrompt, type CompletionParams } from './request.js';
import type { TokenEvent } from './scheduler.js';
import { CompletionText } from './stop.js';

export interface ServerOptions {
  /** The model: it tokenizes, and without `workers` it also generates, in this thread. A promise
   *  lets the workers load theirs while it loads. */
  model: IteraModel | Promise<IteraModel>;
  /** Worker threads, each with its own instance of the model file (the same file as `model`),
   *  each running `parallel` slots; without it one scheduler runs in this thread. */
  workers?: { count: number; model: string | Uint8Array; build?: Build; restartsPerMinute?: number };
  /** The id /v1/models lists (the model file's name without .gguf). */
  modelId?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  parallel?: number;
  maxQueue?: number;
  maxBody?: number;
  /** Seconds a completion may take from arrival to its last token. */
  timeout?: number;
  /** Most tokens one request may ask for. */
  maxTokens?: number;
  /** Accepted API keys; empty: no key needed. */
  apiKeys?: string[];
  /** Origins allowed by CORS ('*' for any); empty: no CORS headers. */
  cors?: string[];
  /** Allow a non-loopback bind without an API key. */
  insecure?: boolean;
  /** One JSON line per request (default: stderr). */
  log?: (line: string) => void;
  /** Milliseconds between streamed events at most while tokens wait (default 20). */
  flushMs?: number;
  /** Milliseconds for a request's headers (10 s) and for the whole request (30 s) to arrive. */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Kept sessions at most (default 64). */
  maxSessions?: number;
  /** Seconds a kept session may sit unused before it is ended (default 600). */
  sessionIdle?: number;
}

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  parallel: 4,
  maxQueue: 64,
  maxBody: 1 << 20,
  timeout: 300,
  maxTokens: 1024,
  drain: 10,
  maxSessions: 64,
  sessionIdle: 600,
} as const;

export interface IteraServer {
  server: Server;
  url: string;
  port: number;
  /** The HTTP layer's metrics (requests by status; in this thread's engine, everything). */
  metrics: Metrics;
  /** Where completions run: a scheduler in this thread, or the pool of worker threads. */
  engine: Engine;
  /** Stops accepting, answers /health with 503, lets requests finish for up to deadlineMs, then
   *  cuts the rest (an error event or a 503) and closes every connection. */
  drain(deadlineMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The host name of a Host header, without its port. */
function hostName(header: string): string {
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1);
  const i = header.lastIndexOf(':');
  return i >= 0 ? header.slice(0, i) : header;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** A live request the drain may have to cut. */
interface Live {
  cut(reason: string): void;
}

/** A kept session: its state lives in the module (of one worker) between requests. */
interface Kept {
  id: string;
  session: SessionRef;
  busy: boolean;
  lastUsed: number;
}

interface RequestLog {
  route: string;
  promptTokens?: number;
  completionTokens?: number;
  ttftMs?: number;
}

const ROUTES = new Set([
  '/health',
  '/metrics',
  '/tokenize',
  '/detokenize',
  '/v1/models',
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/sessions',
]);

export async function startServer(o: ServerOptions): Promise<IteraServer> {
  const host = o.host ?? SERVER_DEFAULTS.host;
  const keys = (o.apiKeys ?? []).filter((k) => k !== '').map(sha256);
  if (!isLoopback(host) && keys.length === 0 && !o.insecure) {
    throw new IteraError(
      `refusing to listen on ${host} without an API key: anyone who can reach it could use it. Give --api-key-file FILE, or --insecure if the network is yours alone`,
      'INSECURE_BIND',
    );
  }
  const loopback = isLoopback(host);
  const modelId = o.modelId ?? 'itera-lite';
  const maxBody = o.maxBody ?? SERVER_DEFAULTS.maxBody;
  const timeoutMs = (o.timeout ?? SERVER_DEFAULTS.timeout) * 1000;
  const limits = { maxTokens: o.maxTokens ?? SERVER_DEFAULTS.maxTokens };
  const cors = o.cors ?? [];
  const flushMs = o.flushMs ?? 20;
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const metrics = new Metrics();
  const parallel = o.parallel ?? SERVER_DEFAULTS.parallel;
  const maxQueue = o.maxQueue ?? SERVER_DEFAULTS.maxQueue;
  // the workers load their instances while this thread loads its own (when given a promise)
  const pool = o.workers
    ? WorkerPool.start({
        ...o.workers,
        parallel,
        maxQueue,
        metrics,
        log: (message) => log(JSON.stringify({ time: new Date().toISOString(), event: 'worker', message })),
      })
    : null;
  let model: IteraModel;
  try {
    model = await o.model;
  } catch (e) {
    await pool?.then((p) => p.close()).catch(() => {});
    throw e;
  }
  const engine: Engine = pool ? await pool : new LocalEngine(model, parallel, maxQueue, metrics);
  const created = Math.floor(Date.now() / 1000);
  const live = new Set<Live>();
  const sessions = new Map<string, Kept>();
  const maxSessions = o.maxSessions ?? SERVER_DEFAULTS.maxSessions;
  const idleMs = (o.sessionIdle ?? SERVER_DEFAULTS.sessionIdle) * 1000;
  const endSession = (k: Kept) => {
    sessions.delete(k.id);
    engine.freeSession(k.session);
  };
  const sweeper = setInterval(
    () => {
      const now = Date.now();
      for (const k of [...sessions.values()]) if (!k.busy && now - k.lastUsed > idleMs) endSession(k);
    },
    Math.max(50, Math.min(idleMs / 4, 30_000)),
  );
  sweeper.unref();
  let draining = false;
  const T = model.config.maxSeqLength;
  const V = model.config.vocabSize;
  const tok = model.tokenizer;

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...(draining ? { connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  }

  function sendError(res: ServerResponse, e: unknown): void {
    let err: ApiError;
    if (e instanceof ApiError) err = e;
    else if (e instanceof IteraError) err = new ApiError(400, e.message, 'invalid_request_error', null, e.code);
    else err = new ApiError(500, 'internal error: ' + String((e as Error)?.message ?? e), 'server_error');
    send(res, err.status, err.body(), err.headers);
  }

  function authorized(req: IncomingMessage): boolean {
    if (keys.length === 0) return true;
    const auth = req.headers.authorization;
    const x = req.headers['x-api-key'];
    const given =
      typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : typeof x === 'string' ? x : '';
    if (given === '') return false;
    const h = sha256(given);
    let ok = false;
    for (const k of keys) ok = timingSafeEqual(h, k) || ok; // every key compared, in constant time
    return ok;
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const len = Number(req.headers['content-length'] ?? NaN);
    if (len > maxBody) throw tooLarge();
    const type = String(req.headers['content-type'] ?? '');
    if (!/^application\/json\s*(;|$)/i.test(type))
      throw new ApiError(
        415,
        `send JSON with 'Content-Type: application/json'${type ? `, not '${type}'` : ''}`,
        'invalid_request_error',
        null,
        'unsupported_media_type',
      );
    const bytes = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new ApiError(400, `invalid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiError(400, `the body must be a JSON object, got ${describe(body)}`, 'invalid_request_error', null);
    return body as Record<string, unknown>;
  }

  /** The body's bytes, at most --max-body of them. */
  async function readBody(req: IncomingMessage): Promise<Buffer> {
    if (Number(req.headers['content-length'] ?? NaN) > maxBody) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      total += c.length;
      if (total > maxBody) throw tooLarge();
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  function tooLarge(): ApiError {
    return new ApiError(
      413,
      `the body is larger than this server's limit of ${maxBody} bytes (--max-body)`,
      'invalid_request_error',
      null,
      'body_too_large',
      { connection: 'close' },
    );
  }

  function checkIds(ids: number[], param: string): void {
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < V))
        throw badParam(
          param,
          `token id ${ids[i]} at index ${i} is out of range: this model's ids run from 0 to ${V - 1}`,
        );
    }
  }

  function promptIdsOf(p: CompletionParams): number[] {
    let ids: number[];
    if (typeof p.prompt === 'string') ids = model.encode(p.prompt);
    else ids = p.prompt ?? [];
    if (p.prompt === undefined) return [];
    checkIds(ids, 'prompt');
    if (ids.length === 0)
      throw badParam('prompt', `the prompt has no tokens: give some text or token ids`, 'empty_prompt');
    if (ids.length > T) {
      if (p.truncate) return ids.slice(ids.length - T);
      throw badParam(
        'prompt',
        `the prompt is ${ids.length} tokens, past this model's context of ${T}: shorten it, or send "truncate": "left" to keep its last ${T} tokens`,
        'context_length_exceeded',
      );
    }
    return ids;
  }

  async function completions(req: IncomingMessage, res: ServerResponse, rl: RequestLog, kept?: Kept): Promise<void> {
    const body = await readJson(req);
    const p = readCompletion(body, limits, kept === undefined);
    if (draining) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'draining');
    const promptIds = promptIdsOf(p);
    if (kept) {
      if (kept.busy)
        throw new ApiError(
          409,
          `session ${kept.id} is already generating: one request at a time`,
          'conflict',
          null,
          'session_busy',
        );
      if (promptIds.length === 0 && kept.session.position === 0)
        throw badParam('prompt', `session ${kept.id} holds no tokens yet: give a prompt`, 'empty_prompt');
    }
    rl.promptTokens = promptIds.length;
    const id = 'cmpl-' + randomBytes(12).toString('hex');
    const t0 = performance.now();
    const base = { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: modelId };
    const usage = (n: number) => ({
      prompt_tokens: promptIds.length,
      completion_tokens: n,
      total_tokens: promptIds.length + n,
    });
    const echo = p.echo ? (typeof p.prompt === 'string' ? p.prompt : model.decode(promptIds)) : '';
    const ct = new CompletionText(tok, p.stop);
    const stop = ct.stop;
    // every token made so far: its id, where its text starts in the generated text, its logprobs
    const made: { id: number; start: number; piece: string; lp?: number; top?: [number, number][] }[] = [];
    let sentTokens = 0; // tokens whose logprobs went out (streaming)
    let text = '';
    let done = false;
    let hitStop = false;

    const logprobsFor = (from: number, to: number, offset: number) => {
      if (p.logprobs === null) return null;
      const ts = made.slice(from, to);
      return {
        tokens: ts.map((t) => t.piece),
        token_logprobs: ts.map((t) => t.lp ?? null),
        top_logprobs:
          p.logprobs > 0
            ? ts.map((t) => Object.fromEntries((t.top ?? []).map(([v, lp]) => [model.decode([v]), lp])))
            : null,
        text_offset: ts.map((t) => offset + t.start),
      };
    };
    /** Tokens whose text starts before `end` characters (the rest were cut by a stop string). */
    const tokensBefore = (end: number, stopped: boolean) => {
      let n = 0;
      while (n < made.length && (made[n].start < end || (!stopped && made[n].start === end))) n++;
      return n;
    };

    // streaming: events go out at most every flushMs while tokens wait (the first at once)
    let outText = echo;
    let lastWrite = -Infinity;
    let flushTimer: NodeJS.Timeout | undefined;
    const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
    const writeEvent = (data: unknown) => {
      if (!res.destroyed && !res.writableEnded) res.write(sse(data));
    };
    const flush = () => {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = undefined;
      const upto = tokensBefore(stop.released, false);
      if (outText === '' && upto === sentTokens) return;
      writeEvent({
        ...base,
        choices: [
          { text: outText, index: 0, logprobs: logprobsFor(sentTokens, upto, echo.length), finish_reason: null },
        ],
      });
      sentTokens = upto;
      outText = '';
      lastWrite = performance.now();
    };
    const maybeFlush = () => {
      const wait = lastWrite + flushMs - performance.now();
      if (wait <= 0) flush();
      else if (!flushTimer) flushTimer = setTimeout(flush, wait);
    };

    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      done = true;
      if (kept) {
        kept.busy = false;
        kept.lastUsed = Date.now();
      }
      if (timer) clearTimeout(timer);
      if (flushTimer) clearTimeout(flushTimer);
      live.delete(entry);
    };
    const fail = (err: ApiError) => {
      if (done) return;
      finish();
      engine.cancel(job);
      if (p.stream && res.headersSent) {
        writeEvent(err.body());
        res.end();
      } else sendError(res, err);
    };
    const entry: Live = { cut: (why) => fail(new ApiError(503, why, 'server_error', null, 'draining')) };

    const job: EngineJob = {
      promptIds,
      stop: p.stop,
      session: kept?.session,
      sampler: { temperature: p.temperature, topK: p.topK, topP: p.topP, seed: p.seed ?? randomInt(2 ** 47) },
      maxTokens: p.maxTokens,
      eos: p.ignoreEos ? -1 : tok.eos,
      logprobs: p.logprobs,
      onToken(ev: TokenEvent) {
        if (made.length === 0) rl.ttftMs = Math.round((performance.now() - t0) * 1000) / 1000;
        const { piece, start, feed: f } = ct.push(ev.id, ev.last);
        made.push({ id: ev.id, start, piece, lp: ev.logprob, top: ev.top });
        text += f.text;
        hitStop = f.stopped;
        if (p.stream) {
          outText += f.text;
          if (!f.stopped && !ev.last) maybeFlush();
        }
        return f.stopped;
      },
      onEnd(reason, generated) {
        if (done) return;
        const tail = stop.end();
        text += tail;
        finish();
        rl.completionTokens = generated;
        const n = tokensBefore(stop.released, hitStop);
        const extra = p.returnTokenIds ? { prompt_token_ids: promptIds, token_ids: made.map((t) => t.id) } : {};
        if (p.stream) {
          outText += tail;
          // the last events and [DONE] in one write (one system call: a short stream makes few)
          let last = sse({
            ...base,
            choices: [
              {
                text: outText,
                index: 0,
                logprobs: logprobsFor(sentTokens, n, echo.length),
                finish_reason: reason,
                ...extra,
              },
            ],
            usage: usage(generated),
          });
          if (p.includeUsageChunk) last += sse({ ...base, choices: [], usage: usage(generated) });
          res.end(last + 'data: [DONE]\n\n');
        } else {
          send(res, 200, {
            ...base,
            choices: [
              {
                text: echo + text,
                index: 0,
                logprobs: logprobsFor(0, n, echo.length),
                finish_reason: reason,
                ...extra,
              },
            ],
            usage: usage(generated),
          });
        }
      },
      onError(e) {
        fail(
          e instanceof ApiError
            ? e
            : new ApiError(500, 'generation failed: ' + String((e as Error)?.message ?? e), 'server_error'),
        );
      },
    };

    if (!engine.submit(job)) {
      throw new ApiError(
        429,
        `the server is busy: ${engine.busy} requests generating and ${engine.queued} waiting (--max-queue); retry shortly`,
        'rate_limit_error',
        null,
        'queue_full',
        { 'retry-after': '1' },
      );
    }
    live.add(entry);
    if (kept) kept.busy = true;
    // a client that goes away cancels its generation and frees its slot
    res.on('close', () => {
      if (!done) {
        finish();
        engine.cancel(job);
      }
    });
    timer = setTimeout(
      () =>
        fail(
          new ApiError(
            504,
            `the completion took longer than this server's ${timeoutMs / 1000} s (--timeout)`,
            'timeout',
            null,
            'timeout',
          ),
        ),
      timeoutMs,
    );
    if (p.stream) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      if (echo !== '') maybeFlush();
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse, rl: RequestLog): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    rl.route = ROUTES.has(path)
      ? path
      : path.startsWith('/v1/models/')
        ? '/v1/models/{id}'
        : path.startsWith('/v1/sessions/')
          ? '/v1/sessions/{id}' + (/\/(completions|state)$/.exec(path)?.[0] ?? '')
          : 'other';
    if (loopback) {
      // a page on another site, reaching us through a name it rebound to 127.0.0.1, sends its own Host
      const h = hostName(String(req.headers.host ?? '')).toLowerCase();
      if (!isLoopback(h) && h !== host.toLowerCase())
        throw new ApiError(
          403,
          `Host '${h}' is not this server's: a loopback server answers only to localhost or its address`,
          'invalid_request_error',
          null,
          'bad_host',
        );
    }
    const origin = req.headers.origin;
    if (typeof origin === 'string' && (cors.includes('*') || cors.includes(origin))) {
      res.setHeader('access-control-allow-origin', cors.includes('*') ? '*' : origin);
      res.setHeader('vary', 'Origin');
    }
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, x-api-key',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const want = (m: string) => {
      if (method !== m)
        throw new ApiError(
          405,
          `${path} takes ${m}, not ${method}`,
          'invalid_request_error',
          null,
          'method_not_allowed',
          { allow: m },
        );
    };
    if (path === '/health') {
      want('GET');
      if (draining) return send(res, 503, { status: 'draining' });
      return engine.healthy
        ? send(res, 200, { status: 'ok' })
        : send(res, 503, { status: 'unhealthy', message: 'no worker thread is running' });
    }
    if (!authorized(req))
      throw new ApiError(
        401,
        'a valid API key is needed: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY"',
        'authentication_error',
        null,
        'invalid_api_key',
        { 'www-authenticate': 'Bearer' },
      );
    switch (path) {
      case '/metrics': {
        want('GET');
        const text = await engine.renderMetrics(metrics);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      case '/v1/models':
        want('GET');
        return send(res, 200, { object: 'list', data: [modelObject()] });
      case '/v1/completions':
        want('POST');
        return completions(req, res, rl);
      case '/v1/chat/completions':
        want('POST');
        throw new ApiError(
          400,
          'this model has no chat template (it is a plain language model, its file carries none): send text to POST /v1/completions instead',
          'invalid_request_error',
          'messages',
          'no_chat_template',
        );
      case '/tokenize': {
        want('POST');
        const b = await readJson(req);
        if (typeof b.content !== 'string')
          throw badParam('content', `'content' must be a string, got ${describe(b.content)}`, 'invalid_type');
        return send(res, 200, { tokens: model.encode(b.content) });
      }
      case '/detokenize': {
        want('POST');
        const b = await readJson(req);
        const ids = b.tokens;
        if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'number' && Number.isInteger(x)))
          throw badParam('tokens', `'tokens' must be an array of token ids, got ${describe(ids)}`, 'invalid_type');
        checkIds(ids as number[], 'tokens');
        return send(res, 200, { content: model.decode(ids as number[]) });
      }
    }
    if (path === '/v1/sessions') {
      want('POST');
      return createSession(req, res, rl);
    }
    const sm = /^\/v1\/sessions\/([^/]+)(\/completions|\/state)?$/.exec(path);
    if (sm) {
      let k = sessions.get(sm[1]);
      if (k?.session.lost) {
        // its worker thread stopped: the state went with it
        endSession(k);
        k = undefined;
      }
      if (!k)
        throw new ApiError(
          404,
          `no session ${sm[1].slice(0, 64)}: it was deleted, timed out, lost with a worker thread that stopped, or never existed`,
          'invalid_request_error',
          null,
          'session_not_found',
        );
      if (sm[2] === '/completions') {
        want('POST');
        return completions(req, res, rl, k);
      }
      if (sm[2] === '/state') {
        want('GET');
        if (k.busy)
          throw new ApiError(
            409,
            `session ${k.id} is generating: save it between requests`,
            'conflict',
            null,
            'session_busy',
          );
        const bytes = await engine.saveSession(k.session);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) });
        res.end(bytes);
        return;
      }
      if (method === 'DELETE') {
        if (k.busy)
          throw new ApiError(
            409,
            `session ${k.id} is generating: wait for it or hang it up first`,
            'conflict',
            null,
            'session_busy',
          );
        endSession(k);
        return send(res, 200, { id: k.id, object: 'session.deleted', deleted: true });
      }
      want('GET');
      return send(res, 200, sessionObject(k));
    }
    if (path === `/v1/models/${modelId}`) {
      want('GET');
      return send(res, 200, modelObject());
    }
    throw new ApiError(404, `no such endpoint: ${method} ${path}`, 'invalid_request_error', null, 'not_found');
  }

  function sessionObject(k: Kept) {
    return { id: k.id, object: 'session', position: k.session.position, busy: k.busy };
  }

  async function createSession(req: IncomingMessage, res: ServerResponse, rl: RequestLog): Promise<void> {
    if (/^application\/octet-stream/i.test(String(req.headers['content-type'] ?? ''))) return restoreSession(req, res);
    const body = await readJson(req);
    if (draining) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'draining');
    const prompt = readPrompt(body, 'prompt', false);
    const promptIds =
      prompt === undefined ? [] : promptIdsOf({ prompt, truncate: body.truncate === 'left' } as CompletionParams);
    if (sessions.size >= maxSessions) throw tooManySessions();
    const session = await engine.openSession();
    if (sessions.size >= maxSessions) {
      engine.freeSession(session);
      throw tooManySessions();
    }
    const k: Kept = { id: randomBytes(16).toString('hex'), session, busy: false, lastUsed: Date.now() };
    sessions.set(k.id, k);
    rl.promptTokens = promptIds.length;
    if (promptIds.length === 0) return send(res, 201, sessionObject(k));
    // the prompt takes its turn in the scheduler like any other
    k.busy = true;
    await new Promise<void>((ok) => {
      const job: EngineJob = {
        promptIds,
        stop: [],
        session,
        sampler: { temperature: 0, topK: 0, topP: 1, seed: 0 },
        maxTokens: 0,
        eos: -1,
        logprobs: null,
        onToken: () => true,
        onEnd() {
          k.busy = false;
          k.lastUsed = Date.now();
          send(res, 201, sessionObject(k));
          ok();
        },
        onError(e) {
          endSession(k);
          sendError(res, e);
          ok();
        },
      };
      if (!engine.submit(job)) {
        endSession(k);
        sendError(
          res,
          new ApiError(429, 'the server is busy; retry shortly', 'rate_limit_error', null, 'queue_full', {
            'retry-after': '1',
          }),
        );
        ok();
        return;
      }
      res.on('close', () => {
        if (k.busy) {
          engine.cancel(job);
          endSession(k);
          ok();
        }
      });
    });
  }

  async function restoreSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const bytes = await readBody(req);
    if (draining) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'draining');
    if (sessions.size >= maxSessions) throw tooManySessions();
    let session: SessionRef;
    try {
      session = await engine.restoreSession(bytes);
    } catch (e) {
      // a state from another model, build or sampler, or a changed byte: the runtime says which
      throw new ApiError(
        400,
        `cannot restore this state: ${(e as Error).message}`,
        'invalid_request_error',
        null,
        'bad_state',
      );
    }
    if (sessions.size >= maxSessions) {
      engine.freeSession(session);
      throw tooManySessions();
    }
    const k: Kept = { id: randomBytes(16).toString('hex'), session, busy: false, lastUsed: Date.now() };
    sessions.set(k.id, k);
    send(res, 201, sessionObject(k));
  }

  function tooManySessions(): ApiError {
    return new ApiError(
      429,
      `this server keeps at most ${maxSessions} sessions: delete one first`,
      'rate_limit_error',
      null,
      'too_many_sessions',
      { 'retry-after': '1' },
    );
  }

  function modelObject() {
    return { id: modelId, object: 'model', created, owned_by: 'itera-lite' };
  }

  // idle and slow connections time out: headers within 10 s, the whole request within 30 s, an
  // idle keep-alive connection after 5 s (checked every second, not Node's default 30 s)
  const headersTimeout = o.headersTimeoutMs ?? 10_000;
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, o.requestTimeoutMs ?? 30_000),
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, headersTimeout / 4)),
    },
    (req, res) => {
      const t0 = performance.now();
      const rl: RequestLog = { route: 'other' };
      res.on('close', () => {
        const status = res.headersSent ? res.statusCode : 0;
        metrics.countRequest(rl.route, status);
        try {
          log(
            JSON.stringify({
              time: new Date().toISOString(),
              method: req.method,
              path: (req.url ?? '').split('?')[0].slice(0, 200),
              status,
              ms: Math.round((performance.now() - t0) * 1000) / 1000,
              remote: req.socket.remoteAddress,
              ...(rl.promptTokens !== undefined ? { prompt_tokens: rl.promptTokens } : {}),
              ...(rl.completionTokens !== undefined ? { completion_tokens: rl.completionTokens } : {}),
              ...(rl.ttftMs !== undefined ? { ttft_ms: rl.ttftMs } : {}),
              ...(res.writableFinished ? {} : { aborted: true }),
            }),
          );
        } catch {
          /* a log that cannot be written must not take the server down */
        }
      });
      route(req, res, rl).catch((e) => {
        try {
          sendError(res, e);
        } catch {
          res.destroy();
        }
      });
    },
  );
  server.timeout = timeoutMs + 10_000;
  // a request Node cannot parse, or one too slow to arrive, never reaches the handler
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    const status =
      e.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : e.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise<void>((ok, fail) => {
    server.once('error', (e) => {
      clearInterval(sweeper);
      void engine.close().finally(() => fail(e));
    });
    server.listen(o.port ?? SERVER_DEFAULTS.port, host, () => {
      server.removeAllListeners('error');
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((ok) => {
      clearInterval(sweeper);
      for (const l of [...live]) l.cut('the server is closing');
      engine.clear();
      for (const k of [...sessions.values()]) {
        k.busy = false;
        endSession(k);
      }
      server.close(() => void engine.close().then(ok, ok));
      server.closeAllConnections();
    });
    return closed;
  };

  return {
    server,
    url: `http://${shown}:${port}`,
    port,
    metrics,
    engine,
    async drain(deadlineMs = SERVER_DEFAULTS.drain * 1000) {
      // new requests get 503 (and /health says so) while the ones in flight finish
      draining = true;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([engine.whenIdle(), new Promise<void>((ok) => (t = setTimeout(ok, deadlineMs)))]);
      clearTimeout(t);
      for (const l of [...live]) l.cut('the server is shutting down: this request was cut at the drain deadline');
      // let the last writes leave before the sockets close
      await new Promise((ok) => setImmediate(ok));
      await close();
    },
    close,
  };
}
