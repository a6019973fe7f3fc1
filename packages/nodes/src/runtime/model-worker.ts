/**
 * A model worker: owns ONE onnxruntime InferenceSession (onnxruntime-node's run() blocks its thread).
 *
 * Messages from the main thread:
 *   {op:'load', path, threads, providers, tuning}  → {ok, info} | {ok:false, error}
 *   {op:'run', id, feeds}                  → {id, ok, outputs} | {id, ok:false, error}
 *   {op:'attach', sab}                     serve calls from another worker's sampling loop over the
 *                                          shared channel until it is detached, then → {op:'detached'}
 *   {op:'sample', plan}                    run a whole sampling loop here (this session called
 *                                          directly, other models through their channels)
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { float32ToHalf, halfToFloat32 } from './fp16.ts';
import { eventBatcher } from './loop-events.ts';
import { type SessionTuning, sessionOptions } from './options.ts';
import { type CoordinatorMessage, type DistributiveOmit, monotonicMs, type SamplePlan } from './plan.ts';
import {
  awaitResponse,
  ctrlOf,
  detachChannel,
  fitToDeclaredShape,
  type HostTensor,
  type IoMeta,
  type ModelInfo,
  postRequest,
  readTensors,
  ST_DETACH,
  ST_ERROR,
  ST_IDLE,
  ST_REQUEST,
  ST_RESPONSE,
  writeError,
  writeTensors,
} from './protocol.ts';
import { runLoop } from './sampling-loop.ts';

let session: ort.InferenceSession | null = null;
let inputMeta = new Map<string, IoMeta>();
let path = '';

function ioMeta(list: readonly ort.InferenceSession.ValueMetadata[]): IoMeta[] {
  return list.map((m) =>
    m.isTensor
      ? { name: m.name, type: String(m.type), shape: [...m.shape] as Array<number | string> }
      : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

async function load(
  p: string,
  threads: number,
  providers: string[],
  tuning: SessionTuning,
): Promise<{ info: ModelInfo; warnings: string[] }> {
  path = p;
  const warnings: string[] = [];
  const opts = (eps: string[]) => sessionOptions(eps, threads, tuning);
  let provider = providers[0] ?? 'cpu';
  try {
    session = await ort.InferenceSession.create(p, opts(providers));
  } catch (e) {
    if (providers.length === 1 && providers[0] === 'cpu') throw e;
    warnings.push(
      `execution provider(s) ${providers.join(', ')} could not load ${p} (${(e as Error).message.split('\n')[0]}); falling back to cpu`,
    );
    provider = 'cpu';
    session = await ort.InferenceSession.create(p, opts(['cpu']));
  }
  const inputs = ioMeta(session.inputMetadata);
  inputMeta = new Map(inputs.map((m) => [m.name, m]));
  return { info: { inputs, outputs: ioMeta(session.outputMetadata), provider }, warnings };
}

/** Host tensor → ort.Tensor in the dtype (and, for batch-wide scalars, the shape) the session declares. */
function toOrt(host: HostTensor): ort.Tensor {
  const meta = inputMeta.get(host.name);
  if (!meta) throw new Error(`model has no input named "${host.name}" (inputs: ${[...inputMeta.keys()].join(', ')})`);
  const t = fitToDeclaredShape(host, meta.shape);
  const want = meta.type;
  const d = t.data;
  if (want === 'float32')
    return new ort.Tensor('float32', d instanceof Float32Array ? d : Float32Array.from(d, Number), t.dims);
  if (want === 'float16') {
    const f = d instanceof Float32Array ? d : Float32Array.from(d, Number);
    return new ort.Tensor('float16', float32ToHalf(f), t.dims);
  }
  if (want === 'int64') {
    const out = d instanceof BigInt64Array ? d : new BigInt64Array(d.length);
    if (!(d instanceof BigInt64Array)) for (let i = 0; i < d.length; i++) out[i] = BigInt(Math.round(Number(d[i])));
    return new ort.Tensor('int64', out, t.dims);
  }
  if (want === 'int32') {
    const out = d instanceof Int32Array ? d : new Int32Array(d.length);
    if (!(d instanceof Int32Array)) for (let i = 0; i < d.length; i++) out[i] = Math.round(Number(d[i]));
    return new ort.Tensor('int32', out, t.dims);
  }
  throw new Error(`input "${t.name}" has unsupported element type ${want}`);
}

function fromOrt(name: string, t: ort.Tensor): HostTensor {
  const dims = [...t.dims];
  if (t.type === 'float32') return { name, data: t.data as Float32Array, dims };
  if (t.type === 'float16') return { name, data: halfToFloat32(t.data as Uint16Array), dims };
  if (t.type === 'int64') return { name, data: t.data as BigInt64Array, dims };
  if (t.type === 'int32') return { name, data: t.data as Int32Array, dims };
  if (t.type === 'float64') return { name, data: Float32Array.from(t.data as Float64Array), dims };
  throw new Error(`output "${name}" has unsupported element type ${t.type}`);
}

async function run(feeds: HostTensor[]): Promise<HostTensor[]> {
  if (!session) throw new Error('no model loaded');
  const input: Record<string, ort.Tensor> = {};
  for (const f of feeds) input[f.name] = toOrt(f);
  const out = await session.run(input);
  return session.outputNames.map((n) => fromOrt(n, out[n] as ort.Tensor));
}

/** Serve another worker's sampling loop over a shared channel; blocks this worker's event loop until detached. */
async function serve(sab: SharedArrayBuffer): Promise<void> {
  const ctrl = ctrlOf(sab);
  for (;;) {
    Atomics.wait(ctrl, 0, ST_IDLE);
    const st = Atomics.load(ctrl, 0);
    if (st === ST_DETACH) return;
    if (st !== ST_REQUEST) {
      // a response not yet collected: wait for the caller to reset the state
      Atomics.wait(ctrl, 0, st, 50);
      continue;
    }
    try {
      const inputs = readTensors(sab);
      const t0 = performance.now();
      const outs = await run(inputs);
      // accumulated time inside session.run (µs), for the overhead benchmark
      Atomics.add(ctrl, 2, Math.round((performance.now() - t0) * 1000));
      writeTensors(sab, outs);
      Atomics.store(ctrl, 0, ST_RESPONSE);
    } catch (e) {
      writeError(sab, `${path}: ${(e as Error).message}`);
      Atomics.store(ctrl, 0, ST_ERROR);
    }
    Atomics.notify(ctrl, 0);
  }
}

/** A whole sampling run whose guider uses only this worker's model: the step loop runs here and calls
 *  the session directly (see runtime/index.ts `sample`). */
async function sampleHere(plan: SamplePlan): Promise<void> {
  const loopStart = monotonicMs();
  const control = new Int32Array(plan.control);
  const events = eventBatcher(plan, (batch, transfer) =>
    parentPort!.postMessage({ op: 'events', ...batch, runId: plan.runId } satisfies CoordinatorMessage, transfer),
  );
  // the run's outcome, with the events not yet posted (handled first on the other side)
  const post = (m: DistributiveOmit<CoordinatorMessage, 'runId' | 'pending'>, transfer: ArrayBuffer[] = []) => {
    const rest = events.take();
    const msg = { ...m, pending: rest?.batch ?? null, runId: plan.runId } as CoordinatorMessage;
    parentPort!.postMessage(msg, [...transfer, ...(rest?.transfer ?? [])]);
  };
  let runMs = 0;
  let modelMs = 0;
  let calls = 0;
  try {
    const latents = await runLoop(
      plan,
      async (cs) => {
        const t0 = performance.now();
        // post the other models' calls first, so they run while this session runs (or, one at a
        // time, each waited for before the next starts)
        const outs: HostTensor[][] = new Array(cs.length);
        for (let i = 0; i < cs.length; i++) {
          const ch = plan.channels[cs[i].channel];
          if (!ch) continue;
          postRequest(ch, cs[i].inputs);
          if (plan.oneAtATime) outs[i] = awaitResponse(ch, 'model call');
        }
        for (let i = 0; i < cs.length; i++) {
          if (plan.channels[cs[i].channel]) continue;
          const r0 = performance.now();
          outs[i] = await run(cs[i].inputs);
          runMs += performance.now() - r0;
        }
        for (let i = 0; i < cs.length; i++) {
          const ch = plan.channels[cs[i].channel];
          if (ch && !plan.oneAtATime) outs[i] = awaitResponse(ch, 'model call');
        }
        modelMs += performance.now() - t0;
        calls += cs.length;
        return outs;
      },
      {
        cancelled: () => Atomics.load(control, 0) === 1,
        stepDone: events.stepDone,
      },
    );
    // the other workers' run() time (accumulated in their channels)
    for (const ch of plan.channels) if (ch) runMs += Atomics.load(new Int32Array(ch, 0, 4), 2) / 1000;
    if (latents === null) post({ op: 'cancelled' });
    else {
      const loopEnd = monotonicMs();
      post({ op: 'done', latents, modelMs, runMs, loopMs: loopEnd - loopStart, calls, loopStart, loopEnd }, [
        latents.buffer as ArrayBuffer,
      ]);
    }
  } catch (e) {
    const msg = (e as Error).message;
    post({ op: 'error', message: msg.includes('.onnx') ? msg : `${path}: ${msg}` });
  } finally {
    for (const ch of plan.channels) if (ch) detachChannel(ch);
  }
}

type Msg =
  | { op: 'load'; path: string; threads: number; providers: string[]; tuning: SessionTuning }
  | { op: 'run'; id: number; feeds: HostTensor[] }
  | { op: 'attach'; sab: SharedArrayBuffer }
  | { op: 'sample'; plan: SamplePlan };

parentPort!.on('message', async (m: Msg) => {
  if (m.op === 'load') {
    try {
      const r = await load(m.path, m.threads, m.providers, m.tuning);
      parentPort!.postMessage({ op: 'loaded', ok: true, ...r });
    } catch (e) {
      parentPort!.postMessage({ op: 'loaded', ok: false, error: (e as Error).message });
    }
  } else if (m.op === 'run') {
    try {
      const outputs = await run(m.feeds);
      parentPort!.postMessage({ op: 'result', id: m.id, ok: true, outputs });
    } catch (e) {
      parentPort!.postMessage({ op: 'result', id: m.id, ok: false, error: (e as Error).message });
    }
  } else if (m.op === 'sample') {
    await sampleHere(m.plan);
  } else if (m.op === 'attach') {
    await serve(m.sab);
    parentPort!.postMessage({ op: 'detached' });
  }
});
