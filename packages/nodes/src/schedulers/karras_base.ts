/**
 * Shared state of the σ-parameterized (Karras/k-diffusion style) discrete schedulers, Euler and
 * Euler ancestral: the model input is x/√(σ²+1), the state x = x0 + σ·ε, and a step index that
 * diffusers tracks across calls (initialised from the first timestep seen, or a begin index).
 */
import {
  alphasCumprodOf,
  checkSameLength,
  checkStepCount,
  interpIndex,
  karrasSigmas,
  sigmaToT,
  spacedTimesteps,
  strengthStart,
  trainingBetas,
  trainingSigmas,
} from './common.ts';
import type { SchedulerConfig, SchedulerName } from './config.ts';
import type { Rng, StepResult } from './types.ts';

const f32 = Math.fround;

export abstract class SigmaScheduler {
  abstract readonly name: SchedulerName;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  /** σ_t of the training schedule (float32 values, as diffusers) */
  protected readonly trainSigmas: Float64Array;
  timesteps: readonly number[] = [];
  /** σ of each step plus the final σ */
  sigmas: readonly number[] = [];
  protected stepIndex: number | null = null;
  protected numInferenceSteps = 0;
  protected beginIndex: number | null = null;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
    if (config.rescale_betas_zero_snr) {
      // diffusers: ᾱ_T = 2^-24 so that σ_T stays finite
      this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    }
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
    // before setTimesteps diffusers holds the full reversed training schedule
    const n = this.trainSigmas.length;
    this.sigmas = [...Array.from(this.trainSigmas).reverse(), 0];
    this.timesteps = Array.from({ length: n }, (_, i) => n - 1 - i);
  }

  /** diffusers: σ_max when spacing is linspace/trailing, √(σ_max²+1) for leading */
  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmas) max = Math.max(max, s);
    return this.config.timestep_spacing === 'leading' ? f32(Math.sqrt(f32(max * max + 1))) : max;
  }

  /** Whether Karras sigmas apply (Euler only; Euler ancestral in diffusers has no such option). */
  protected abstract get karras(): boolean;

  /** Any number of steps, as diffusers' scheduler takes. */
  maxInferenceSteps(): number {
    return Number.POSITIVE_INFINITY;
  }

  setTimesteps(n: number): void {
    checkStepCount(this.name, n, Number.POSITIVE_INFINITY); // diffusers does not bound n by N here
    let timesteps = spacedTimesteps(this.config, n, false);
    // σ(t) by np.interp over the training σ table
    let sig = timesteps.map((t) => interpIndex(t, this.trainSigmas));
    if (this.karras) {
      const logS = Array.from(this.trainSigmas, Math.log);
      sig = karrasSigmas(this.config.sigma_min ?? sig[sig.length - 1], this.config.sigma_max ?? sig[0], n);
      timesteps = sig.map((s) => f32(sigmaToT(s, logS)));
    }
    const last = this.config.final_sigmas_type === 'sigma_min' && this.name === 'euler' ? this.trainSigmas[0] : 0;
    this.sigmas = [...sig, last].map(f32);
    this.timesteps = timesteps.map(f32);
    this.stepIndex = null;
    this.beginIndex = null;
    this.numInferenceSteps = n;
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }

  protected indexForTimestep(timestep: number): number {
    const idx: number[] = [];
    const tt = f32(timestep);
    this.timesteps.forEach((t, i) => {
      if (t === tt) idx.push(i);
    });
    if (idx.length === 0) {
      throw new Error(`scheduler ${this.name}: timestep ${timestep} is not in the current schedule`);
    }
    // diffusers takes the second match when a timestep repeats (img2img starting mid-schedule)
    return idx.length > 1 ? idx[1] : idx[0];
  }

  protected initStepIndex(timestep: number): number {
    if (this.stepIndex === null) {
      this.stepIndex = this.beginIndex ?? this.indexForTimestep(timestep);
    }
    if (this.stepIndex >= this.timesteps.length) {
      throw new Error(`scheduler ${this.name}: all ${this.timesteps.length} steps are done; call setTimesteps again`);
    }
    return this.stepIndex;
  }

  /** x_in = x / √(σ²+1) */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.initStepIndex(timestep)];
    const c = f32(Math.sqrt(f32(sigma * sigma + 1)));
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) out[i] = sample[i] / c;
    return out;
  }

  /** x̂0 from the model output at σ (the model saw x/√(σ²+1)). */
  protected predX0(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float64Array {
    checkSameLength(`${this.name}.step`, modelOutput, sample);
    const n = sample.length;
    const x0 = new Float64Array(n);
    const p = this.config.prediction_type;
    if (p === 'epsilon') {
      // x0 = x − σ·ε
      for (let i = 0; i < n; i++) x0[i] = sample[i] - sigma * modelOutput[i];
    } else if (p === 'v_prediction') {
      // x0 = −σ/√(σ²+1)·v + x/(σ²+1)
      const a = -sigma / Math.sqrt(sigma * sigma + 1);
      const b = 1 / (sigma * sigma + 1);
      for (let i = 0; i < n; i++) x0[i] = modelOutput[i] * a + sample[i] * b;
    } else {
      if (this.name === 'euler_ancestral') {
        throw new Error('scheduler euler_ancestral: prediction_type "sample" is not supported (as in diffusers)');
      }
      for (let i = 0; i < n; i++) x0[i] = modelOutput[i];
    }
    return x0;
  }

  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult;

  /** x = x0 + σ·ε, σ of the step at this timestep (or the begin index, as diffusers' add_noise). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(`${this.name}.addNoise`, noise, original);
    const idx = this.beginIndex === null ? this.indexForTimestep(timestep) : (this.stepIndex ?? this.beginIndex);
    const sigma = this.sigmas[idx];
    const out = new Float32Array(original.length);
    for (let i = 0; i < out.length; i++) out[i] = original[i] + noise[i] * sigma;
    return out;
  }

  /**
   * σ of the schedule step with this timestep if there is one (the current step when the timestep
   * repeats), else np.interp over the training σ.
   */
  sigmaAt(timestep: number): number {
    const tt = f32(timestep);
    const cur = this.stepIndex ?? this.beginIndex;
    if (cur !== null && this.timesteps[cur] === tt) return this.sigmas[cur];
    const i = this.timesteps.indexOf(tt);
    if (i >= 0 && this.timesteps.length < this.trainSigmas.length) return this.sigmas[i];
    const N = this.trainSigmas.length;
    if (!Number.isFinite(timestep) || timestep < 0 || timestep > N - 1) {
      throw new Error(`scheduler ${this.name} sigmaAt: timestep must be in [0, ${N - 1}] (got ${timestep})`);
    }
    return interpIndex(timestep, this.trainSigmas);
  }

  timestepsForStrength(strength: number): number[] {
    // diffusers' get_timesteps slices at n − ⌊n·s⌋ of the n requested steps (the grid may hold n + 1)
    const start = strengthStart(this.numInferenceSteps || this.timesteps.length, strength);
    this.setBeginIndex(start);
    return this.timesteps.slice(start);
  }
}
