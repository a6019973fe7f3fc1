/**
 * What travels between the main thread and the model workers.
 *
 * Tensors are plain `{name, data, dims}`; float data is always float32 on this side (a model worker
 * converts to and from fp16, int64 or int32 according to its session's metadata).
 *
 * A Channel is a SharedArrayBuffer through which a worker hosting a sampling loop calls another model's worker without any
 * postMessage: ctrl words [state, bytes] signalled with Atomics.wait/notify, then a staging area with
 * the encoded tensors. (run() rejects tensors over a SharedArrayBuffer, so the model worker copies the
 * inputs out into ordinary ArrayBuffers for the call.)
 */

export type TensorData = Float32Array | Int32Array | BigInt64Array;
export interface HostTensor {
  name: string;
  data: TensorData;
  dims: number[];
}

export interface IoMeta {
  name: string;
  /** onnx element type: 'float32' | 'float16' | 'int64' | 'int32' | ... */
  type: string;
  /** fixed sizes as numbers, symbolic dimensions as strings */
  shape: Array<number | string>;
}

export interface ModelInfo {
  inputs: IoMeta[];
  outputs: IoMeta[];
  provider: string;
}

// --- channel -----------------------------------------------------------------------------------------
export const ST_IDLE = 0;
export const ST_REQUEST = 1;
export const ST_RESPONSE = 2;
export const ST_ERROR = 3;
export const ST_DETACH = 4;
const HEADER = 64;

export function createChannel(dataBytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER + Math.ceil(dataBytes / 8) * 8);
}

const DTYPES = ['float32', 'int32', 'int64'] as const;
type DT = (typeof DTYPES)[number];
const dtypeOf = (d: TensorData): DT =>
  d instanceof Float32Array ? 'float32' : d instanceof Int32Array ? 'int32' : 'int64';

/** Encode tensors into the channel's staging area. Throws if they do not fit. */
export function writeTensors(sab: SharedArrayBuffer, tensors: HostTensor[]): void {
  const metas: Array<{ name: string; dtype: DT; dims: number[]; offset: number; length: number }> = [];
  let off = 0;
  for (const t of tensors) {
    metas.push({ name: t.name, dtype: dtypeOf(t.data), dims: t.dims, offset: off, length: t.data.length });
    off += Math.ceil(t.data.byteLength / 8) * 8;
  }
  const json = new TextEncoder().encode(JSON.stringify(metas));
  const jsonLen = Math.ceil((json.length + 4) / 8) * 8;
  const total = jsonLen + off;
  if (HEADER + total > sab.byteLength)
    throw new Error(`channel too small: ${total} bytes needed, ${sab.byteLength - HEADER} available`);
  new DataView(sab, HEADER, 4).setUint32(0, json.length, true);
  new Uint8Array(sab, HEADER + 4, json.length).set(json);
  const base = HEADER + jsonLen;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    new Uint8Array(sab, base + metas[i].offset, t.data.byteLength).set(
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    );
  }
}

/** Decode tensors from the staging area into ordinary (non-shared) arrays, or (`views`) into views
 *  over the shared buffer that stay valid only until the channel's next request. */
export function readTensors(sab: SharedArrayBuffer, views = false): HostTensor[] {
  const jsonLenRaw = new DataView(sab, HEADER, 4).getUint32(0, true);
  const metas = JSON.parse(new TextDecoder().decode(new Uint8Array(sab, HEADER + 4, jsonLenRaw).slice())) as Array<{
    name: string;
    dtype: DT;
    dims: number[];
    offset: number;
    length: number;
  }>;
  const base = HEADER + Math.ceil((jsonLenRaw + 4) / 8) * 8;
  return metas.map((m) => {
    const start = base + m.offset;
    if (views) {
      const v =
        m.dtype === 'float32'
          ? new Float32Array(sab, start, m.length)
          : m.dtype === 'int32'
            ? new Int32Array(sab, start, m.length)
            : new BigInt64Array(sab, start, m.length);
      return { name: m.name, data: v, dims: m.dims };
    }
    // copies into ordinary ArrayBuffers (SharedArrayBuffer.slice would stay shared)
    const data =
      m.dtype === 'float32'
        ? new Float32Array(m.length)
        : m.dtype === 'int32'
          ? new Int32Array(m.length)
          : new BigInt64Array(m.length);
    if (data instanceof BigInt64Array) data.set(new BigInt64Array(sab, start, m.length));
    else if (data instanceof Int32Array) data.set(new Int32Array(sab, start, m.length));
    else data.set(new Float32Array(sab, start, m.length));
    return { name: m.name, data, dims: m.dims };
  });
}

export function writeError(sab: SharedArrayBuffer, message: string): void {
  const bytes = new TextEncoder().encode(message).slice(0, sab.byteLength - HEADER - 4);
  new DataView(sab, HEADER, 4).setUint32(0, bytes.length, true);
  new Uint8Array(sab, HEADER + 4, bytes.length).set(bytes);
}

export function readError(sab: SharedArrayBuffer): string {
  const n = new DataView(sab, HEADER, 4).getUint32(0, true);
  return new TextDecoder().decode(new Uint8Array(sab, HEADER + 4, n).slice());
}

export const ctrlOf = (sab: SharedArrayBuffer): Int32Array => new Int32Array(sab, 0, 4);

/** Coordinator side: post a request on a channel (does not wait). */
export function postRequest(sab: SharedArrayBuffer, inputs: HostTensor[]): void {
  writeTensors(sab, inputs);
  const ctrl = ctrlOf(sab);
  Atomics.store(ctrl, 0, ST_REQUEST);
  Atomics.notify(ctrl, 0);
}

/** Coordinator side: block until the response of a posted request arrives. The returned tensors are
 *  views over the channel: use them before posting the channel's next request. */
export function awaitResponse(sab: SharedArrayBuffer, what: string): HostTensor[] {
  const ctrl = ctrlOf(sab);
  for (;;) {
    const st = Atomics.load(ctrl, 0);
    if (st === ST_RESPONSE) break;
    if (st === ST_ERROR) {
      const msg = readError(sab);
      Atomics.store(ctrl, 0, ST_IDLE);
      throw new Error(`${what}: ${msg}`);
    }
    Atomics.wait(ctrl, 0, st, 60_000);
  }
  const out = readTensors(sab, true); // views: consumed before the channel's next request
  Atomics.store(ctrl, 0, ST_IDLE);
  return out;
}

export function detachChannel(sab: SharedArrayBuffer): void {
  const ctrl = ctrlOf(sab);
  Atomics.store(ctrl, 0, ST_DETACH);
  Atomics.notify(ctrl, 0);
}

/**
 * A per-item vector fed to an input the model declares as ONE value for the whole batch (rank 0, as
 * optimum exports a UNet's timestep, or a fixed [1]): all items must carry the same value, which is
 * passed once in the declared shape. Any other tensor passes unchanged.
 */
export function fitToDeclaredShape(t: HostTensor, declared: ReadonlyArray<number | string>): HostTensor {
  const scalar = declared.length === 0 || (declared.length === 1 && declared[0] === 1);
  if (!scalar || t.dims.length !== 1 || (declared.length === 1 && t.dims[0] === 1)) return t;
  const d = t.data;
  for (let i = 1; i < d.length; i++) {
    if (d[i] !== d[0]) {
      throw new Error(
        `input "${t.name}" takes one value for the whole batch (shape [${declared.join(',')}]), got ${d.length} different values`,
      );
    }
  }
  return { name: t.name, data: d.slice(0, 1) as HostTensor['data'], dims: [...declared] as number[] };
}
