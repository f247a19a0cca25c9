// The scheduler: one model instance, up to `parallel` requests generating at once, the rest
// waiting in a bounded queue. Each tick prefills waiting prompts into free slots, in arrival
// order, up to PREFILL_BUDGET prompt tokens (at least one prompt: prompts take turns with decoding,
// so a burst of new prompts delays the others by about one decode step, not by all of them), then
// advances every active request by exactly one token (round-robin, one token per request per
// tick). Ticks run from setImmediate, so sockets and timers are served between them.
//
// The decode step goes through a Stepper: the server uses batchedStepper, which advances all the
// active sessions in one call into the module (B states through the batched kernels, the weights
// read once per step for all of them; bit for bit what session.next() on each gives, which
// sequentialStepper does and the tests hold it to).

import type { IteraModel } from '../runtime/api.js';
import type { SamplerOptions, WasmSession } from '../runtime/runtime.js';
import type { Metrics } from './metrics.js';

/** Advances each session by one token (samples it and feeds it); returns the tokens in order. */
export interface Stepper {
  step(sessions: readonly WasmSession[]): number[];
}

export const sequentialStepper: Stepper = {
  step: (sessions) => sessions.map((s) => s.next()),
};

/** Every session of the tick through one batched step (one alone: its own next()). */
export function batchedStepper(model: IteraModel): Stepper {
  return {
    step: (sessions) => (sessions.length > 1 ? model.wasmModel.stepBatch(sessions) : sessions.map((s) => s.next())),
  };
}

/** Prompt tokens a scheduler step feeds at most before its decode step (a longer prompt still goes
 *  in one step, alone): about the cost of a decode step of 16 requests, so a burst of new requests
 *  starts within a step or two while the ones decoding wait at most that long for their next token. */
export const PREFILL_BUDGET = 64;

export interface TokenEvent {
  id: number;
  /** ln p of the chosen token under the model (temperature 1), when logprobs were asked for. */
  logprob?: number;
  /** The most likely tokens and their ln p, when more than 0 were asked for. */
  top?: [number, number][];
  /** This is the request's last token (max tokens reached, or end of sequence). */
  last: boolean;
}

export type FinishReason = 'stop' | 'length';

export interface Job {
  /** Tokens to feed before generating (may be empty when continuing a kept session). */
  promptIds: number[];
  sampler: Required<SamplerOptions>;
  maxTokens: number;
  /** End-of-sequence id that ends generation, or -1. */
  eos: number;
  /** null: no logprobs; 0: the chosen token's; N: also the N most likely. */
  logprobs: number | null;
  /** A kept session to continue (and keep afterwards); otherwise a fresh one is made and freed. */
  session?: WasmSession;
  /** Called when the prompt has been fed. */
  onStart?(): void;
  /** Called for each token; return true to stop here (a stop string was reached). */
  onToken(t: TokenEvent): boolean;
  /** Called exactly once unless the job was cancelled. */
  onEnd(reason: FinishReason, generated: number): void;
  onError(e: unknown): void;
}

interface Active {
  job: Job;
  session: WasmSession;
  generated: number;
  submitted: number;
  lastToken: number;
}

export class Scheduler {
  private readonly waiting: { job: Job; submitted: number }[] = [];
  private readonly active: Active[] = [];
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly model: IteraModel,
    readonly parallel: number,
    readonly maxQueue: number,
    private readonly metrics?: Metrics,
    private readonly stepper: Stepper = sequentialStepper,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (metrics) metrics.slots = parallel;
  }

  get queued(): number {
    return this.waiting.length;
  }
  get busy(): number {
    return this.active.length;
  }
  get idle(): boolean {
    return this.waiting.length === 0 && this.active.length === 0;
  }

  /** Queues a job; false when the queue is full (the caller answers 429). */
  submit(job: Job): boolean {
    if (this.active.length + this.waiting.length >= this.parallel + this.maxQueue) return false;
    this.waiting.push({ job, submitted: this.now() });
    this.gauges();
    this.wake();
    return true;
  }

  /** Removes a job wherever it is; its session is freed (unless kept). No callback follows. */
  cancel(job: Job): void {
    const w = this.waiting.findIndex((x) => x.job === job);
    if (w >= 0) this.waiting.splice(w, 1);
    const a = this.active.findIndex((x) => x.job === job);
    if (a >= 0) this.release(this.active.splice(a, 1)[0]);
    this.gauges();
    this.checkIdle();
  }

  /** Drops every job (no callbacks follow) and frees their sessions: the server is closing. */
  clear(): void {
    this.waiting.length = 0;
    for (const a of this.active.splice(0)) this.release(a);
    this.gauges();
    this.checkIdle();
  }

  /** Resolves once nothing is waiting or generating. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((ok) => this.idleWaiters.push(ok));
  }

  private wake(): void {
    if (this.scheduled || this.idle) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.tick();
      this.wake();
    });
  }

  /** Waiting prompts into free slots, up to PREFILL_BUDGET prompt tokens (always at least one
   *  prompt, in arrival order), then one token for every active job. */
  tick(): void {
    let budget = PREFILL_BUDGET;
    while (this.waiting.length > 0 && this.active.length < this.parallel && budget > 0) {
      const w = this.waiting.shift()!;
      budget -= Math.max(1, w.job.promptIds.length);
      this.admit(w);
    }
    if (this.active.length > 0) this.decode();
    this.gauges();
    this.checkIdle();
  }

  private admit(w: { job: Job; submitted: number }): void {
    const { job } = w;
    let session: WasmSession | undefined;
    try {
      session = job.session ?? this.model.session();
      if (!job.session) session.setWindow('exact');
      session.setSampler(job.sampler);
      if (job.promptIds.length > 0) session.prefill(job.promptIds);
      if (this.metrics) this.metrics.promptTokens += job.promptIds.length;
    } catch (e) {
      if (session && !job.session) session.free();
      job.onError(e);
      return;
    }
    const a: Active = { job, session, generated: 0, submitted: w.submitted, lastToken: 0 };
    job.onStart?.();
    if (job.maxTokens === 0) {
      this.release(a);
      job.onEnd('length', 0);
      return;
    }
    this.active.push(a);
  }

  private decode(): void {
    const batch = this.active.slice();
    // the distribution the next token is drawn from, for the jobs that report logprobs
    const before = batch.map((a) => (a.job.logprobs !== null ? a.session.logits() : null));
    let ids: number[];
    try {
      ids = this.stepper.step(batch.map((a) => a.session));
    } catch (e) {
      // a failed step: every job in it ends with the error, the others are unaffected
      for (const a of batch) this.fail(a, e);
      return;
    }
    const t = this.now();
    this.metrics?.batch.observe(batch.length);
    batch.forEach((a, i) => {
      if (!this.active.includes(a)) return; // cancelled by an earlier callback in this tick
      const id = ids[i];
      a.generated++;
      if (this.metrics) {
        this.metrics.generatedTokens++;
        if (a.generated === 1) this.metrics.ttft.observe((t - a.submitted) / 1000);
        else this.metrics.perToken.observe((t - a.lastToken) / 1000);
      }
      a.lastToken = t;
      const eos = id === a.job.eos;
      const last = eos || a.generated >= a.job.maxTokens;
      const ev: TokenEvent = { id, last };
      const lg = before[i];
      if (lg) Object.assign(ev, logprobsOf(lg, id, a.job.logprobs ?? 0));
      let stop: boolean;
      try {
        stop = a.job.onToken(ev);
      } catch (e) {
        this.fail(a, e);
        return;
      }
      if (stop || last) {
        this.active.splice(this.active.indexOf(a), 1);
        this.release(a);
        a.job.onEnd(stop || eos ? 'stop' : 'length', a.generated);
      }
    });
  }

  private fail(a: Active, e: unknown): void {
    const i = this.active.indexOf(a);
    if (i >= 0) this.active.splice(i, 1);
    this.release(a);
    a.job.onError(e);
  }

  private release(a: Active): void {
    if (!a.job.session) a.session.free();
  }

  private gauges(): void {
    if (!this.metrics) return;
    this.metrics.queueDepth = this.waiting.length;
    this.metrics.busySlots = this.active.length;
  }

  private checkIdle(): void {
    if (!this.idle) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

/** ln softmax(row)[id], and the `top` most likely tokens with theirs. */
export function logprobsOf(row: Float32Array, id: number, top: number): { logprob: number; top?: [number, number][] } {
  let mx = -Infinity;
  for (let v = 0; v < row.length; v++) if (row[v] > mx) mx = row[v];
  let sum = 0;
  for (let v = 0; v < row.length; v++) sum += Math.exp(row[v] - mx);
  const lse = Math.log(sum) + mx;
  if (top <= 0) return { logprob: row[id] - lse };
  const best: [number, number][] = [];
  for (let v = 0; v < row.length; v++) {
    if (best.length < top || row[v] > best[best.length - 1][1]) {
      best.push([v, row[v]]);
      best.sort((a, b) => b[1] - a[1]);
      if (best.length > top) best.pop();
    }
  }
  return { logprob: row[id] - lse, top: best.map(([v, x]) => [v, x - lse]) };
}
