// A minimal protocol-buffers encoder (proto2/proto3 wire format): varints, 32-bit floats and
// length-delimited fields, enough to write ONNX models. Messages are built bottom-up: a nested
// message is encoded first and then written as a length-delimited field. Platform-neutral.

const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;
const WT_I32 = 5;

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private cur: number[] = [];
  private size = 0;

  private flushCur(): void {
    if (this.cur.length) {
      this.chunks.push(Uint8Array.from(this.cur));
      this.size += this.cur.length;
      this.cur = [];
    }
  }

  private byte(b: number): void {
    this.cur.push(b & 0xff);
  }

  /** A varint of a non-negative or negative integer (negative int64 takes ten bytes, as the
   *  format says); exact for |n| < 2^53, or pass a bigint. */
  varint(n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n));
    if (v < 0x80n) {
      this.byte(Number(v));
      return this;
    }
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
    return this;
  }

  private tag(field: number, wt: number): void {
    this.varint((field << 3) | wt);
  }

  int(field: number, n: number | bigint): this {
    this.tag(field, WT_VARINT);
    return this.varint(n);
  }

  float(field: number, x: number): this {
    this.tag(field, WT_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    for (const c of b) this.byte(c);
    return this;
  }

  double(field: number, x: number): this {
    this.tag(field, WT_I64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    for (const c of b) this.byte(c);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WT_LEN);
    this.varint(data.length);
    this.flushCur();
    if (data.length) {
      this.chunks.push(data);
      this.size += data.length;
    }
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  /** Packed repeated varints (proto3's default for repeated scalars). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const w = new ProtoWriter();
    for (const v of values) w.varint(v);
    return this.bytes(field, w.finish());
  }

  /** Packed repeated 32-bit floats. */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((x, i) => dv.setFloat32(i * 4, x, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    this.flushCur();
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.chunks = [out];
    return out;
  }
}
