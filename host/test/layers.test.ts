// The layers of host/ are enforced by dependency-cruiser (.dependency-cruiser.cjs, run by
// `npm run check:layers` in npm test). This runs the same rules on the real tree (no violation)
// and on a deliberately wrong tree built from host/test/fixtures/layers (every rule must fire).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from './shared.js';

const root = repoRoot();
const cruiser = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

function cruise(cwd: string): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [cruiser, 'host', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
    {
      cwd,
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

t.test('the real tree keeps its layers', async (t) => {
  const r = cruise(root);
  t.equal(r.status, 0, r.out);
});

t.test('a tree that breaks every rule is rejected, each rule by name', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'itera-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(join(dir, 'tsconfig.json'), readFileSync(join(root, 'tsconfig.json')));
  const fixtures = join(root, 'host', 'test', 'fixtures', 'layers');
  for (const f of readdirSync(fixtures).filter((n) => n.endsWith('.ts.txt'))) {
    const text = readFileSync(join(fixtures, f), 'utf8');
    const target = /^\/\/ (\S+)/.exec(text)?.[1];
    if (!target) throw new Error(`${f}: the first line must name the path`);
    mkdirSync(dirname(join(dir, target)), { recursive: true });
    writeFileSync(join(dir, target), text);
  }
  const r = cruise(dir);
  t.not(r.status, 0, 'dependency-cruiser fails');
  for (const rule of [
    'runtime-is-the-bottom',
    'runtime-and-web-know-no-node',
    'convert-knows-no-tools',
    'nothing-imports-the-cli',
    'shims-are-thin',
    'no-shim-crosses-to-another',
    'no-shim-crosses-to-another-web',
    'no-circular',
  ]) {
    t.match(r.out, new RegExp(`error ${rule}:`), `${rule} fires`);
  }
});
