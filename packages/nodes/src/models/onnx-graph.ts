/**
 * Reading facts about a model from its ONNX graph when the session metadata leaves them open (a
 * dynamic axis). A minimal protobuf walk over ModelProto → GraphProto (nodes, initializers): tensor
 * payloads are skipped, never decoded. Field numbers are those of onnx/onnx.proto.
 */
import { readFileSync, statSync } from 'node:fs';

type Field = { no: number; wire: number; start: number; end: number; value: number };

/** Iterate the fields of one protobuf message in buf[start, end). Varint values above 2^53 lose precision (never needed here). */
function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  let p = start;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= end) throw new Error('truncated protobuf');
      const b = buf[p++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (p < end) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const value = varint();
      yield { no, wire, start: p, end: p, value };
    } else if (wire === 2) {
      const len = varint();
      const s = p;
      p += len;
      if (p > end) throw new Error('truncated protobuf');
      yield { no, wire, start: s, end: p, value: len };
    } else if (wire === 1) {
      p += 8;
      yield { no, wire, start: p - 8, end: p, value: 0 };
    } else if (wire === 5) {
      p += 4;
      yield { no, wire, start: p - 4, end: p, value: 0 };
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

const dec = new TextDecoder();
const str = (buf: Uint8Array, f: Field) => dec.decode(buf.subarray(f.start, f.end));

interface GraphFacts {
  nodes: Array<{ op: string; inputs: string[]; outputs: string[] }>;
  initializerDims: Map<string, number[]>;
}

function readGraph(buf: Uint8Array): GraphFacts {
  const nodes: GraphFacts['nodes'] = [];
  const initializerDims = new Map<string, number[]>();
  for (const m of fields(buf, 0, buf.length)) {
    if (m.no !== 7 || m.wire !== 2) continue; // ModelProto.graph
    for (const g of fields(buf, m.start, m.end)) {
      if (g.no === 1 && g.wire === 2) {
        // NodeProto: input = 1, output = 2, op_type = 4
        const n = { op: '', inputs: [] as string[], outputs: [] as string[] };
        for (const f of fields(buf, g.start, g.end)) {
          if (f.no === 1 && f.wire === 2) n.inputs.push(str(buf, f));
          else if (f.no === 2 && f.wire === 2) n.outputs.push(str(buf, f));
          else if (f.no === 4 && f.wire === 2) n.op = str(buf, f);
        }
        nodes.push(n);
      } else if (g.no === 5 && g.wire === 2) {
        // TensorProto: dims = 1 (int64, packed or not), name = 8
        const dims: number[] = [];
        let name = '';
        for (const f of fields(buf, g.start, g.end)) {
          if (f.no === 1 && f.wire === 0) dims.push(f.value);
          else if (f.no === 1 && f.wire === 2) dims.push(...packedVarints(buf, f));
          else if (f.no === 8 && f.wire === 2) name = str(buf, f);
        }
        initializerDims.set(name, dims);
      }
    }
  }
  return { nodes, initializerDims };
}

/** The values of a packed repeated varint field. */
function packedVarints(buf: Uint8Array, f: Field): number[] {
  const out: number[] = [];
  let p = f.start;
  while (p < f.end) {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[p++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) break;
    }
    out.push(v);
  }
  return out;
}

/** Ops that pass a tensor through with its channel count unchanged. */
const PASS_THROUGH = new Set(['Cast', 'Identity']);

/**
 * The channel count a 4-D image-like input really has: the input-channel size (dims[1]) of the
 * weight of the first Conv it feeds (through Cast/Identity). Null when the graph does not say.
 */
export function convInputChannels(file: string, inputName: string): number | null {
  let buf: Uint8Array;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  const g = readGraph(buf);
  let names = new Set([inputName]);
  for (let hop = 0; hop < 8 && names.size; hop++) {
    const next = new Set<string>();
    for (const n of g.nodes) {
      if (!n.inputs.length || !names.has(n.inputs[0])) continue;
      if (n.op === 'Conv') {
        const w = g.initializerDims.get(n.inputs[1] ?? '');
        if (w && w.length === 4 && w[1] > 0) return w[1];
      } else if (PASS_THROUGH.has(n.op)) for (const o of n.outputs) next.add(o);
    }
    names = next;
  }
  return null;
}

/** A graph input: its name and dims (a number where fixed, null where symbolic or absent). */
export interface GraphInput {
  name: string;
  dims: Array<number | null>;
}

const inputsCache = new Map<string, { key: string; inputs: GraphInput[] }>();

/**
 * The declared inputs of an ONNX graph (GraphProto.input minus initializers), read without a session:
 * what validation can know of a model before it loads. Cached by file size and mtime.
 */
export function graphInputs(file: string): GraphInput[] {
  const st = statSync(file);
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = inputsCache.get(file);
  if (hit?.key === key) return hit.inputs;
  const buf = readFileSync(file);
  const inputs: GraphInput[] = [];
  const initializers = new Set<string>();
  for (const m of fields(buf, 0, buf.length)) {
    if (m.no !== 7 || m.wire !== 2) continue; // ModelProto.graph
    for (const g of fields(buf, m.start, m.end)) {
      if (g.no === 5 && g.wire === 2) {
        for (const f of fields(buf, g.start, g.end)) if (f.no === 8 && f.wire === 2) initializers.add(str(buf, f));
      } else if (g.no === 11 && g.wire === 2) inputs.push(valueInfo(buf, g));
    }
  }
  const out = inputs.filter((i) => !initializers.has(i.name));
  inputsCache.set(file, { key, inputs: out });
  return out;
}

/** ValueInfoProto (name = 1, type = 2) → TypeProto.tensor_type (1) → shape (2) → dim (1): dim_value = 1. */
function valueInfo(buf: Uint8Array, v: Field): GraphInput {
  let name = '';
  const dims: Array<number | null> = [];
  const sub = (f: Field, no: number) => [...fields(buf, f.start, f.end)].filter((x) => x.no === no && x.wire === 2);
  for (const f of fields(buf, v.start, v.end)) {
    if (f.no === 1 && f.wire === 2) name = str(buf, f);
    else if (f.no === 2 && f.wire === 2) {
      for (const tensor of sub(f, 1))
        for (const shape of sub(tensor, 2))
          for (const dim of sub(shape, 1)) {
            const value = [...fields(buf, dim.start, dim.end)].find((x) => x.no === 1 && x.wire === 0);
            dims.push(value && value.value > 0 ? value.value : null);
          }
    }
  }
  return { name, dims };
}
