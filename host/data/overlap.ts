// Shared passages between texts: does a training document contain any n characters in a row
// (50 by default) that also stand in held-out text? Used to keep extra training text from leaking
// Brown's validation and test splits into training (issue 15, docs/data.md). Whitespace runs count
// as one space on both sides, so a passage re-wrapped across lines is still found.
//
// Every n-character window of the held-out text goes into a map under a rolling hash (two 32-bit
// polynomial hashes, 53 bits together); a window of the candidate whose hash is there is then
// compared character by character with the held-out window stored under that hash, so a hash
// collision never reports a passage that is not shared.

/** Whitespace runs as single spaces, trimmed. */
export function collapseWhitespace(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

const B1 = 257;
const B2 = 65599;

function power(base: number, e: number): number {
  let p = 1;
  for (let i = 0; i < e; i++) p = Math.imul(p, base);
  return p;
}

/** Calls `visit(key, start)` for every n-character window of s, in order; the key is 53 bits. */
function windows(s: string, n: number, visit: (key: number, start: number) => boolean | void): void {
  if (s.length < n) return;
  const p1 = power(B1, n - 1);
  const p2 = power(B2, n - 1);
  let h1 = 0;
  let h2 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (i >= n) {
      const o = s.charCodeAt(i - n);
      h1 = (h1 - Math.imul(o, p1)) | 0;
      h2 = (h2 - Math.imul(o, p2)) | 0;
    }
    h1 = (Math.imul(h1, B1) + c) | 0;
    h2 = (Math.imul(h2, B2) + c) | 0;
    if (i >= n - 1) {
      const key = (h1 >>> 0) * 2097152 + (h2 & 0x1fffff);
      if (visit(key, i - n + 1) === true) return;
    }
  }
}

export interface PassageIndex {
  n: number;
  texts: string[];
  /** key -> (text index) * 2^32 + start of the first window with that key */
  at: Map<number, number>;
}

/** An index of every n-character window of the texts (whitespace collapsed). */
export function passageIndex(texts: readonly string[], n = 50): PassageIndex {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`passage length must be a positive integer, got ${n}`);
  const norm = texts.map(collapseWhitespace);
  const at = new Map<number, number>();
  norm.forEach((s, t) =>
    windows(s, n, (key, start) => {
      if (!at.has(key)) at.set(key, t * 4294967296 + start);
    }),
  );
  return { n, texts: norm, at };
}

/** The first passage of n characters (whitespace collapsed) that `text` shares with the indexed
 *  texts, with where it stands in them, or null when there is none. */
export function sharedPassage(text: string, index: PassageIndex): { passage: string; text: number } | null {
  const s = collapseWhitespace(text);
  const n = index.n;
  let found: { passage: string; text: number } | null = null;
  windows(s, n, (key, start) => {
    const hit = index.at.get(key);
    if (hit === undefined) return false;
    const t = Math.floor(hit / 4294967296);
    const off = hit - t * 4294967296;
    const passage = s.slice(start, start + n);
    if (index.texts[t]!.startsWith(passage, off)) {
      found = { passage, text: t };
      return true;
    }
    return false;
  });
  return found;
}
