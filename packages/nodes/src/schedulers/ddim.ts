/**
 * DDIM — Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models" (diffusers' DDIMScheduler).
 *
 *   x̂0 = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t                                         (eq. 12, first term)
 *   σ_t² = η² · (1−ᾱ_prev)/(1−ᾱ_t) · (1 − ᾱ_t/ᾱ_prev)                       (eq. 16)
 *   x_prev = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ_t²)·ε̂ + σ_t·z                       (eq. 12)
 *
 * prev = t − ⌊N/n⌋ (for every spacing, as diffusers); ᾱ_prev = 1 (set_alpha_to_one) or ᾱ_0 past
 * the end. x̂0 is clamped to ±clip_sample_range when clip_sample. η is the `eta` key (default 0).
 */
import {
  addNoiseVp,
  alphasCumprodOf,
  checkGridInTable,
  checkSameLength,
  checkStepCount,
  clampInPlace,
  predictX0,
  sigmaOfAlphaBar,
  spacedTimesteps,
  strengthStart,
  toF32,
  trainingBetas,
  zeroSnrEpsilonError,
} from './common.ts';
import type { SchedulerConfig } from './config.ts';
import type { Rng, Scheduler, StepResult } from './types.ts';

export class DdimScheduler implements Scheduler {
  readonly name = 'ddim' as const;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  sigmas: readonly number[] = [];
  private numInferenceSteps = 0;
  private readonly finalAlphaCumprod: number;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  /** DDIM's grid needs distinct training timesteps: at most num_train_timesteps steps. */
  maxInferenceSteps(): number {
    return this.config.num_train_timesteps;
  }

  setTimesteps(n: number): void {
    checkStepCount(this.name, n, this.maxInferenceSteps());
    this.numInferenceSteps = n;
    this.timesteps = spacedTimesteps(this.config, n, true);
    checkGridInTable(this.name, this.config, this.timesteps);
    this.sigmas = this.timesteps.map((t) => this.sigmaAt(t));
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** ᾱ_prev: the table below t = 0 is final_alpha_cumprod */
  private alphaPrevAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('scheduler ddim: call setTimesteps before step');
    checkSameLength('ddim.step', modelOutput, sample);
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    const prev = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const aT = alphaAtIndex(this.alphasCumprod, t);
    const aPrev = this.alphaPrevAt(prev);
    const variance = ((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev);
    const std = this.config.eta * Math.sqrt(variance);
    const cX0 = Math.sqrt(aPrev);
    const cEps = Math.sqrt(1 - aPrev - std * std);
    if (this.config.prediction_type === 'epsilon') {
      if (aT === 0) throw zeroSnrEpsilonError();
      return this.epsilonStep(modelOutput, sample, aT, cX0, cEps, std, rng);
    }
    const { x0, eps } = predictX0(this.config.prediction_type, modelOutput, sample, aT);
    if (this.config.clip_sample) {
      clampInPlace(x0, this.config.clip_sample_range);
      // diffusers keeps ε̂ = model output (use_clipped_model_output=False)
    }
    // diffusers draws noise on every step when η > 0 (also the last, where σ_t = 0)
    const noise = this.config.eta > 0 ? requireRng(this.name, rng).randn(sample.length) : null;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < prevSample.length; i++) {
      let v = cX0 * x0[i] + cEps * eps[i];
      if (noise) v += std * noise[i];
      prevSample[i] = v;
    }
    return { prevSample, predOriginalSample: toF32(x0) };
  }

  /** The step for an ε-predicting model, element by element: the arithmetic of the general path above
   *  (x̂0 in float64, clipped as there, ε̂ = the model output), without its float64 arrays — the step
   *  runs once per model call, and on small latents its allocations were most of its time. */
  private epsilonStep(
    eps: Float32Array,
    sample: Float32Array,
    aT: number,
    cX0: number,
    cEps: number,
    std: number,
    rng: Rng | undefined,
  ): StepResult {
    const a = Math.sqrt(aT);
    const s = Math.sqrt(1 - aT);
    const clip = this.config.clip_sample;
    const range = this.config.clip_sample_range;
    const noise = this.config.eta > 0 ? requireRng(this.name, rng).randn(sample.length) : null;
    const prevSample = new Float32Array(sample.length);
    const predOriginalSample = new Float32Array(sample.length);
    for (let i = 0; i < prevSample.length; i++) {
      const e = eps[i];
      let x0 = (sample[i] - s * e) / a;
      if (clip) x0 = x0 > range ? range : Math.max(x0, -range); // clampInPlace's min/max, NaN kept
      let v = cX0 * x0 + cEps * e;
      if (noise) v += std * noise[i];
      prevSample[i] = v;
      predOriginalSample[i] = x0;
    }
    return { prevSample, predOriginalSample };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    return addNoiseVp(original, noise, alphaAtIndex(this.alphasCumprod, t));
  }

  sigmaAt(timestep: number): number {
    return vpSigmaAt(this.alphasCumprod, timestep);
  }

  timestepsForStrength(strength: number): number[] {
    if (this.numInferenceSteps === 0) throw new Error('scheduler ddim: call setTimesteps before timestepsForStrength');
    // diffusers' get_timesteps slices at n − ⌊n·s⌋ of the n requested steps (the grid may hold n + 1)
    return this.timesteps.slice(strengthStart(this.numInferenceSteps, strength));
  }
}

export function requireRng(name: string, rng: Rng | undefined): Rng {
  if (!rng) throw new Error(`scheduler ${name}: this step adds noise and needs an rng`);
  return rng;
}

/**
 * An integer timestep of the schedule: 0..N−1, or −1, which diffusers' trailing grids end with at some
 * step counts (np.arange(N, 0, −N/n) has n + 1 elements when N/(N/n) rounds above n, e.g. n = 61 of
 * N = 1000; the last is round(≈0) − 1). diffusers then indexes its ᾱ table with −1, i.e. ᾱ_{N−1}
 * (alphaAtIndex), and so do we.
 */
export function checkIntTimestep(name: string, timestep: number, N: number): number {
  if (!Number.isInteger(timestep) || timestep < -1 || timestep >= N) {
    throw new Error(`scheduler ${name}: timestep must be an integer in [0, ${N}) (got ${timestep})`);
  }
  return timestep;
}

/** ᾱ at an integer timestep as torch indexes the table (−1 is the last entry, as in Python). */
export function alphaAtIndex(alphasCumprod: Float64Array, t: number): number {
  return alphasCumprod[t < 0 ? alphasCumprod.length + t : t];
}

/** σ(t) = √((1−ᾱ_t)/ᾱ_t); fractional t interpolates σ linearly between integer steps (np.interp). */
export function vpSigmaAt(alphasCumprod: Float64Array, timestep: number): number {
  const N = alphasCumprod.length;
  if (timestep === -1) timestep = N - 1; // the −1 of a trailing grid reads ᾱ_{N−1} (checkIntTimestep)
  if (!Number.isFinite(timestep) || timestep < 0 || timestep > N - 1) {
    throw new Error(`scheduler sigmaAt: timestep must be in [0, ${N - 1}] (got ${timestep})`);
  }
  const lo = Math.floor(timestep);
  const w = timestep - lo;
  const at = sigmaOfAlphaBar(alphasCumprod[lo]);
  if (w === 0) return at;
  return at + (sigmaOfAlphaBar(alphasCumprod[lo + 1]) - at) * w;
}
