/**
 * The step loop, independent of how models are called (the hosting model worker calls its own session
 * channels). Per step: scale the input, ask the guider for ε̃ (its branches grouped into one batched
 * call per model, the calls to different models issued concurrently), convert to the scheduler's
 * prediction_type, step.
 */
import { epsilonToPrediction, type PredictionType, predictionToX0, type Vec, x0ToEpsilon } from '../guidance/index.ts';
import { guidanceMethod } from '../guiders/index.ts';
import { createRng } from '../rng.ts';
import { closestVarianceTimestep, createScheduler } from '../schedulers/index.ts';
import { latentDims } from '../video.ts';
import type { DenoiserSpec, GuiderSpec, SamplePlan } from './plan.ts';
import type { HostTensor } from './protocol.ts';

/** Issue one call per channel (concurrently), return the outputs per channel. */
export type CallModels = (
  calls: Array<{ channel: number; inputs: HostTensor[] }>,
) => HostTensor[][] | Promise<HostTensor[][]>;

export interface LoopHooks {
  cancelled(): boolean;
  /** after step `step` of `total`; `preview`: the latents after it when a preview is due (copy what
   *  is kept: the loop goes on with them) */
  stepDone(step: number, total: number, preview: Float32Array | null): void;
}

/** One call group's buffers for a whole run: the inputs that do not change from step to step (text,
 *  class and added conditioning) packed once, and the sample and timestep arrays refilled in place —
 *  a call reads its inputs before it returns (wrapped for this worker's session, copied into a
 *  channel for another's). The call's `inputs` list and its dims are made once too. */
interface CallGroup {
  /** positions in the branch list evaluated, in order; their denoisers */
  at: number[];
  ds: DenoiserSpec[];
  sample: Float32Array;
  ts: Float32Array;
  /** the call as CallModels takes it (the same object every step) */
  call: { channel: number; inputs: HostTensor[] };
}

/** The calls of one set of branches (denoiser indices), prepared once per run: the groups by channel
 *  in order of first appearance. */
interface BranchCalls {
  /** the denoisers' indices in the guider, as the method asked for them */
  idx: readonly number[];
  groups: CallGroup[];
  calls: Array<{ channel: number; inputs: HostTensor[] }>;
  /** the timestep each branch's model is called at (refilled each step) */
  modelT: number[];
}

/** A run's prepared calls: by set of branches (a method may skip some at some σ), the last one used
 *  first — the per-step work is refilling two arrays, not regrouping the branches. */
export interface CallCache {
  dims: ReturnType<typeof latentDims>;
  last: BranchCalls | null;
  bySet: Map<string, BranchCalls>;
}

export function callCache(shape: SamplePlan['shape']): CallCache {
  return { dims: latentDims(shape), last: null, bySet: new Map() };
}

function sameIndices(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function prepareCalls(denoisers: readonly DenoiserSpec[], idx: readonly number[], cache: CallCache): BranchCalls {
  const { batch: B, perChannel: hw, inner } = cache.dims;
  // the positions of the branches on each channel, channels in order of first appearance
  const byChannel = new Map<number, number[]>();
  idx.forEach((i, pos) => {
    const at = byChannel.get(denoisers[i].channel);
    if (at) at.push(pos);
    else byChannel.set(denoisers[i].channel, [pos]);
  });
  const groups = [...byChannel].map(([channel, at]): CallGroup => {
    const ds = at.map((pos) => denoisers[idx[pos]]);
    const n = at.length * B;
    const sample = new Float32Array(n * ds[0].inChannels * hw);
    const ts = new Float32Array(n);
    const inputs: HostTensor[] = [
      { name: ds[0].sampleName, data: sample, dims: [n, ds[0].inChannels, ...inner] },
      { name: ds[0].timestepName, data: ts, dims: [n] },
      ...fixedInputs(ds, B),
    ];
    return { at, ds, sample, ts, call: { channel, inputs } };
  });
  return { idx: [...idx], groups, calls: groups.map((g) => g.call), modelT: new Array(idx.length).fill(0) };
}

/** Evaluate the denoisers `idx` of a guider at (x, t): ε with respect to the reference schedule, one
 *  per index, in order. */
export async function evalBranches(
  denoisers: readonly DenoiserSpec[],
  idx: readonly number[],
  x: Float32Array,
  t: number,
  refAlphaBar: number,
  call: CallModels,
  cache: CallCache,
): Promise<Vec[]> {
  let bc = cache.last;
  if (!bc || !sameIndices(bc.idx, idx)) {
    const key = idx.join(',');
    bc = cache.bySet.get(key) ?? prepareCalls(denoisers, idx, cache);
    cache.bySet.set(key, bc);
    cache.last = bc;
  }
  // hw: values per channel of one batch item (T·h·w for a video latent): everything below is per item
  const { batch: B, channels: C, perChannel: hw, inner } = cache.dims;
  const item = C * hw;
  const { modelT, groups } = bc;
  for (let p = 0; p < idx.length; p++) {
    const d = denoisers[idx[p]];
    modelT[p] = d.sameSchedule ? t : closestVarianceTimestep(d.alphasCumprod, refAlphaBar);
  }
  for (const g of groups) {
    const inC = g.ds[0].inChannels;
    for (let k = 0; k < g.at.length; k++) {
      const d = g.ds[k];
      for (let b = 0; b < B; b++) {
        const to = (k * B + b) * inC * hw;
        g.sample.set(B === 1 ? x : x.subarray(b * item, (b + 1) * item), to);
        if (inC > C && d.concat) {
          const extra = (inC - C) * hw;
          g.sample.set(d.concat.subarray(b * extra, (b + 1) * extra), to + item);
        }
        g.ts[k * B + b] = modelT[g.at[k]];
      }
    }
  }
  const outs = await call(bc.calls);
  const result: Vec[] = new Array(idx.length);
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const out = outs[gi][0];
    const od = out.dims;
    const outC = od[1];
    let fits = od.length === inner.length + 2 && od[0] === g.at.length * B && (outC === C || outC === 2 * C);
    for (let j = 0; fits && j < inner.length; j++) fits = od[j + 2] === inner[j];
    if (!fits)
      throw new Error(`${g.ds[0].label}: output shape [${od}] does not fit latents [${g.at.length * B},${C},${inner}]`);
    const data = out.data as Float32Array;
    for (let k = 0; k < g.at.length; k++) {
      // learned sigma (2C channels): the first C are the prediction
      let pred: Float32Array;
      if (outC === C) pred = data.subarray(k * B * item, (k + 1) * B * item);
      else {
        pred = new Float32Array(B * item);
        for (let b = 0; b < B; b++) {
          const src = (k * B + b) * outC * hw;
          pred.set(data.subarray(src, src + item), b * item);
        }
      }
      const p = g.at[k];
      result[p] = toReferenceEpsilon(pred, x, g.ds[k], modelT[p], refAlphaBar);
    }
  }
  return result;
}

/** The inputs of a call for denoisers `ds` (one model, B items each) that are the same at every step. */
function fixedInputs(ds: readonly DenoiserSpec[], B: number): HostTensor[] {
  const d0 = ds[0];
  const n = ds.length * B;
  const inputs: HostTensor[] = [];
  if (d0.encoderHiddenStatesName) {
    const dims = ds.map((d) => d.ehsDims);
    const seq = dims[0]![1];
    const dim = dims[0]![2];
    const per = seq * dim;
    const ehs = new Float32Array(n * per);
    ds.forEach((d, k) => {
      if (!d.ehs || !d.ehsDims)
        throw new Error(`${d.label}: the model needs encoder_hidden_states (a text conditioning)`);
      if (d.ehsDims[1] !== seq || d.ehsDims[2] !== dim)
        throw new Error(`${d.label}: conditionings of one batch differ in shape`);
      for (let b = 0; b < B; b++) {
        const src = d.ehsDims[0] === 1 ? 0 : b;
        ehs.set(d.ehs.subarray(src * per, (src + 1) * per), (k * B + b) * per);
      }
    });
    inputs.push({ name: d0.encoderHiddenStatesName, data: ehs, dims: [n, seq, dim] });
  }
  if (d0.classLabelsName) {
    const cl = new Float32Array(n);
    ds.forEach((d, k) => {
      if (d.classLabel === null) throw new Error(`${d.label}: the model needs class_labels (a class conditioning)`);
      for (let b = 0; b < B; b++) cl[k * B + b] = d.classLabel;
    });
    inputs.push({ name: d0.classLabelsName, data: cl, dims: [n] });
  }
  for (const { name, dims } of d0.extra ?? []) {
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * per);
    ds.forEach((d, k) => {
      const e = d.extra?.find((x) => x.name === name);
      if (!e || e.dims.length !== dims.length || e.dims.slice(1).some((v, j) => v !== dims[j + 1]))
        throw new Error(`${d.label}: conditionings of one batch differ in input "${name}"`);
      for (let b = 0; b < B; b++) {
        const src = e.dims[0] === 1 ? 0 : b;
        data.set(e.data.subarray(src * per, (src + 1) * per), (k * B + b) * per);
      }
    });
    inputs.push({ name, data, dims: [n, ...dims.slice(1)] });
  }
  return inputs;
}

/** A branch's prediction → x̂0 with its own ᾱ (the DENOISER's common parameterization) → ε w.r.t. the
 *  reference ᾱ. Native ε on the reference schedule passes through unchanged. */
function toReferenceEpsilon(pred: Float32Array, x: Float32Array, d: DenoiserSpec, tModel: number, refAB: number): Vec {
  const ownAB = d.sameSchedule ? refAB : d.alphasCumprod[tModel];
  if (d.predictionType === 'epsilon' && d.sameSchedule) return pred; // no conversion, no copy
  const x0 = predictionToX0(pred, x, ownAB, d.predictionType);
  return x0ToEpsilon(x0, x, refAB);
}

/**
 * ᾱ of σ for the ε bridge between the models' parameterizations and the scheduler's, floored at
 * 1e-16. At ᾱ = 0 (the first step of a zero-terminal-SNR schedule) ε = x carries nothing of x̂0, and a
 * v-prediction scheduler's v = −x̂0 cannot be recovered from it (0/0). With the floor, √ᾱ = 1e-8: the
 * v recovered differs from −x̂0 by 1e-8·x, and the cancellation in (x − √(1−ᾱ)·ε)/√ᾱ costs float64
 * ~1e-16/1e-8 = 1e-8 relative — both far below float32 resolution of the latents.
 */
export function bridgeAlphaBar(sigma: number): number {
  return Math.max(1 / (1 + sigma * sigma), 1e-16);
}

/** ε̃ of the guider at (x, t), through its method's entry in the table: only the branches the method
 *  asks for at σ are computed (none of the unconditional ones where the scale in force is 1). */
export async function guide(
  g: GuiderSpec,
  x: Float32Array,
  t: number,
  sigma: number,
  shape: SamplePlan['shape'],
  call: CallModels,
  cache: CallCache = callCache(shape),
): Promise<Vec> {
  const m = guidanceMethod(g.method);
  const alphaBar = bridgeAlphaBar(sigma);
  const idx = m.branches ? m.branches(g.params, sigma) : g.denoisers.map((_, i) => i);
  const eps = await evalBranches(g.denoisers, idx, x, t, alphaBar, call, cache);
  const predictionType = g.denoisers[0].predictionType;
  return m.combine(eps, g.params, { x, alphaBar, sigma, batch: shape[0], predictionType });
}

/** Run the whole loop; returns the final latents, or null when cancelled. */
export async function runLoop(plan: SamplePlan, call: CallModels, hooks: LoopHooks): Promise<Float32Array | null> {
  const sched = createScheduler(plan.scheduler.name, plan.scheduler.config);
  const predType = (sched.config.prediction_type ?? 'epsilon') as PredictionType;
  sched.setTimesteps(plan.steps);
  const rng = createRng(plan.seed);
  const n = plan.shape.reduce((a, b) => a * b, 1);
  let timesteps: readonly number[] = sched.timesteps;
  let latents: Float32Array;
  if (plan.init) {
    if (plan.init.length !== n) throw new Error(`input latent has ${plan.init.length} values, expected ${n}`);
    if (plan.strength < 1) timesteps = sched.timestepsForStrength(plan.strength);
    const noise = rng.randn(n);
    latents = timesteps.length ? sched.addNoise(plan.init, noise, timesteps[0]) : Float32Array.from(plan.init);
  } else {
    latents = rng.randn(n);
    if (sched.initNoiseSigma !== 1) for (let i = 0; i < n; i++) latents[i] *= sched.initNoiseSigma;
  }
  const total = timesteps.length;
  const cache = callCache(plan.shape);
  for (let i = 0; i < total; i++) {
    if (hooks.cancelled()) return null;
    const t = timesteps[i];
    const sigma = sched.sigmaAt(t);
    const xin = sched.scaleModelInput(latents, t);
    const eps = await guide(plan.guider, xin, t, sigma, plan.shape, call, cache);
    const pred = epsilonToPrediction(eps, xin, bridgeAlphaBar(sigma), predType);
    // a scheduler may keep the model output (multistep history): never hand it a view over a channel
    const out =
      pred instanceof Float32Array && !(pred.buffer instanceof SharedArrayBuffer) ? pred : new Float32Array(pred);
    latents = sched.step(out, t, latents, rng).prevSample;
    const due = plan.previewEvery > 0 && ((i + 1) % plan.previewEvery === 0 || i + 1 === total);
    hooks.stepDone(i + 1, total, due ? latents : null);
  }
  return latents;
}
