// dist/pkg (npm run package) for the tests that need it: sea.test and tier-pi-emulated.test, which
// tap may run at the same time, so the build is done by one of them while the other waits.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { plainEnv } from './tier-common.js';

const root = repoRoot();
export const pkgDir = join(root, 'dist', 'pkg');
export const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

function mtime(f: string): number {
  return existsSync(f) ? statSync(f).mtimeMs : 0;
}

function fresh(): boolean {
  const inputs = [
    'dist/host/cli/itera.js',
    'dist/host/server/worker.js',
    'build/itera.wasm',
    'build/itera-scalar.wasm',
    'build/itera-relaxed.wasm',
    'models/student-mix.gguf',
    'scripts/package.mjs',
  ];
  const newest = Math.max(...inputs.map((f) => mtime(join(root, f))));
  const outs = ['itera-linux-x64', 'itera-linux-arm64', `itera-lite-${version}.tar.gz`].map((f) => join(pkgDir, f));
  return outs.every((f) => mtime(f) > newest);
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Builds dist/pkg unless it is newer than everything it holds; null, or why it failed. */
export function ensurePackage(): string | null {
  if (fresh()) return null;
  mkdirSync(pkgDir, { recursive: true });
  const lock = join(pkgDir, '.building');
  for (let waited = 0; ; waited += 1000) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // another test file builds it: wait for it (a lock older than 10 minutes is stale)
      if (waited > 600_000 || Date.now() - mtime(lock) > 600_000) rmSync(lock, { recursive: true, force: true });
      sleep(1000);
    }
  }
  try {
    if (fresh()) return null;
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'package.mjs'), '--no-sizes'], {
      encoding: 'utf8',
      env: plainEnv(),
    });
    return r.status === 0 ? null : `npm run package failed: ${r.stderr}`;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
