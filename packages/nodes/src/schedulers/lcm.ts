/**
 * LCM — Luo et al. 2023, "Latent Consistency Models" (diffusers' LCMScheduler), multistep consistency
 * sampling (Algorithm 1):
 *
 *   timesteps: the original schedule t_k = k·⌊N/K⌋ − 1, k = 1..⌊K·strength⌋ (K = original_inference_steps),
 *              reversed, taking n of them at indices ⌊i·len/n⌋, i = 0..n−1
 *   boundary condition (consistency-model parameterization, σ_data = 0.5, s = timestep_scaling):
 *     c_skip = σ_data² / ((s·t)² + σ_data²),   c_out = s·t / √((s·t)² + σ_data²)
 *   denoised = c_out·x̂0 + c_skip·x_t
 *   x_prev   = √ᾱ_prev·denoised + √(1−ᾱ_prev)·z   (not on the last step, which returns denoised)
 */
import {
  addNoiseVp,
  alphasCumprodOf,
  checkSameLength,
  checkStepCount,
  clampInPlace,
  npLinspace,
  predictX0,
  toF32,
  trainingBetas,
} from './common.ts';
import type { SchedulerConfig } from './config.ts';
import { checkIntTimestep, requireRng, vpSigmaAt } from './ddim.ts';
import type { Rng, Scheduler, StepResult } from './types.ts';

export class LcmScheduler implements Scheduler {
  readonly name = 'lcm' as const;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  sigmas: readonly number[] = [];
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps = 0;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  /** LCM picks its steps from ⌊original_inference_steps × strength⌋ skipping-step timesteps. */
  maxInferenceSteps(strength = 1): number {
    return Math.min(this.config.num_train_timesteps, Math.trunc(this.config.original_inference_steps * strength));
  }

  setTimesteps(n: number, strength = 1): void {
    const N = this.config.num_train_timesteps;
    checkStepCount(this.name, n, N);
    const K = this.config.original_inference_steps;
    if (K > N) {
      throw new Error(`scheduler config key "original_inference_steps": ${K} is larger than num_train_timesteps ${N}`);
    }
    const k = Math.floor(N / K);
    const count = Math.trunc(K * strength);
    const origin: number[] = [];
    for (let i = count; i >= 1; i--) origin.push(i * k - 1); // reversed
    if (Math.floor(origin.length / n) < 1) {
      throw new Error(
        `scheduler lcm: original_inference_steps × strength = ${K} × ${strength} is smaller than the ${n} inference steps`,
      );
    }
    if (n > K) {
      throw new Error(`scheduler lcm: ${n} inference steps exceed original_inference_steps ${K}`);
    }
    // np.linspace(0, len, n, endpoint=False) floored
    const idx = npLinspace(0, origin.length, n + 1)
      .slice(0, n)
      .map(Math.floor);
    this.timesteps = idx.map((i) => origin[i]);
    this.sigmas = this.timesteps.map((t) => this.sigmaAt(t));
    this.numInferenceSteps = n;
    this.stepIndex = null;
    this.beginIndex = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** c_skip, c_out of the discrete boundary condition */
  boundaryScalings(t: number): { cSkip: number; cOut: number } {
    const sigmaData = 0.5;
    const st = t * this.config.timestep_scaling;
    return {
      cSkip: sigmaData ** 2 / (st * st + sigmaData ** 2),
      cOut: st / Math.sqrt(st * st + sigmaData ** 2),
    };
  }

  private indexForTimestep(timestep: number): number {
    const idx: number[] = [];
    this.timesteps.forEach((t, i) => {
      if (t === timestep) idx.push(i);
    });
    if (idx.length === 0) throw new Error(`scheduler lcm: timestep ${timestep} is not in the current schedule`);
    return idx.length > 1 ? idx[1] : idx[0];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('scheduler lcm: call setTimesteps before step');
    checkSameLength('lcm.step', modelOutput, sample);
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexForTimestep(t);
    const i = this.stepIndex;
    if (i >= this.timesteps.length) {
      throw new Error(`scheduler lcm: all ${this.timesteps.length} steps are done; call setTimesteps again`);
    }
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : t;
    const aT = this.alphasCumprod[t];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const { cSkip, cOut } = this.boundaryScalings(t);
    const { x0 } = predictX0(this.config.prediction_type, modelOutput, sample, aT);
    if (this.config.clip_sample) clampInPlace(x0, this.config.clip_sample_range);
    const len = sample.length;
    const denoised = new Float64Array(len);
    for (let k = 0; k < len; k++) denoised[k] = cOut * x0[k] + cSkip * sample[k];
    const prevSample = new Float32Array(len);
    if (i !== this.numInferenceSteps - 1) {
      const noise = requireRng(this.name, rng).randn(len);
      const a = Math.sqrt(aPrev);
      const s = Math.sqrt(1 - aPrev);
      for (let k = 0; k < len; k++) prevSample[k] = a * denoised[k] + s * noise[k];
    } else {
      prevSample.set(denoised);
    }
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: toF32(denoised) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const t = checkIntTimestep(this.name, timestep, this.config.num_train_timesteps);
    return addNoiseVp(original, noise, this.alphasCumprod[t]);
  }

  sigmaAt(timestep: number): number {
    return vpSigmaAt(this.alphasCumprod, timestep);
  }

  /**
   * LCM's img2img (diffusers' LatentConsistencyModelImg2ImgPipeline): the schedule is rebuilt from the
   * first ⌊K·strength⌋ original timesteps with the same number of steps, and all of it is used.
   */
  timestepsForStrength(strength: number): number[] {
    if (this.numInferenceSteps === 0) throw new Error('scheduler lcm: call setTimesteps before timestepsForStrength');
    if (!(strength > 0 && strength <= 1)) throw new Error(`denoise strength must be in (0, 1] (got ${strength})`);
    this.setTimesteps(this.numInferenceSteps, strength);
    return [...this.timesteps];
  }
}
