/**
 * The plugin's runtime: one worker pool per process (started by the plugin's setup, or lazily with the
 * host's config on first use), and the main-thread side of a sampling run.
 */
import type { HostInfo, Logger } from '@priorgraph/core';
import { latentPreviewStrip } from '../guidance/index.ts';
import { previewPng } from '../image-utils.ts';
import { latentDims } from '../video.ts';
import { PREVIEW_INTERVAL_MS } from './loop-events.ts';
import { type CoordinatorMessage, type LoopEvents, monotonicMs, type SamplePlan } from './plan.ts';
import type { ModelHandle } from './pool.ts';
import { callsOneAtATime, RuntimePool } from './pool.ts';
import { createChannel, ctrlOf, detachChannel, ST_ERROR, writeError } from './protocol.ts';

let pool: RuntimePool | null = null;

export function poolOptionsFromHost(host: HostInfo, log?: Logger) {
  const c = host.config ?? {};
  const eps = Array.isArray(c.executionProviders) ? (c.executionProviders as unknown[]).map(String) : ['cpu'];
  const budget = typeof c.modelMemoryBudgetMB === 'number' ? c.modelMemoryBudgetMB : 4096;
  const threads = typeof c.intraOpNumThreads === 'number' ? c.intraOpNumThreads : undefined;
  return {
    executionProviders: eps,
    memoryBudgetMB: budget,
    defaultThreads: threads,
    allowSpinning: c.allowSpinning === true,
    memoryPattern: c.memoryPattern === true,
    log,
  };
}

export function startRuntime(host: HostInfo, log?: Logger): RuntimePool {
  if (pool && !pool.disposed) return pool;
  pool = new RuntimePool(poolOptionsFromHost(host, log));
  return pool;
}

export function getRuntime(host: HostInfo, log?: Logger): RuntimePool {
  return pool && !pool.disposed ? pool : startRuntime(host, log);
}

export async function stopRuntime(): Promise<void> {
  const p = pool;
  pool = null;
  await p?.dispose();
}

/** Loaded models and workers, for the server's /system_stats. */
export function runtimeStats() {
  return pool ? pool.stats() : { loaded: [], workers: 0 };
}

// --- sampling ------------------------------------------------------------------------------------------
let nextRunId = 1;

export interface SampleHooks {
  signal?: AbortSignal;
  onProgress?(step: number, total: number): void;
  /** A PNG of the current latents (drawn and encoded on this thread from the worker's copy): for a
   *  step whose preview is due, at most one per `previewIntervalMs`, and the final step's always. */
  onPreview?(png: Uint8Array): void;
  /** default: PREVIEW_INTERVAL_MS (loop-events.ts) */
  previewIntervalMs?: number;
}

export interface SampleResult {
  latents: Float32Array | null;
  cancelled: boolean;
  /** time the hosting worker spent in model calls incl. waiting for other workers (ms), and how many calls */
  modelMs: number;
  /** summed time inside session.run() in the model workers (ms) */
  runMs: number;
  /** time of the whole step loop in the hosting worker (ms) */
  loopMs: number;
  calls: number;
  /** where a run's time outside its step loop goes (ms; zeros when cancelled): the plan posted → the
   *  worker has it, the result posted → this thread has it, and the events that came with the result
   *  handed to the hooks (the final step's preview drawn and encoded) */
  handoff: { toWorker: number; toCoordinator: number; finalEvents: number };
}

/** Bytes a channel must hold for up to `items` batch items of a model's inputs and outputs. */
export function channelBytes(h: ModelHandle, items: number, latentHW: number, latentC: number): number {
  let perItem = 16;
  for (const i of h.info.inputs) {
    const fixed = i.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 0));
    const n =
      i.shape.length <= 1
        ? 1
        : i.shape.length >= 4 // a latent-like input (rank 5: video; latentHW counts its frames)
          ? (Number(fixed[0]) || 2 * latentC) * latentHW
          : fixed.reduce((a, b) => a * (b || 1), 1);
    perItem += n * 8;
  }
  for (const o of h.info.outputs) {
    const c = typeof o.shape[1] === 'number' && o.shape[1] > 0 ? o.shape[1] : 2 * latentC;
    perItem += c * latentHW * 4;
  }
  return items * perItem + 64 * 1024;
}

/** A batch of the loop's events to the hooks, in order: progress for each step, and a preview drawn
 *  and encoded for the latest one that carries latents (the worker sends at most one per batch). */
function deliver(batch: LoopEvents, shape: SamplePlan['shape'], hooks: SampleHooks): void {
  const { events, total } = batch;
  let last = -1;
  if (hooks.onPreview) for (let i = 0; i < events.length; i++) if (events[i].latents) last = i;
  for (let i = 0; i < events.length; i++) {
    hooks.onProgress?.(events[i].step, total);
    if (i === last) {
      const { rgba, width, height } = latentPreviewStrip(events[i].latents!, shape);
      hooks.onPreview!(previewPng(rgba, width, height));
    }
  }
}

/** The result of a run cancelled before its end: no latents, nothing measured. */
function cancelledRun(): SampleResult {
  const handoff = { toWorker: 0, toCoordinator: 0, finalEvents: 0 };
  return { latents: null, cancelled: true, modelMs: 0, runMs: 0, loopMs: 0, calls: 0, handoff };
}

/** Runs with several models are serialized: a worker hosting such a loop waits on other workers, and
 *  two of them waiting on each other would deadlock. (Single-model loops never wait on anyone.) */
let multiModelQueue: Promise<unknown> = Promise.resolve();

/**
 * Run a sampling plan. ONE message carries the whole plan to the worker of the reference model
 * (handles[0]), which runs the step loop next to its session and calls it directly; the other models
 * of the guider (prior swap, autoguidance, IP2P with a prior) are called through SharedArrayBuffer
 * channels to their workers (Atomics, no postMessage per call), posted before this session runs, so
 * the models compute concurrently — unless they are large models whose threads together exceed the cores
 * (two full-size UNets): then one after the other (pool.ts callsOneAtATime). Only progress, previews and the result come back. The AbortSignal
 * sets a shared flag that the loop checks before every step.
 */
export function sample(
  plan: Omit<SamplePlan, 'channels' | 'control' | 'runId' | 'progress' | 'previewIntervalMs' | 'oneAtATime'>,
  handles: ModelHandle[],
  hooks: SampleHooks = {},
): Promise<SampleResult> {
  if (handles.length <= 1) return sampleIn(plan, handles, hooks);
  const run = multiModelQueue.then(() => sampleIn(plan, handles, hooks));
  multiModelQueue = run.catch(() => undefined);
  return run;
}

async function sampleIn(
  plan: Omit<SamplePlan, 'channels' | 'control' | 'runId' | 'progress' | 'previewIntervalMs' | 'oneAtATime'>,
  handles: ModelHandle[],
  hooks: SampleHooks,
): Promise<SampleResult> {
  const { batch: B, channels: C, perChannel } = latentDims(plan.shape);
  const host = handles[0];
  const channels = handles.map((h, i) => (i === 0 ? null : createChannel(channelBytes(h, 3 * B, perChannel, C))));
  const control = new SharedArrayBuffer(16);
  const ctrl = new Int32Array(control);
  const runId = nextRunId++;
  for (const h of handles) h.pins++;
  const attached = handles.map((h, i) => (channels[i] ? h.attach(channels[i]!) : Promise.resolve()));
  host.hold();
  const onAbort = () => Atomics.store(ctrl, 0, 1);
  if (hooks.signal?.aborted) onAbort();
  hooks.signal?.addEventListener('abort', onAbort);
  let failHost: ((e: Error) => void) | null = null;
  // a worker that dies: the host's run fails; another's leaves an error in its channel
  const deathWatch = handles.map((h, i) => {
    const f = () => {
      const ch = channels[i];
      if (!ch) {
        failHost?.(new Error(`${h.path}: model worker exited during sampling`));
        return;
      }
      writeError(ch, `${h.path}: model worker exited`);
      Atomics.store(ctrlOf(ch), 0, ST_ERROR);
      Atomics.notify(ctrlOf(ch), 0);
    };
    h.worker.once('exit', f);
    return f;
  });
  const target = host.worker;
  let posted = 0;
  try {
    return await new Promise<SampleResult>((resolve, reject) => {
      const done = () => {
        target.off('message', onMsg);
        target.off('error', onErr);
        failHost = null;
      };
      const onMsg = (m: CoordinatorMessage | { op: string }) => {
        const msg = m as CoordinatorMessage;
        if (msg.runId !== runId) return; // another run on the same worker
        if (msg.op === 'events') deliver(msg, plan.shape, hooks);
        else {
          const received = monotonicMs();
          if (msg.pending) deliver(msg.pending, plan.shape, hooks);
          done();
          if (msg.op === 'done') {
            resolve({
              latents: msg.latents,
              cancelled: false,
              modelMs: msg.modelMs,
              runMs: msg.runMs,
              loopMs: msg.loopMs,
              calls: msg.calls,
              handoff: {
                toWorker: msg.loopStart - posted,
                toCoordinator: received - msg.loopEnd,
                finalEvents: monotonicMs() - received,
              },
            });
          } else if (msg.op === 'cancelled') resolve(cancelledRun());
          else reject(new Error(msg.message));
        }
      };
      const onErr = (e: Error) => {
        done();
        reject(new Error(`${host.path}: model worker failed during sampling: ${e.message}`));
      };
      failHost = (e) => {
        done();
        reject(e);
      };
      target.on('message', onMsg);
      target.once('error', onErr);
      posted = monotonicMs();
      target.postMessage({
        op: 'sample',
        plan: {
          ...plan,
          // nothing is made or posted that no hook takes
          previewEvery: hooks.onPreview ? plan.previewEvery : 0,
          previewIntervalMs: hooks.previewIntervalMs ?? PREVIEW_INTERVAL_MS,
          progress: hooks.onProgress !== undefined,
          channels,
          oneAtATime: callsOneAtATime(handles),
          control,
          runId,
        } satisfies SamplePlan,
      });
    });
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    host.release();
    for (const ch of channels) if (ch) detachChannel(ch);
    // the detach confirmations are not awaited (no extra round trip per run): the model workers
    // handle later messages only after leaving the channel loop anyway
    void Promise.all(attached).finally(() => {
      handles.forEach((h, i) => {
        h.pins--;
        h.worker.off('exit', deathWatch[i]);
      });
    });
  }
}
