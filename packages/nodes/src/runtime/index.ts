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
 * Run a sampling plan: pins the models, attaches each session to a shared channel, sends the plan to a
 * coordinator worker in one message, relays progress/previews, and cancels within one step of `signal`.
 * `handles[i]` is the model behind `plan.channels[i]`; channels are created here.
 */
export async function sample(
  plan: Omit<SamplePlan, 'channels' | 'control'>,
  handles: ModelHandle[],
  hooks: SampleHooks = {},
): Promise<SampleResult> {
  const [B, C, H, W] = plan.shape;
  const channels = handles.map((h) => createChannel(channelBytes(h, 3 * B, H * W, C)));
  const control = new SharedArrayBuffer(16);
  const ctrl = new Int32Array(control);
  for (const h of handles) h.pins++;
  const attached = handles.map((h, i) => h.attach(channels[i]));
  const coord = takeCoordinator();
  const onAbort = () => Atomics.store(ctrl, 0, 1);
  if (hooks.signal?.aborted) onAbort();
  hooks.signal?.addEventListener('abort', onAbort);
  // a model worker that dies leaves an error in its channel, so the coordinator never waits forever
  const deathWatch = handles.map((h, i) => {
    const f = () => {
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
      const onMsg = (m: CoordinatorMessage) => {
        if (m.op === 'progress') hooks.onProgress?.(m.step, m.total);
        else if (m.op === 'preview') hooks.onPreview?.(m.rgba, m.width, m.height);
        else {
          coord.off('message', onMsg);
          coord.off('error', onErr);
          if (m.op === 'done')
            resolve({
              latents: m.latents,
              cancelled: false,
              modelMs: m.modelMs,
              runMs: m.runMs,
              loopMs: m.loopMs,
              calls: m.calls,
            });
          else if (m.op === 'cancelled')
            resolve({ latents: null, cancelled: true, modelMs: 0, runMs: 0, loopMs: 0, calls: 0 });
          else reject(new Error(m.message));
        }
      };
      const onErr = (e: Error) => {
        coord.off('message', onMsg);
        reject(new Error(`sampling coordinator failed: ${e.message}`));
      };
      coord.on('message', onMsg);
      coord.once('error', onErr);
      coord.postMessage({ ...plan, channels, control } satisfies SamplePlan);
    });
    coord.unref();
    idleCoordinators.push(coord);
    return result;
  } catch (e) {
    void coord.terminate();
    throw e;
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
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
