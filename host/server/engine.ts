// Where completions run, as the HTTP layer sees it: an Engine takes jobs, keeps sessions and reports
// its figures. LocalEngine runs one Scheduler in this thread on the model it is given (the Node API,
// the tests, `itera serve --workers 1`); WorkerPool (pool.ts) runs one per worker thread.

import type { IteraModel } from '../runtime/api.js';
import type { WasmSession } from '../runtime/runtime.js';
import type { Metrics } from './metrics.js';
import { batchedStepper, Scheduler, type Job } from './scheduler.js';

/** A kept session, wherever its state lives. */
export interface SessionRef {
  /** Tokens the session has seen. */
  readonly position: number;
  /** Its state is gone (the worker thread holding it stopped). */
  readonly lost?: boolean;
}

/** A job as the HTTP layer gives it: the session is a reference, and the stop strings travel with
 *  it (a worker thread must end a kept session's generation at the stop itself). */
export interface EngineJob extends Omit<Job, 'session'> {
  session?: SessionRef;
  stop: readonly string[];
}

export interface Engine {
  /** Requests that can generate at once (every worker's slots). */
  readonly slots: number;
  readonly busy: number;
  readonly queued: number;
  readonly idle: boolean;
  /** Able to serve (false when every worker thread has stopped for good): /health's answer. */
  readonly healthy: boolean;
  /** Queues a job; false when the queue is full (the caller answers 429). */
  submit(job: EngineJob): boolean;
  /** Removes a job wherever it is; no callback follows. */
  cancel(job: EngineJob): void;
  /** Drops every job (no callbacks follow): the server is closing. */
  clear(): void;
  whenIdle(): Promise<void>;
  openSession(): Promise<SessionRef>;
  /** A session from saved state bytes; rejects with the runtime's IteraError when refused. */
  restoreSession(bytes: Uint8Array): Promise<SessionRef>;
  saveSession(s: SessionRef): Promise<Uint8Array>;
  freeSession(s: SessionRef): void;
  /** /metrics: the HTTP layer's figures (requests) with every scheduler's. */
  renderMetrics(http: Metrics): Promise<string>;
  close(): Promise<void>;
}

class LocalSession implements SessionRef {
  constructor(readonly session: WasmSession) {}
  get position(): number {
    return this.session.position;
  }
}

/** One scheduler in this thread, stepping its requests together through the batched kernels. */
export class LocalEngine implements Engine {
  readonly scheduler: Scheduler;
  private readonly jobs = new Map<EngineJob, Job>();

  constructor(
    private readonly model: IteraModel,
    parallel: number,
    maxQueue: number,
    metrics: Metrics,
  ) {
    this.scheduler = new Scheduler(model, parallel, maxQueue, metrics, batchedStepper(model));
  }

  get slots(): number {
    return this.scheduler.parallel;
  }
  get busy(): number {
    return this.scheduler.busy;
  }
  get queued(): number {
    return this.scheduler.queued;
  }
  get idle(): boolean {
    return this.scheduler.idle;
  }
  get healthy(): boolean {
    return true;
  }

  submit(job: EngineJob): boolean {
    const own = (s: SessionRef | undefined) => (s as LocalSession | undefined)?.session;
    const j: Job = {
      ...job,
      session: own(job.session),
      onToken: (t) => job.onToken(t),
      onEnd: (r, n) => {
        this.jobs.delete(job);
        job.onEnd(r, n);
      },
      onError: (e) => {
        this.jobs.delete(job);
        job.onError(e);
      },
    };
    if (!this.scheduler.submit(j)) return false;
    this.jobs.set(job, j);
    return true;
  }

  cancel(job: EngineJob): void {
    const j = this.jobs.get(job);
    if (!j) return;
    this.jobs.delete(job);
    this.scheduler.cancel(j);
  }

  clear(): void {
    this.jobs.clear();
    this.scheduler.clear();
  }

  whenIdle(): Promise<void> {
    return this.scheduler.whenIdle();
  }

  openSession(): Promise<SessionRef> {
    const s = this.model.session();
    s.setWindow('exact');
    return Promise.resolve(new LocalSession(s));
  }

  restoreSession(bytes: Uint8Array): Promise<SessionRef> {
    try {
      return Promise.resolve(new LocalSession(this.model.restore(bytes)));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  saveSession(s: SessionRef): Promise<Uint8Array> {
    return Promise.resolve((s as LocalSession).session.save());
  }

  freeSession(s: SessionRef): void {
    (s as LocalSession).session.free();
  }

  renderMetrics(http: Metrics): Promise<string> {
    return Promise.resolve(http.render());
  }

  close(): Promise<void> {
    this.clear();
    return Promise.resolve();
  }
}
