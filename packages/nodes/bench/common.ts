/** Shared pieces of bench/pipeline.bench.ts and bench/priorswap.bench.ts (packages/nodes benchmarks). */
import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadClip, loadDenoiserModel } from '../src/models/load.ts';
import { createRng } from '../src/rng.ts';
import { sessionOptions } from '../src/runtime/options.ts';
import type { RuntimePool } from '../src/runtime/pool.ts';
import { type RunSamplingArgs, runSampling } from '../src/sampling.ts';
import { createScheduler } from '../src/schedulers/index.ts';
import type { ConditioningValue, GuiderValue, LatentValue, ModelValue } from '../src/types.ts';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const machine = () =>
  `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Node ${process.version}, onnxruntime-node ${ort.env.versions?.common ?? ''}`;

export interface BenchSet {
  name: string;
  ft: string;
  base: string;
  /** a diffusers folder with a CLIP, or null for random conditioning */
  clipFolder: string | null;
  latent: [number, number];
}

/** The benchmark model sets: the committed bench fixtures, and the demo models when they exist. */
export function benchSets(): BenchSet[] {
  const f = (p: string) => join(ROOT, 'packages/nodes/test/fixtures/models', p);
  const sets: BenchSet[] = [
    {
      name: 'bench fixture UNets (0.1 M params), 32×32×4 latents',
      ft: f('single/bench_unet.onnx'),
      base: f('single/bench_base.onnx'),
      clipFolder: null,
      latent: [32, 32],
    },
  ];
  const m = (p: string) => join(process.env.PRIORGRAPH_DEMO_MODELS ?? join(ROOT, 'models'), p);
  if (existsSync(m('shapes-t2i/unet/model.onnx')) && existsSync(m('shapes-base/unet/model.onnx'))) {
    sets.push({
      name: 'demo models shapes-t2i + shapes-base',
      ft: m('shapes-t2i'),
      base: m('shapes-base'),
      clipFolder: m('shapes-t2i'),
      latent: [0, 0],
    });
  }
  return sets;
}

export async function conditioning(
  pool: RuntimePool,
  set: BenchSet,
  model: ModelValue,
): Promise<ConditioningValue | null> {
  if (!model.sig.encoderHiddenStatesName) return null;
  if (set.clipFolder) {
    const clip = await loadClip(pool, set.clipFolder);
    const ids = Int32Array.from(clip.tokenizer.encode('a red circle'));
    const [h] = await clip.handle.run([{ name: 'input_ids', data: ids, dims: [1, ids.length] }]);
    return {
      kind: 'CONDITIONING',
      ehs: h.data as Float32Array,
      ehsDims: h.dims as [number, number, number],
      pooled: null,
      classLabel: null,
      text: 'a red circle',
    };
  }
  const [seq, dim] = model.sig.encoderHiddenStatesShape ?? [16, 32];
  return {
    kind: 'CONDITIONING',
    ehs: createRng(1).randn((seq ?? 16) * (dim ?? 32)),
    ehsDims: [1, seq ?? 16, dim ?? 32],
    pooled: null,
    classLabel: null,
    text: 'random',
  };
}

export async function loadModel(pool: RuntimePool, p: string) {
  return loadDenoiserModel(pool, p);
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A bare in-process session on the same file with the same thread count and the same session options
 *  as the pool's (runtime/options.ts: memory pattern and spinning off). */
export function bareSession(file: string, threads: number) {
  return ort.InferenceSession.create(file, sessionOptions(['cpu'], threads));
}

/** Feeds for one bare call of a denoiser with `n` batch items. */
export function bareFeeds(
  model: ModelValue,
  n: number,
  h: number,
  w: number,
  cond: ConditioningValue | null,
): Record<string, ort.Tensor> {
  const s = model.sig;
  const feeds: Record<string, ort.Tensor> = {
    [s.sampleName]: new ort.Tensor('float32', createRng(5).randn(n * s.inChannels * h * w), [n, s.inChannels, h, w]),
  };
  feeds[s.timestepName] =
    s.timestepType === 'int64'
      ? new ort.Tensor('int64', new BigInt64Array(n).fill(500n), [n])
      : new ort.Tensor('float32', new Float32Array(n).fill(500), [n]);
  if (s.encoderHiddenStatesName && cond?.ehsDims) {
    const per = cond.ehsDims[1] * cond.ehsDims[2];
    const e = new Float32Array(n * per);
    for (let i = 0; i < n; i++) e.set(cond.ehs!, i * per);
    feeds[s.encoderHiddenStatesName] = new ort.Tensor('float32', e, [n, cond.ehsDims[1], cond.ehsDims[2]]);
  }
  return feeds;
}

export async function timeCalls(
  sess: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  calls: number,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await sess.run(feeds);
    total += performance.now() - t0;
  }
  return total;
}

/** Round trip between two threads: postMessage ping-pong vs SharedArrayBuffer + Atomics (µs, median of 5 × n). */
export async function handoffRoundTrips(n = 300): Promise<{ postMessageUs: number; atomicsUs: number }> {
  const { Worker } = await import('node:worker_threads');
  const code = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m && m.sab) {
    const c = new Int32Array(m.sab);
    for (;;) { Atomics.wait(c, 0, 0); if (Atomics.load(c, 0) === 2) break; Atomics.store(c, 0, 0); Atomics.store(c, 1, 1); Atomics.notify(c, 1); }
  } else parentPort.postMessage(m);
});`;
  const w = new Worker(code, { eval: true });
  const pm: number[] = [];
  const at: number[] = [];
  const sab = new SharedArrayBuffer(8);
  const c = new Int32Array(sab);
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await new Promise((res) => {
        w.once('message', res);
        w.postMessage(i);
      });
    }
    pm.push(((performance.now() - t0) / n) * 1000);
  }
  w.postMessage({ sab });
  await new Promise((r) => setTimeout(r, 50));
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      Atomics.store(c, 1, 0);
      Atomics.store(c, 0, 1);
      Atomics.notify(c, 0);
      while (Atomics.load(c, 1) === 0) Atomics.wait(c, 1, 0);
    }
    at.push(((performance.now() - t0) / n) * 1000);
  }
  Atomics.store(c, 0, 2);
  Atomics.notify(c, 0);
  await w.terminate();
  return { postMessageUs: median(pm), atomicsUs: median(at) };
}

/** onnxruntime-node for the benchmarks under bench/ (it resolves from this package). */
/** One DDIM sampling run as the benchmarks make it: seed 1, full denoise, batch 1, no previews unless
 *  `extra` asks for them. */
export function ddimRun(
  pool: RuntimePool,
  guider: GuiderValue,
  steps: number,
  latent: LatentValue | null,
  extra: Partial<RunSamplingArgs> = {},
) {
  return runSampling({
    pool,
    guider,
    scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
    steps,
    seed: 1,
    denoise: 1,
    batchSize: 1,
    latent,
    previewEvery: 0,
    ...extra,
  });
}

export { ort };

/**
 * The floor of a sampling run's overhead (pipeline.bench.ts): the least a CFG + DDIM sampler does per
 * step — the batch-2 input packed, the bare session called on this thread, ε̃ = u + 5·(c − u) and the
 * DDIM update (η = 0) in one pass — timed as a run is: wall ÷ Σ its session.run() calls.
 */
export async function cfgDdimFloor(
  bare: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  model: ModelValue,
  shape: readonly number[],
  steps: number,
): Promise<number> {
  const sched = createScheduler('ddim', model.schedulerConfig);
  sched.setTimesteps(steps);
  const n = shape.reduce((a, b) => a * b, 1);
  let x = createRng(1).randn(n);
  let runMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const t = sched.timesteps[i];
    const prev = i + 1 < steps ? sched.timesteps[i + 1] : -1;
    const xs = new Float32Array(2 * n);
    xs.set(x);
    xs.set(x, n);
    const f = { ...feeds, [model.sig.sampleName]: new ort.Tensor('float32', xs, [2, ...shape.slice(1)]) };
    const r0 = performance.now();
    const out = await bare.run(f);
    runMs += performance.now() - r0;
    const o = out[bare.outputNames[0]].data as Float32Array;
    const a = sched.alphasCumprod[t];
    const ap = prev < 0 ? 1 : sched.alphasCumprod[prev];
    const ca = Math.sqrt(a);
    const sa = Math.sqrt(1 - a);
    const cp = Math.sqrt(ap);
    const sp = Math.sqrt(1 - ap);
    const next = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const e = o[j] + 5 * (o[n + j] - o[j]);
      next[j] = cp * ((x[j] - sa * e) / ca) + sp * e;
    }
    x = next;
  }
  return (performance.now() - t0) / runMs;
}
