// Stop strings over a stream of text pieces: a stop string may span any number of tokens, and no
// text at or past a stop string is ever released. Text that could still be the start of a stop
// string is held back until the next piece decides it.

export interface StopFeed {
  /** Text that is safe to send now. */
  text: string;
  /** True once a stop string was found: nothing after `text` will ever be released. */
  stopped: boolean;
}

export class StopMatcher {
  private pending = '';
  private done = false;
  /** Characters released so far. */
  released = 0;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds a piece; returns what may be sent and whether a stop string has been reached. */
  push(piece: string): StopFeed {
    if (this.done) return { text: '', stopped: true };
    this.pending += piece;
    if (this.stops.length === 0) return this.release(this.pending.length, false);
    // the earliest stop string in what is not yet released
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.done = true;
      return this.release(cut, true);
    }
    return this.release(this.pending.length - this.heldBack(), false);
  }

  /** The end of the stream: whatever was held back is not a stop string, so it goes out. */
  end(): string {
    if (this.done) return '';
    this.done = true;
    return this.release(this.pending.length, false).text;
  }

  /** Length of the longest suffix of pending that is a proper prefix of some stop string. */
  private heldBack(): number {
    const p = this.pending;
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, p.length); n > best; n--) {
        if (p.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  private release(n: number, stopped: boolean): StopFeed {
    const text = this.pending.slice(0, n);
    this.pending = stopped ? '' : this.pending.slice(n);
    this.released += text.length;
    return { text, stopped };
  }
}

/** Decodes a completion's tokens into the pieces of text a client sees and runs the stop strings
 *  over them. The server's request handler and a worker thread both run one over the same tokens,
 *  so a worker ends a kept session's generation at exactly the token the handler stops at. */
export class CompletionText {
  private readonly dec: { push(id: number): string; end(): string };
  private readonly matcher: StopMatcher;
  private readonly wordSpace: boolean;
  /** Characters of generated text so far (before any cut). */
  produced = 0;

  constructor(
    tok: { kind: string; streamDecoder(): { push(id: number): string; end(): string } },
    stops: readonly string[],
  ) {
    this.dec = tok.streamDecoder();
    this.matcher = new StopMatcher(stops);
    this.wordSpace = tok.kind === 'itera-word';
  }

  get stop(): StopMatcher {
    return this.matcher;
  }

  /** The token's piece of text (where it starts in the generated text) and what may go out. */
  push(id: number, last: boolean): { piece: string; start: number; feed: StopFeed } {
    let piece = this.dec.push(id) + (last ? this.dec.end() : '');
    // a word-level vocabulary's first piece starts a word: it gets the space a later one would
    if (this.wordSpace && this.produced === 0 && piece !== '' && !/^\s/.test(piece)) piece = ' ' + piece;
    const start = this.produced;
    this.produced += piece.length;
    return { piece, start, feed: this.matcher.push(piece) };
  }
}
