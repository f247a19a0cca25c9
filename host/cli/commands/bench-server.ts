// itera bench --server: the inference server's benchmark (host/bench/server.ts), its table, its
// JSON (itera-bench-server/1) and its SVG charts.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../node/index.js';
import { runServerBench } from '../../bench/server.js';
import { SERVER_BENCH_JSON_SCHEMA, validateServerBench, type ServerBenchDocument } from '../../bench/server-schema.js';
import { barChart, PALETTE } from '../../report/svg.js';
import { num, str, type Values } from '../command.js';
import type { Io } from '../command.js';
import { buildFrom, modelPathFrom, openModel } from './model-option.js';

export const serverBenchHelp = `Server mode (--server): the figures of docs/server.md, each a ratio to single-stream
generate() measured in the same run; student Q8_0 by default (models/student-q8_0.gguf, not the
default model), 64-token completions, greedy and temperature 0.8: (a) ${'--batch'} sequences at
once through the server's scheduler in this thread; (b) 'itera serve' as a child process under
--clients concurrent streaming clients (prompts of 4 to 32 tokens), --requests per setting, with
--workers 1 and with one worker per core; (c) overload: --overload-clients at once against
--max-queue 64, with the server's resident memory.
      --server            run the server benchmark instead of the model benchmark
      --requests N        requests per (workers, setting) over HTTP (default 10000)
      --clients C         concurrent streaming clients (default 32)
      --parallel P        slots in all for the HTTP phase, split over the workers (default:
                          --clients, so that no client waits for a slot)
      --batch B           sequences at once in the in-process phase (default 16)
      --rounds R          rounds of the in-process phase (default 3)
      --overload-clients N  clients at once in the overload phase (default 256)
      --svg DIR           also write server-ratios.svg and server-ttft.svg to DIR
      --print-server-schema  print the JSON Schema of its document and exit`;

export const serverBenchOptions = {
  server: { type: 'boolean' },
  requests: { type: 'string' },
  clients: { type: 'string' },
  parallel: { type: 'string' },
  batch: { type: 'string' },
  rounds: { type: 'string' },
  'overload-clients': { type: 'string' },
  svg: { type: 'string' },
  'print-server-schema': { type: 'boolean' },
} as const;

/** models/student-q8_0.gguf beside the default model, when it is there (else the default). */
function studentQ8(v: Values): string {
  const d = modelPathFrom({ ...v, model: undefined });
  const q8 = join(dirname(d), 'student-q8_0.gguf');
  return existsSync(q8) ? q8 : d;
}

export async function benchServer(given: Values, io: Io, version: string): Promise<number> {
  // --model may be repeated for the model bench; the server bench serves the first, or the
  // student Q8_0 the figures are for (not the default model, which is Q4_0)
  const named = Array.isArray(given.model) ? (given.model[0] as string) : (given.model as string | undefined);
  const v: Values = { ...given, model: named ?? studentQ8(given) };
  if (v['print-server-schema']) {
    io.out.write(JSON.stringify(SERVER_BENCH_JSON_SCHEMA, null, 2) + '\n');
    return 0;
  }
  const cores = availableParallelism();
  const clients = num(v, 'clients', { int: true, min: 1, max: 1024 }) ?? 32;
  const model = await openModel(v);
  const say = (l: string) => io.err.write(l + '\n');
  try {
    const doc = await runServerBench({
      model,
      modelPath: modelPathFrom(v),
      build: buildFrom(v),
      itera: [process.execPath, join(packageRoot(), 'bin', 'itera.js')],
      maxTokens: 64,
      rounds: num(v, 'rounds', { int: true, min: 1, max: 100 }) ?? 3,
      batch: num(v, 'batch', { int: true, min: 1, max: 256 }) ?? 16,
      clients,
      requests: num(v, 'requests', { int: true, min: 1 }) ?? 10_000,
      parallel: num(v, 'parallel', { int: true, min: 1, max: 1024 }) ?? clients,
      workers: cores > 1 ? [1, cores] : [1],
      overload: {
        clients: num(v, 'overload-clients', { int: true, min: 1, max: 4096 }) ?? 256,
        maxQueue: 64,
        parallel: 4,
        workers: cores,
      },
      command: ['itera', 'bench', ...process.argv.slice(3)],
      version,
      note: say,
    });
    const errors = validateServerBench(doc);
    if (errors.length) throw new Error('the document does not match its schema:\n' + errors.join('\n'));
    const out = str(v, 'json');
    if (out === '-') io.out.write(JSON.stringify(doc, null, 2) + '\n');
    else {
      if (out) writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
      io.out.write(table(doc));
    }
    const dir = str(v, 'svg');
    if (dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'server-ratios.svg'), ratiosChart(doc));
      writeFileSync(join(dir, 'server-ttft.svg'), ttftChart(doc));
    }
    return 0;
  } finally {
    model.dispose();
  }
}

const mark = (met: boolean) => (met ? 'met' : 'MISSED');

function table(d: ServerBenchDocument): string {
  const l: string[] = [
    `itera bench --server: ${d.settings.model}, ${d.settings.maxTokens}-token completions, ${d.machine.cores} cores, load average ${d.machine.loadAverageBefore.map((x) => x.toFixed(1)).join(' ')} before, ${d.machine.loadAverageAfter.map((x) => x.toFixed(1)).join(' ')} after`,
  ];
  for (const r of d.inProcess)
    l.push(
      `in-process ${r.setting}: ${r.batch} at once ${r.ratio.median.toFixed(2)}x generate() (${r.ratio.min.toFixed(2)}-${r.ratio.max.toFixed(2)}), mean batch ${r.meanBatch.median.toFixed(1)}, same tokens ${r.sameTokens}; goal 2x, batch 12: ${mark(r.goal.met)}`,
    );
  for (const r of d.http)
    l.push(
      `HTTP --workers ${r.workers} ${r.setting}: ${r.ratio.toFixed(2)}x (${r.tokensPerSecond.toFixed(0)} tok/s), p99 TTFT ${r.ttftMs.p99.toFixed(1)} ms, ${r.failures}/${r.requests} failed, mean batch ${r.meanBatch.toFixed(1)}; goal ${r.goal.ratio}x, 50 ms: ${mark(r.goal.met)}`,
    );
  const o = d.overload;
  l.push(
    `overload: ${o.completed} completed (at least ${o.minCompleted}), ${o.rejected429} got 429, ${o.other} other, ${o.hung} hung; RSS after / idle ${o.rssRatio?.toFixed(3) ?? '?'}: ${mark(o.goal.met)}`,
  );
  return l.join('\n') + '\n';
}

export function ratiosChart(d: ServerBenchDocument): string {
  return barChart({
    title: 'itera serve: tokens/s as a ratio to single-stream generate()',
    subtitle: `${d.machine.cores} cores shared with other work (load ${d.machine.loadAverageBefore[0].toFixed(1)}), ${d.settings.maxTokens}-token completions; dashed: the goals`,
    unit: 'x',
    panels: [
      {
        title: `in-process, ${d.settings.batch} sequences at once (median, min-max over ${d.settings.rounds} rounds)`,
        bars: d.inProcess.map((r, k) => ({
          label: r.setting,
          value: r.ratio.median,
          min: r.ratio.min,
          max: r.ratio.max,
          color: PALETTE[k],
          note: `${r.ratio.median.toFixed(2)}x, batch ${r.meanBatch.median.toFixed(1)}`,
        })),
        lines: [{ at: 2, label: 'goal 2x' }],
      },
      ...[...new Set(d.http.map((r) => r.workers))].map((w) => ({
        title: `HTTP, ${d.settings.clients} streaming clients, --workers ${w}`,
        bars: d.http
          .filter((r) => r.workers === w)
          .map((r, k) => ({
            label: r.setting,
            value: r.ratio,
            color: PALETTE[k],
            note: `${r.ratio.toFixed(2)}x, batch ${r.meanBatch.toFixed(1)}`,
          })),
        lines: [{ at: w === 1 ? 1.5 : 2.5, label: `goal ${w === 1 ? 1.5 : 2.5}x` }],
      })),
    ],
  });
}

export function ttftChart(d: ServerBenchDocument): string {
  return barChart({
    title: 'itera serve: time to first token under load',
    subtitle: `${d.settings.clients} streaming clients, ${d.settings.requests} requests each; dashed: the 50 ms goal for p99`,
    unit: 'ms',
    panels: (['p50', 'p99'] as const).map((q) => ({
      title: q,
      bars: d.http.map((r, k) => ({
        label: `--workers ${r.workers}, ${r.setting}`,
        value: r.ttftMs[q],
        color: PALETTE[k % PALETTE.length],
        note: `${r.ttftMs[q].toFixed(1)} ms`,
      })),
      lines: [{ at: 50, label: '50 ms' }],
    })),
  });
}
