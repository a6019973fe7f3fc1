import type { SchedulerConfig, SchedulerName } from './config.ts';

export interface Rng {
  /** n standard normals as float32, advancing the stream */
  randn(n: number): Float32Array;
}

export interface StepResult {
  prevSample: Float32Array;
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  readonly name: SchedulerName;
  readonly config: Readonly<SchedulerConfig>;
  /** the training schedule ᾱ_t, t = 0..N−1 */
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma: number;
  /** after setTimesteps: what the model is called with (fractional for Euler-type schedulers) */
  readonly timesteps: readonly number[];
  /**
   * Euler-type schedulers: the σ of each step, plus the final σ (length timesteps.length + 1).
   * DDIM/DDPM/LCM: the VP σ of each timestep (length timesteps.length). Empty before setTimesteps.
   */
  readonly sigmas: readonly number[];
  /** steps per model call: 1 for all schedulers here */
  readonly order: number;
  /** The most inference steps setTimesteps accepts (for denoise strength s, where that matters). */
  maxInferenceSteps(strength?: number): number;
  setTimesteps(numInferenceSteps: number): void;
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult;
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
  /** The VP noise level of the model input at this timestep: σ = √((1−ᾱ)/ᾱ) (interpolated as the scheduler does). */
  sigmaAt(timestep: number): number;
  /**
   * For img2img: the timesteps that remain for denoise strength s ∈ (0,1] (diffusers' get_timesteps
   * logic). Also sets the begin index (diffusers' set_begin_index) so that addNoise/step of index-
   * tracking schedulers start at the first returned timestep.
   */
  timestepsForStrength(strength: number): number[];
}
