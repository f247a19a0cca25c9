// The committed model cards (models/*.md, models/README.md, and the part of README.md between its
// model-cards marks) must be what models/scores.json gives,
// and models/scores.json what the committed models and the compressors give: the default model
// (student-mix.gguf) is scored again on the held-out Brown test split, and
// xz, zstd, bzip2 and PPMd run again on the same text given the training text. Runs
// scripts/model-cards.mjs --check. The compressors come from scripts/ci/setup-compressors.sh:
// without them the baseline part is skipped with the reason, or fails under CI.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './shared.js';

const root = repoRoot();
const have = (p: string): boolean => spawnSync(p, ['--help'], { stdio: 'ignore' }).error === undefined;
const missing = ['xz', 'zstd', 'bzip2', '7z'].filter((p) => !have(p));

function check(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'model-cards.mjs'), '--check', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

t.test('the cards match scores.json, and the default model scores what it says', async (t) => {
  const r = check(['--rescore', 'student-mix.gguf']);
  t.comment(r.out.trim());
  t.equal(r.code, 0, 'model-cards --check passes');
  t.match(r.out, /student-mix\.gguf: \d+ bytes, 333728 parameters/);
  t.match(r.out, /the committed cards match/);
});

t.test(
  'the compressor figures in scores.json are what the compressors give',
  { skip: missing.length && !process.env.CI ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    if (missing.length) {
      t.fail(`not installed: ${missing.join(', ')} (CI is set; scripts/ci/setup-compressors.sh installs them)`);
      return;
    }
    const r = check(['--baselines']);
    t.comment(r.out.trim());
    t.equal(r.code, 0, 'model-cards --check --baselines passes');
    t.match(r.out, /PPMd: \d+ bytes alone, \d+ given the training text/);
  },
);
