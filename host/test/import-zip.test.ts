// The ZIP reader: round trips, ZIP64, CRC, and each refusal.
import t from 'tap';
import { crc32, openZip, writeZip } from '../convert/import/zip.js';
import { expectIteraError } from './shared.js';
import { bytesOf } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function sample(): Uint8Array {
  return writeZip([
    { name: 'ck/data.pkl', data: enc.encode('pickle bytes') },
    { name: 'ck/data/0', data: new Uint8Array(100).map((_, i) => i) },
    { name: 'ck/empty', data: new Uint8Array(0) },
  ]);
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const eocdOf = (z: Uint8Array): number => z.length - 22;
const cdOffsetOf = (z: Uint8Array): number => view(z).getUint32(eocdOf(z) + 16, true);

/** Rewrites a small archive with ZIP64 end records (and, optionally, ZIP64 extra fields holding
 *  each entry's header offset), as large torch.save files have. */
function toZip64(z: Uint8Array, offsetsInExtra: boolean): Uint8Array {
  const v = view(z);
  const count = v.getUint16(eocdOf(z) + 10, true);
  const cdOff = cdOffsetOf(z);
  const parts: Uint8Array[] = [z.subarray(0, cdOff)];
  let p = cdOff;
  for (let i = 0; i < count; i++) {
    const nameLen = v.getUint16(p + 28, true);
    const len = 46 + nameLen;
    const h = z.slice(p, p + len);
    if (offsetsInExtra) {
      const hv = view(h);
      const local = hv.getUint32(42, true);
      hv.setUint32(42, 0xffffffff, true);
      hv.setUint16(30, 12, true);
      const extra = new Uint8Array(12);
      const ev = view(extra);
      ev.setUint16(0, 1, true);
      ev.setUint16(2, 8, true);
      ev.setUint32(4, local, true);
      parts.push(h, extra);
    } else {
      parts.push(h);
    }
    p += len;
  }
  const cdSize = parts.slice(1).reduce((a, b) => a + b.length, 0);
  const z64 = new Uint8Array(56 + 20 + 22);
  const zv = view(z64);
  zv.setUint32(0, 0x06064b50, true);
  zv.setUint32(4, 44, true);
  zv.setUint16(12, 45, true);
  zv.setUint16(14, 45, true);
  zv.setUint32(24, count, true);
  zv.setUint32(32, count, true);
  zv.setUint32(40, cdSize, true);
  zv.setUint32(48, cdOff, true);
  zv.setUint32(56, 0x07064b50, true);
  zv.setUint32(64, cdOff + cdSize, true);
  zv.setUint32(72, 1, true);
  zv.setUint32(76, 0x06054b50, true);
  zv.setUint16(76 + 8, 0xffff, true);
  zv.setUint16(76 + 10, 0xffff, true);
  zv.setUint32(76 + 12, 0xffffffff, true);
  zv.setUint32(76 + 16, 0xffffffff, true);
  parts.push(z64);
  return bytesOf(...parts);
}

t.test('crc32', async (t) => {
  t.equal(crc32(enc.encode('123456789')), 0xcbf43926, 'the standard check value');
  t.equal(crc32(new Uint8Array(0)), 0);
  t.equal(crc32(enc.encode('6789'), crc32(enc.encode('12345'))), 0xcbf43926, 'continues from a previous CRC');
});

t.test('round trip, comments and trailing bytes', async (t) => {
  const z = sample();
  const a = openZip(z);
  t.same(a.names, ['ck/data.pkl', 'ck/data/0', 'ck/empty']);
  t.equal(dec.decode(a.read('ck/data.pkl')), 'pickle bytes');
  t.same([...a.read('ck/data/0').subarray(95)], [95, 96, 97, 98, 99]);
  t.equal(a.read('ck/empty').length, 0);
  t.equal(a.entries.get('ck/data/0')!.size, 100);

  const withComment = new Uint8Array(z.length + 7);
  withComment.set(z);
  withComment.set(enc.encode('comment'), z.length);
  view(withComment).setUint16(eocdOf(z) + 20, 7, true);
  t.same(openZip(withComment).names, a.names, 'an archive comment');

  const junk = new Uint8Array(z.length + 5);
  junk.set(z);
  t.same(openZip(junk).names, a.names, 'trailing bytes after the end record');
});

t.test('ZIP64 end records and extra fields', async (t) => {
  for (const extra of [false, true]) {
    const z = toZip64(sample(), extra);
    const a = openZip(z);
    t.same(a.names, ['ck/data.pkl', 'ck/data/0', 'ck/empty'], `names (offsets in extra: ${extra})`);
    t.equal(dec.decode(a.read('ck/data.pkl')), 'pickle bytes');
  }
  const z = toZip64(sample(), false);
  const bad = z.slice();
  view(bad).setUint32(bad.length - 22 - 20 + 8, 5, true); // locator points at garbage
  expectIteraError(t, () => openZip(bad), 'ZIP_CORRUPT', /ZIP64 end record/, 'locator pointing nowhere');
  const noLocator = z.slice();
  view(noLocator).setUint32(noLocator.length - 22 - 20, 0, true);
  expectIteraError(t, () => openZip(noLocator), 'ZIP_CORRUPT', /no ZIP64 locator/, 'placeholders without ZIP64');
});

t.test('refusals', async (t) => {
  expectIteraError(t, () => openZip(new Uint8Array(0)), 'ZIP_TRUNCATED', /shorter than the smallest/, 'empty file');
  expectIteraError(
    t,
    () => openZip(new Uint8Array(1000)),
    'ZIP_TRUNCATED',
    /no end-of-central-directory/,
    'no end record',
  );
  const z = sample();
  expectIteraError(
    t,
    () => openZip(z.subarray(0, z.length - 30)),
    'ZIP_TRUNCATED',
    /end-of-central-directory/,
    'cut short',
  );

  const cdPast = z.slice();
  view(cdPast).setUint32(eocdOf(z) + 16, z.length, true);
  expectIteraError(
    t,
    () => openZip(cdPast),
    'ZIP_TRUNCATED',
    /central directory/,
    'central directory offset past the end',
  );

  const badSig = z.slice();
  badSig[cdOffsetOf(z)] = 0;
  expectIteraError(t, () => openZip(badSig), 'ZIP_CORRUPT', /bad signature/, 'bad central header signature');

  const tooMany = z.slice();
  view(tooMany).setUint16(eocdOf(z) + 10, 999, true);
  view(tooMany).setUint16(eocdOf(z) + 8, 999, true);
  expectIteraError(t, () => openZip(tooMany), 'ZIP_CORRUPT', /999 entries cannot fit/, 'entry count too large');

  const multiDisk = z.slice();
  view(multiDisk).setUint16(eocdOf(z) + 4, 1, true);
  expectIteraError(t, () => openZip(multiDisk), 'ZIP_CORRUPT', /multi-disk/, 'multi-disk');

  const dup = writeZip([
    { name: 'a', data: new Uint8Array(1) },
    { name: 'a', data: new Uint8Array(2) },
  ]);
  expectIteraError(t, () => openZip(dup), 'ZIP_CORRUPT', /'a' appears twice/, 'duplicate names');

  const cd = cdOffsetOf(z);
  const compressed = z.slice();
  view(compressed).setUint16(cd + 10, 8, true); // first entry: deflate
  const ca = openZip(compressed);
  expectIteraError(
    t,
    () => ca.read('ck/data.pkl'),
    'ZIP_COMPRESSED',
    /'ck\/data\.pkl' is compressed.*torch\.save/,
    'compressed entry',
  );
  t.equal(ca.read('ck/data/0').length, 100, 'other entries still read');

  const encrypted = z.slice();
  view(encrypted).setUint16(cd + 8, 0x801, true);
  expectIteraError(t, () => openZip(encrypted), 'ZIP_UNSUPPORTED', /encrypted/, 'encrypted entry');

  const flipped = z.slice();
  flipped[30 + 'ck/data.pkl'.length + 3]! ^= 0x10;
  expectIteraError(
    t,
    () => openZip(flipped).read('ck/data.pkl'),
    'ZIP_CRC',
    /'ck\/data\.pkl' fails its CRC-32/,
    'bit flip in data',
  );
  t.equal(openZip(flipped, { verifyCrc: false }).read('ck/data.pkl').length, 12, 'verifyCrc: false skips the check');

  const renamed = z.slice();
  renamed[30] = 0x78; // local header name differs from the central one
  expectIteraError(t, () => openZip(renamed), 'ZIP_CORRUPT', /different name/, 'local name mismatch');

  const localPast = z.slice();
  view(localPast).setUint32(cd + 42, cd - 10, true);
  expectIteraError(
    t,
    () => openZip(localPast),
    'ZIP_TRUNCATED',
    /outside the data area/,
    'local header offset in the directory',
  );

  const sizePast = z.slice();
  view(sizePast).setUint32(cd + 20, 1 << 20, true);
  view(sizePast).setUint32(cd + 24, 1 << 20, true);
  expectIteraError(t, () => openZip(sizePast), 'ZIP_TRUNCATED', /runs past the data area/, 'entry size past the data');

  const sizeMismatch = z.slice();
  view(sizeMismatch).setUint32(cd + 24, 5, true);
  expectIteraError(t, () => openZip(sizeMismatch), 'ZIP_CORRUPT', /different compressed/, 'stored sizes differ');

  expectIteraError(t, () => openZip(z).read('nope'), 'ZIP_ENTRY_MISSING', /'nope'/, 'missing entry');
});
