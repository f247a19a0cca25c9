// One worker thread of `itera serve --workers N` (pool.ts starts them): its own WebAssembly
// instance of the model, its own Scheduler stepping its requests together, and the kept sessions
// the pool pinned here. It tokenizes nothing it is sent; it reports each step's tokens in one
// message, and ends a job at a stop string itself (running the same CompletionText the HTTP layer
// runs), so a kept session's state never holds tokens past the stop a client saw it end at.

import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../node/index.js';
import type { IteraModel } from '../runtime/api.js';
import type { WasmSession } from '../runtime/runtime.js';
import { Metrics } from './metrics.js';
import { wireError, type FromWorker, type ToWorker, type WireJob, type WorkerEvent, type WorkerInit } from './pool.js';
import { batchedStepper, Scheduler, type Job } from './scheduler.js';
import { CompletionText } from './stop.js';

const port = parentPort;
if (!port) throw new Error('host/server/worker.js runs as a worker thread of itera serve, not on its own');
const init = workerData as WorkerInit;

function post(m: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(m, transfer);
}

let model: IteraModel;
try {
  model = await loadModel(init.model, { build: init.build });
} catch (e) {
  post({ t: 'fatal', error: wireError(e) });
  process.exit(1);
}

const metrics = new Metrics();
const scheduler = new Scheduler(model, init.parallel, init.parallel, metrics, batchedStepper(model));
const sessions = new Map<number, WasmSession>();
const jobs = new Map<number, { job: Job; session?: number }>();
let nextHandle = 1;

// a step's events leave together, once the step is over
let out: WorkerEvent[] = [];
function emit(e: WorkerEvent): void {
  if (out.length === 0) queueMicrotask(flush);
  out.push(e);
}
function flush(): void {
  const list = out;
  out = [];
  if (list.length > 0) post({ t: 'events', list });
}

function where(h: number | undefined): { session?: number; position?: number } {
  const s = h === undefined ? undefined : sessions.get(h);
  return s && h !== undefined ? { session: h, position: s.position } : {};
}

function start(m: WireJob): void {
  let kept: WasmSession | undefined;
  if (m.session !== undefined) {
    kept = sessions.get(m.session);
    if (!kept) {
      emit({ t: 'err', id: m.id, error: { message: `no session ${m.session} in this worker`, code: 'NO_SESSION' } });
      return;
    }
  }
  const text = m.stop.length > 0 ? new CompletionText(model.tokenizer, m.stop) : null;
  const job: Job = {
    promptIds: m.promptIds,
    sampler: m.sampler,
    maxTokens: m.maxTokens,
    eos: m.eos,
    logprobs: m.logprobs,
    session: kept,
    onToken(ev) {
      emit({ t: 'tok', id: m.id, ev });
      return text !== null && text.push(ev.id, ev.last).feed.stopped;
    },
    onEnd(reason, generated) {
      jobs.delete(m.id);
      emit({ t: 'end', id: m.id, reason, generated, ...where(m.session) });
    },
    onError(e) {
      jobs.delete(m.id);
      emit({ t: 'err', id: m.id, error: wireError(e), ...where(m.session) });
    },
  };
  jobs.set(m.id, { job, session: m.session });
  // the pool sends no more than --parallel jobs at once, so this queue never fills
  if (!scheduler.submit(job)) {
    jobs.delete(m.id);
    emit({ t: 'err', id: m.id, error: { message: 'the worker has no free slot', code: 'WORKER_FULL' } });
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'job':
      return start(m);
    case 'cancel': {
      const j = jobs.get(m.id);
      if (!j) return;
      jobs.delete(m.id);
      scheduler.cancel(j.job);
      const w = where(j.session);
      if (w.session !== undefined) emit({ t: 'pos', session: w.session, position: w.position! });
      return;
    }
    case 'clear':
      jobs.clear();
      scheduler.clear();
      return;
    case 'open': {
      const s = model.session();
      s.setWindow('exact');
      const h = nextHandle++;
      sessions.set(h, s);
      return post({ t: 'reply', rid: m.rid, value: h });
    }
    case 'restore': {
      try {
        const s = model.restore(m.bytes);
        const h = nextHandle++;
        sessions.set(h, s);
        return post({ t: 'reply', rid: m.rid, value: { handle: h, position: s.position } });
      } catch (e) {
        return post({ t: 'reply', rid: m.rid, error: wireError(e) });
      }
    }
    case 'save': {
      const s = sessions.get(m.session);
      if (!s) return post({ t: 'reply', rid: m.rid, error: { message: 'no such session in this worker' } });
      const bytes = s.save().slice(); // its own buffer, exactly its size, to hand over
      return post({ t: 'reply', rid: m.rid, value: bytes }, [bytes.buffer as ArrayBuffer]);
    }
    case 'free': {
      sessions.get(m.session)?.free();
      sessions.delete(m.session);
      return;
    }
    case 'figures':
      return post({ t: 'reply', rid: m.rid, value: metrics.figures() });
  }
});

post({ t: 'ready' });
