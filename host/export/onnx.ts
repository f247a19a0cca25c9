// An ONNX graph builder and its serialisation as a ModelProto (onnx/onnx.proto field numbers).
// Only what the Itera-Lite export needs: float/int64 initializers, nodes with int, float, ints and
// tensor attributes, typed graph inputs and outputs. Platform-neutral.

import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType */
export const DT = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;
export type DataType = (typeof DT)[keyof typeof DT];

/** AttributeProto.AttributeType */
const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export type Attr = number | { f: number } | number[] | string | Tensor;

export interface Tensor {
  name: string;
  type: DataType;
  dims: number[];
  /** little-endian raw bytes */
  raw: Uint8Array;
}

export interface ValueInfo {
  name: string;
  type: DataType;
  /** numbers are fixed sizes, strings are symbolic dimensions */
  shape: (number | string)[];
}

interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, Attr>;
}

export function f32Tensor(name: string, dims: number[], values: Float32Array | readonly number[]): Tensor {
  const a = values instanceof Float32Array ? values : Float32Array.from(values);
  const raw = new Uint8Array(a.length * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i]!, true);
  return { name, type: DT.FLOAT, dims, raw };
}

export function i64Tensor(name: string, dims: number[], values: readonly number[]): Tensor {
  const raw = new Uint8Array(values.length * 8);
  const dv = new DataView(raw.buffer);
  values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
  return { name, type: DT.INT64, dims, raw };
}

export class OnnxGraph {
  readonly nodes: Node[] = [];
  readonly initializers: Tensor[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly names = new Set<string>();

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let n: string;
    do {
      n = `${prefix}_${this.counter++}`;
    } while (this.names.has(n));
    return n;
  }

  input(name: string, type: DataType, shape: (number | string)[]): string {
    this.names.add(name);
    this.inputs.push({ name, type, shape });
    return name;
  }

  output(name: string, type: DataType, shape: (number | string)[]): void {
    this.outputs.push({ name, type, shape });
  }

  init(t: Tensor): string {
    if (this.names.has(t.name)) throw new Error(`duplicate value name ${t.name}`);
    this.names.add(t.name);
    this.initializers.push(t);
    return t.name;
  }

  /** A float constant (an initializer) with an auto name. */
  constF(prefix: string, dims: number[], values: Float32Array | readonly number[]): string {
    return this.init(f32Tensor(this.fresh(prefix), dims, values));
  }

  constI64(prefix: string, values: readonly number[], dims: number[] = [values.length]): string {
    return this.init(i64Tensor(this.fresh(prefix), dims, values));
  }

  /** Adds a node; returns its first output (named `out` if given, else fresh). */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string | string[]): string {
    const outputs = Array.isArray(out) ? out : [out ?? this.fresh(op.toLowerCase())];
    for (const o of outputs) this.names.add(o);
    this.nodes.push({ op, inputs, outputs, name: `n${this.nodes.length}_${op}`, attrs });
    return outputs[0]!;
  }

  /** A node with several outputs; returns their names. */
  ops(op: string, inputs: string[], nOut: number, attrs: Record<string, Attr> = {}): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(op.toLowerCase()));
    this.op(op, inputs, attrs, outs);
    return outs;
  }
}

function encodeTensor(t: Tensor): ProtoWriter {
  const w = new ProtoWriter();
  w.packedInts(1, t.dims);
  w.int(2, t.type);
  w.string(8, t.name);
  w.bytes(9, t.raw);
  return w;
}

function encodeAttr(name: string, a: Attr): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, name);
  if (typeof a === 'number') {
    if (!Number.isInteger(a)) throw new Error(`attribute ${name}: use {f: x} for floats`);
    w.int(3, a).int(20, AT.INT);
  } else if (typeof a === 'string') {
    w.string(4, a).int(20, AT.STRING);
  } else if (Array.isArray(a)) {
    w.packedInts(8, a).int(20, AT.INTS);
  } else if ('f' in a) {
    w.float(2, a.f).int(20, AT.FLOAT);
  } else {
    w.message(5, encodeTensor(a)).int(20, AT.TENSOR);
  }
  return w;
}

function encodeValueInfo(v: ValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, v.type).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

export interface ModelOptions {
  producerName: string;
  producerVersion: string;
  opset: number;
  irVersion: number;
  docString?: string;
  metadata?: Record<string, string>;
}

/** The ModelProto bytes of a graph. */
export function serializeModel(g: OnnxGraph, o: ModelOptions): Uint8Array {
  const graph = new ProtoWriter();
  for (const n of g.nodes) {
    const node = new ProtoWriter();
    for (const i of n.inputs) node.string(1, i);
    for (const out of n.outputs) node.string(2, out);
    node.string(3, n.name);
    node.string(4, n.op);
    for (const [k, a] of Object.entries(n.attrs)) node.message(5, encodeAttr(k, a));
    graph.message(1, node);
  }
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, encodeTensor(t));
  for (const i of g.inputs) graph.message(11, encodeValueInfo(i));
  for (const out of g.outputs) graph.message(12, encodeValueInfo(out));

  const model = new ProtoWriter();
  model.int(1, o.irVersion);
  model.string(2, o.producerName);
  model.string(3, o.producerVersion);
  if (o.docString) model.string(6, o.docString);
  model.message(7, graph);
  model.message(8, new ProtoWriter().string(1, '').int(2, o.opset));
  for (const [k, v] of Object.entries(o.metadata ?? {})) model.message(14, new ProtoWriter().string(1, k).string(2, v));
  return model.finish();
}
