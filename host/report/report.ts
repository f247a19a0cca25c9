// The Markdown report and its charts, generated only from bench JSON documents (itera-bench/1):
// hardware, ours vs ONNX Runtime with the goals, per-token latency, size and speed by quant type,
// speed vs quality, the compression progression, and the original's export as a reference.
// Platform-neutral: returns file names and contents; the CLI writes them and makes PNGs.

import type { BenchDocument, EngineResult, ModelResult, Ratio } from '../bench/schema.js';
import { prefillCeiling } from '../bench/ceiling.js';
import type { Reported } from '../diag/schema.js';
import { barChart, fmtNum, scatter, PALETTE, type Bar } from './svg.js';

export interface ReportFile {
  name: string;
  content: string;
}
export interface Report {
  markdown: string;
  charts: ReportFile[];
}

/** The goals of issue 5: ours / peer, medians. */
export const GOALS = [
  { peer: 'ort-node', metric: 'decode', min: 3, text: 'decode at least 3x ONNX Runtime native' },
  { peer: 'ort-web', metric: 'decode', min: 5, text: 'decode at least 5x ONNX Runtime WASM' },
  { peer: 'ort-node', metric: 'prefill', min: 2, text: 'prefill at least 2x ONNX Runtime native' },
] as const;

const ENGINE_COLORS: Record<string, string> = {
  itera: PALETTE[0]!,
  'ort-node': PALETTE[1]!,
  'ort-web': PALETTE[2]!,
  'reference-ort-node': PALETTE[5]!,
  'reference-ort-web': PALETTE[6]!,
};

interface Entry {
  doc: BenchDocument;
  file: string;
  m: ModelResult;
  label: string;
  slug: string;
}

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const mib = (b: number): string => `${(b / 1048576).toFixed(2)} MiB`;
const r2 = (r: Ratio | null | undefined): string =>
  r ? `**${r.median.toFixed(2)}x** (${r.min.toFixed(2)}-${r.max.toFixed(2)})` : 'n/a';
const rep = <T>(r: Reported<T>, f: (x: T) => string = (x) => String(x)): string =>
  r.value === null ? `unknown: ${r.reason}` : f(r.value);
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function slugify(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'model'
  );
}

function entries(docs: { file: string; doc: BenchDocument }[]): Entry[] {
  const out: Entry[] = [];
  const seen = new Map<string, number>();
  for (const { file, doc } of docs) {
    for (const m of doc.models) {
      let label = `${m.name || m.path} (${m.quant})`;
      if (docs.length > 1 && new Set(docs.map((d) => d.doc.diag.host.arch)).size > 1)
        label += ` on ${doc.diag.host.arch}`;
      // runs on different Nodes or builds side by side: say which each row is
      if (docs.length > 1 && new Set(docs.map((d) => `${d.doc.diag.host.version} ${buildOf(d.doc)}`)).size > 1)
        label += `, Node ${doc.diag.host.version.replace(/^v/, '')} ${buildOf(doc)}`;
      const n = (seen.get(label) ?? 0) + 1;
      seen.set(label, n);
      if (n > 1) label += ` #${n}`;
      out.push({ doc, file, m, label, slug: slugify(label) });
    }
  }
  return out;
}

/** The build a run's own engine ran (runs before settings.build ran the SIMD build). */
function buildOf(d: BenchDocument): string {
  const b = d.settings.build?.ran ?? 'simd';
  return b === 'relaxed' ? 'relaxed-SIMD' : b === 'simd' ? 'SIMD' : 'scalar';
}

/** Our relaxed build against our SIMD build in the same run (the itera-simd peer), with the goal
 *  of issue 17: prefill and decode at least 1.2x. */
function relaxedSection(all: Entry[]): string {
  const rows = all.filter((e) => e.m.ratios['itera-simd']);
  if (rows.length === 0) return '';
  let s =
    `## Relaxed-SIMD build vs SIMD build (same run)

` +
    `Our relaxed build (fused multiply-adds, opt-in: docs/runtime.md) against our default SIMD build, interleaved round by round in one phase of the same process; ratios relaxed / SIMD, paired per round. Goal (issue 17): prefill and decode at least 1.2x for F32 and Q4_0 models; Q8_0 as measured. On a loaded machine the wall-clock ratios spread widely; the CPU-time ratios (each engine's process CPU time per token) are steadier. A goal is met when both medians reach it.\n\n` +
    `| model | prefill | decode | score | per CPU second: prefill | decode | same greedy tokens | prefill >= 1.2x | decode >= 1.2x |\n|---|---:|---:|---:|---:|---:|---|---|---|\n`;
  // met only when both the wall-clock and the CPU-time medians reach the goal: on a loaded
  // machine one alone can be far off
  const met = (r: Ratio | null | undefined, cpu: Ratio | null | undefined): string =>
    r ? (r.median >= 1.2 && (!cpu || cpu.median >= 1.2) ? 'met' : '**missed**') : 'n/a';
  for (const e of rows) {
    const r = e.m.ratios['itera-simd']!;
    s += `| ${cell(e.label)} | ${r2(r.prefill)} | ${r2(r.decode)} | ${r2(r.score)} | ${r2(r.cpuTime?.prefill)} | ${r2(r.cpuTime?.decode)} | ${e.m.sameTokens['itera-simd'] ? 'yes' : 'no'} | ${met(r.prefill, r.cpuTime?.prefill)} | ${met(r.decode, r.cpuTime?.decode)} |\n`;
  }
  return s + '\n';
}

function hardwareTable(docs: { file: string; doc: BenchDocument }[]): string {
  const head = `| | ${docs.map((d) => cell(d.file)).join(' | ')} |\n|---|${docs.map(() => '---').join('|')}|\n`;
  const row = (k: string, f: (d: BenchDocument) => string): string =>
    `| ${k} | ${docs.map((d) => cell(f(d.doc))).join(' | ')} |\n`;
  const ghz = (x: number): string => `${x.toFixed(2)} GHz`;
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  const gm = (x: number): string => `${x.toFixed(1)} G multiply-adds/s`;
  return (
    head +
    row('CPU', (d) => rep(d.diag.cpu.model)) +
    row('cores (logical / physical)', (d) => `${rep(d.diag.cpu.logicalCores)} / ${rep(d.diag.cpu.physicalCores)}`) +
    row('frequency (current / max)', (d) => `${rep(d.diag.cpu.currentGHz, ghz)} / ${rep(d.diag.cpu.maxGHz, ghz)}`) +
    row('memory', (d) => rep(d.diag.memory.totalBytes, (b) => `${(b / 2 ** 30).toFixed(1)} GiB`)) +
    row('OS / kernel', (d) => `${rep(d.diag.os.name)} ${d.diag.os.release.value ?? ''} / ${rep(d.diag.os.kernel)}`) +
    row('device', (d) => rep(d.diag.device.model)) +
    row('board revision', (d) => rep(d.diag.device.revision)) +
    row('virtualised', (d) => rep(d.diag.device.virtual, yes)) +
    row('CPU temperature', (d) => rep(d.diag.thermal.cpuTemperatureC, (x) => `${x.toFixed(1)} °C`)) +
    row('throttling', (d) => rep(d.diag.thermal.throttled, (x) => `${x.raw} ${x.flags.join(', ') || '(none)'}`)) +
    row('energy counter', (d) => rep(d.diag.energy.counter)) +
    row('Node / arch / engine', (d) => `${d.diag.host.version} / ${d.diag.host.arch} / ${rep(d.diag.host.engine)}`) +
    row(
      'WebAssembly SIMD / relaxed SIMD / threads',
      (d) => `${rep(d.diag.wasm.simd, yes)} / ${rep(d.diag.wasm.relaxedSimd, yes)} / ${rep(d.diag.wasm.threads, yes)}`,
    ) +
    row('SIMD peak, 1 thread: f32 mul+add / int16 dot+add', (d) =>
      d.diag.simdPeak
        ? `${rep(d.diag.simdPeak.f32MulAdd, gm)} / ${rep(d.diag.simdPeak.i16DotAdd, gm)}`
        : 'not measured (a run before itera diag measured it)',
    ) +
    row('module build (ours)', (d) =>
      d.settings.build
        ? `${buildOf(d)} (asked: ${d.settings.build.asked}${d.settings.build.fusedMadd === null ? '' : d.settings.build.fusedMadd ? '; multiply-adds fused' : '; multiply-adds unfused'}${d.settings.build.note ? '; ' + d.settings.build.note : ''})`
        : 'SIMD (run before the build was recorded)',
    ) +
    row('load average at start (1/5/15 min)', (d) => rep(d.diag.cpu.loadAverage, (x) => x.join(' / '))) +
    row(
      'bench settings',
      (d) =>
        `${d.settings.durationS ? `${d.settings.durationS} s` : `${d.settings.runs} rounds`}, 1 thread, peers: ${d.settings.peers.join(', ') || 'none'}`,
    ) +
    row('taken at', (d) => d.createdAt)
  );
}

/** Prefill per position against the SIMD ceiling itera diag measured (runs that have it). */
function ceilingSection(all: Entry[]): string {
  const rows = all.map((e) => ({ e, c: prefillCeiling(e.doc, e.m) })).filter((x) => x.c !== null);
  let s = `## Prefill against this machine's SIMD ceiling\n\n`;
  if (rows.length === 0)
    return s + `These runs predate \`itera diag\`'s measurement of the SIMD ceiling (\`simdPeak\`).\n\n`;
  s +=
    `Per prompt position: the multiply-adds of the matrix products as the runtime does a ${rows[0]!.c!.promptTokens}-token prompt (the last layer carries only its state where no logits are wanted; the lm_head runs once), ` +
    `the time they would take at the peak rate of the instruction mix the model's kernels use (\`itera diag\`: f32x4.mul + f32x4.add for FP32, i32x4.dot_i16x8_s + i32x4.add for the quantized types, one thread) if nothing else took any, ` +
    `and what each engine took (median). The conv, SiLU, softplus, scan, gate, LayerNorm and GELU come on top of the floor.\n\n` +
    `| model | peak used | multiply-adds / position | floor µs | ours µs | ONNX Runtime native µs | 2x native needs µs |\n|---|---|---:|---:|---:|---:|---:|\n`;
  for (const { e, c } of rows) {
    const nat = c!.us['ort-node'];
    s += `| ${cell(e.label)} | ${c!.kind}, ${c!.peak.toFixed(1)} G/s | ${int(c!.macsPerPosition)} | ${c!.floorUs.toFixed(2)} | ${c!.us.itera!.toFixed(2)} | ${nat !== undefined ? nat.toFixed(2) : '-'} | ${nat !== undefined ? (nat / 2).toFixed(2) : '-'} |\n`;
  }
  return s + '\n';
}

function engineTable(es: EngineResult[]): string {
  let s =
    '| engine | load ms | prefill tok/s | TTFT ms | decode tok/s | per token p50 / p95 / p99 ms | score tok/s | decode tok/CPU-s | CPU | WASM memory | energy/token |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const e of es) {
    const st = (x: { median: number; min: number; max: number } | undefined): string =>
      x ? `${int(x.median)} (${int(x.min)}-${int(x.max)})` : '-';
    s +=
      `| ${cell(e.label)} | ${e.loadMs.toFixed(1)} | ${st(e.prefill?.tokensPerSecond)} | ${e.ttft ? e.ttft.ms.median.toFixed(3) : '-'} | ${st(e.decode?.tokensPerSecond)} | ` +
      `${e.decode ? `${e.decode.perTokenMs.p50.toFixed(3)} / ${e.decode.perTokenMs.p95.toFixed(3)} / ${e.decode.perTokenMs.p99.toFixed(3)}` : '-'} | ${st(e.score?.tokensPerSecond)} | ` +
      `${st(e.decode?.tokensPerCpuSecond)} | ${Math.round(e.cpu.utilization * 100)}% | ${e.memory.wasmBytes.value !== null ? mib(e.memory.wasmBytes.value) : '-'} | ` +
      `${e.energy.joulesPerToken.value !== null ? `${(e.energy.joulesPerToken.value * 1e3).toFixed(3)} mJ` : 'n/a'} |\n`;
  }
  return s;
}

function speedChart(e: Entry): string {
  const panel = (
    title: string,
    pick: (x: EngineResult) => { median: number; min: number; max: number } | undefined,
  ) => ({
    title,
    bars: e.m.engines
      .filter((x) => pick(x))
      .map((x): Bar => {
        const s = pick(x)!;
        return { label: x.label, value: s.median, min: s.min, max: s.max, color: ENGINE_COLORS[x.id] };
      }),
  });
  return barChart({
    title: `Ours vs ONNX Runtime: ${e.label}`,
    subtitle: `${e.doc.diag.cpu.model.value ?? 'unknown CPU'}, ${e.doc.diag.host.arch}, 1 thread; median, whiskers min-max over ${e.m.engines[0]!.decode?.tokensPerSecond.n ?? '?'} rounds`,
    unit: 'tok/s',
    panels: [
      panel(
        `decode (greedy, one call per token, ${e.m.engines[0]!.decode?.tokens ?? '?'} tokens)`,
        (x) => x.decode?.tokensPerSecond,
      ),
      panel(
        `prefill (${e.m.engines[0]!.prefill?.tokens ?? '?'} tokens, last logits)`,
        (x) => x.prefill?.tokensPerSecond,
      ),
      panel(
        `scoring (${e.m.engines[0]!.score?.tokens ?? '?'} tokens, every position's logits)`,
        (x) => x.score?.tokensPerSecond,
      ),
    ],
  });
}

function ratioChart(all: Entry[]): string {
  const peers = [...new Set(all.flatMap((e) => Object.keys(e.m.ratios)))];
  const panels = (['decode', 'prefill', 'score'] as const)
    .map((metric) => ({
      title: `${metric}: ours / peer (paired per round; median, min-max)`,
      bars: all.flatMap((e) =>
        peers
          .filter((p) => e.m.ratios[p]?.[metric])
          .map((p): Bar => {
            const r = e.m.ratios[p]![metric]!;
            return {
              label: `${e.label} vs ${p}`,
              value: r.median,
              min: r.min,
              max: r.max,
              color: ENGINE_COLORS[p],
              note: `${r.median.toFixed(2)}x`,
            };
          }),
      ),
      lines:
        metric === 'decode'
          ? [
              { at: 3, label: 'goal 3x native' },
              { at: 5, label: 'goal 5x WASM' },
            ]
          : metric === 'prefill'
            ? [{ at: 2, label: 'goal 2x native' }]
            : [{ at: 1, label: 'parity' }],
    }))
    .filter((p) => p.bars.length > 0);
  return barChart({
    title: 'Speed ratios: Itera-Lite / ONNX Runtime',
    subtitle: 'above 1: ours is faster; the dashed lines are the goals',
    unit: 'x',
    panels,
  });
}

function latencyChart(all: Entry[]): string {
  return barChart({
    title: 'Per-token decode latency',
    subtitle: 'p50, p95, p99 over every generated token of every round (a busy machine shows in p95/p99)',
    unit: 'ms',
    panels: (['p50', 'p95', 'p99'] as const).map((q) => ({
      title: q,
      bars: all.flatMap((e) =>
        e.m.engines
          .filter((x) => x.decode)
          .map((x): Bar => ({
            label: `${x.label}, ${e.label}`,
            value: x.decode!.perTokenMs[q],
            color: ENGINE_COLORS[x.id],
            note: `${x.decode!.perTokenMs[q].toFixed(3)} ms`,
          })),
      ),
    })),
  });
}

function quantChart(all: Entry[]): string {
  const ours = (e: Entry): EngineResult => e.m.engines.find((x) => x.id === 'itera')!;
  return barChart({
    title: 'Size and speed by quant type (ours)',
    subtitle: 'file size, and decode / prefill tokens per second: median, whiskers min-max',
    unit: '',
    panels: [
      {
        title: 'file size (MiB)',
        bars: all.map((e, i): Bar => ({
          label: e.label,
          value: e.m.fileBytes / 1048576,
          color: PALETTE[i % PALETTE.length],
          note: mib(e.m.fileBytes),
        })),
      },
      {
        title: 'decode tok/s',
        bars: all.map((e, i): Bar => {
          const s = ours(e).decode!.tokensPerSecond;
          return {
            label: e.label,
            value: s.median,
            min: s.min,
            max: s.max,
            color: PALETTE[i % PALETTE.length],
            note: `${fmtNum(s.median)} tok/s`,
          };
        }),
      },
      {
        title: 'prefill tok/s',
        bars: all.map((e, i): Bar => {
          const s = ours(e).prefill!.tokensPerSecond;
          return {
            label: e.label,
            value: s.median,
            min: s.min,
            max: s.max,
            color: PALETTE[i % PALETTE.length],
            note: `${fmtNum(s.median)} tok/s`,
          };
        }),
      },
    ],
  });
}

function tradeoffChart(all: Entry[]): string | null {
  const pts = all
    .filter((e) => e.m.quality.value)
    .map((e, i) => ({
      x: e.m.engines.find((x) => x.id === 'itera')!.decode!.tokensPerSecond.median,
      y: e.m.quality.value!.perplexity,
      label: `${e.label}: ${e.m.quality.value!.perplexity.toFixed(2)}`,
      color: PALETTE[i % PALETTE.length],
    }));
  if (pts.length === 0) return null;
  const texts = [...new Set(all.filter((e) => e.m.quality.value).map((e) => e.m.quality.value!.text))];
  return scatter({
    title: 'Speed vs quality',
    subtitle: `decode tokens/s (ours, median) against perplexity on ${texts.join(', ')} (lower is better)`,
    xLabel: 'decode tokens/s',
    yLabel: 'perplexity',
    points: pts,
  });
}

function compressionChart(all: Entry[]): string {
  const sorted = [...all].sort((a, b) => b.m.parameters - a.m.parameters || b.m.fileBytes - a.m.fileBytes);
  const first = sorted[0]!;
  const smaller = (x: number, base: number): string => (x === base ? 'baseline' : `${(base / x).toFixed(2)}x smaller`);
  const pct = (x: number, base: number): string => `${x.toLocaleString('en-US')} (${smaller(x, base)})`;
  return barChart({
    title: 'Compression progression',
    subtitle: `from the largest model to the smallest: parameters, file size, FLOPs per token (exact; the research formula in the table)`,
    unit: '',
    panels: [
      {
        title: 'parameters',
        bars: sorted.map((e, i): Bar => ({
          label: e.label,
          value: e.m.parameters,
          color: PALETTE[i % PALETTE.length],
          note: pct(e.m.parameters, first.m.parameters),
        })),
      },
      {
        title: 'file size (bytes)',
        bars: sorted.map((e, i): Bar => ({
          label: e.label,
          value: e.m.fileBytes,
          color: PALETTE[i % PALETTE.length],
          note: `${mib(e.m.fileBytes)} (${smaller(e.m.fileBytes, first.m.fileBytes)})`,
        })),
      },
      {
        title: 'FLOPs per token (exact)',
        bars: sorted.map((e, i): Bar => ({
          label: e.label,
          value: e.m.flops.exact.total,
          color: PALETTE[i % PALETTE.length],
          note: pct(e.m.flops.exact.total, first.m.flops.exact.total),
        })),
      },
    ],
  });
}

/** Sampled decode beside greedy (issue 17): our tokens/s with each sampling setting, and its ratio
 *  to greedy decodes run just before it in the same round (goal: at least 0.85). */
function sampledSection(all: Entry[], img: (name: string, alt: string) => string, charts: ReportFile[]): string {
  const rows = all.filter((e) => e.m.engines.find((x) => x.id === 'itera')?.sampledDecode?.length);
  if (rows.length === 0) return '';
  const ours = (e: Entry) => e.m.engines.find((x) => x.id === 'itera')!;
  const settings = ours(rows[0]!).sampledDecode!.map((d) => d.name);
  let md =
    `## Sampled decode beside greedy\n\n` +
    `Our decode tokens/s with sampling (seed 1, one call per token, sampler ${ours(rows[0]!).sampledDecode![0]!.sampler}), each setting right after greedy decodes of its own in the same round; ` +
    `the ratio is sampled / greedy, paired per round, by wall clock (by process CPU time in parentheses). Goal (issue 17): each at least 0.85.\n\n` +
    `| model | greedy tok/s | ${settings.join(' | ')} |\n|---|---:|${settings.map(() => '---:').join('|')}|\n`;
  for (const e of rows) {
    const o = ours(e);
    md += `| ${cell(e.label)} | ${int(o.decode!.tokensPerSecond.median)} | ${o
      .sampledDecode!.map(
        (d) =>
          `${int(d.tokensPerSecond.median)}: **${d.ratioToGreedy.median.toFixed(2)}** (${d.ratioToGreedyCpu.median.toFixed(2)})${d.ratioToGreedy.median >= 0.85 ? '' : ' missed'}`,
      )
      .join(' | ')} |\n`;
  }
  charts.push({
    name: 'sampled.svg',
    content: barChart({
      title: 'Sampled decode over greedy',
      subtitle:
        'ours, tokens/s with each sampling setting / greedy in the same round (median); the line is the goal, 0.85',
      unit: 'x',
      panels: settings.map((name) => ({
        title: name,
        lines: [{ at: 0.85, label: 'goal 0.85' }],
        bars: rows.map((e, i): Bar => {
          const d = ours(e).sampledDecode!.find((x) => x.name === name)!;
          return {
            label: e.label,
            value: d.ratioToGreedy.median,
            min: d.ratioToGreedy.min,
            max: d.ratioToGreedy.max,
            color: PALETTE[i % PALETTE.length],
            note: d.ratioToGreedy.median.toFixed(2),
          };
        }),
      })),
    }),
  });
  return md + `\n${img('sampled.svg', 'sampled decode over greedy')}\n\n`;
}

/** The public API (issue 17): stream() against generate() with the same settings and seed, their
 *  runs interleaved in each round (goal: at least 0.90). */
function streamSection(all: Entry[]): string {
  const ours = (e: Entry) => e.m.engines.find((x) => x.id === 'itera');
  const rows = all.filter((e) => ours(e)?.streamDecode?.length);
  if (rows.length === 0) return '';
  const settings = ours(rows[0]!)!.streamDecode!.map((d) => d.name);
  let md =
    `## stream() / generate()\n\n` +
    `Our API: iterating \`model.stream()\` to its end against one \`model.generate()\` call, the same settings, seed 1 and tokens, their runs interleaved in each round; ` +
    `stream()'s tokens/s, and the ratio stream() / generate() by wall clock (by process CPU time in parentheses). Goal (issue 17): each at least 0.90.\n\n` +
    `| model | ${settings.join(' | ')} |\n|---|${settings.map(() => '---:').join('|')}|\n`;
  for (const e of rows)
    md += `| ${cell(e.label)} | ${ours(e)!
      .streamDecode!.map(
        (d) =>
          `${int(d.tokensPerSecond.median)}: **${d.ratioToGenerate.median.toFixed(2)}** (${d.ratioToGenerateCpu.median.toFixed(2)})${d.ratioToGenerate.median >= 0.9 ? '' : ' missed'}`,
      )
      .join(' | ')} |\n`;
  return md + '\n';
}

/** Quality beside classic compressors: each run made with --baselines gives its --eval text's
 *  bits per character under the models and under xz, zstd, bzip2 and PPMd (lower is better). */
function baselinesSection(all: Entry[], img: (name: string, alt: string) => string, charts: ReportFile[]): string {
  const runs = [...new Set(all.map((e) => e.doc))].filter((d) => d.baselines);
  if (runs.length === 0) return '';
  let md =
    `## Quality beside classic compressors

` +
    `Bits per character of the same text (lower is better): the models' from their probabilities (every model's tokenizer gives the text back exactly, checked before the run), ` +
    `the compressors' from the real programs' output sizes. "Given the training text": the compressor's output for training text + this text, minus its output for the training text alone, which is what a model that learned from that text is compared with.\n\n`;
  const f = (x: { bitsPerCharacter?: number } | null | undefined): string => x?.bitsPerCharacter?.toFixed(4) ?? '-';
  runs.forEach((doc, k) => {
    const b = doc.baselines!;
    const models = all.filter((e) => e.doc === doc);
    md += `${b.text}, ${int(b.characters)} characters${b.training ? `; training text: ${b.training}` : ''}.\n\n| | bits/char alone | bits/char given the training text | command |\n|---|---:|---:|---|\n`;
    for (const e of models) md += `| ${cell(e.label)} | - | **${f(e.m.quality.value)}** | the model |\n`;
    for (const r of b.rows)
      md += `| ${r.name} | ${f(r.alone)} | ${f(r.givenTraining)} | ${r.error ? `not run: ${cell(r.error)}` : `\`${r.command}\``} |\n`;
    const given = b.rows.some((r) => r.givenTraining);
    const bars: Bar[] = [
      ...models
        .filter((e) => e.m.quality.value?.bitsPerCharacter !== undefined)
        .map((e, i) => ({
          label: e.label,
          value: e.m.quality.value!.bitsPerCharacter!,
          color: PALETTE[i % PALETTE.length],
        })),
      ...b.rows
        .filter((r) => (given ? r.givenTraining : r.alone))
        .map((r) => ({
          label: `${r.name}${given ? ', given the training text' : ''}`,
          value: (given ? r.givenTraining : r.alone)!.bitsPerCharacter,
          color: '#a0aec0',
        })),
    ].map((x) => ({ ...x, note: x.value.toFixed(3) }));
    const name = runs.length > 1 ? `baselines-${k + 1}.svg` : 'baselines.svg';
    charts.push({
      name,
      content: barChart({
        title: 'Bits per character: models and classic compressors',
        subtitle: `${b.text}, lower is better; compressors in grey${given ? `, each given the training text (${b.training})` : ''}`,
        unit: ' bits/char',
        panels: [{ title: 'bits per character', bars }],
      }),
    });
    md += `\n${img(name, 'bits per character beside compressors')}\n\n`;
  });
  return md;
}

export function goalLines(e: Entry): string[] {
  return GOALS.map((g) => {
    const r = e.m.ratios[g.peer]?.[g.metric];
    if (!r) return `- ${g.text}: not measured (${g.peer} did not run)`;
    const met = r.median >= g.min;
    return `- ${g.text}: **${met ? 'met' : 'MISSED'}** at ${r.median.toFixed(2)}x (min ${r.min.toFixed(2)}, max ${r.max.toFixed(2)}, ${r.n} rounds)`;
  });
}

/** The report for these documents. `png` tells whether PNGs will sit beside the SVGs. */
export function buildReport(
  docs: { file: string; doc: BenchDocument }[],
  o: { png: boolean; pngNote?: string; generatedBy: string },
): Report {
  const all = entries(docs);
  if (all.length === 0) throw new Error('no models in these results');
  const charts: ReportFile[] = [];
  const img = (name: string, alt: string): string =>
    `![${alt}](${o.png ? name.replace(/\.svg$/, '.png') : name})` + (o.png ? ` ([SVG](${name}))` : '');
  let md =
    `# Itera-Lite Edge: benchmark report\n\n` +
    `Generated by \`${o.generatedBy}\` from measured JSON only (${docs.map((d) => `\`${d.file}\``).join(', ')}). ` +
    `Every speed is the median over interleaved rounds (one phase per ONNX Runtime build, native first; within a phase ours and the peer take turns, and so do the models, so a machine busy for a while slows all alike), with min-max beside it; ` +
    `ratios are ours / peer, paired within each round of the peer's phase. One thread everywhere.\n\n`;

  md += `## Summary\n\n| model | vs ONNX Runtime native: prefill | decode | score | vs ONNX Runtime WASM: prefill | decode | score | same tokens |\n|---|---:|---:|---:|---:|---:|---:|---|\n`;
  for (const e of all) {
    const n = e.m.ratios['ort-node'];
    const w = e.m.ratios['ort-web'];
    md += `| ${cell(e.label)} | ${r2(n?.prefill)} | ${r2(n?.decode)} | ${r2(n?.score)} | ${r2(w?.prefill)} | ${r2(w?.decode)} | ${r2(w?.score)} | ${
      Object.entries(e.m.sameTokens)
        .map(([p, ok]) => `${p}: ${ok ? 'yes' : 'NO'}`)
        .join(', ') || '-'
    } |\n`;
  }
  md += `\nGoals (issue 5), on medians:\n\n`;
  for (const e of all) md += `${e.label}:\n\n${goalLines(e).join('\n')}\n\n`;

  charts.push({ name: 'ratios.svg', content: ratioChart(all) });
  md += `${img('ratios.svg', 'speed ratios')}\n\n`;

  md += relaxedSection(all);

  md += sampledSection(all, img, charts);

  md += streamSection(all);

  md += ceilingSection(all);

  md += `## Hardware\n\nAs \`itera diag\` reported it at the start of each run; a field the platform does not report says why.\n\n${hardwareTable(docs)}\n`;

  md += `## Ours vs ONNX Runtime, per model\n\nONNX Runtime runs the same model, exported by \`itera export onnx\` (full-sequence graph for scoring, last-position graph for prefill, single-step graph with the recurrent state for decoding), on the same token ids; its greedy tokens are checked against ours.\n\n`;
  for (const e of all) {
    const name = `speed-${e.slug}.svg`;
    charts.push({ name, content: speedChart(e) });
    md +=
      `### ${e.label}\n\n\`${cell(e.m.path)}\`: ${int(e.m.parameters)} parameters, ${mib(e.m.fileBytes)}, weights ${e.m.quant}; load ${e.m.load.coldMs.toFixed(1)} ms cold, ${e.m.load.warmMs.median.toFixed(1)} ms warm` +
      `${e.m.quality.value ? `; perplexity ${e.m.quality.value.perplexity.toFixed(3)} on ${e.m.quality.value.text}` : ''}.\n\n${img(name, `speed of ${e.label}`)}\n\n${engineTable(e.m.engines)}\n`;
    for (const [p, why] of Object.entries(e.m.skipped ?? {})) md += `- ${p} did not run: ${why}\n`;
  }

  charts.push({ name: 'latency.svg', content: latencyChart(all) });
  md += `## Per-token latency\n\n${img('latency.svg', 'per-token latency')}\n\n`;

  charts.push({ name: 'quant.svg', content: quantChart(all) });
  md += `## Size and speed by quant type\n\n${img('quant.svg', 'size and speed by quant type')}\n\n| model | weights | tensor types | file | decode tok/s | prefill tok/s | WASM memory |\n|---|---|---|---:|---:|---:|---:|\n`;
  for (const e of all) {
    const o2 = e.m.engines.find((x) => x.id === 'itera')!;
    md += `| ${cell(e.label)} | ${e.m.quant} | ${Object.entries(e.m.tensorTypes)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )} | ${mib(e.m.fileBytes)} | ${int(o2.decode!.tokensPerSecond.median)} | ${int(o2.prefill!.tokensPerSecond.median)} | ${o2.memory.wasmBytes.value !== null ? mib(o2.memory.wasmBytes.value) : '-'} |\n`;
  }
  md += '\n';

  const tr = tradeoffChart(all);
  md += `## Speed vs quality\n\n`;
  if (tr) {
    charts.push({ name: 'tradeoff.svg', content: tr });
    md += `${img('tradeoff.svg', 'speed vs quality')}\n\n`;
  } else md += `No run measured quality (bench with \`--eval FILE\`).\n\n`;

  md += baselinesSection(all, img, charts);

  charts.push({ name: 'compression.svg', content: compressionChart(all) });
  md +=
    `## Compression progression\n\n${img('compression.svg', 'compression progression')}\n\n` +
    `| model | parameters | file | FLOPs/token, exact | of which multiply-adds | without lm_head | research formula |\n|---|---:|---:|---:|---:|---:|---:|\n`;
  for (const e of [...all].sort((a, b) => b.m.parameters - a.m.parameters)) {
    const f = e.m.flops.exact;
    md += `| ${cell(e.label)} | ${int(e.m.parameters)} | ${mib(e.m.fileBytes)} | ${int(f.total)} | ${int(f.macFlops)} | ${int(f.withoutLmHead)} | ${int(e.m.flops.researchFormula.value)} |\n`;
  }
  md += `\nExact count: ${all[0]!.m.flops.exact.convention}. The research formula is the original's \`${all[0]!.m.flops.researchFormula.formula}\`; it leaves out the lm_head, delta_proj, the scan and every elementwise operation.\n\n`;

  md += `## The original's ONNX export (reference point)\n\n`;
  for (const { file, doc } of docs) {
    if ('engines' in doc.reference)
      md += `From \`${file}\`: ${doc.reference.note}.\n\n${engineTable(doc.reference.engines)}\n`;
    else md += `From \`${file}\`: not run (${doc.reference.reason}).\n\n`;
  }

  md +=
    `## How these numbers were taken\n\n` +
    `- \`itera bench\` loads each model cold (parse, validate, instantiate, lay the weights into memory), then, for each ONNX Runtime build in turn (native first, before onnxruntime-web is loaded: in one process with it, native ran slower), a warm-up round and the measured rounds; in each round ours and that peer run, in a rotating order: prefill (T tokens, last logits), time to first token (a ${all[0]!.m.engines[0]!.ttft?.promptTokens ?? '?'}-token prompt, prefill + picking the token), scoring (every position's logits), greedy decode (one call per token).\n` +
    `- tok/s is wall clock; "tok/CPU-s" divides by the process's CPU time instead, which does not count time the process spent descheduled: on a shared machine it is the steadier figure. CPU is process CPU time over wall time while the engine ran (100% = one core).\n` +
    `- The machine's load average at the start of each run is in the hardware table; a high load means other work shared the cores, and the min-max spread shows it.\n` +
    (o.pngNote ? `- Charts: ${o.pngNote}\n` : '');
  return { markdown: md, charts };
}
