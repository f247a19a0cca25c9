// The Python side of `itera train`: finding an interpreter with PyTorch, finding
// scripts/train/train.py (only in a clone), running it and reading its progress lines.
// Workstation only: nothing here ships in the runtime. Node only.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IteraError } from '../runtime/types.js';

export const INSTALL_TORCH =
  'install PyTorch and NumPy for Python 3: on Debian or Ubuntu `sudo apt install python3-torch python3-numpy` ' +
  '(then --python /usr/bin/python3), elsewhere `python3 -m pip install torch numpy`';

export interface PythonFound {
  python: string;
  torch: string;
}

/** The interpreters tried, in order: --python, $ITERA_PYTHON, Debian's /usr/bin/python3 (the one
 *  apt's python3-torch serves), then python3 on PATH. */
export function pythonCandidates(explicit?: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit) return [explicit];
  if (env.ITERA_PYTHON) return [env.ITERA_PYTHON];
  return ['/usr/bin/python3', 'python3'];
}

/** The first candidate that is Python 3 and imports torch and numpy; else an IteraError saying
 *  what each candidate did and how to install PyTorch. */
export function findPython(candidates: readonly string[]): PythonFound {
  const tried: string[] = [];
  for (const py of candidates) {
    const r = spawnSync(
      py,
      [
        '-c',
        'import sys; assert sys.version_info[0] == 3, "not Python 3"; import torch, numpy; print(torch.__version__)',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (r.error) {
      const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
      tried.push(`${py}: ${missing ? 'not found' : r.error.message}`);
      continue;
    }
    if (r.status !== 0) {
      const last = (r.stderr || '').trim().split('\n').pop() || `exit status ${r.status}`;
      tried.push(`${py}: ${last}`);
      continue;
    }
    return { python: py, torch: r.stdout.trim() };
  }
  throw new IteraError(
    `itera train needs Python 3 with PyTorch, and none was found (${tried.join('; ')}). To fix: ${INSTALL_TORCH}`,
    'NO_TORCH',
  );
}

/** scripts/train/train.py under the package root, or an IteraError: the npm package leaves the
 *  training scripts out, so training needs a clone of the repository. */
export function trainScript(root: string): string {
  const p = join(root, 'scripts', 'train', 'train.py');
  if (!existsSync(p))
    throw new IteraError(
      `itera train needs a clone of the repository: ${p} is missing (the installed package leaves out the ` +
        'training scripts). Clone the itera-lite repository, run `npm ci && npm run build` in it, and run ' +
        '`node bin/itera.js train ...` there',
      'NO_TRAIN_SCRIPT',
    );
  return p;
}

/** A progress line of train.py, read. */
export type TrainLine =
  | { kind: 'step'; step: number; total: number | null; loss: number; eta: string }
  | { kind: 'eval'; step: number; valLoss: number; bitsPerToken: number; best: boolean }
  | { kind: 'other'; text: string };

/** Reads train.py's 'step S/T  loss L ... eta H:MM:SS' and 'eval step S: val loss L, B bits/token'
 *  lines; anything else is 'other'. */
export function parseTrainLine(line: string): TrainLine {
  const s = /^step (\d+)\/(\d+|\?)\s+loss (\S+).*\beta (\d+:\d\d:\d\d)\s*$/.exec(line);
  if (s)
    return {
      kind: 'step',
      step: Number(s[1]),
      total: s[2] === '?' ? null : Number(s[2]),
      loss: Number(s[3]),
      eta: s[4]!,
    };
  const e = /^eval step (\d+): val loss (\S+), (\S+) bits\/token/.exec(line);
  if (e)
    return {
      kind: 'eval',
      step: Number(e[1]),
      valLoss: Number(e[2]),
      bitsPerToken: Number(e[3]),
      best: line.includes('(best'),
    };
  return { kind: 'other', text: line };
}

export interface TrainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when this process received SIGINT or SIGTERM and passed it on. */
  interrupted: boolean;
  stderr: string;
}

/** Runs train.py with `args`, one thread, in its own process group: a Ctrl-C on the terminal
 *  reaches this process only, which passes each SIGINT/SIGTERM on once (the first makes train.py
 *  finish its step and write the checkpoint; a second one makes it give up at once). Every stdout
 *  line goes to onLine; stderr is kept (and passed to onLine too). */
export function runTrainer(
  python: string,
  script: string,
  args: readonly string[],
  onLine: (line: string, stream: 'out' | 'err') => void,
): Promise<TrainerExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' },
    });
    let interrupted = false;
    const pass = (sig: NodeJS.Signals) => () => {
      interrupted = true;
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    const onInt = pass('SIGINT');
    const onTerm = pass('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    // if this process ends first, take the trainer with it rather than leave it running alone
    const onExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    process.on('exit', onExit);
    let stderr = '';
    const lines = (stream: 'out' | 'err') => {
      let rest = '';
      return (chunk: Buffer): void => {
        const text = rest + chunk.toString('utf8');
        const parts = text.split('\n');
        rest = parts.pop()!;
        for (const p of parts) {
          if (stream === 'err') stderr += p + '\n';
          onLine(p, stream);
        }
      };
    };
    child.stdout!.on('data', lines('out'));
    child.stderr!.on('data', lines('err'));
    const done = (): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('exit', onExit);
    };
    child.on('error', (e) => {
      done();
      reject(new IteraError(`cannot run ${python}: ${e.message}`, 'NO_TORCH'));
    });
    child.on('close', (code, signal) => {
      done();
      resolve({ code, signal, interrupted, stderr });
    });
  });
}
