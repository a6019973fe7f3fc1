/**
 * DDPM — Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (diffusers' DDPMScheduler),
 * ancestral sampling from the posterior q(x_prev | x_t, x̂0) (eq. 6–7), with strided timesteps:
 *
 *   ᾱ_prev = ᾱ of the next timestep in the schedule (1 after the last), α_t = ᾱ_t/ᾱ_prev, β_t = 1 − α_t
 *   μ = √ᾱ_prev·β_t/(1−ᾱ_t) · x̂0 + √α_t·(1−ᾱ_prev)/(1−ᾱ_t) · x_t                   (eq. 7)
 *   β̃ = (1−ᾱ_prev)/(1−ᾱ_t) · β_t   ("fixed_small", clamped ≥ 1e-20)
 *   x_prev = μ + √β̃ · z   for t > 0   (fixed_large: √β_t; fixed_small_log: exp(½ log β̃) = √β̃)
 */
import {
  addNoiseVp,
  alphasCumprodOf,
  checkGridInTable,
  checkSameLength,
  checkStepCount,
  clampInPlace,
  predictX0,
  spacedTimesteps,
  strengthStart,
  toF32,
  trainingBetas,
} from './common.ts';
import type { SchedulerConfig } from './config.ts';
import { alphaAtIndex, checkIntTimestep, requireRng, vpSigmaAt } from './ddim.ts';
import type { Rng, Scheduler, StepResult } from './types.ts';

export class DdpmScheduler implements Scheduler {
  readonly name = 'ddpm' as const;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  sigmas: readonly number[] = [];
  private numInferenceSteps = 0;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
  }

  /** DDPM's grid needs distinct training timesteps: at most num_train_timesteps steps. */
  maxInferenceSteps(): number {
    return this.config.num_train_timesteps;
  }

  setTimesteps(n: number): void {
    checkStepCount(this.name, n, this.maxInferenceSteps());
    this.timesteps = spacedTimesteps(this.config, n, true);
    checkGridInTable(this.name, this.config, this.timesteps);
    this.numInferenceSteps = n;
    this.sigmas = this.timesteps.map((t) => this.sigmaAt(t));
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** the next timestep of the schedule (−1 after the last) */
  private previousTimestep(t: number): number {
    if (this.timesteps.length === 0) return t - 1;
    const i = this.timesteps.indexOf(t);
    if (i < 0) throw new Error(`scheduler ddpm: timestep ${t} is not in the current schedule`);
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult {
    checkSameLength('ddpm.step', modelOutput, sample);
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    const prevT = this.previousTimestep(t);
    const aT = alphaAtIndex(this.alphasCumprod, t);
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : 1;
    const betaProdT = 1 - aT;
    const betaProdPrev = 1 - aPrev;
    const curAlpha = aT / aPrev;
    const curBeta = 1 - curAlpha;
    const { x0 } = predictX0(this.config.prediction_type, modelOutput, sample, aT);
    if (this.config.clip_sample) clampInPlace(x0, this.config.clip_sample_range);
    const cX0 = (Math.sqrt(aPrev) * curBeta) / betaProdT;
    const cX = (Math.sqrt(curAlpha) * betaProdPrev) / betaProdT;
    let std = 0;
    let noise: Float32Array | null = null;
    if (t > 0) {
      noise = requireRng(this.name, rng).randn(sample.length);
      const variance = Math.max((betaProdPrev / betaProdT) * curBeta, 1e-20);
      if (this.config.variance_type === 'fixed_large') std = Math.sqrt(curBeta);
      else if (this.config.variance_type === 'fixed_small_log') std = Math.exp(0.5 * Math.log(variance));
      else std = Math.sqrt(variance);
    }
    const prevSample = new Float32Array(sample.length);
    for (let k = 0; k < prevSample.length; k++) {
      let v = cX0 * x0[k] + cX * sample[k];
      if (noise) v += std * noise[k];
      prevSample[k] = v;
    }
    return { prevSample, predOriginalSample: toF32(x0) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    return addNoiseVp(original, noise, alphaAtIndex(this.alphasCumprod, t));
  }

  sigmaAt(timestep: number): number {
    return vpSigmaAt(this.alphasCumprod, timestep);
  }

  timestepsForStrength(strength: number): number[] {
    if (this.timesteps.length === 0) throw new Error('scheduler ddpm: call setTimesteps before timestepsForStrength');
    // diffusers' get_timesteps slices at n − ⌊n·s⌋ of the n requested steps (the grid may hold n + 1)
    return this.timesteps.slice(strengthStart(this.numInferenceSteps, strength));
  }
}
