// Damaged checkpoints: truncation at many points and bit flips across whole archives (fixtures and
// the reference checkpoint) end in an IteraError or a successful parse, never anything else, and
// never hang.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importCheckpoint, importTorchZip, readSafetensors } from '../convert/import/index.js';
import { openZip } from '../convert/import/zip.js';
import { IteraError } from '../runtime/types.js';
import { needShared, repoRoot, requireShared } from './shared.js';
import { mulberry32 } from './helpers.js';

const FIXTURES = join(repoRoot(), 'host', 'test', 'fixtures');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));

interface Tally {
  ok: number;
  error: number;
  foreign: string[];
}

function attempt(tally: Tally, fn: () => unknown, what: string): void {
  try {
    fn();
    tally.ok++;
  } catch (e) {
    if (e instanceof IteraError) tally.error++;
    else if (tally.foreign.length < 5)
      tally.foreign.push(`${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    else tally.foreign.push('');
  }
}

function report(t: Test, tally: Tally, what: string): void {
  t.same(tally.foreign.filter(Boolean), [], `${what}: only IteraErrors (${tally.ok} parsed, ${tally.error} refused)`);
  t.equal(tally.foreign.length, 0, `${what}: no other exception`);
}

/** Byte range of an entry's data, to aim flips at the pickle. */
function entryRange(bytes: Uint8Array, suffix: string): [number, number] {
  const z = openZip(bytes);
  const name = z.names.find((n) => n.endsWith(suffix))!;
  const e = z.entries.get(name)!;
  return [e.dataOffset, e.dataOffset + e.size];
}

function fuzzArchive(
  t: Test,
  bytes: Uint8Array,
  label: string,
  budget: { flips: number; cuts: number; pickleMutations: number },
): void {
  const rnd = mulberry32(bytes.length);
  const load = (b: Uint8Array, verifyCrc: boolean) => () => importTorchZip(b, { verifyCrc });

  // Truncation: evenly spaced cuts, plus every cut within the last 300 bytes (the directory).
  const cuts = new Set<number>();
  for (let i = 0; i < budget.cuts; i++) cuts.add(Math.floor((i * bytes.length) / budget.cuts));
  for (let n = Math.max(0, bytes.length - 300); n < bytes.length; n++) cuts.add(n);
  const cut: Tally = { ok: 0, error: 0, foreign: [] };
  for (const n of cuts) attempt(cut, load(bytes.subarray(0, n), true), `${label} cut at ${n}`);
  report(t, cut, `${label}: ${cuts.size} truncations`);
  t.equal(cut.ok, 0, `${label}: no truncated archive parses`);

  // Bit flips anywhere, with the CRC check on and off; and in every byte of the directory and
  // end records (the last 400 bytes).
  const flip: Tally = { ok: 0, error: 0, foreign: [] };
  const flipAt = (p: number, verifyCrc: boolean): void => {
    const m = bytes.slice();
    m[p]! ^= 1 << Math.floor(rnd() * 8);
    attempt(flip, load(m, verifyCrc), `${label} flip at ${p} (crc ${verifyCrc})`);
  };
  for (let i = 0; i < budget.flips; i++) {
    flipAt(Math.floor(rnd() * bytes.length), true);
    flipAt(Math.floor(rnd() * bytes.length), false);
  }
  for (let p = Math.max(0, bytes.length - 400); p < bytes.length; p++) flipAt(p, false);
  report(t, flip, `${label}: bit flips`);

  // Without the CRC, flips inside data.pkl reach the pickle machine and the tensor rebuilder.
  const [from, to] = entryRange(bytes, 'data.pkl');
  const step = Math.max(1, Math.floor((to - from) / budget.pickleMutations));
  const pkl: Tally = { ok: 0, error: 0, foreign: [] };
  for (let p = from + Math.floor(rnd() * step); p < to; p += step) {
    const m = bytes.slice();
    // Alternate single-bit flips with whole random bytes (which also hit opcodes squarely).
    if (rnd() < 0.5) m[p]! ^= 1 << Math.floor(rnd() * 8);
    else m[p] = Math.floor(rnd() * 256);
    attempt(pkl, load(m, false), `${label} pickle byte at ${p}`);
  }
  report(t, pkl, `${label}: pickle bytes flipped`);
}

for (const name of [
  'tiny_itera.pt',
  'tiny_itera_wrapped.pt',
  'tiny_itera_f16.pt',
  'views.pt',
  'tiny_qint8.pt',
  'hostile_nested.pt',
]) {
  t.test(`damaged ${name}`, async (t) => {
    fuzzArchive(t, fixture(name), name, { flips: 200, cuts: 150, pickleMutations: 1200 });
  });
}

t.test('damaged safetensors', async (t) => {
  const bytes = fixture('tiny_itera_py.safetensors');
  const rnd = mulberry32(99);
  const tally: Tally = { ok: 0, error: 0, foreign: [] };
  for (let n = 0; n < bytes.length; n += 7)
    attempt(tally, () => importCheckpoint(bytes.subarray(0, n), 'x.safetensors'), `cut ${n}`);
  t.equal(tally.ok, 0, 'no truncation parses');
  const headerEnd = 8 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  for (let p = 0; p < headerEnd; p++) {
    const m = bytes.slice();
    m[p]! ^= 1 << Math.floor(rnd() * 8);
    attempt(tally, () => readSafetensors(m), `flip ${p}`);
  }
  report(t, tally, 'safetensors truncations and header flips');
});

t.test('damaged reference checkpoint', needShared('reference/checkpoints/itera_lite_micro_distilled.pt'), async (t) => {
  const bytes = new Uint8Array(readFileSync(requireShared('reference/checkpoints/itera_lite_micro_distilled.pt')));
  fuzzArchive(t, bytes, 'itera_lite_micro_distilled.pt', { flips: 100, cuts: 100, pickleMutations: 800 });
});
