import type { Command, Values } from '../command.js';
import { fmtBytes, fmtInt, num, str, UsageError } from '../command.js';
import { buildFrom, modelPathFrom } from './model-option.js';
import { loadModel, packageRoot, resolveBuild, wasmPath } from '../../node/index.js';
import { loadBrown } from '../../data/brown.js';
import { measureLength } from '../../bench/length.js';
import { collectDiagnostics } from '../../diag/node.js';
import { prefillCeiling } from '../../bench/ceiling.js';
import { runBench, type PeerId } from '../../bench/runner.js';
import { raplMeter } from '../../bench/energy.js';
import { requantize } from '../../bench/requantize.js';
import {
  BENCH_JSON_SCHEMA,
  validateBenchDocument,
  type BenchDocument,
  type EngineResult,
  type Ratio,
  type Stat,
} from '../../bench/schema.js';
import { Progress } from '../progress.js';
import { compressorBaselines, formatBaselines } from '../../bench/compressors.js';
import { baselineTrainingText, checkRoundTrip, qualityText } from './held-out.js';
import { benchServer, serverBenchHelp, serverBenchOptions } from './bench-server.js';
import { IteraError } from '../../runtime/types.js';
import { readModelFile } from '../../runtime/model-file.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEFAULT_REFERENCE = ['..', 'shared', 'reference', 'onnx', 'itera_lite_micro.onnx'];

export const bench: Command = {
  name: 'bench',
  summary: 'benchmark models on this machine, with ONNX Runtime (native and WASM) side by side',
  help: `Usage: itera bench [--model FILE]... [--quant TYPES] [--runs R | --duration S] [--json OUT.json]

Measures each model on this machine, one thread, and runs the same model on the same tokens in
ONNX Runtime native (onnxruntime-node) and WebAssembly (onnxruntime-web): one phase per peer
(native first: onnxruntime-web in the same process slowed native's prefill), each interleaving
ours and the peer round by round over every model, so that a machine busy for a while slows every
engine and every model alike:
  file size, load + instantiate time (cold, then warm), time to first token, prefill tokens/s
  (a context of T tokens, last logits), decode tokens/s (greedy, one call per token) with
  per-token latency p50/p95/p99, our sampled decode tokens/s beside greedy (temperature 0.8; the
  CLI's defaults; top-p 0.95 alone; top-k = V; temperature 1.5 with top-p 0.99) as ratios, our
  API's stream() over generate() tokens/s (greedy; the CLI's defaults), scoring tokens/s (every
  position's logits), WebAssembly memory, process RSS, CPU utilisation, parameters and FLOPs per
  token (exact, and the research report's formula), energy per token where Linux RAPL is
  readable, and perplexity on --eval text.
Every figure is min / median / max over the runs, after a warm-up round. Our speed is printed as
a ratio to each peer (ours / peer, paired within each round). The original's ONNX export
(../shared/reference/onnx/itera_lite_micro.onnx) runs too when present, as a speed reference.
A 'ceiling' line sets each model's prompt work against the SIMD peak 'itera diag' measures: the
matrix multiply-adds per prompt position, their time at that peak, and each engine's time per
position. The JSON document (docs/bench-schema.md) embeds 'itera diag'.

Options:
  -m, --model FILE     a model file (.gguf); repeat for several; default: the shipped default model
      --quant TYPES    also bench each model re-stored as these types (comma-separated, e.g. F16,Q8_0)
  -r, --runs R         measured rounds (default 5)
      --duration S     instead of a count, repeat rounds for S seconds per model (at least one)
      --peers LIST     all (default: ort-node, ort-web, and itera-simd with --build relaxed),
                       none, or a list of ort-node, ort-web, itera-simd
      --reference FILE the original's ONNX export (default ../shared/reference/onnx/...; 'none' to skip)
      --context N      tokens of the prefill/score context (default: the model's T)
      --prompt N       tokens of the time-to-first-token prompt (default 32)
      --eval FILE      a text to measure perplexity and bits per character on (quality beside
                       speed); brown-test: the held-out Brown test split
      --baselines      also the --eval text under xz -9e, zstd -19, bzip2 -9 and PPMd (7z
                       -m0=PPMd:mem=1g:o=8), run for real, in bits per character beside the models'
                       (itera report shows them); every model's tokenizer must give the text back
      --train FILE     with --baselines: the training text the compressors are also given (brown:
                       the Brown training split, as our models were trained)
      --json FILE      write the JSON document to FILE ('-' prints it instead of the table)
      --build B        our WebAssembly build: auto (default), simd, scalar, relaxed (then the
                       SIMD build runs beside it as the peer itera-simd, for same-run ratios)
      --length         also past the context T (issue 15): bits per character over token positions
                       [T, 4T) against [T/2, T) of held-out Brown test documents, each read from its
                       start (goal: at most +0.01), and the tokens/s of tokens 9,901-10,000 of one
                       greedy generation against tokens 1-100 (goal: at least 90%), --runs times
      --length-docs N  documents for --length (default: every test document with at least 4T
                       tokens, 54 at T = 128 or 256; N: the first N of them)
      --length-tokens N  tokens generated for --length's speed (default 10000)
      --print-schema   print the JSON Schema of the document and exit
  -h, --help           this help

${serverBenchHelp}

Examples:
  itera bench --model micro.gguf --json results/micro.json
  itera bench --model micro.gguf --runs 1 --peers none          (cheap: emulated devices)
  itera bench --model models/student-mix.gguf --length --runs 3 --peers none
  itera bench --server --json reports/server/bench-server.json --svg reports/server`,
  options: {
    model: { type: 'string', short: 'm', multiple: true },
    quant: { type: 'string' },
    runs: { type: 'string', short: 'r' },
    duration: { type: 'string' },
    peers: { type: 'string' },
    reference: { type: 'string' },
    context: { type: 'string' },
    prompt: { type: 'string' },
    eval: { type: 'string' },
    baselines: { type: 'boolean' },
    train: { type: 'string' },
    json: { type: 'string' },
    build: { type: 'string' },
    'print-schema': { type: 'boolean' },
    length: { type: 'boolean' },
    'length-docs': { type: 'string' },
    'length-tokens': { type: 'string' },
    ...serverBenchOptions,
  },
  async run(v, _p, io) {
    if (v.server || v['print-server-schema']) return benchServer(v, io, version());
    if (v['print-schema']) {
      io.out.write(JSON.stringify(BENCH_JSON_SCHEMA, null, 2) + '\n');
      return 0;
    }
    const runs = num(v, 'runs', { int: true, min: 1, max: 1000 }) ?? 5;
    const durationS = num(v, 'duration', { min: 0.1, max: 86400 }) ?? null;
    const contextTokens = num(v, 'context', { int: true, min: 2 }) ?? null;
    const promptTokens = num(v, 'prompt', { int: true, min: 1 }) ?? null;
    const asked = buildFrom(v);
    const peers = parsePeers(str(v, 'peers') ?? 'all', asked === 'relaxed');
    const lengthDocs = num(v, 'length-docs', { int: true, min: 1 }) ?? Infinity;
    const lengthTokens = num(v, 'length-tokens', { int: true, min: 200 }) ?? 10_000;
    if (!v.length && (v['length-docs'] !== undefined || v['length-tokens'] !== undefined))
      throw new UsageError('--length-docs and --length-tokens go with --length');
    const paths = modelPaths(v);
    const quants = (str(v, 'quant') ?? '')
      .split(',')
      .map((s) => s.trim().toUpperCase())
      .filter(Boolean);
    const models: { path: string; bytes: Uint8Array }[] = [];
    for (const p of paths) {
      const full = resolve(p);
      if (!existsSync(full)) throw new IteraError(`model file not found: ${full}`, 'NO_FILE');
      const bytes = readFileSync(full);
      models.push({ path: p, bytes });
      for (const q of quants) models.push({ path: `${p} as ${q}`, bytes: requantize(bytes, q) });
    }
    const refArg = str(v, 'reference');
    const refPath = refArg ?? join(packageRoot(), ...DEFAULT_REFERENCE);
    const reference =
      refArg === 'none'
        ? { reason: 'skipped (--reference none)' }
        : peers.length === 0
          ? { reason: 'no ONNX Runtime peer asked for (--peers none)' }
          : existsSync(refPath)
            ? {
                path: refArg ?? '../shared/reference/onnx/itera_lite_micro.onnx',
                bytes: readFileSync(refPath) as Uint8Array,
              }
            : { reason: `the original's ONNX export is not at ${refPath}` };
    const evalPath = str(v, 'eval');
    const evalName = evalPath === 'brown-test' ? 'Brown test split (held out)' : basename(evalPath ?? '');
    const evalBody = evalPath === undefined ? undefined : qualityText(evalPath, '--eval');
    const evalText = evalBody === undefined ? { reason: 'no --eval text given' } : { name: evalName, text: evalBody };
    const trainArg = str(v, 'train');
    if (v.baselines && evalBody === undefined) throw new UsageError('--baselines needs --eval TEXT');
    if (trainArg !== undefined && !v.baselines) throw new UsageError('--train is for --baselines');
    const trainText = v.baselines ? baselineTrainingText(trainArg) : undefined;
    if (v.baselines && evalBody !== undefined)
      for (const m of models) {
        // refused before the long run, not after it: the file's tokenizer alone, no module
        const tok = readModelFile(m.bytes).tokenizer;
        checkRoundTrip(tok.decode(tok.encode(evalBody)), evalBody, m.path);
      }

    const rb = await resolveBuild(asked);
    if (rb.note !== null) io.err.write(`itera bench: warning: ${rb.note}\n`);
    const diag = await collectDiagnostics();
    const bar = new Progress('bench', 1, io.err as NodeJS.WriteStream);
    const notes: string[] = [];
    const doc = await runBench({
      models,
      wasm: rb.bytes,
      simdWasm: peers.includes('itera-simd') ? readFileSync(wasmPath('simd')) : undefined,
      build: { asked, ran: rb.build, note: rb.note, fusedMadd: rb.fused },
      runs,
      durationS,
      peers,
      reference,
      contextTokens,
      promptTokens,
      evalText,
      energy: raplMeter(),
      ortWasmDir: pathToFileURL(join(packageRoot(), 'node_modules', 'onnxruntime-web', 'dist') + '/').href,
      diag,
      tool: { name: 'itera', version: version(), command: ['itera', 'bench', ...process.argv.slice(3)] },
      onProgress: (label, done, total) => {
        const b = bar as unknown as { total: number };
        b.total = total;
        bar.update(done, label);
      },
      onNote: (line) => notes.push(line),
    });
    bar.done();
    if (v.length) {
      const docs = loadBrown({ split: 'test' }).map((d) => d.text);
      for (let i = 0; i < models.length; i++) {
        const m = await loadModel(models[i]!.bytes, { build: buildFrom(v) });
        try {
          doc.models[i]!.length = await measureLength(m, docs, 'Brown test split (held out)', {
            runs,
            maxDocuments: lengthDocs,
            tokens: lengthTokens,
            onProgress: (label) => io.err.write(`${models[i]!.path}: ${label}\n`),
          });
        } finally {
          m.dispose();
        }
      }
    }
    if (v.baselines && evalBody !== undefined) {
      const text = evalBody;
      doc.baselines = {
        text: evalName,
        characters: text.length,
        bytes: Buffer.byteLength(text, 'utf8'),
        training: trainArg === undefined ? null : trainArg === 'brown' ? 'Brown training split' : basename(trainArg),
        rows: compressorBaselines(text, trainText, undefined, (name) => io.err.write(`baselines: ${name}...\n`)),
      };
    }
    const errors = validateBenchDocument(doc);
    if (errors.length)
      throw new IteraError(
        `internal error: the bench document does not match its schema:\n  ${errors.slice(0, 10).join('\n  ')}`,
        'BENCH_SCHEMA',
      );
    const out = str(v, 'json');
    if (out === '-') io.out.write(JSON.stringify(doc, null, 2) + '\n');
    else {
      io.out.write(formatBench(doc));
      if (out !== undefined) {
        writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
        io.out.write(`\nwrote ${out}\n`);
      }
    }
    return 0;
  },
};

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

function modelPaths(v: Values): string[] {
  const m = v.model;
  if (Array.isArray(m) && m.length > 0) return m as string[];
  return [modelPathFrom({})];
}

function parsePeers(s: string, relaxed: boolean): PeerId[] {
  if (s === 'all') return relaxed ? ['ort-node', 'ort-web', 'itera-simd'] : ['ort-node', 'ort-web'];
  if (s === 'none') return [];
  const out: PeerId[] = [];
  for (const p of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (p !== 'ort-node' && p !== 'ort-web' && p !== 'itera-simd')
      throw new UsageError(`--peers: unknown peer '${p}' (all, none, ort-node, ort-web, itera-simd)`);
    out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The table

const f0 = (x: number): string => fmtInt(Math.round(x));
const rng = (s: Stat, f: (x: number) => string = f0): string => `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
const ms = (x: number): string => (x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const ratioStr = (r: Ratio | null): string =>
  r ? `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})` : 'n/a';
const settingLine = (name: string, tps: Stat, wall: Ratio, cpu: Ratio): string =>
  `  ${name.padEnd(42)} ${rng(tps).padEnd(26)} ${ratioStr(wall).padEnd(20)} ${ratioStr(cpu)}\n`;

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

function engineRows(es: EngineResult[]): string[][] {
  return es.map((e) => [
    e.label,
    ms(e.loadMs),
    e.prefill ? rng(e.prefill.tokensPerSecond) : '-',
    e.ttft ? ms(e.ttft.ms.median) : '-',
    e.decode ? rng(e.decode.tokensPerSecond) : '-',
    e.decode ? `${ms(e.decode.perTokenMs.p50)}/${ms(e.decode.perTokenMs.p95)}/${ms(e.decode.perTokenMs.p99)}` : '-',
    e.score ? rng(e.score.tokensPerSecond) : '-',
    `${Math.round(e.cpu.utilization * 100)}%`,
    e.memory.wasmBytes.value !== null ? fmtBytes(e.memory.wasmBytes.value) : '-',
    e.energy.joulesPerToken.value !== null ? `${(e.energy.joulesPerToken.value * 1000).toFixed(3)} mJ` : '-',
  ]);
}

const HEADER = [
  'engine',
  'load ms',
  'prefill tok/s (min-max)',
  'ttft ms',
  'decode tok/s (min-max)',
  'p50/p95/p99 ms',
  'score tok/s (min-max)',
  'cpu',
  'wasm mem',
  'energy/tok',
];

export function formatBench(doc: BenchDocument): string {
  const d = doc.diag;
  let s =
    `machine  ${d.cpu.model.value ?? 'unknown CPU'}, ${d.cpu.logicalCores.value ?? '?'} cores, ${d.host.platform} ${d.host.arch}, Node ${d.host.version}` +
    `${d.cpu.loadAverage.value ? `, load average ${d.cpu.loadAverage.value.join(' ')}` : ''}\n` +
    `settings ${doc.settings.durationS ? `${doc.settings.durationS} s per model` : `${doc.settings.runs} rounds`} after a warm-up, 1 thread, one phase per peer, engines and models interleaved; medians (min-max)\n`;
  for (const m of doc.models) {
    const fl = m.flops.exact;
    s +=
      `\nmodel    ${m.path}: ${m.name}, ${m.quant}, ${fmtBytes(m.fileBytes)}, ${fmtInt(m.parameters)} parameters\n` +
      `flops    ${fmtInt(fl.total)} per token exact (${fmtInt(fl.macFlops)} in multiply-adds, ${fmtInt(fl.withoutLmHead)} without the lm_head); ` +
      `research formula ${fmtInt(m.flops.researchFormula.value)}\n` +
      `load     cold ${ms(m.load.coldMs)} ms, warm ${rng(m.load.warmMs, ms)} ms\n` +
      (m.quality.value
        ? `quality  perplexity ${m.quality.value.perplexity.toFixed(3)} on ${m.quality.value.text} (${fmtInt(m.quality.value.tokens)} tokens)\n`
        : '') +
      `context  prefill/score ${m.engines[0]!.prefill?.tokens ?? '?'} tokens, ttft prompt ${m.engines[0]!.ttft?.promptTokens ?? '?'} tokens, decode ${m.engines[0]!.decode?.tokens ?? '?'} tokens\n\n`;
    s += table(HEADER, engineRows(m.engines));
    const ce = prefillCeiling(doc, m);
    if (ce) {
      s +=
        `ceiling  prefill: ${fmtInt(Math.round(ce.macsPerPosition))} multiply-adds per position in matrix products, ${ce.floorUs.toFixed(2)} µs at this engine's ` +
        `${ce.kind} peak (${ce.peak.toFixed(1)} G/s, itera diag); per position: ` +
        m.engines
          .filter((e) => ce.us[e.id] !== undefined)
          .map((e) => `${e.label} ${ce.us[e.id]!.toFixed(2)} µs`)
          .join(', ') +
        '\n';
    }
    const sd = m.engines[0]!.sampledDecode ?? [];
    if (sd.length) {
      s += `sampled  decode tok/s (sampler ${sd[0]!.sampler}, one call per token); over greedy in the same round, by wall clock and by CPU time:\n`;
      for (const x of sd) s += settingLine(x.name, x.tokensPerSecond, x.ratioToGreedy, x.ratioToGreedyCpu);
    }
    const sg = m.engines[0]!.streamDecode ?? [];
    if (sg.length) {
      s += `stream() / generate() (the public API, ${sg[0]!.tokens} tokens, the same settings and seed): stream()'s tok/s; its ratio by wall clock and by CPU time (goal: at least 0.90):\n`;
      for (const x of sg) s += settingLine(x.name, x.tokensPerSecond, x.ratioToGenerate, x.ratioToGenerateCpu);
    }
    for (const [peer, r] of Object.entries(m.ratios)) {
      const label = m.engines.find((e) => e.id === peer)?.label ?? peer;
      s +=
        `ours vs ${label}: prefill ${ratioStr(r.prefill)}, decode ${ratioStr(r.decode)}, score ${ratioStr(r.score)}` +
        `${m.sameTokens[peer] ? '' : '  (WARNING: decoded different tokens)'}\n` +
        `  per CPU second: prefill ${ratioStr(r.cpuTime.prefill)}, decode ${ratioStr(r.cpuTime.decode)}, score ${ratioStr(r.cpuTime.score)}\n`;
    }
    for (const [peer, why] of Object.entries(m.skipped ?? {})) s += `${peer} skipped: ${why}\n`;
    if (m.length) s += formatLength(m.length);
  }
  if ('engines' in doc.reference) {
    s += `\nreference  ${doc.reference.path}: ${doc.reference.note}\n\n`;
    s += table(HEADER, engineRows(doc.reference.engines));
  } else {
    s += `\nreference  none: ${doc.reference.reason}\n`;
  }
  if (doc.baselines) {
    s += `\n${doc.baselines.text}, ${fmtInt(doc.baselines.characters)} characters; the models: ${doc.models
      .map((m) => `${m.path} ${m.quality.value?.bitsPerCharacter?.toFixed(4) ?? '?'}`)
      .join(', ')} bits/char\n`;
    s += formatBaselines(doc.baselines.rows);
  }
  s += `\nprocess  peak RSS ${fmtBytes(doc.process.peakRssBytes)}, ${doc.process.wallSeconds.toFixed(1)} s\n`;
  return s;
}

const sign = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;

function formatLength(l: NonNullable<BenchDocument['models'][number]['length']>): string {
  const T = l.context;
  const q = l.quality;
  const sp = l.speed;
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  return (
    `length   T=${T}, ${l.positionEmbedding ? 'learned positions (exact mode past T)' : 'position-free'}\n` +
    (q
      ? `  quality: ${q.far.bitsPerCharacter.toFixed(4)} bits/char over [${q.far.from}, ${q.far.to}) vs ${q.near.bitsPerCharacter.toFixed(4)} over [${q.near.from}, ${q.near.to}) ` +
        `(${sign(q.difference)}; ${q.documents} documents of ${q.text}); goal ${mark(q.met)}\n` +
        (q.farShortContext
          ? `  control: the far positions read with the near range's context lengths: ${q.farShortContext.bitsPerCharacter.toFixed(4)} bits/char; ` +
            `reading past T ${sign(q.farShortContext.lengthEffect)}, the later text itself ${sign(q.farShortContext.textEffect)}\n`
          : '')
      : `  quality: no document has ${4 * T} tokens\n`) +
    `  speed: tokens ${sp.late.from}-${sp.late.to} at ${rng(sp.late.tokensPerSecond)} tok/s vs tokens ${sp.early.from}-${sp.early.to} at ` +
    `${rng(sp.early.tokensPerSecond)}: ${(sp.ratio.median * 100).toFixed(1)}% (${(sp.ratio.min * 100).toFixed(0)}-${(sp.ratio.max * 100).toFixed(0)}%); goal ${mark(sp.met)}\n`
  );
}
