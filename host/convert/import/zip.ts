// A minimal, defensive ZIP reader (and a tiny stored-only writer for tests and tools).
//
// torch.save writes an uncompressed ("stored", method 0) ZIP archive, with ZIP64 records when the
// file is large (recent versions write them always). This reader understands exactly that: it
// finds the end-of-central-directory record (and the ZIP64 one when present), reads the central
// directory, checks every offset and length against the file, and hands out entry data as views
// into the input. It never decompresses, never seeks outside the input, and every loop is bounded
// by the number of entries the central directory can hold, so a corrupt or hostile archive ends in
// an IteraError, never a RangeError or a hang.
//
// Layout facts used here: PKWARE APPNOTE.TXT sections 4.3.7 (local file header), 4.3.12 (central
// directory header), 4.3.14-4.3.16 (ZIP64 end of central directory record and locator, end of
// central directory record) and 4.5.3 (ZIP64 extended information extra field).

import { IteraError } from '../../runtime/types.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN_SIZE = 56;
const MAX_COMMENT = 0xffff;

/** One file of the archive, as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored. Anything else is compressed, which this reader refuses to decode. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  /** Absolute offset of the entry's first data byte in the archive. */
  readonly dataOffset: number;
}

export interface ZipOptions {
  /** Check each entry's CRC-32 the first time it is read (default true). */
  verifyCrc?: boolean;
}

function truncated(what: string): IteraError {
  return new IteraError(`ZIP archive is truncated: ${what}`, 'ZIP_TRUNCATED');
}

function corrupt(what: string): IteraError {
  return new IteraError(`ZIP archive is corrupt: ${what}`, 'ZIP_CORRUPT');
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.

let crcTable: Uint32Array | undefined;

function getCrcTable(): Uint32Array {
  if (crcTable) return crcTable;
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  crcTable = table;
  return table;
}

/** CRC-32 of `data`, continuing from `previous` (the CRC of what came before, 0 to start). */
export function crc32(data: Uint8Array, previous = 0): number {
  const table = getCrcTable();
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Reading.

/** Reads a little-endian unsigned 64-bit value as a number; refuses values past 2^53. */
function readU64(view: DataView, offset: number, what: string): number {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  if (hi > 0x1fffff) throw corrupt(`${what} is an impossible 64-bit value`);
  return hi * 0x100000000 + lo;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(raw: Uint8Array, utf8Flag: boolean): string {
  if (utf8Flag) {
    try {
      return utf8.decode(raw);
    } catch {
      throw corrupt('an entry name flagged as UTF-8 is not valid UTF-8');
    }
  }
  // Without the UTF-8 flag the name is CP437; torch writes ASCII names, so map bytes one to one.
  let s = '';
  for (let i = 0; i < raw.length; i++) s += String.fromCharCode(raw[i]!);
  return s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface EndRecord {
  entryCount: number;
  cdOffset: number;
  cdSize: number;
  /** Where the central directory must end: the start of the (ZIP64) end records. */
  cdLimit: number;
}

function findEndRecord(bytes: Uint8Array, view: DataView): EndRecord {
  const len = bytes.length;
  if (len < EOCD_SIZE) throw truncated(`${len} bytes is shorter than the smallest possible archive (22 bytes)`);
  // Search backwards for the EOCD signature; the record can be followed by a comment of up to
  // 65535 bytes. The closest candidate to the end whose comment length fits exactly wins; a
  // candidate whose comment would run past the end is skipped.
  const lowest = Math.max(0, len - EOCD_SIZE - MAX_COMMENT);
  let eocd = -1;
  let loose = -1;
  for (let p = len - EOCD_SIZE; p >= lowest; p--) {
    if (bytes[p] !== 0x50 || view.getUint32(p, true) !== SIG_EOCD) continue;
    const commentLen = view.getUint16(p + 20, true);
    if (p + EOCD_SIZE + commentLen === len) {
      eocd = p;
      break;
    }
    if (loose < 0 && p + EOCD_SIZE + commentLen < len) loose = p;
  }
  if (eocd < 0) eocd = loose;
  if (eocd < 0) {
    throw truncated('no end-of-central-directory record found (the file was cut short, or it is not a ZIP archive)');
  }

  const disk = view.getUint16(eocd + 4, true);
  const cdDisk = view.getUint16(eocd + 6, true);
  let entriesOnDisk = view.getUint16(eocd + 8, true);
  let entryCount = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  let cdLimit = eocd;

  // A ZIP64 locator, when present, sits immediately before the EOCD record.
  const loc = eocd - ZIP64_LOCATOR_SIZE;
  const needs64 = entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff;
  if (loc >= 0 && view.getUint32(loc, true) === SIG_ZIP64_LOCATOR) {
    const z64Disk = view.getUint32(loc + 4, true);
    const z64Offset = readU64(view, loc + 8, 'the ZIP64 end record offset');
    const totalDisks = view.getUint32(loc + 16, true);
    if (z64Disk !== 0 || totalDisks > 1) throw corrupt('multi-disk archives are not supported');
    if (z64Offset + ZIP64_EOCD_MIN_SIZE > loc) {
      throw corrupt(`the ZIP64 end record offset ${z64Offset} lies outside the archive`);
    }
    if (view.getUint32(z64Offset, true) !== SIG_ZIP64_EOCD) {
      throw corrupt(`no ZIP64 end record at offset ${z64Offset}`);
    }
    const recordSize = readU64(view, z64Offset + 4, 'the ZIP64 end record size');
    if (recordSize < ZIP64_EOCD_MIN_SIZE - 12 || z64Offset + 12 + recordSize > loc) {
      throw corrupt('the ZIP64 end record has an impossible size');
    }
    const d = view.getUint32(z64Offset + 16, true);
    const cd = view.getUint32(z64Offset + 20, true);
    if (d !== 0 || cd !== 0) throw corrupt('multi-disk archives are not supported');
    entriesOnDisk = readU64(view, z64Offset + 24, 'the ZIP64 entry count');
    entryCount = readU64(view, z64Offset + 32, 'the ZIP64 entry count');
    cdSize = readU64(view, z64Offset + 40, 'the ZIP64 central directory size');
    cdOffset = readU64(view, z64Offset + 48, 'the ZIP64 central directory offset');
    cdLimit = z64Offset;
  } else {
    if (needs64) throw corrupt('the end record needs ZIP64 values but no ZIP64 locator precedes it');
    if (disk !== 0 || cdDisk !== 0) throw corrupt('multi-disk archives are not supported');
  }
  if (entriesOnDisk !== entryCount) throw corrupt('multi-disk archives are not supported');
  if (cdOffset > cdLimit || cdSize > cdLimit - cdOffset) {
    throw truncated(
      `the central directory (offset ${cdOffset}, ${cdSize} bytes) does not fit before the end records at ${cdLimit}`,
    );
  }
  if (entryCount * CENTRAL_HEADER_SIZE > cdSize) {
    throw corrupt(`${entryCount} entries cannot fit in a ${cdSize}-byte central directory`);
  }
  return { entryCount, cdOffset, cdSize, cdLimit };
}

/** Applies a ZIP64 extended-information extra field (id 0x0001) to the 0xFFFFFFFF placeholders. */
function applyZip64Extra(
  view: DataView,
  extraStart: number,
  extraEnd: number,
  name: string,
  fields: { size: number; compressedSize: number; localOffset: number; diskStart: number },
): void {
  let p = extraStart;
  while (p + 4 <= extraEnd) {
    const id = view.getUint16(p, true);
    const len = view.getUint16(p + 2, true);
    const body = p + 4;
    if (body + len > extraEnd) throw corrupt(`entry '${name}' has an extra field running past its header`);
    if (id === 0x0001) {
      let q = body;
      const take = (what: string): number => {
        if (q + 8 > body + len) throw corrupt(`entry '${name}' has a ZIP64 extra field too short for its ${what}`);
        const v = readU64(view, q, `entry '${name}' ${what}`);
        q += 8;
        return v;
      };
      if (fields.size === 0xffffffff) fields.size = take('size');
      if (fields.compressedSize === 0xffffffff) fields.compressedSize = take('compressed size');
      if (fields.localOffset === 0xffffffff) fields.localOffset = take('header offset');
      if (fields.diskStart === 0xffff) {
        if (q + 4 > body + len) throw corrupt(`entry '${name}' has a ZIP64 extra field too short for its disk number`);
        fields.diskStart = view.getUint32(q, true);
      }
      return;
    }
    p = body + len;
  }
}

/** A parsed archive. Entry data are views into the bytes the archive was opened on. */
export class ZipArchive {
  private readonly verified = new Set<string>();

  constructor(
    private readonly bytes: Uint8Array,
    /** Entries in central-directory order. */
    readonly entries: ReadonlyMap<string, ZipEntry>,
    private readonly verifyCrc: boolean,
  ) {}

  get names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The data of entry `name` (a view, not a copy). Throws if it is missing or compressed. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) throw new IteraError(`ZIP archive has no entry '${name}'`, 'ZIP_ENTRY_MISSING');
    if (entry.method !== 0) {
      throw new IteraError(
        `ZIP entry '${name}' is compressed (method ${entry.method}); only stored (uncompressed) entries are ` +
          'supported, which is what torch.save writes. Re-save the checkpoint with torch.save instead of re-zipping it.',
        'ZIP_COMPRESSED',
      );
    }
    const data = this.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.size);
    if (this.verifyCrc && !this.verified.has(name)) {
      const actual = crc32(data);
      if (actual !== entry.crc32) {
        throw new IteraError(
          `ZIP entry '${name}' fails its CRC-32 check (stored ${hex32(entry.crc32)}, computed ${hex32(actual)}): ` +
            'the file is damaged',
          'ZIP_CRC',
        );
      }
      this.verified.add(name);
    }
    return data;
  }
}

function hex32(v: number): string {
  return '0x' + v.toString(16).padStart(8, '0');
}

/** True if `bytes` starts like a ZIP archive (a local file header, or an empty archive). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) return false;
  return (bytes[2] === 0x03 && bytes[3] === 0x04) || (bytes[2] === 0x05 && bytes[3] === 0x06);
}

/** Parses the archive's directory and checks every entry's location. */
export function openZip(bytes: Uint8Array, options: ZipOptions = {}): ZipArchive {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = findEndRecord(bytes, view);
  const entries = new Map<string, ZipEntry>();
  const cdEnd = end.cdOffset + end.cdSize;
  let p = end.cdOffset;
  for (let i = 0; i < end.entryCount; i++) {
    if (p + CENTRAL_HEADER_SIZE > cdEnd) throw corrupt(`central directory ends inside entry ${i}`);
    if (view.getUint32(p, true) !== SIG_CENTRAL) throw corrupt(`central directory entry ${i} has a bad signature`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const headerEnd = p + CENTRAL_HEADER_SIZE + nameLen + extraLen + commentLen;
    if (headerEnd > cdEnd) throw corrupt(`central directory entry ${i} runs past the directory`);
    const rawName = bytes.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLen);
    const name = decodeName(rawName, (flags & 0x800) !== 0);
    const fields = {
      compressedSize: view.getUint32(p + 20, true),
      size: view.getUint32(p + 24, true),
      diskStart: view.getUint16(p + 34, true),
      localOffset: view.getUint32(p + 42, true),
    };
    const extraStart = p + CENTRAL_HEADER_SIZE + nameLen;
    applyZip64Extra(view, extraStart, extraStart + extraLen, name, fields);
    p = headerEnd;

    if (entries.has(name)) throw corrupt(`entry '${name}' appears twice in the central directory`);
    if (flags & 0x1)
      throw new IteraError(`ZIP entry '${name}' is encrypted, which is not supported`, 'ZIP_UNSUPPORTED');
    if (fields.diskStart !== 0) throw corrupt('multi-disk archives are not supported');
    if (method === 0 && fields.compressedSize !== fields.size) {
      throw corrupt(
        `stored entry '${name}' has different compressed (${fields.compressedSize}) and real (${fields.size}) sizes`,
      );
    }

    // The local header repeats the name and has its own extra field (torch pads it so that
    // the data is aligned); the data start comes from the local header's lengths.
    const lh = fields.localOffset;
    if (lh + LOCAL_HEADER_SIZE > end.cdOffset) {
      throw truncated(`entry '${name}' has its header at offset ${lh}, outside the data area`);
    }
    if (view.getUint32(lh, true) !== SIG_LOCAL) throw corrupt(`entry '${name}' has no local header at offset ${lh}`);
    const localNameLen = view.getUint16(lh + 26, true);
    const localExtraLen = view.getUint16(lh + 28, true);
    const dataOffset = lh + LOCAL_HEADER_SIZE + localNameLen + localExtraLen;
    if (dataOffset > end.cdOffset || fields.compressedSize > end.cdOffset - dataOffset) {
      throw truncated(
        `entry '${name}' (${fields.compressedSize} bytes at offset ${dataOffset}) runs past the data area`,
      );
    }
    if (!sameBytes(bytes.subarray(lh + LOCAL_HEADER_SIZE, lh + LOCAL_HEADER_SIZE + localNameLen), rawName)) {
      throw corrupt(`entry '${name}' has a different name in its local header`);
    }
    entries.set(name, {
      name,
      method,
      compressedSize: fields.compressedSize,
      size: fields.size,
      crc32: crc,
      dataOffset,
    });
  }
  return new ZipArchive(bytes, entries, options.verifyCrc ?? true);
}

// ---------------------------------------------------------------------------------------------
// Writing (stored entries only, no ZIP64): enough for tests and small tool outputs.

/** Writes a ZIP archive of stored (uncompressed) entries, in the order given. */
export function writeZip(files: ReadonlyArray<{ name: string; data: Uint8Array }>): Uint8Array {
  const enc = new TextEncoder();
  const names = files.map((f) => enc.encode(f.name));
  let localTotal = 0;
  let centralTotal = 0;
  files.forEach((f, i) => {
    localTotal += LOCAL_HEADER_SIZE + names[i]!.length + f.data.length;
    centralTotal += CENTRAL_HEADER_SIZE + names[i]!.length;
  });
  const total = localTotal + centralTotal + EOCD_SIZE;
  if (files.length > 0xfffe || total > 0xfffffff0) {
    throw new IteraError('writeZip only writes small archives (no ZIP64)', 'ZIP_UNSUPPORTED');
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const offsets: number[] = [];
  const crcs: number[] = [];
  let p = 0;
  files.forEach((f, i) => {
    const name = names[i]!;
    const c = crc32(f.data);
    offsets.push(p);
    crcs.push(c);
    view.setUint32(p, SIG_LOCAL, true);
    view.setUint16(p + 4, 20, true); // version needed
    view.setUint16(p + 6, 0x800, true); // UTF-8 names
    view.setUint16(p + 8, 0, true); // stored
    view.setUint16(p + 10, 0, true); // time
    view.setUint16(p + 12, 0x21, true); // date 1980-01-01
    view.setUint32(p + 14, c, true);
    view.setUint32(p + 18, f.data.length, true);
    view.setUint32(p + 22, f.data.length, true);
    view.setUint16(p + 26, name.length, true);
    view.setUint16(p + 28, 0, true);
    out.set(name, p + LOCAL_HEADER_SIZE);
    out.set(f.data, p + LOCAL_HEADER_SIZE + name.length);
    p += LOCAL_HEADER_SIZE + name.length + f.data.length;
  });
  const cdOffset = p;
  files.forEach((f, i) => {
    const name = names[i]!;
    view.setUint32(p, SIG_CENTRAL, true);
    view.setUint16(p + 4, 20, true); // version made by
    view.setUint16(p + 6, 20, true); // version needed
    view.setUint16(p + 8, 0x800, true);
    view.setUint16(p + 10, 0, true);
    view.setUint16(p + 12, 0, true);
    view.setUint16(p + 14, 0x21, true);
    view.setUint32(p + 16, crcs[i]!, true);
    view.setUint32(p + 20, f.data.length, true);
    view.setUint32(p + 24, f.data.length, true);
    view.setUint16(p + 28, name.length, true);
    // extra length, comment length, disk start, internal and external attributes: zero
    view.setUint32(p + 42, offsets[i]!, true);
    out.set(name, p + CENTRAL_HEADER_SIZE);
    p += CENTRAL_HEADER_SIZE + name.length;
  });
  view.setUint32(p, SIG_EOCD, true);
  view.setUint16(p + 8, files.length, true);
  view.setUint16(p + 10, files.length, true);
  view.setUint32(p + 12, p - cdOffset, true);
  view.setUint32(p + 16, cdOffset, true);
  return out;
}
