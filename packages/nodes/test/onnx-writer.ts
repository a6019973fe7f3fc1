/**
 * A tiny ONNX ModelProto writer for test models built by the tests themselves (no Python in npm test).
 * Field numbers are those of onnx/onnx.proto; only what small elementwise graphs need: nodes with int /
 * ints attributes, float32 and int64 initializers (raw_data), inputs and outputs with fixed or symbolic
 * dims, nodes of the com.microsoft domain (onnxruntime's contrib ops). The models it writes are loaded by onnxruntime-node, which checks them.
 */

type Bytes = number[];

function varint(n: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: Bytes = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const key = (no: number, wire: number) => varint(no * 8 + wire);
const vfield = (no: number, v: number | bigint): Bytes => [...key(no, 0), ...varint(v)];
function lfield(no: number, payload: Bytes | Uint8Array | string): Bytes {
  const b = typeof payload === 'string' ? [...new TextEncoder().encode(payload)] : [...payload];
  return [...key(no, 2), ...varint(b.length), ...b];
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[]>;
  /** e.g. 'com.microsoft'; the default domain when absent */
  domain?: string;
}
export interface OnnxInitializer {
  name: string;
  dims: number[];
  /** float32 unless `int64` */
  values: number[];
  int64?: boolean;
}
export interface OnnxValue {
  name: string;
  /** a number = fixed, a string = symbolic */
  dims: Array<number | string>;
}

function attribute(name: string, v: number | number[]): Bytes {
  // AttributeProto: name = 1, i = 3, ints = 8, type = 20 (INT = 2, INTS = 7)
  if (Array.isArray(v)) return [...lfield(1, name), ...v.flatMap((x) => vfield(8, x)), ...vfield(20, 7)];
  return [...lfield(1, name), ...vfield(3, v), ...vfield(20, 2)];
}

function tensor(t: OnnxInitializer): Bytes {
  // TensorProto: dims = 1, data_type = 2 (FLOAT = 1, INT64 = 7), name = 8, raw_data = 9 (little-endian)
  const raw = t.int64
    ? new Uint8Array(BigInt64Array.from(t.values.map((x) => BigInt(x))).buffer)
    : new Uint8Array(Float32Array.from(t.values).buffer);
  return [
    ...t.dims.flatMap((d) => vfield(1, d)),
    ...vfield(2, t.int64 ? 7 : 1),
    ...lfield(8, t.name),
    ...lfield(9, raw),
  ];
}

function valueInfo(v: OnnxValue): Bytes {
  // ValueInfoProto: name = 1, type = 2 → TypeProto.tensor_type = 1 → {elem_type = 1, shape = 2 → dim = 1}
  const dims = v.dims.flatMap((d) => lfield(1, typeof d === 'number' ? vfield(1, d) : lfield(2, d)));
  const tensorType = [...vfield(1, 1), ...lfield(2, dims)];
  return [...lfield(1, v.name), ...lfield(2, lfield(1, tensorType))];
}

/** A ModelProto (IR version 8, default-domain opset 13; version 1 of every other domain its nodes use). */
export function onnxModel(g: {
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
}): Uint8Array {
  const graph = [
    ...g.nodes.flatMap((n, i) =>
      lfield(1, [
        ...n.inputs.flatMap((x) => lfield(1, x)),
        ...n.outputs.flatMap((x) => lfield(2, x)),
        ...lfield(3, `n${i}`),
        ...lfield(4, n.op),
        ...Object.entries(n.attrs ?? {}).flatMap(([k, v]) => lfield(5, attribute(k, v))),
        ...(n.domain ? lfield(7, n.domain) : []),
      ]),
    ),
    ...lfield(2, 'test'),
    ...g.initializers.flatMap((t) => lfield(5, tensor(t))),
    ...g.inputs.flatMap((v) => lfield(11, valueInfo(v))),
    ...g.outputs.flatMap((v) => lfield(12, valueInfo(v))),
  ];
  // ModelProto: ir_version = 1, graph = 7, opset_import = 8 (OperatorSetIdProto: domain = 1, version = 2)
  const domains = [...new Set(g.nodes.flatMap((n) => (n.domain ? [n.domain] : [])))];
  const opsets = [
    ...lfield(8, [...lfield(1, ''), ...vfield(2, 13)]),
    ...domains.flatMap((d) => lfield(8, [...lfield(1, d), ...vfield(2, 1)])),
  ];
  return Uint8Array.from([...vfield(1, 8), ...lfield(7, graph), ...opsets]);
}
