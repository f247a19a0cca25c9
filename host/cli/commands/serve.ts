// itera serve: the OpenAI-compatible inference server (host/server), with its limits and its
// security defaults as options. SIGTERM and SIGINT drain it.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { num, str, UsageError } from '../command.js';
import { buildFrom, modelHelp, modelOptions, modelPathFrom, openModel } from './model-option.js';
import { SERVER_DEFAULTS, startServer } from '../../server/server.js';
import { workerThreadsAvailable } from '../../server/pool.js';

const D = SERVER_DEFAULTS;
const CORES = availableParallelism();

export const serve: Command = {
  name: 'serve',
  summary: 'an OpenAI-compatible completion server (HTTP, many streams at once)',
  help: `Usage: itera serve [--model FILE] [--host ADDR] [--port N] [options]

Serves the model over HTTP: POST /v1/completions (OpenAI-compatible, streaming with
server-sent events), GET /v1/models, kept sessions (POST /v1/sessions, then
POST /v1/sessions/ID/completions continues from the kept state), GET /health, GET /metrics
(Prometheus), POST /tokenize, POST /detokenize. Listens on 127.0.0.1 unless told otherwise. SIGTERM or Ctrl-C drains: new
requests get 503, the ones in flight finish (or are cut after ${D.drain} s), then it exits 0.
One JSON line per request goes to stderr. See docs/server.md.

Options:
${modelHelp}
      --host ADDR         address to listen on (default ${D.host}); anything but a loopback
                          address needs --api-key-file (or --insecure)
  -p, --port N            port (default ${D.port}; 0 picks a free one)
      --parallel P        requests generating at once, one token each per step (default ${D.parallel})
      --max-queue Q       requests waiting for a slot before 429 (default ${D.maxQueue})
      --max-tokens N      most tokens one request may ask for (default ${D.maxTokens})
      --max-body BYTES    largest request body, else 413 (default ${D.maxBody})
      --timeout S         seconds a completion may take, else 504 or an error event (default ${D.timeout})
      --max-sessions N    kept sessions (POST /v1/sessions) at most (default ${D.maxSessions})
      --session-idle S    seconds a kept session may sit unused before it is ended (default ${D.sessionIdle})
      --api-key-file F    file with the API key(s), one a line: every endpoint but /health needs one
                          (Authorization: Bearer KEY, or X-Api-Key: KEY); default: no key
      --cors ORIGINS      comma-separated origins allowed to call it from a browser, or '*'
                          (default: none)
      --insecure          allow a non-loopback --host without an API key
      --workers N         worker threads, each with its own instance of the model and P slots
                          (default: the number of cores, here ${CORES}); 1 runs everything in the
                          main thread (the single executable's only choice so far); a kept
                          session stays on the worker that made it; a worker thread that stops
                          fails its requests, loses its sessions and is replaced (at most 3
                          times a minute each; with none left, /health answers 503)
  -h, --help              this help

Examples:
  itera serve
  curl -s localhost:8080/v1/completions -H 'content-type: application/json' \\
    -d '{"prompt": "The jury said", "max_tokens": 20, "seed": 1}'`,
  options: {
    ...modelOptions,
    host: { type: 'string' },
    port: { type: 'string', short: 'p' },
    parallel: { type: 'string' },
    'max-queue': { type: 'string' },
    'max-tokens': { type: 'string' },
    'max-body': { type: 'string' },
    timeout: { type: 'string' },
    'max-sessions': { type: 'string' },
    'session-idle': { type: 'string' },
    'api-key-file': { type: 'string' },
    cors: { type: 'string' },
    insecure: { type: 'boolean' },
    workers: { type: 'string' },
  },
  async run(v, _p, io) {
    const asked = num(v, 'workers', { int: true, min: 1, max: 256 });
    const threads = workerThreadsAvailable();
    if (asked !== undefined && asked > 1 && !threads)
      throw new UsageError(
        `--workers ${asked}: this build of itera has no worker script (worker.js beside the CLI); use --workers 1`,
      );
    const workers = asked ?? (threads ? CORES : 1);
    const keyFile = str(v, 'api-key-file');
    let apiKeys: string[] = [];
    if (keyFile !== undefined) {
      let text: string;
      try {
        text = readFileSync(keyFile, 'utf8');
      } catch (e) {
        throw new UsageError(`--api-key-file: cannot read '${keyFile}': ${(e as Error).message}`);
      }
      apiKeys = text
        .split(/\r?\n/)
        .map((s) => s.trim())
        .filter((s) => s !== '');
      if (apiKeys.length === 0) throw new UsageError(`--api-key-file: '${keyFile}' holds no key`);
    }
    const cors = (str(v, 'cors') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const modelPath = modelPathFrom(v);
    const opts = {
      host: str(v, 'host') ?? D.host,
      port: num(v, 'port', { int: true, min: 0, max: 65535 }) ?? D.port,
      parallel: num(v, 'parallel', { int: true, min: 1, max: 256 }) ?? D.parallel,
      maxQueue: num(v, 'max-queue', { int: true, min: 0 }) ?? D.maxQueue,
      maxTokens: num(v, 'max-tokens', { int: true, min: 1 }) ?? D.maxTokens,
      maxBody: num(v, 'max-body', { int: true, min: 64 }) ?? D.maxBody,
      timeout: num(v, 'timeout', { min: 0.001, max: 86_400 }) ?? D.timeout,
      maxSessions: num(v, 'max-sessions', { int: true, min: 0 }) ?? D.maxSessions,
      sessionIdle: num(v, 'session-idle', { min: 0.001, max: 86_400 }) ?? D.sessionIdle,
      apiKeys,
      cors,
      insecure: v.insecure === true,
    };
    const t0 = performance.now();
    const loading = openModel(v);
    const s = await startServer({
      ...opts,
      model: loading,
      ...(workers > 1 ? { workers: { count: workers, model: modelPath, build: buildFrom(v) } } : {}),
      modelId: basename(modelPath).replace(/\.gguf$/i, ''),
      log: (line) => io.err.write(line + '\n'),
    }).catch(async (e: unknown) => {
      (await loading.catch(() => null))?.dispose();
      throw e;
    });
    const model = await loading;
    io.out.write(
      `itera serve: listening on ${s.url} (model ${basename(modelPath)}, ${workers > 1 ? `${workers} workers x ` : ''}${opts.parallel} slots, ready in ${Math.round(performance.now() - t0)} ms)\n`,
    );
    await new Promise<void>((done) => {
      const stop = (sig: string): void => {
        io.out.write(`itera serve: ${sig}: draining (up to ${D.drain} s)\n`);
        void s.drain().then(done);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    model.dispose();
    io.out.write('itera serve: stopped\n');
    return 0;
  },
};
