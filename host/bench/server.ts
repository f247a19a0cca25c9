// itera bench --server: the inference server's figures (issue 13), each a ratio to single-stream
// generate() measured in the same run. (a) 16 sequences at once through the server's own
// Scheduler in this thread; (b) `itera serve` as a child process under C concurrent streaming
// clients (a small node:http client here: it times each stream's first event, which a request-rate
// load generator does not), with --workers 1 and with the default workers; (c) overload: many
// clients at once against --max-queue, each answered or refused, none hanging, and the server's
// resident memory before and after. docs/server.md shows the figures and the commands.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import type { IteraModel } from '../runtime/api.js';
import { percentile } from '../runtime/stats.js';
import { Metrics } from '../server/metrics.js';
import { batchedStepper, Scheduler, type Job } from '../server/scheduler.js';
import { benchTokens, stat } from './runner.js';
import {
  SERVER_BENCH_ID,
  type HttpResult,
  type InProcessResult,
  type OverloadResult,
  type ServerBenchDocument,
  type ServerBenchSettings,
} from './server-schema.js';

export const SERVER_BENCH_SETTINGS = [
  { name: 'greedy', temperature: 0, topK: 0, topP: 1 },
  { name: 'temperature 0.8', temperature: 0.8, topK: 0, topP: 1 },
] as const;
export type Setting = (typeof SERVER_BENCH_SETTINGS)[number];

export interface ServerBenchInput extends ServerBenchSettings {
  model: IteraModel;
  modelPath: string;
  build: 'auto' | 'simd' | 'scalar' | 'relaxed';
  /** argv that starts `itera` (node and bin/itera.js). */
  itera: string[];
  /** settleSeconds: how long the overload phase waits at most for resident memory to come back
   *  (default 60) */
  overload: { clients: number; maxQueue: number; parallel: number; workers: number; settleSeconds?: number };
  command: string[];
  version: string;
  note?: (line: string) => void;
}

/** A prompt of 4 to 32 token ids, the same for every run. */
function promptFor(i: number, vocab: number): number[] {
  return benchTokens(4 + ((i * 13) % 29), 4, vocab, 1000 + i);
}

// ---------------------------------------------------------------------------------------------
// (a) in-process: generate() one after another, then the same jobs through the Scheduler

function singleStream(
  model: IteraModel,
  s: Setting,
  jobs: number,
  maxTokens: number,
): { tps: number; ids: number[][] } {
  const V = model.config.vocabSize;
  const ids: number[][] = [];
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; i < jobs; i++) {
    const r = model.generate(promptFor(i, V), { ...s, seed: i + 1, maxTokens, stopAtEos: false });
    tokens += r.ids.length;
    ids.push(r.ids);
  }
  return { tps: tokens / ((performance.now() - t0) / 1000), ids };
}

async function batched(
  model: IteraModel,
  s: Setting,
  jobs: number,
  batch: number,
  maxTokens: number,
): Promise<{ tps: number; ids: number[][]; meanBatch: number }> {
  const V = model.config.vocabSize;
  const metrics = new Metrics();
  const sched = new Scheduler(model, batch, jobs, metrics, batchedStepper(model));
  const ids: number[][] = Array.from({ length: jobs }, () => []);
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; i < jobs; i++) {
    const job: Job = {
      promptIds: promptFor(i, V),
      sampler: { temperature: s.temperature, topK: s.topK, topP: s.topP, seed: i + 1 },
      maxTokens,
      eos: -1,
      logprobs: null,
      onToken: (t) => (ids[i].push(t.id), tokens++, false),
      onEnd: () => {},
      onError: (e) => {
        throw e;
      },
    };
    sched.submit(job);
  }
  await sched.whenIdle();
  const tps = tokens / ((performance.now() - t0) / 1000);
  return { tps, ids, meanBatch: metrics.batch.sum / metrics.batch.count };
}

async function inProcess(i: ServerBenchInput): Promise<{ results: InProcessResult[]; single: Map<string, number> }> {
  const jobs = i.batch * 2;
  const results: InProcessResult[] = [];
  const single = new Map<string, number>();
  for (const s of SERVER_BENCH_SETTINGS) {
    const one: number[] = [];
    const many: number[] = [];
    const ratio: number[] = [];
    const batches: number[] = [];
    let same = true;
    // a warm-up of each, then rounds that interleave them so a busy spell slows both alike
    singleStream(i.model, s, 2, i.maxTokens);
    await batched(i.model, s, 2, 2, i.maxTokens);
    for (let r = 0; r < i.rounds; r++) {
      const a = singleStream(i.model, s, jobs, i.maxTokens);
      const b = await batched(i.model, s, jobs, i.batch, i.maxTokens);
      same &&= JSON.stringify(a.ids) === JSON.stringify(b.ids);
      one.push(a.tps);
      many.push(b.tps);
      ratio.push(b.tps / a.tps);
      batches.push(b.meanBatch);
      i.note?.(
        `in-process ${s.name} round ${r + 1}: generate() ${a.tps.toFixed(0)} tok/s, ${i.batch} at once ${b.tps.toFixed(0)} tok/s (mean batch ${b.meanBatch.toFixed(1)})`,
      );
    }
    const r = stat(ratio);
    single.set(s.name, stat(one).median);
    results.push({
      setting: s.name,
      jobs,
      batch: i.batch,
      singleTokensPerSecond: stat(one),
      batchedTokensPerSecond: stat(many),
      ratio: r,
      meanBatch: stat(batches),
      sameTokens: same,
      goal: { ratio: 2, meanBatch: 12, met: r.median >= 2 && stat(batches).median >= 12 },
    });
  }
  return { results, single };
}

// ---------------------------------------------------------------------------------------------
// the server as a child process, and a streaming client

export interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

export async function startServe(
  i: Pick<ServerBenchInput, 'itera' | 'modelPath' | 'build'>,
  args: string[],
): Promise<Served> {
  const child = spawn(
    i.itera[0],
    [...i.itera.slice(1), 'serve', '--port', '0', '--model', i.modelPath, '--build', i.build, ...args],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const exited = new Promise<number | null>((ok) => child.on('exit', (c) => ok(c)));
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('itera serve was not ready in 60 s: ' + out)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    void exited.then((c) => fail(new Error(`itera serve exited (${c}) before it was ready: ${out}`)));
  });
  return { child, url, exited };
}

export async function stopServe(s: Served): Promise<number | null> {
  s.child.kill('SIGTERM');
  return s.exited;
}

/** Resident memory of a process (Linux /proc), in bytes; null elsewhere. */
export function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface Outcome {
  status: number;
  ttftMs: number | null;
  tokens: number;
  ok: boolean;
  hung: boolean;
  error?: string;
}

/** One streaming completion: the status, the time to its first event, its completion tokens, and
 *  whether it ended with [DONE] and no error event. */
export function streamOnce(agent: Agent, url: string, body: unknown, deadlineMs: number): Promise<Outcome> {
  const u = new URL(url + '/v1/completions');
  const text = JSON.stringify(body);
  return new Promise((done) => {
    const t0 = performance.now();
    let ttft: number | null = null;
    let tokens = 0;
    let buf = '';
    let finished = false;
    let failed: string | undefined;
    const end = (o: Omit<Outcome, 'ttftMs' | 'tokens'>) => {
      clearTimeout(timer);
      done({ ...o, ttftMs: ttft, tokens, ...(failed && !o.error ? { error: failed } : {}) });
    };
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (res.statusCode !== 200) return;
          buf += c;
          let k: number;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, k);
            buf = buf.slice(k + 2);
            if (!ev.startsWith('data: ')) continue;
            ttft ??= performance.now() - t0;
            const data = ev.slice(6);
            if (data === '[DONE]') {
              finished = true;
              continue;
            }
            const j = JSON.parse(data) as { error?: { message: string }; usage?: { completion_tokens: number } };
            if (j.error) failed = j.error.message;
            if (j.usage) tokens = j.usage.completion_tokens;
          }
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          end({ status, ok: status === 200 && finished && !failed, hung: false });
        });
        res.on('error', (e) => end({ status: res.statusCode ?? 0, ok: false, hung: false, error: e.message }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      end({ status: 0, ok: false, hung: true, error: `no end within ${deadlineMs} ms` });
    }, deadlineMs);
    req.on('error', (e) => end({ status: 0, ok: false, hung: false, error: e.message }));
    req.end(text);
  });
}

export function bodyFor(i: number, s: Setting, vocab: number, maxTokens: number) {
  return {
    prompt: promptFor(i, vocab),
    max_tokens: maxTokens,
    temperature: s.temperature,
    top_k: s.topK,
    top_p: s.topP,
    seed: i + 1,
    stream: true,
    ignore_eos: true,
  };
}

/** The decode batch histogram's sum and count from /metrics. */
async function batchFigures(url: string): Promise<{ sum: number; count: number }> {
  const t = await (await fetch(url + '/metrics')).text();
  const g = (n: string) => Number(new RegExp(`^itera_decode_batch_size_${n} (\\S+)$`, 'm').exec(t)?.[1] ?? NaN);
  return { sum: g('sum'), count: g('count') };
}

// ---------------------------------------------------------------------------------------------
// (b) HTTP under C concurrent streaming clients

async function httpPhase(i: ServerBenchInput, single: Map<string, number>): Promise<HttpResult[]> {
  const V = i.model.config.vocabSize;
  const out: HttpResult[] = [];
  for (const workers of i.workers) {
    // the slots in all split over the workers: --parallel 32 with one, 16 each with two
    const parallel = Math.ceil(i.parallel / workers);
    const srv = await startServe(i, [
      '--workers',
      String(workers),
      '--parallel',
      String(parallel),
      '--max-queue',
      String(i.clients * 2),
    ]);
    const agent = new Agent({ keepAlive: true, maxSockets: i.clients });
    try {
      // warm-up: one request per client
      await Promise.all(
        Array.from({ length: i.clients }, (_, c) =>
          streamOnce(agent, srv.url, bodyFor(c, SERVER_BENCH_SETTINGS[0], V, 8), 60_000),
        ),
      );
      for (const s of SERVER_BENCH_SETTINGS) {
        const before = await batchFigures(srv.url);
        const ttfts: number[] = [];
        let tokens = 0;
        let failures = 0;
        let next = 0;
        const errors = new Set<string>();
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: i.clients }, async () => {
            while (next < i.requests) {
              const k = next++;
              const o = await streamOnce(agent, srv.url, bodyFor(k, s, V, i.maxTokens), 120_000);
              if (!o.ok) {
                failures++;
                errors.add(`${o.status} ${o.error ?? ''}`.trim());
              } else {
                tokens += o.tokens;
                if (o.ttftMs !== null) ttfts.push(o.ttftMs);
              }
            }
          }),
        );
        const secs = (performance.now() - t0) / 1000;
        const after = await batchFigures(srv.url);
        const tps = tokens / secs;
        const ratio = tps / single.get(s.name)!;
        const goal = workers === 1 ? 1.5 : 2.5;
        const p99 = ttfts.length ? percentile(ttfts, 99) : NaN;
        const r: HttpResult = {
          workers,
          parallel,
          clients: i.clients,
          setting: s.name,
          requests: i.requests,
          failures,
          ...(errors.size ? { errors: [...errors].slice(0, 5) } : {}),
          seconds: secs,
          tokensPerSecond: tps,
          ratio,
          ttftMs: { p50: ttfts.length ? percentile(ttfts, 50) : NaN, p99 },
          meanBatch: (after.sum - before.sum) / (after.count - before.count),
          goal: {
            ratio: goal,
            ttftP99Ms: 50,
            met: ratio >= goal && p99 <= 50 && failures === 0 && i.requests >= 10_000,
          },
        };
        out.push(r);
        i.note?.(
          `HTTP --workers ${workers} ${s.name}: ${i.requests} requests, ${failures} failed, ${tps.toFixed(0)} tok/s (${ratio.toFixed(2)}x), p99 TTFT ${p99.toFixed(1)} ms, mean batch ${r.meanBatch.toFixed(1)}`,
        );
      }
    } finally {
      agent.destroy();
      const code = await stopServe(srv);
      if (code !== 0) i.note?.(`itera serve --workers ${workers} exited ${code} after SIGTERM`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// (c) overload: every client at once against --max-queue

async function overload(i: ServerBenchInput): Promise<OverloadResult> {
  const V = i.model.config.vocabSize;
  const o = i.overload;
  const srv = await startServe(i, [
    '--workers',
    String(o.workers),
    '--parallel',
    String(o.parallel),
    '--max-queue',
    String(o.maxQueue),
  ]);
  const agent = new Agent({ keepAlive: true, maxSockets: o.clients });
  const pid = srv.child.pid!;
  try {
    const s = SERVER_BENCH_SETTINGS[1];
    for (let k = 0; k < 4; k++) await streamOnce(agent, srv.url, bodyFor(k, s, V, i.maxTokens), 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssOf(pid);
    let peak = idle ?? 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid) ?? 0)), 50);
    const t0 = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: o.clients }, (_, k) => streamOnce(agent, srv.url, bodyFor(k, s, V, i.maxTokens), 120_000)),
    );
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    agent.destroy();
    // memory returns once the server's collectors have run and given pages back, which V8 does
    // after some idle seconds (5 s was too soon: 116 MB then, 109 MB at 10 s, 86 MB at 40 s, from
    // 99 MB idle): read it each second until it is within 10% of idle, for settleSeconds at most
    let after = rssOf(pid);
    let waited = 0;
    for (; waited < (o.settleSeconds ?? 60) && !(idle && after && after <= idle * 1.1); waited++) {
      await new Promise((r) => setTimeout(r, 1000));
      after = rssOf(pid);
    }
    const completed = outcomes.filter((x) => x.ok).length;
    const rejected = outcomes.filter((x) => x.status === 429).length;
    const hung = outcomes.filter((x) => x.hung).length;
    const other = o.clients - completed - rejected;
    const minCompleted = o.workers * o.parallel + o.maxQueue;
    const rssRatio = idle && after ? after / idle : null;
    const r: OverloadResult = {
      workers: o.workers,
      parallel: o.parallel,
      maxQueue: o.maxQueue,
      clients: o.clients,
      setting: s.name,
      seconds: secs,
      completed,
      rejected429: rejected,
      other,
      hung,
      minCompleted,
      rssBytes: { idle, peak: peak || null, after },
      rssRatio,
      goal: {
        met: other === 0 && hung === 0 && completed >= minCompleted && rssRatio !== null && rssRatio <= 1.1,
      },
    };
    i.note?.(
      `overload ${o.clients} clients vs --max-queue ${o.maxQueue} (${o.workers} workers x ${o.parallel}): ${completed} completed, ${rejected} got 429, ${other} other, ${hung} hung; RSS idle ${((idle ?? 0) / 1e6).toFixed(1)} MB, peak ${(peak / 1e6).toFixed(1)} MB, after ${((after ?? 0) / 1e6).toFixed(1)} MB (${waited} s after the burst)`,
    );
    return r;
  } finally {
    agent.destroy();
    await stopServe(srv);
  }
}

export async function runServerBench(i: ServerBenchInput): Promise<ServerBenchDocument> {
  const t0 = performance.now();
  const loadBefore = loadavg();
  const { results: inproc, single } = await inProcess(i);
  const http = await httpPhase(i, single);
  const over = await overload(i);
  return {
    schema: SERVER_BENCH_ID,
    createdAt: new Date().toISOString(),
    tool: { name: 'itera', version: i.version, command: i.command },
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      node: process.version,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
      note: 'the 1, 5 and 15-minute load averages: other work shared this machine during the run',
    },
    settings: {
      model: i.modelPath,
      maxTokens: i.maxTokens,
      promptTokens: [4, 32],
      rounds: i.rounds,
      batch: i.batch,
      clients: i.clients,
      requests: i.requests,
      parallel: i.parallel,
      workers: i.workers,
    },
    singleStream: Object.fromEntries(single) as Record<string, number>,
    inProcess: inproc,
    http,
    overload: over,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
