// --workers N: one WebAssembly instance per worker thread (worker.ts), each running its own
// Scheduler with continuous batching. This thread keeps the HTTP layer, the tokenizer and one queue
// in front of the workers: a job goes to the least-loaded worker with a free slot (a kept session's
// job to the worker that holds its state, which no other worker ever sees). Token events come back
// once per scheduler step, all of a step's jobs in one message.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Build } from '../node/index.js';
import { IteraError } from '../runtime/types.js';
import type { SamplerOptions } from '../runtime/runtime.js';
import type { Engine, EngineJob, SessionRef } from './engine.js';
import type { Metrics, SchedulerFigures } from './metrics.js';
import type { FinishReason, TokenEvent } from './scheduler.js';

export interface WorkerInit {
  /** The model file's path (each worker reads it) or its bytes. */
  model: string | Uint8Array;
  build?: Build;
  parallel: number;
}

export interface WireJob {
  t: 'job';
  id: number;
  promptIds: number[];
  sampler: Required<SamplerOptions>;
  maxTokens: number;
  eos: number;
  logprobs: number | null;
  stop: string[];
  session?: number;
}

export type ToWorker =
  | WireJob
  | { t: 'cancel'; id: number }
  | { t: 'clear' }
  | { t: 'open'; rid: number }
  | { t: 'restore'; rid: number; bytes: Uint8Array }
  | { t: 'save'; rid: number; session: number }
  | { t: 'free'; session: number }
  | { t: 'figures'; rid: number };

export interface WireError {
  message: string;
  code?: string;
}

/** What a worker reports; `session` and `position` say where a kept session now stands. */
export type WorkerEvent =
  | { t: 'tok'; id: number; ev: TokenEvent }
  | { t: 'end'; id: number; reason: FinishReason; generated: number; session?: number; position?: number }
  | { t: 'err'; id: number; error: WireError; session?: number; position?: number }
  | { t: 'pos'; session: number; position: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'fatal'; error: WireError }
  | { t: 'events'; list: WorkerEvent[] }
  | { t: 'reply'; rid: number; value?: unknown; error?: WireError };

export function wireError(e: unknown): WireError {
  const err = e as { message?: unknown; code?: unknown };
  return {
    message: String(err?.message ?? e),
    ...(e instanceof IteraError || typeof err?.code === 'string' ? { code: String(err.code) } : {}),
  };
}

function fromWire(e: WireError): Error {
  return e.code !== undefined ? new IteraError(e.message, e.code) : new Error(e.message);
}

class PoolSession implements SessionRef {
  constructor(
    /** The thread holding its state: that thread itself, not its index, so that a replacement
     *  thread (which numbers its own sessions from 1) is never asked for a lost one's handle. */
    readonly thread: Thread,
    readonly handle: number,
    public position: number,
  ) {}
  get lost(): boolean {
    return !this.thread.alive;
  }
}

interface Thread {
  index: number;
  worker: Worker;
  alive: boolean;
  busy: number;
  sessions: Map<number, PoolSession>;
  replies: Map<number, { ok(v: unknown): void; fail(e: Error): void }>;
}

interface Pending {
  job: EngineJob;
  id: number;
  submitted: number;
  thread?: Thread;
  generated: number;
}

export interface PoolOptions extends WorkerInit {
  count: number;
  maxQueue: number;
  /** The HTTP layer's metrics: the time to first token is measured here, from acceptance. */
  metrics: Metrics;
  /** Told when a worker thread stops and when its replacement is ready or fails (default: none). */
  log?: (line: string) => void;
  /** Replacements allowed per minute for each worker (default RESTARTS_PER_MINUTE). */
  restartsPerMinute?: number;
}

/** Replacements of stopped worker threads allowed per minute, for each worker: past that, a
 *  thread that stops stays stopped (a model or machine that kills every thread is not retried in
 *  a loop), and with none left the server reports itself unhealthy. */
export const RESTARTS_PER_MINUTE = 3;

/** Ends a job with an error after the current call: pump() runs inside submit(), whose caller has
 *  not finished setting the job up yet. */
function later(job: EngineJob, e: Error): void {
  queueMicrotask(() => job.onError(e));
}

/** The worker threads' script, beside this file. */
const WORKER_SCRIPT = new URL('./worker.js', import.meta.url);

/** Whether worker threads can start here: the script must be a file beside this one (npm run
 *  package writes its own bundle of it as lib/worker.js, in the tarball and in the folder the
 *  single executable unpacks into). */
export function workerThreadsAvailable(): boolean {
  try {
    return WORKER_SCRIPT.protocol === 'file:' && existsSync(fileURLToPath(WORKER_SCRIPT));
  } catch {
    return false;
  }
}

export class WorkerPool implements Engine {
  private readonly threads: Thread[] = [];
  private waiting: Pending[] = [];
  private readonly running = new Map<number, Pending>();
  private readonly byJob = new Map<EngineJob, Pending>();
  private nextId = 1;
  private idleWaiters: (() => void)[] = [];
  private closing = false;
  /** Every first thread has loaded the model (before that, one that stops fails the start). */
  private launched = false;
  /** Worker threads being started in place of stopped ones. */
  private starting = 0;
  /** When each replacement was started (the last minute's). */
  private restarts: number[] = [];
  readonly slots: number;

  private constructor(private readonly o: PoolOptions) {
    this.slots = o.count * o.parallel;
    o.metrics.slots = this.slots;
  }

  /** Starts the workers; resolves once every one has loaded the model. */
  static async start(o: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(o);
    try {
      await Promise.all(Array.from({ length: o.count }, (_, i) => pool.spawn(i)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    pool.launched = true;
    return pool;
  }

  private spawn(index: number): Promise<void> {
    const init: WorkerInit = { model: this.o.model, build: this.o.build, parallel: this.o.parallel };
    // no inherited loaders or hooks (a test runner's, say): a worker needs only the model
    const worker = new Worker(WORKER_SCRIPT, { workerData: init, execArgv: [] });
    const th: Thread = { index, worker, alive: true, busy: 0, sessions: new Map(), replies: new Map() };
    this.threads[index] = th;
    return new Promise<void>((ready, failed) => {
      let started = false;
      worker.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'ready':
            started = true;
            ready();
            return;
          case 'fatal':
            failed(fromWire(m.error));
            return;
          case 'events':
            this.onEvents(th, m.list);
            return;
          case 'reply': {
            const r = th.replies.get(m.rid);
            th.replies.delete(m.rid);
            if (m.error) r?.fail(fromWire(m.error));
            else r?.ok(m.value);
          }
        }
      });
      const gone = (why: Error) => {
        if (!th.alive) return;
        th.alive = false;
        if (!started) failed(why);
        this.lost(th, why);
      };
      worker.on('error', gone);
      worker.on('exit', (code) => gone(new Error(`worker thread ${index} stopped (exit code ${code})`)));
    });
  }

  /** A worker that died: its jobs end with an error, its sessions are gone, and a new thread takes
   *  its place (unless the server is closing, or threads have stopped too often: see
   *  RESTARTS_PER_MINUTE). */
  private lost(th: Thread, why: Error): void {
    for (const p of [...this.running.values()]) {
      if (p.thread !== th) continue;
      this.drop(p);
      p.job.onError(new Error(`the worker thread serving this request stopped: ${why.message}`));
    }
    for (const r of th.replies.values()) r.fail(why);
    th.replies.clear();
    th.busy = 0;
    th.sessions.clear();
    if (this.launched && !this.closing) {
      this.o.log?.(`itera serve: worker thread ${th.index} stopped: ${why.message}`);
      this.replace(th.index);
    }
    this.pump();
    this.checkIdle();
  }

  private replace(index: number): void {
    const now = performance.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    if (this.restarts.length >= (this.o.restartsPerMinute ?? RESTARTS_PER_MINUTE) * this.o.count) {
      this.o.log?.(`itera serve: worker thread ${index} is not replaced: too many stopped in the last minute`);
      return;
    }
    this.restarts.push(now);
    this.starting++;
    this.spawn(index).then(
      () => {
        this.starting--;
        this.o.log?.(`itera serve: worker thread ${index} replaced`);
        this.pump();
      },
      (e: Error) => {
        this.starting--;
        this.o.log?.(`itera serve: worker thread ${index} could not be replaced: ${e.message}`);
        this.pump();
        this.checkIdle();
      },
    );
  }

  /** At least one worker thread is running or starting: false once every one has stopped for good
   *  (/health then answers 503). */
  get healthy(): boolean {
    return this.starting > 0 || this.threads.some((t) => t.alive);
  }

  /** The node Worker of thread i (tests end one to check what follows). */
  workerThread(i: number): Worker {
    return this.threads[i].worker;
  }

  /** Each worker's generating jobs and kept sessions (for tests and the bench). */
  loads(): { busy: number; sessions: number; alive: boolean }[] {
    return this.threads.map((t) => ({ busy: t.busy, sessions: t.sessions.size, alive: t.alive }));
  }

  get busy(): number {
    return this.running.size;
  }
  get queued(): number {
    return this.waiting.length;
  }
  get idle(): boolean {
    return this.waiting.length === 0 && this.running.size === 0;
  }

  submit(job: EngineJob): boolean {
    if (this.running.size + this.waiting.length >= this.slots + this.o.maxQueue) return false;
    const p: Pending = { job, id: this.nextId++, submitted: performance.now(), generated: 0 };
    this.byJob.set(job, p);
    this.waiting.push(p);
    this.pump();
    return true;
  }

  cancel(job: EngineJob): void {
    const p = this.byJob.get(job);
    if (!p) return;
    const w = this.waiting.indexOf(p);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.byJob.delete(job);
    } else {
      const th = p.thread;
      this.drop(p);
      if (th?.alive) th.worker.postMessage({ t: 'cancel', id: p.id } satisfies ToWorker);
    }
    this.pump();
    this.checkIdle();
  }

  clear(): void {
    this.waiting = [];
    this.running.clear();
    this.byJob.clear();
    for (const th of this.threads) {
      th.busy = 0;
      if (th.alive) th.worker.postMessage({ t: 'clear' } satisfies ToWorker);
    }
    this.checkIdle();
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((ok) => this.idleWaiters.push(ok));
  }

  /** Sends waiting jobs to workers with a free slot, in arrival order; with no worker left, ends
   *  them with an error. */
  private pump(): void {
    if (!this.healthy && !this.closing) {
      for (const p of this.waiting.splice(0)) {
        this.byJob.delete(p.job);
        later(p.job, new Error('no worker thread is running: they stopped, and too often to be replaced'));
      }
    }
    for (let i = 0; i < this.waiting.length;) {
      const p = this.waiting[i];
      const ref = p.job.session as PoolSession | undefined;
      let th: Thread | undefined;
      if (ref) {
        const home = ref.thread;
        if (!home.alive) {
          this.waiting.splice(i, 1);
          this.byJob.delete(p.job);
          later(p.job, new Error('the worker thread holding this session stopped: the session is gone'));
          continue;
        }
        if (home.busy < this.o.parallel) th = home;
      } else {
        for (const t of this.threads) if (t.alive && t.busy < this.o.parallel && (!th || t.busy < th.busy)) th = t;
      }
      if (!th) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.dispatch(p, th);
    }
  }

  private dispatch(p: Pending, th: Thread): void {
    const j = p.job;
    p.thread = th;
    th.busy++;
    this.running.set(p.id, p);
    const msg: WireJob = {
      t: 'job',
      id: p.id,
      promptIds: j.promptIds,
      sampler: j.sampler,
      maxTokens: j.maxTokens,
      eos: j.eos,
      logprobs: j.logprobs,
      stop: [...j.stop],
      ...(j.session ? { session: (j.session as PoolSession).handle } : {}),
    };
    th.worker.postMessage(msg);
  }

  private drop(p: Pending): void {
    if (this.running.delete(p.id) && p.thread) p.thread.busy--;
    this.byJob.delete(p.job);
  }

  private onEvents(th: Thread, list: WorkerEvent[]): void {
    for (const e of list) {
      if (e.t !== 'tok' && e.session !== undefined && e.position !== undefined) {
        const ref = th.sessions.get(e.session);
        if (ref) ref.position = e.position;
      }
      if (e.t === 'pos') continue;
      const p = this.running.get(e.id);
      if (!p) continue; // cancelled here, or already ended at a stop string
      if (e.t === 'tok') {
        if (p.generated++ === 0) this.o.metrics.ttft.observe((performance.now() - p.submitted) / 1000);
        let stop: boolean;
        try {
          stop = p.job.onToken(e.ev);
        } catch (err) {
          this.cancel(p.job);
          p.job.onError(err);
          continue;
        }
        if (stop) {
          // the worker saw the same stop string at the same token and has ended it already
          this.drop(p);
          p.job.onEnd('stop', p.generated);
        }
      } else if (e.t === 'end') {
        this.drop(p);
        p.job.onEnd(e.reason, e.generated);
      } else {
        this.drop(p);
        p.job.onError(fromWire(e.error));
      }
    }
    this.pump();
    this.checkIdle();
  }

  private call<T>(th: Thread, msg: ToWorker & { rid: number }, transfer: ArrayBuffer[] = []): Promise<T> {
    if (!th.alive) return Promise.reject(new Error(`worker thread ${th.index} has stopped`));
    return new Promise<T>((ok, fail) => {
      th.replies.set(msg.rid, { ok: ok as (v: unknown) => void, fail });
      th.worker.postMessage(msg, transfer);
    });
  }

  /** Where a new session goes: the live worker holding the fewest, then the least busy. */
  private home(): Thread {
    let best: Thread | undefined;
    for (const t of this.threads) {
      if (!t.alive) continue;
      if (
        !best ||
        t.sessions.size < best.sessions.size ||
        (t.sessions.size === best.sessions.size && t.busy < best.busy)
      )
        best = t;
    }
    if (!best) throw new Error('no worker thread is running');
    return best;
  }

  async openSession(): Promise<SessionRef> {
    const th = this.home();
    const handle = await this.call<number>(th, { t: 'open', rid: this.nextId++ });
    const ref = new PoolSession(th, handle, 0);
    th.sessions.set(handle, ref);
    return ref;
  }

  async restoreSession(bytes: Uint8Array): Promise<SessionRef> {
    const th = this.home();
    const copy = bytes.slice();
    const r = await this.call<{ handle: number; position: number }>(
      th,
      { t: 'restore', rid: this.nextId++, bytes: copy },
      [copy.buffer as ArrayBuffer],
    );
    const ref = new PoolSession(th, r.handle, r.position);
    th.sessions.set(r.handle, ref);
    return ref;
  }

  saveSession(s: SessionRef): Promise<Uint8Array> {
    const ref = s as PoolSession;
    return this.call<Uint8Array>(ref.thread, { t: 'save', rid: this.nextId++, session: ref.handle });
  }

  freeSession(s: SessionRef): void {
    const th = (s as PoolSession).thread;
    th.sessions.delete((s as PoolSession).handle);
    if (th.alive) th.worker.postMessage({ t: 'free', session: (s as PoolSession).handle } satisfies ToWorker);
  }

  async renderMetrics(http: Metrics): Promise<string> {
    const figs = await Promise.all(
      this.threads
        .filter((t) => t.alive)
        .map((t) => this.call<SchedulerFigures>(t, { t: 'figures', rid: this.nextId++ }).catch(() => null)),
    );
    const m = http.withWorkers(
      figs.filter((f): f is SchedulerFigures => f !== null),
      this.waiting.length,
    );
    m.slots = this.slots;
    return m.render();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.clear();
    const ths = this.threads.filter((t) => t.alive);
    for (const t of ths) t.alive = false;
    await Promise.all(ths.map((t) => t.worker.terminate()));
  }

  private checkIdle(): void {
    if (!this.idle) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
