/**
 * The plugin's runtime: one worker pool per process (started by the plugin's setup, or lazily with the
 * host's config on first use), and the main-thread side of a sampling run.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { HostInfo, Logger } from '@priorgraph/core';
import type { CoordinatorMessage, SamplePlan } from './plan.ts';
import type { ModelHandle } from './pool.ts';
import { RuntimePool } from './pool.ts';
import { createChannel, ctrlOf, detachChannel, ST_ERROR, writeError } from './protocol.ts';
import { spawnModuleWorker } from './spawn.ts';

let pool: RuntimePool | null = null;

export function poolOptionsFromHost(host: HostInfo, log?: Logger) {
  const c = host.config ?? {};
  const eps = Array.isArray(c.executionProviders) ? (c.executionProviders as unknown[]).map(String) : ['cpu'];
  const budget = typeof c.modelMemoryBudgetMB === 'number' ? c.modelMemoryBudgetMB : 4096;
  const threads = typeof c.intraOpNumThreads === 'number' ? c.intraOpNumThreads : availableParallelism();
  return {
    executionProviders: eps,
    memoryBudgetMB: budget,
    defaultThreads: threads,
    allowSpinning: c.allowSpinning === true,
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
  for (const w of idleCoordinators.splice(0)) await w.terminate();
  await p?.dispose();
}

/** Loaded models and workers, for the server's /system_stats. */
export function runtimeStats() {
  return pool
    ? { ...pool.stats(), coordinators: idleCoordinators.length }
    : { loaded: [], workers: 0, coordinators: 0 };
}

// --- sampling ------------------------------------------------------------------------------------------
const idleCoordinators: Worker[] = [];
let nextRunId = 1;

function takeCoordinator(): Worker {
  const w = idleCoordinators.pop() ?? spawnModuleWorker(new URL('./coordinator.ts', import.meta.url));
  w.ref();
  return w;
}

export interface SampleHooks {
  signal?: AbortSignal;
  onProgress?(step: number, total: number): void;
  onPreview?(rgba: Uint8Array, width: number, height: number): void;
}

export interface SampleResult {
  latents: Float32Array | null;
  cancelled: boolean;
  /** time the coordinator spent waiting for model calls (ms), and how many calls */
  modelMs: number;
  /** summed time inside session.run() in the model workers (ms) */
  runMs: number;
  /** time of the whole step loop in the coordinator (ms) */
  loopMs: number;
  calls: number;
}

/** Bytes a channel must hold for up to `items` batch items of a model's inputs and outputs. */
export function channelBytes(h: ModelHandle, items: number, latentHW: number, latentC: number): number {
  let perItem = 16;
  for (const i of h.info.inputs) {
    const fixed = i.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 0));
    const n =
      i.shape.length <= 1
        ? 1
        : i.shape.length === 4
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

/**
 * Run a sampling plan. One message carries the whole plan; only progress, previews and the result
 * come back. Where the loop runs:
 * - one model (CFG, a basic guider, IP2P without a prior): inside that model's own worker, next to
 *   the session — no hand-off at all per model call;
 * - several models (prior swap, autoguidance, IP2P with a prior): in a coordinator worker that calls
 *   each model's worker through a SharedArrayBuffer channel (Atomics), posting the calls to different
 *   models before awaiting any, so they run concurrently. A model worker that runs a loop never waits
 *   for another worker, so runs cannot deadlock each other.
 * The AbortSignal sets a shared flag that the loop checks before every step.
 */
export async function sample(
  plan: Omit<SamplePlan, 'channels' | 'control' | 'runId'>,
  handles: ModelHandle[],
  hooks: SampleHooks = {},
): Promise<SampleResult> {
  const [B, C, H, W] = plan.shape;
  const local = handles.length === 1;
  const channels = local ? [] : handles.map((h) => createChannel(channelBytes(h, 3 * B, H * W, C)));
  const control = new SharedArrayBuffer(16);
  const ctrl = new Int32Array(control);
  const runId = nextRunId++;
  for (const h of handles) h.pins++;
  const attached = local ? [] : handles.map((h, i) => h.attach(channels[i]));
  const target = local ? handles[0].worker : takeCoordinator();
  if (local) handles[0].hold();
  const onAbort = () => Atomics.store(ctrl, 0, 1);
  if (hooks.signal?.aborted) onAbort();
  hooks.signal?.addEventListener('abort', onAbort);
  let failLocal: ((e: Error) => void) | null = null;
  // a model worker that dies leaves an error in its channel, so the coordinator never waits forever
  const deathWatch = handles.map((h, i) => {
    const f = () => {
      if (local) {
        failLocal?.(new Error(`${h.path}: model worker exited during sampling`));
        return;
      }
      const c = ctrlOf(channels[i]);
      writeError(channels[i], `${h.path}: model worker exited`);
      Atomics.store(c, 0, ST_ERROR);
      Atomics.notify(c, 0);
    };
    h.worker.once('exit', f);
    return f;
  });
  try {
    const result = await new Promise<SampleResult>((resolve, reject) => {
      const done = () => {
        target.off('message', onMsg);
        target.off('error', onErr);
        failLocal = null;
      };
      const onMsg = (m: CoordinatorMessage | { op: string }) => {
        const msg = m as CoordinatorMessage;
        if (msg.runId !== runId) return; // another run on the same worker
        if (msg.op === 'progress') hooks.onProgress?.(msg.step, msg.total);
        else if (msg.op === 'preview') hooks.onPreview?.(msg.rgba, msg.width, msg.height);
        else if (msg.op === 'done' || msg.op === 'cancelled' || msg.op === 'error') {
          done();
          if (msg.op === 'done') {
            resolve({
              latents: msg.latents,
              cancelled: false,
              modelMs: msg.modelMs,
              runMs: msg.runMs,
              loopMs: msg.loopMs,
              calls: msg.calls,
            });
          } else if (msg.op === 'cancelled') {
            resolve({ latents: null, cancelled: true, modelMs: 0, runMs: 0, loopMs: 0, calls: 0 });
          } else reject(new Error(msg.message));
        }
      };
      const onErr = (e: Error) => {
        done();
        reject(new Error(`sampling ${local ? 'model worker' : 'coordinator'} failed: ${e.message}`));
      };
      failLocal = (e) => {
        done();
        reject(e);
      };
      target.on('message', onMsg);
      target.once('error', onErr);
      const full: SamplePlan = { ...plan, channels, control, runId };
      target.postMessage(local ? { op: 'sample', plan: full } : full);
    });
    if (!local) {
      target.unref();
      idleCoordinators.push(target);
    }
    return result;
  } catch (e) {
    if (!local) void target.terminate();
    throw e;
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    if (local) handles[0].release();
    for (const ch of channels) detachChannel(ch);
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
