// What the JavaScriptCore shell lacks and the runtime needs: TextDecoder (UTF-8, fatal mode) and
// TextEncoder. Imported before the bundle, so they exist when its modules initialise. Browsers
// and WebViews have both natively; this is for the `jsc` shell only.
if (typeof globalThis.TextDecoder === 'undefined') {
  globalThis.TextDecoder = class {
    constructor(label = 'utf-8', o = {}) {
      if (!/^utf-?8$/i.test(label)) throw new RangeError(`only utf-8, not ${label}`);
      this.fatal = !!o.fatal;
    }
    decode(input) {
      const b =
        input === undefined
          ? new Uint8Array(0)
          : input instanceof Uint8Array
            ? input
            : new Uint8Array(input.buffer ?? input, input.byteOffset ?? 0, input.byteLength);
      let s = '';
      for (let i = 0; i < b.length;) {
        const c = b[i];
        let cp = -1,
          n = 0;
        if (c < 0x80) {
          cp = c;
          n = 1;
        } else if (c >= 0xc2 && c < 0xe0) {
          n = 2;
          cp = c & 0x1f;
        } else if (c >= 0xe0 && c < 0xf0) {
          n = 3;
          cp = c & 0x0f;
        } else if (c >= 0xf0 && c < 0xf5) {
          n = 4;
          cp = c & 0x07;
        }
        if (n > 1) {
          if (i + n > b.length) cp = -1;
          else {
            for (let k = 1; k < n; k++) {
              const d = b[i + k];
              if ((d & 0xc0) !== 0x80) {
                cp = -1;
                break;
              }
              cp = (cp << 6) | (d & 0x3f);
            }
            if (
              (n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
              (n === 4 && (cp < 0x10000 || cp > 0x10ffff))
            )
              cp = -1;
          }
        }
        if (cp < 0) {
          if (this.fatal) throw new TypeError('The encoded data was not valid UTF-8');
          s += '\ufffd';
          i += 1;
          continue;
        }
        s += String.fromCodePoint(cp);
        i += n;
      }
      return s;
    }
  };
}
if (typeof globalThis.TextEncoder === 'undefined') {
  globalThis.TextEncoder = class {
    encode(str = '') {
      const out = [];
      for (const ch of str) {
        let cp = ch.codePointAt(0);
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        if (cp < 0x80) out.push(cp);
        else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
        else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
        else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
      }
      return new Uint8Array(out);
    }
  };
}
