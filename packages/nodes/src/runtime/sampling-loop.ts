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

interface Branch {
  d: DenoiserSpec;
  /** the denoiser's index in its guider (names the branch's call group in a CallCache) */
  i: number;
}

/** One call group's buffers for a whole run: the inputs that do not change from step to step (text,
 *  class and added conditioning) packed once, and the sample and timestep arrays refilled in place —
 *  a call reads its inputs before it returns (wrapped for this worker's session, copied into a
 *  channel for another's). */
interface GroupBuffers {
  sample: Float32Array;
  ts: Float32Array;
  fixed: HostTensor[];
}
/** Per-run cache of GroupBuffers, by channel and branch indices. */
export type CallCache = Map<string, GroupBuffers>;

/** Evaluate branches at (x, t): returns ε with respect to the reference schedule, one per branch. */
export async function evalBranches(
  branches: Branch[],
  x: Float32Array,
  t: number,
  refAlphaBar: number,
  shape: SamplePlan['shape'],
  call: CallModels,
  cache: CallCache = new Map(),
): Promise<Vec[]> {
  // hw: values per channel of one batch item (T·h·w for a video latent): everything below is per item
  const { batch: B, channels: C, perChannel: hw, inner } = latentDims(shape);
  // group by channel, in order
  const groups = new Map<number, number[]>();
  branches.forEach((b, i) => {
    const g = groups.get(b.d.channel) ?? [];
    g.push(i);
    groups.set(b.d.channel, g);
  });
  const modelT = branches.map((b) => (b.d.sameSchedule ? t : closestVarianceTimestep(b.d.alphasCumprod, refAlphaBar)));
  const calls: Array<{ channel: number; inputs: HostTensor[] }> = [];
  for (const [channel, idx] of groups) {
    const d0 = branches[idx[0]].d;
    const n = idx.length * B;
    const inC = d0.inChannels;
    const key = `${channel}:${idx.map((bi) => branches[bi].i).join(',')}`;
    let buf = cache.get(key);
    if (!buf) {
      buf = { sample: new Float32Array(n * inC * hw), ts: new Float32Array(n), fixed: fixedInputs(branches, idx, B) };
      cache.set(key, buf);
    }
    const { sample, ts } = buf;
    idx.forEach((bi, k) => {
      const d = branches[bi].d;
      for (let b = 0; b < B; b++) {
        const item = k * B + b;
        sample.set(x.subarray(b * C * hw, (b + 1) * C * hw), item * inC * hw);
        if (inC > C && d.concat) {
          const extra = (inC - C) * hw;
          sample.set(d.concat.subarray(b * extra, (b + 1) * extra), item * inC * hw + C * hw);
        }
        ts[item] = modelT[bi];
      }
    });
    const inputs: HostTensor[] = [
      { name: d0.sampleName, data: sample, dims: [n, inC, ...inner] },
      { name: d0.timestepName, data: ts, dims: [n] },
      ...buf.fixed,
    ];
    calls.push({ channel, inputs });
  }
  const outs = await call(calls);
  const result: Vec[] = new Array(branches.length);
  let ci = 0;
  for (const [, idx] of groups) {
    const out = outs[ci++][0];
    const outC = out.dims[1];
    const fits = out.dims.length === shape.length && inner.every((v, j) => out.dims[j + 2] === v);
    if (out.dims[0] !== idx.length * B || !fits || (outC !== C && outC !== 2 * C)) {
      throw new Error(
        `${branches[idx[0]].d.label}: output shape [${out.dims}] does not fit latents [${idx.length * B},${C},${inner}]`,
      );
    }
    const data = out.data as Float32Array;
    idx.forEach((bi, k) => {
      const d = branches[bi].d;
      // learned sigma (2C channels): the first C are the prediction
      let pred: Float32Array;
      if (outC === C) pred = data.subarray(k * B * C * hw, (k + 1) * B * C * hw);
      else {
        pred = new Float32Array(B * C * hw);
        for (let b = 0; b < B; b++) {
          const src = (k * B + b) * outC * hw;
          pred.set(data.subarray(src, src + C * hw), b * C * hw);
        }
      }
      result[bi] = toReferenceEpsilon(pred, x, d, modelT[bi], refAlphaBar);
    });
  }
  return result;
}

/** The inputs of the call for branches `idx` (one model, B items each) that are the same at every step. */
function fixedInputs(branches: Branch[], idx: number[], B: number): HostTensor[] {
  const d0 = branches[idx[0]].d;
  const n = idx.length * B;
  const inputs: HostTensor[] = [];
  if (d0.encoderHiddenStatesName) {
    const dims = idx.map((bi) => branches[bi].d.ehsDims);
    const seq = dims[0]![1];
    const dim = dims[0]![2];
    const per = seq * dim;
    const ehs = new Float32Array(n * per);
    idx.forEach((bi, k) => {
      const d = branches[bi].d;
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
    idx.forEach((bi, k) => {
      const d = branches[bi].d;
      if (d.classLabel === null) throw new Error(`${d.label}: the model needs class_labels (a class conditioning)`);
      for (let b = 0; b < B; b++) cl[k * B + b] = d.classLabel;
    });
    inputs.push({ name: d0.classLabelsName, data: cl, dims: [n] });
  }
  for (const { name, dims } of d0.extra ?? []) {
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * per);
    idx.forEach((bi, k) => {
      const e = branches[bi].d.extra?.find((x) => x.name === name);
      if (!e || e.dims.length !== dims.length || e.dims.slice(1).some((v, j) => v !== dims[j + 1]))
        throw new Error(`${branches[bi].d.label}: conditionings of one batch differ in input "${name}"`);
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
  cache?: CallCache,
): Promise<Vec> {
  const m = guidanceMethod(g.method);
  const alphaBar = bridgeAlphaBar(sigma);
  const idx = m.branches ? m.branches(g.params, sigma) : g.denoisers.map((_, i) => i);
  const eps = await evalBranches(
    idx.map((i) => ({ d: g.denoisers[i], i })),
    x,
    t,
    alphaBar,
    shape,
    call,
    cache,
  );
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
  const cache: CallCache = new Map();
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
