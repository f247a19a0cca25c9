// The benchmark: every model on every engine, interleaved round by round on the same tokens (so
// that a busy machine slows every engine alike), medians and min/max over rounds, and our speed
// as a ratio to each peer, paired within each round. Node only (process CPU and RSS, RAPL).

import { IteraModel } from '../runtime/api.js';
import { readModelFile, type IteraModelFile } from '../runtime/model-file.js';
import { ggmlTypeName } from '../runtime/gguf.js';
import { percentile } from '../runtime/stats.js';
import type { Diagnostics } from '../diag/schema.js';
import { flopsPerToken, researchFormulaFlops, RESEARCH_FORMULA } from './flops.js';
import {
  itera,
  loadOrt,
  ortItera,
  ortReference,
  type BenchEngine,
  type OrtFlavour,
  type OrtLoaded,
} from './engines.js';
import type { EnergyMeter } from './energy.js';
import {
  BENCH_SCHEMA_ID,
  type BenchDocument,
  type EngineResult,
  type ModelResult,
  type Ratio,
  type SampledDecode,
  type SettingResult,
  type Stat,
  type StreamDecode,
} from './schema.js';
import { SAMPLER_VERSION } from '../runtime/abi.js';

/** ONNX Runtime native and WASM, and our own SIMD build (the baseline of the relaxed build). */
export type PeerId = 'ort-node' | 'ort-web' | 'itera-simd';

export interface BenchInput {
  models: { path: string; bytes: Uint8Array }[];
  /** our module's bytes */
  wasm: Uint8Array;
  /** the SIMD build's bytes, for the 'itera-simd' peer */
  simdWasm?: Uint8Array;
  /** which build `wasm` is, and what was asked for (the document's settings.build) */
  build?: NonNullable<BenchDocument['settings']['build']>;
  runs: number;
  /** if set, rounds repeat until this many seconds have passed per model (at least one) */
  durationS: number | null;
  peers: PeerId[];
  /** the original's ONNX export, or why there is none */
  reference: { path: string; bytes: Uint8Array } | { reason: string };
  /** tokens of the prefill/score context; default the model's T */
  contextTokens: number | null;
  /** tokens of the time-to-first-token prompt; default min(32, T) */
  promptTokens: number | null;
  /** a text to measure perplexity on, or why there is none */
  evalText: { name: string; text: string } | { reason: string };
  energy: { meter: EnergyMeter | null; reason: string };
  /** file: URL of onnxruntime-web's dist/ folder */
  ortWasmDir: string;
  diag: Diagnostics;
  tool: { name: string; version: string; command: string[] };
  onProgress?: (label: string, done: number, total: number) => void;
  onNote?: (line: string) => void;
}

/** A sampling setting of the bench; topK -1 is the vocabulary size. */
export interface BenchSetting {
  name: string;
  temperature: number;
  topK: number;
  topP: number;
}

/** `itera run`'s defaults (host/cli/commands/run.ts) */
const CLI_DEFAULTS: BenchSetting = {
  name: 'CLI defaults (0.8, top-k 40, top-p 0.95)',
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
};

/** Sampled decoding, measured beside greedy for our engine (docs/bench.md). Each runs with seed 1
 *  from the same prompt as greedy decode. */
export const SAMPLED_SETTINGS: readonly BenchSetting[] = [
  { name: 'temperature 0.8', temperature: 0.8, topK: 0, topP: 1 },
  CLI_DEFAULTS,
  { name: 'top-p 0.95 alone', temperature: 1, topK: 0, topP: 0.95 },
  { name: 'top-k = V', temperature: 1, topK: -1, topP: 1 },
  { name: 'temperature 1.5, top-p 0.99', temperature: 1.5, topK: 0, topP: 0.99 },
];

/** The public API, stream() against generate(), for our engine (docs/bench.md): greedy and the
 *  CLI's defaults, seed 1, from the same prompt as greedy decode. */
export const STREAM_SETTINGS: readonly BenchSetting[] = [
  { name: 'greedy', temperature: 0, topK: 0, topP: 1 },
  CLI_DEFAULTS,
];

export function stat(values: readonly number[]): Stat {
  if (values.length === 0) throw new RangeError('no values');
  return { min: Math.min(...values), median: percentile(values, 50), max: Math.max(...values), n: values.length };
}

/** Deterministic ids in [lo, hi): the same for every engine and every run. */
export function benchTokens(n: number, lo: number, hi: number, seed = 12345): number[] {
  const ids: number[] = [];
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    ids.push(lo + ((x >>> 8) % Math.max(1, hi - lo)));
  }
  return ids;
}

/** The storage type of the weight matrices (rank >= 2, embeddings included). */
export function quantLabel(file: IteraModelFile): string {
  const types = new Set<string>();
  for (const [, t] of file.tensors) if (t.shape.length >= 2) types.add(ggmlTypeName(t.type));
  return types.size === 1 ? [...types][0]! : types.size === 0 ? 'none' : `mixed (${[...types].sort().join('+')})`;
}

interface Acc {
  prefill: number[];
  ttft: number[];
  score: number[];
  decode: number[];
  /** the same rates per second of process CPU time (robust to the process being descheduled) */
  prefillCpu: number[];
  scoreCpu: number[];
  decodeCpu: number[];
  decodeOneCall: number[];
  /** per SAMPLED_SETTINGS entry: tokens/s, and over greedy decode's of the same round */
  sampled: number[][];
  sampledRatio: number[][];
  sampledRatioCpu: number[][];
  /** per STREAM_SETTINGS entry: stream()'s tokens/s, and over generate()'s of the same round */
  stream: number[][];
  streamRatio: number[][];
  streamRatioCpu: number[][];
  perToken: number[];
  decodedIds: number[];
  cpuUser: number;
  cpuSystem: number;
  wall: number;
  energyUj: number;
  energyTokens: number;
  rssDelta: number;
}

const newAcc = (): Acc => ({
  prefill: [],
  ttft: [],
  score: [],
  decode: [],
  prefillCpu: [],
  scoreCpu: [],
  decodeCpu: [],
  decodeOneCall: [],
  sampled: SAMPLED_SETTINGS.map(() => []),
  sampledRatio: SAMPLED_SETTINGS.map(() => []),
  sampledRatioCpu: SAMPLED_SETTINGS.map(() => []),
  stream: STREAM_SETTINGS.map(() => []),
  streamRatio: STREAM_SETTINGS.map(() => []),
  streamRatioCpu: STREAM_SETTINGS.map(() => []),
  perToken: [],
  decodedIds: [],
  cpuUser: 0,
  cpuSystem: 0,
  wall: 0,
  energyUj: 0,
  energyTokens: 0,
  rssDelta: 0,
});

/** How many repetitions make one timed sample last about targetMs. */
function repsFor(ms: number, targetMs = 25, max = 64): number {
  return Math.max(1, Math.min(max, Math.ceil(targetMs / Math.max(ms, 1e-3))));
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Wall and process CPU milliseconds of fn. */
async function timeCpu(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/** Sampler options of a setting for a vocabulary of V. */
function samplerOf(x: BenchSetting, V: number): { temperature: number; topK: number; topP: number; seed: number } {
  return { temperature: x.temperature, topK: x.topK < 0 ? V : x.topK, topP: x.topP, seed: 1 };
}

/** A setting as the document records it: its name and sampler options for a vocabulary of V. */
function settingOf(x: BenchSetting, V: number): SettingResult {
  const { temperature, topK, topP } = samplerOf(x, V);
  return { name: x.name, temperature, topK, topP };
}

interface Plan {
  vocabSize: number;
  ctx: number[];
  prompt: number[];
  decodeFrom: number[];
  decodeN: number;
}

/** A model's engines between rounds: accumulators by engine id and the repetitions per sample. */
interface RoundState {
  engines: BenchEngine[];
  plan: Plan;
  label: string;
  ours?: ReturnType<typeof itera>;
  acc: Map<string, Acc>;
  reps: Map<string, { prefill: number; ttft: number; score: number; decode: number }>;
}

/** Warm-up: every engine once (which also sizes the repetitions per sample). */
async function warmUp(
  engines: BenchEngine[],
  plan: Plan,
  label: string,
  ours?: ReturnType<typeof itera>,
): Promise<RoundState> {
  const acc = new Map(engines.map((e) => [e.id, newAcc()]));
  const reps = new Map<string, { prefill: number; ttft: number; score: number; decode: number }>();
  for (const e of engines) {
    const tp = await timeIt(() => e.prefill(plan.ctx));
    const tt = await timeIt(() => e.prefill(plan.prompt));
    const ts = await timeIt(() => e.score(plan.ctx));
    const td = (await e.decode(plan.decodeFrom, plan.decodeN)).totalMs;
    reps.set(e.id, { prefill: repsFor(tp), ttft: repsFor(tt), score: repsFor(ts), decode: repsFor(td) });
  }
  if (ours) {
    ours.decodeOneCall(plan.decodeFrom, plan.decodeN);
    for (const x of SAMPLED_SETTINGS) ours.decodeSampled(plan.decodeFrom, plan.decodeN, samplerOf(x, plan.vocabSize));
    // a whole round of generate() and stream(), discarded: with one run of each, stream()'s ratio
    // by CPU time read 0.65-0.76 in the first rounds under load, about 0.90 after this warm-up
    await streamRound(ours, newAcc(), plan, reps.get(ours.id)!.decode, -1);
  }
  return { engines, plan, label, ours, acc, reps };
}

/** Round r of one model: every engine once, in an order that rotates round by round. */
async function oneRound(
  st: RoundState,
  r: number,
  input: BenchInput,
  progress: { done: number; total: number },
): Promise<void> {
  const { engines, plan, ours, acc, reps } = st;
  const meter = input.energy.meter;
  for (let j = 0; j < engines.length; j++) {
    const e = engines[(r + j) % engines.length]!;
    const a = acc.get(e.id)!;
    const n = reps.get(e.id)!;
    const rss0 = process.memoryUsage().rss;
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    let t = await timeCpu(async () => {
      for (let i = 0; i < n.prefill; i++) await e.prefill(plan.ctx);
    });
    a.prefill.push((plan.ctx.length * n.prefill) / (t.wall / 1000));
    a.prefillCpu.push((plan.ctx.length * n.prefill) / (Math.max(t.cpu, 1e-3) / 1000));
    const dt = await timeIt(async () => {
      for (let i = 0; i < n.ttft; i++) await e.prefill(plan.prompt);
    });
    a.ttft.push(dt / n.ttft);
    t = await timeCpu(async () => {
      for (let i = 0; i < n.score; i++) await e.score(plan.ctx);
    });
    a.score.push((plan.ctx.length * n.score) / (t.wall / 1000));
    a.scoreCpu.push((plan.ctx.length * n.score) / (Math.max(t.cpu, 1e-3) / 1000));
    const en0 = meter?.read() ?? 0;
    const c0 = process.cpuUsage();
    const d = await e.decode(plan.decodeFrom, plan.decodeN);
    const dc = process.cpuUsage(c0);
    if (meter) {
      a.energyUj += meter.delta(en0, meter.read());
      a.energyTokens += plan.decodeN;
    }
    a.decode.push(plan.decodeN / (d.totalMs / 1000));
    a.decodeCpu.push(plan.decodeN / (Math.max((dc.user + dc.system) / 1000, 1e-3) / 1000));
    a.perToken.push(...d.perTokenMs);
    if (a.decodedIds.length === 0) a.decodedIds = d.ids.slice(0, 32);
    if (ours && e.id === ours.id) {
      a.decodeOneCall.push(plan.decodeN / (ours.decodeOneCall(plan.decodeFrom, plan.decodeN) / 1000));
      // sampled decoding, each setting right after a greedy run of its own (in a rotating order),
      // so that the ratio compares neighbours in time on a machine whose speed drifts; each run
      // repeated to last about as long as the other samples, timed by wall clock and CPU time
      for (let j = 0; j < SAMPLED_SETTINGS.length; j++) {
        const k = (r + j) % SAMPLED_SETTINGS.length;
        const o = samplerOf(SAMPLED_SETTINGS[k]!, plan.vocabSize);
        let c = process.cpuUsage();
        let gMs = 0;
        for (let i = 0; i < n.decode; i++) gMs += (await e.decode(plan.decodeFrom, plan.decodeN)).totalMs;
        const gCpu = process.cpuUsage(c);
        c = process.cpuUsage();
        let sMs = 0;
        for (let i = 0; i < n.decode; i++) sMs += ours.decodeSampled(plan.decodeFrom, plan.decodeN, o);
        const sCpu = process.cpuUsage(c);
        const tokens = plan.decodeN * n.decode;
        a.sampled[k]!.push(tokens / (sMs / 1000));
        a.sampledRatio[k]!.push(gMs / sMs);
        a.sampledRatioCpu[k]!.push(Math.max(gCpu.user + gCpu.system, 1) / Math.max(sCpu.user + sCpu.system, 1));
      }
      await streamRound(ours, a, plan, n.decode, r);
    }
    const cpu = process.cpuUsage(cpu0);
    a.cpuUser += cpu.user / 1000;
    a.cpuSystem += cpu.system / 1000;
    a.wall += performance.now() - w0;
    a.rssDelta = Math.max(a.rssDelta, process.memoryUsage().rss - rss0);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    input.onProgress?.(st.label, ++progress.done, progress.total);
  }
}

/** The public API in one round: for each STREAM_SETTINGS entry, generate() and stream() runs
 *  interleaved (reps of each, in an order that alternates), timed by wall clock and CPU time; the
 *  first round checks that both give the same tokens. */
async function streamRound(ours: ReturnType<typeof itera>, a: Acc, plan: Plan, reps: number, r: number): Promise<void> {
  for (const [k, x] of STREAM_SETTINGS.entries()) {
    const o = samplerOf(x, plan.vocabSize);
    const ms = { generate: 0, stream: 0 };
    const cpu = { generate: 0, stream: 0 };
    for (let i = 0; i < reps; i++) {
      const ids: number[][] = [];
      for (const kind of (r + i) % 2 ? (['stream', 'generate'] as const) : (['generate', 'stream'] as const)) {
        const c0 = process.cpuUsage();
        const run =
          kind === 'generate'
            ? ours.generateApi(plan.decodeFrom, plan.decodeN, o)
            : await ours.streamApi(plan.decodeFrom, plan.decodeN, o);
        const c = process.cpuUsage(c0);
        ms[kind] += run.ms;
        cpu[kind] += (c.user + c.system) / 1000;
        ids.push(run.ids);
      }
      const at = ids[0]!.findIndex((id, j) => id !== ids[1]![j]);
      if (r === 0 && i === 0 && (at >= 0 || ids[0]!.length !== ids[1]!.length))
        throw new Error(
          `stream() and generate() gave different tokens with the same settings (${x.name}, seed ${o.seed}), ` +
            `from token ${at >= 0 ? at : Math.min(ids[0]!.length, ids[1]!.length)}: the runtime API is broken`,
        );
    }
    a.stream[k]!.push((plan.decodeN * reps) / (ms.stream / 1000));
    a.streamRatio[k]!.push(ms.generate / ms.stream);
    a.streamRatioCpu[k]!.push(Math.max(cpu.generate, 1e-3) / Math.max(cpu.stream, 1e-3));
  }
}

/** Interleaved rounds: round after round, every model in turn runs every engine (so a machine
 *  that is busy for a while slows every model and every engine alike, not whichever model was
 *  being measured then). --runs R: R rounds; --duration S: rounds until S seconds per model have
 *  passed (at least one). */
async function interleavedRounds(
  states: RoundState[],
  input: BenchInput,
  shared?: { done: number; total: number },
): Promise<void> {
  const t0 = performance.now();
  // the progress total is exact for --runs; with --duration it is an estimate (the runs count)
  const rounds = input.durationS ? Math.max(1, input.runs) : input.runs;
  const progress = shared ?? { done: 0, total: rounds * states.reduce((n, st) => n + st.engines.length, 0) };
  for (let r = 0; ; r++) {
    if (
      input.durationS !== null
        ? r > 0 && performance.now() - t0 >= input.durationS * 1000 * states.length
        : r >= input.runs
    )
      break;
    for (const st of states) await oneRound(st, r, input, progress);
  }
}

let peakRss = 0;

function engineResult(e: BenchEngine, a: Acc, plan: Plan, input: BenchInput, rssAfterLoad: number): EngineResult {
  const energy = input.energy.meter
    ? a.energyTokens > 0
      ? { value: a.energyUj / 1e6 / a.energyTokens, source: input.energy.meter.source }
      : { value: null, reason: 'no decode tokens measured' }
    : { value: null, reason: input.energy.reason };
  const wasm = e.wasmMemory();
  return {
    id: e.id,
    label: e.label,
    runtime: e.runtime,
    loadMs: e.loadMs,
    prefill: a.prefill.length
      ? { tokens: plan.ctx.length, tokensPerSecond: stat(a.prefill), tokensPerCpuSecond: stat(a.prefillCpu) }
      : null,
    ttft: a.ttft.length ? { promptTokens: plan.prompt.length, ms: stat(a.ttft) } : null,
    decode: a.decode.length
      ? {
          tokens: plan.decodeN,
          tokensPerSecond: stat(a.decode),
          tokensPerCpuSecond: stat(a.decodeCpu),
          perTokenMs: {
            p50: percentile(a.perToken, 50),
            p95: percentile(a.perToken, 95),
            p99: percentile(a.perToken, 99),
            n: a.perToken.length,
          },
        }
      : null,
    ...(a.decodeOneCall.length
      ? { decodeOneCall: { tokens: plan.decodeN, tokensPerSecond: stat(a.decodeOneCall) } }
      : {}),
    ...(a.sampled[0]!.length
      ? {
          sampledDecode: SAMPLED_SETTINGS.map((x, k): SampledDecode => ({
            ...settingOf(x, plan.vocabSize),
            sampler: SAMPLER_VERSION,
            tokens: plan.decodeN,
            tokensPerSecond: stat(a.sampled[k]!),
            ratioToGreedy: ratioOf(a.sampledRatio[k]!),
            ratioToGreedyCpu: ratioOf(a.sampledRatioCpu[k]!),
          })),
        }
      : {}),
    ...(a.stream[0]!.length
      ? {
          streamDecode: STREAM_SETTINGS.map((x, k): StreamDecode => ({
            ...settingOf(x, plan.vocabSize),
            tokens: plan.decodeN,
            tokensPerSecond: stat(a.stream[k]!),
            ratioToGenerate: ratioOf(a.streamRatio[k]!),
            ratioToGenerateCpu: ratioOf(a.streamRatioCpu[k]!),
          })),
        }
      : {}),
    score: a.score.length
      ? { tokens: plan.ctx.length, tokensPerSecond: stat(a.score), tokensPerCpuSecond: stat(a.scoreCpu) }
      : null,
    cpu: {
      utilization: a.wall > 0 ? (a.cpuUser + a.cpuSystem) / a.wall : 0,
      userMs: a.cpuUser,
      systemMs: a.cpuSystem,
      wallMs: a.wall,
    },
    memory: {
      wasmBytes:
        wasm.value !== null
          ? { value: wasm.value, source: 'WebAssembly.Memory buffer size after the runs (it only grows: the peak)' }
          : { value: null, reason: wasm.reason ?? 'not reported' },
      rssDeltaBytes: Math.max(a.rssDelta, rssAfterLoad),
    },
    energy: { joulesPerToken: energy },
    decodedIds: a.decodedIds,
  };
}

/** Several phases' samples of one engine as one. */
function mergeAcc(accs: Acc[]): Acc {
  const m = newAcc();
  for (const a of accs) {
    m.prefill.push(...a.prefill);
    m.ttft.push(...a.ttft);
    m.score.push(...a.score);
    m.decode.push(...a.decode);
    m.prefillCpu.push(...a.prefillCpu);
    m.scoreCpu.push(...a.scoreCpu);
    m.decodeCpu.push(...a.decodeCpu);
    m.decodeOneCall.push(...a.decodeOneCall);
    a.sampled.forEach((x, k) => m.sampled[k]!.push(...x));
    a.sampledRatio.forEach((x, k) => m.sampledRatio[k]!.push(...x));
    a.sampledRatioCpu.forEach((x, k) => m.sampledRatioCpu[k]!.push(...x));
    a.stream.forEach((x, k) => m.stream[k]!.push(...x));
    a.streamRatio.forEach((x, k) => m.streamRatio[k]!.push(...x));
    a.streamRatioCpu.forEach((x, k) => m.streamRatioCpu[k]!.push(...x));
    m.perToken.push(...a.perToken);
    if (m.decodedIds.length === 0) m.decodedIds = a.decodedIds;
    m.cpuUser += a.cpuUser;
    m.cpuSystem += a.cpuSystem;
    m.wall += a.wall;
    m.energyUj += a.energyUj;
    m.energyTokens += a.energyTokens;
    m.rssDelta = Math.max(m.rssDelta, a.rssDelta);
  }
  return m;
}

/** ours / peer per round (rounds are paired by index). */
function pairedRatio(ours: number[], peer: number[]): Ratio | null {
  const n = Math.min(ours.length, peer.length);
  if (n === 0) return null;
  return ratioOf(Array.from({ length: n }, (_, i) => ours[i]! / peer[i]!));
}

/** Ratios measured round by round as a Ratio. */
function ratioOf(values: readonly number[]): Ratio {
  const s = stat(values);
  return { median: s.median, min: s.min, max: s.max, n: s.n };
}

/** A model loaded for the bench, with what its phases gather. */
interface Loaded {
  m: BenchInput['models'][number];
  model: IteraModel;
  file: ReturnType<typeof readModelFile>;
  coldMs: number;
  warm: number[];
  plan: Plan;
  ours: ReturnType<typeof itera>;
  peers: BenchEngine[];
  oursAcc: Acc[];
  peerAcc: Map<string, { acc: Acc; phase: number }>;
  rssBefore: Map<string, number>;
  skipped: Record<string, string>;
}

/** Every model loaded (cold, then three warm loads timed) with its plan of tokens. */
async function loadModels(input: BenchInput): Promise<Loaded[]> {
  const loaded: Loaded[] = [];
  let firstLoad = true;
  for (const m of input.models) {
    // cold: the first load of this model in this process (the first ever also compiles the module)
    const t0 = performance.now();
    const model = await IteraModel.fromBytes(m.bytes, input.wasm, () => performance.now());
    const coldMs = performance.now() - t0;
    input.onNote?.(
      `${m.path}: loaded in ${coldMs.toFixed(1)} ms${firstLoad ? ' (first load in this process: includes compiling the WebAssembly module)' : ''}`,
    );
    firstLoad = false;
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = performance.now();
      const x = await IteraModel.fromBytes(m.bytes, input.wasm, () => performance.now());
      warm.push(performance.now() - a);
      x.dispose();
    }
    const file = readModelFile(m.bytes);
    const c = file.config;
    const S = Math.min(input.contextTokens ?? c.maxSeqLength, c.maxSeqLength);
    const P = Math.min(input.promptTokens ?? Math.min(32, c.maxSeqLength), c.maxSeqLength);
    const hi = Math.min(c.vocabSize, Math.max(file.tokenizer.size, 5));
    const ctx = benchTokens(S, Math.min(4, hi - 1), hi);
    const plan: Plan = {
      vocabSize: c.vocabSize,
      ctx,
      prompt: ctx.slice(0, P),
      decodeFrom: ctx.slice(0, 1),
      decodeN: Math.max(1, S - 1),
    };
    const ours = itera(model, 'Itera-Lite (WebAssembly)', coldMs);
    loaded.push({
      m,
      model,
      file,
      coldMs,
      warm,
      plan,
      ours,
      peers: [],
      oursAcc: [],
      peerAcc: new Map(),
      rssBefore: new Map([['itera', 0]]),
      skipped: {},
    });
  }
  return loaded;
}

/** One phase per peer (ONNX Runtime native first), each interleaving ours and that peer round by
 *  round over every model; the phases' accumulators go into each Loaded. */
async function runPhases(
  loaded: Loaded[],
  input: BenchInput,
  ort: (f: OrtFlavour) => Promise<OrtLoaded>,
): Promise<void> {
  const phases: (BenchInput['peers'][number] | null)[] = input.peers.length
    ? [...input.peers].sort((a, b) => (a === 'ort-node' ? -1 : b === 'ort-node' ? 1 : 0))
    : [null];
  const rounds = input.durationS ? Math.max(1, input.runs) : input.runs;
  const perModel = (p: string | null): number => (p ? 2 : 1); // engines per model in a phase
  const progress = { done: 0, total: rounds * loaded.length * phases.reduce((n, p) => n + perModel(p), 0) };
  for (let phase = 0; phase < phases.length; phase++) {
    const p = phases[phase];
    const states: RoundState[] = [];
    for (const l of loaded) {
      const engines: BenchEngine[] = [l.ours];
      if (p === 'itera-simd') {
        if (!input.simdWasm) throw new Error("the 'itera-simd' peer needs the SIMD build's bytes (simdWasm)");
        const t0 = performance.now();
        const peerModel = await IteraModel.fromBytes(l.m.bytes, input.simdWasm, () => performance.now());
        const e = itera(peerModel, 'Itera-Lite (WebAssembly, SIMD build)', performance.now() - t0, 'itera-simd');
        const dispose = e.dispose.bind(e);
        e.dispose = async () => {
          await dispose();
          peerModel.dispose();
        };
        l.rssBefore.set(e.id, 0);
        engines.push(e);
        l.peers.push(e);
      } else if (p) {
        const flavour: OrtFlavour = p === 'ort-node' ? 'node' : 'web';
        try {
          const r0 = process.memoryUsage().rss;
          const e = await ortItera(await ort(flavour), flavour, l.file);
          l.rssBefore.set(e.id, process.memoryUsage().rss - r0);
          engines.push(e);
          l.peers.push(e);
          input.onNote?.(`${l.m.path}: ${e.label} sessions created in ${e.loadMs.toFixed(0)} ms`);
        } catch (err) {
          l.skipped[p] = (err as Error).message;
          input.onNote?.(`${l.m.path}: ${p} skipped: ${(err as Error).message}`);
        }
      }
      states.push(await warmUp(engines, l.plan, `${l.file.name || l.m.path}${p ? ` vs ${p}` : ''}`, l.ours));
    }
    // the bar spans every phase; a peer that could not load shortens it
    progress.total -= rounds * (loaded.length * perModel(p) - states.reduce((n, st) => n + st.engines.length, 0));
    await interleavedRounds(states, input, progress);
    for (const [i, st] of states.entries()) {
      const l = loaded[i]!;
      l.oursAcc.push(st.acc.get('itera')!);
      for (const e of st.engines.slice(1)) {
        l.peerAcc.set(e.id, { acc: st.acc.get(e.id)!, phase });
        // a phase's peer sessions are released before the next phase loads its own
        await e.dispose();
      }
    }
  }
}

/** A model's figures from its phases: engines, ratios paired within each peer's phase, quality. */
async function modelResult(l: Loaded, input: BenchInput): Promise<ModelResult> {
  const { m, model, file, coldMs, warm, plan, ours, peers, oursAcc, peerAcc, rssBefore, skipped } = l;
  const c = file.config;

  let quality: ModelResult['quality'];
  if ('reason' in input.evalText) quality = { value: null, reason: input.evalText.reason };
  else {
    const sc = model.score(input.evalText.text);
    quality = {
      value: {
        text: input.evalText.name,
        tokens: sc.tokens,
        perplexity: sc.perplexity,
        bitsPerToken: sc.bitsPerToken,
        characters: sc.characters,
        bitsPerCharacter: sc.bitsPerCharacter,
      },
      source: 'model.score (windows of T, stride T/2)',
    };
  }

  const results = [
    engineResult(ours, mergeAcc(oursAcc), plan, input, 0),
    ...peers.map((e) => engineResult(e, peerAcc.get(e.id)!.acc, plan, input, rssBefore.get(e.id) ?? 0)),
  ];
  const oursFirst = oursAcc[0]!;
  const ratios: ModelResult['ratios'] = {};
  const sameTokens: Record<string, boolean> = {};
  for (const e of peers) {
    const { acc: pa, phase } = peerAcc.get(e.id)!;
    // paired with our own rounds of the same phase
    const oa = oursAcc[phase]!;
    ratios[e.id] = {
      prefill: pairedRatio(oa.prefill, pa.prefill),
      decode: pairedRatio(oa.decode, pa.decode),
      score: pairedRatio(oa.score, pa.score),
      cpuTime: {
        prefill: pairedRatio(oa.prefillCpu, pa.prefillCpu),
        decode: pairedRatio(oa.decodeCpu, pa.decodeCpu),
        score: pairedRatio(oa.scoreCpu, pa.scoreCpu),
      },
    };
    sameTokens[e.id] =
      pa.decodedIds.length === oursFirst.decodedIds.length &&
      pa.decodedIds.every((x, i) => x === oursFirst.decodedIds[i]);
  }
  const info = model.info();
  const tensorTypes: Record<string, number> = {};
  for (const [, t] of file.tensors) tensorTypes[ggmlTypeName(t.type)] = (tensorTypes[ggmlTypeName(t.type)] ?? 0) + 1;
  const result: ModelResult = {
    path: m.path,
    name: file.name,
    quant: quantLabel(file),
    tensorTypes,
    fileBytes: m.bytes.byteLength,
    parameters: info.parameters,
    config: { ...c },
    flops: {
      exact: flopsPerToken(c),
      researchFormula: { value: researchFormulaFlops(c), formula: RESEARCH_FORMULA },
    },
    quality,
    load: { coldMs, warmMs: stat(warm) },
    engines: results,
    ratios,
    sameTokens,
    ...(Object.keys(skipped).length ? { skipped } : {}),
  };
  await ours.dispose();
  model.dispose();
  return result;
}

/** The original's own export: a speed reference on a model of the same size class. */
async function referenceResult(
  input: BenchInput,
  ort: (f: OrtFlavour) => Promise<OrtLoaded>,
): Promise<BenchDocument['reference']> {
  let reference: BenchDocument['reference'];
  if ('reason' in input.reference) reference = { value: null, reason: input.reference.reason };
  else {
    const engines: BenchEngine[] = [];
    const skipped: string[] = [];
    const window = 128;
    for (const p of input.peers) {
      if (p === 'itera-simd') continue;
      const flavour: OrtFlavour = p === 'ort-node' ? 'node' : 'web';
      try {
        engines.push(await ortReference(await ort(flavour), flavour, input.reference.bytes, window));
        input.onNote?.(
          `reference: ${engines.at(-1)!.label} session created in ${engines.at(-1)!.loadMs.toFixed(0)} ms`,
        );
      } catch (err) {
        skipped.push(`${p}: ${(err as Error).message}`);
      }
    }
    if (engines.length === 0)
      reference = {
        value: null,
        reason: input.peers.length
          ? `no peer could run it: ${skipped.join('; ')}`
          : 'no ONNX Runtime peer was asked for (--peers none)',
      };
    else {
      const ctx = benchTokens(window, 4, 184);
      const plan: Plan = { vocabSize: 0, ctx, prompt: ctx, decodeFrom: ctx, decodeN: 8 };
      const st = await warmUp(engines, plan, 'reference');
      await interleavedRounds([st], input);
      const acc = st.acc;
      reference = {
        path: input.reference.path,
        note: "the original's ONNX export: a different model's weights (a speed baseline, not a correctness oracle); fixed window of 128 tokens, every figure is whole-window forwards (prefill and ttft use the full window; decode recomputes the window for every token, as the original generated)",
        engines: engines.map((e) => engineResult(e, acc.get(e.id)!, plan, input, 0)),
      };
      for (const e of engines) await e.dispose();
    }
  }
  return reference;
}

export async function runBench(input: BenchInput): Promise<BenchDocument> {
  const start = performance.now();
  peakRss = process.memoryUsage().rss;
  const ortCache = new Map<OrtFlavour, OrtLoaded>();
  const ort = async (f: OrtFlavour): Promise<OrtLoaded> => {
    let o = ortCache.get(f);
    if (!o) {
      o = await loadOrt(f, input.ortWasmDir);
      ortCache.set(f, o);
    }
    return o;
  };
  // every model loaded first; then one phase per peer (ONNX Runtime native first, before
  // onnxruntime-web is even loaded: in the same process it slowed native's prefill by 10-35% on
  // this machine), each phase interleaving ours and that peer round by round over every model
  const loaded = await loadModels(input);
  await runPhases(loaded, input, ort);
  const models: ModelResult[] = [];
  for (const l of loaded) models.push(await modelResult(l, input));
  const reference = await referenceResult(input, ort);

  return {
    schema: BENCH_SCHEMA_ID,
    createdAt: new Date().toISOString(),
    tool: input.tool,
    settings: {
      runs: input.runs,
      warmupRuns: 1,
      durationS: input.durationS,
      contextTokens: input.contextTokens,
      promptTokens: input.promptTokens,
      threads: 1,
      peers: input.peers,
      ...(input.build ? { build: input.build } : {}),
    },
    diag: input.diag,
    models,
    reference,
    process: { peakRssBytes: peakRss, wallSeconds: (performance.now() - start) / 1000 },
  };
}
