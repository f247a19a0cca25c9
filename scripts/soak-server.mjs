#!/usr/bin/env node
// Soak test for itera serve (not in CI): N minutes of continuous streaming load on 127.0.0.1,
// then the server's resident memory growth after the first minute and every error.
//   npm run build && node scripts/soak-server.mjs [--minutes 10] [--clients 16] [--workers N] [--parallel 4]
// Prints one line a minute and a JSON summary at the end; exits 1 on any error or on growth over 5%.
import { Agent } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../dist/host/node/index.js';
import { bodyFor, rssOf, SERVER_BENCH_SETTINGS, startServe, stopServe, streamOnce } from '../dist/host/bench/server.js';

const { values: v } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '16' },
    workers: { type: 'string', default: String(availableParallelism()) },
    parallel: { type: 'string', default: '4' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (v.help) {
  console.log('usage: node scripts/soak-server.mjs [--minutes 10] [--clients 16] [--workers N] [--parallel 4]');
  process.exit(0);
}
const minutes = Number(v.minutes);
const clients = Number(v.clients);
if (!(minutes > 0) || !(clients >= 1)) throw new Error('--minutes and --clients must be positive numbers');
const root = join(fileURLToPath(import.meta.url), '..', '..');
const modelPath = join(root, 'models', 'student-q8_0.gguf');
const probe = await loadModel(modelPath);
const vocab = probe.config.vocabSize;
probe.dispose();
const srv = await startServe({ itera: [process.execPath, join(root, 'bin', 'itera.js')], modelPath, build: 'auto' }, [
  '--workers',
  v.workers,
  '--parallel',
  v.parallel,
  '--max-queue',
  String(clients * 2),
]);
const pid = srv.child.pid;
const agent = new Agent({ keepAlive: true, maxSockets: clients });
const t0 = Date.now();
const end = t0 + minutes * 60_000;
let requests = 0;
let tokens = 0;
const errors = new Map();
let rssAtOneMinute = null;
let peak = 0;
const samples = [];
const timer = setInterval(() => {
  const rss = rssOf(pid) ?? 0;
  peak = Math.max(peak, rss);
  const min = (Date.now() - t0) / 60_000;
  samples.push({ minute: Number(min.toFixed(2)), rss });
  if (rssAtOneMinute === null && min >= 1) rssAtOneMinute = rss;
}, 5_000);
const perMinute = setInterval(() => {
  const min = ((Date.now() - t0) / 60_000).toFixed(1);
  console.log(
    `${min} min: ${requests} requests, ${tokens} tokens, ${[...errors.values()].reduce((a, b) => a + b, 0)} errors, RSS ${((rssOf(pid) ?? 0) / 1e6).toFixed(1)} MB`,
  );
}, 60_000);
let k = 0;
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (Date.now() < end) {
      const i = k++;
      const s = SERVER_BENCH_SETTINGS[i % 2];
      const o = await streamOnce(agent, srv.url, bodyFor(i, s, vocab, 64), 120_000);
      requests++;
      if (o.ok) tokens += o.tokens;
      else {
        const key = `${o.status} ${o.error ?? ''}`.trim();
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }
  }),
);
clearInterval(timer);
clearInterval(perMinute);
const last = rssOf(pid);
agent.destroy();
const code = await stopServe(srv);
const growth = rssAtOneMinute && last ? last / rssAtOneMinute - 1 : null;
const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
const summary = {
  minutes,
  clients,
  workers: Number(v.workers),
  parallel: Number(v.parallel),
  requests,
  tokens,
  errors: errorCount,
  errorKinds: Object.fromEntries(errors),
  rssAtOneMinuteBytes: rssAtOneMinute,
  rssAtEndBytes: last,
  peakRssBytes: peak,
  growthAfterFirstMinute: growth,
  exitCode: code,
};
console.log(JSON.stringify(summary, null, 2));
process.exit(errorCount === 0 && code === 0 && growth !== null && growth <= 0.05 ? 0 : 1);
