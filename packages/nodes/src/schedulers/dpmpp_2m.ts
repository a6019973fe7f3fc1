/**
 * DPM-Solver++(2M) — Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
 * Probabilistic Models", Algorithm 2 (diffusers' DPMSolverMultistepScheduler with
 * algorithm_type='dpmsolver++', solver_order=2).
 *
 * With σ the VP noise level of a step, α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = log α_t − log σ_t,
 * h = λ_t − λ_s0 and x̂0 the data prediction of the model output:
 *   first order (DDIM):  x_t = (σ_t/σ_s0)·x − α_t·(e^{−h} − 1)·x̂0(s0)
 *   second order:        r0 = h_0/h (h_0 = λ_s0 − λ_s1), D0 = x̂0(s0), D1 = (x̂0(s0) − x̂0(s1))/r0
 *     midpoint: x_t = (σ_t/σ_s0)·x − α_t(e^{−h}−1)·D0 − ½·α_t(e^{−h}−1)·D1
 *     heun:     x_t = (σ_t/σ_s0)·x − α_t(e^{−h}−1)·D0 + α_t((e^{−h}−1)/h + 1)·D1
 * The first step is first order; the last step is first order when final σ = 0, euler_at_final, or
 * lower_order_final with < 15 steps (then the second-to-last step is also at most second order).
 * Timesteps are integers; with use_karras_sigmas σ follows Karras' ρ=7 levels and timesteps are the
 * rounded log-σ interpolation of each σ. Models with learned variances (variance_type learned /
 * learned_range) output 2C channels; pass only the first C (the ε part), as diffusers does.
 */
import {
  alphasCumprodOf,
  checkSameLength,
  checkStepCount,
  interpIndex,
  karrasSigmas,
  npArange,
  npLinspace,
  roundHalfEven,
  sigmaToT,
  strengthStart,
  toF32,
  trainingBetas,
  trainingSigmas,
} from './common.ts';
import type { SchedulerConfig } from './config.ts';
import type { Scheduler, StepResult } from './types.ts';

const f32 = Math.fround;

export class DpmSolverPP2MScheduler implements Scheduler {
  readonly name = 'dpmpp_2m' as const;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  sigmas: readonly number[] = [];
  private readonly trainSigmas: Float64Array;
  private stepIndex: number | null = null;
  private numInferenceSteps = 0;
  private beginIndex: number | null = null;
  /** x̂0 of the previous step (the multistep memory) */
  private prevX0: Float64Array | null = null;
  private lowerOrderNums = 0;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
    if (config.rescale_betas_zero_snr) this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
  }

  /** Any number of steps, as diffusers' scheduler takes. */
  maxInferenceSteps(): number {
    return Number.POSITIVE_INFINITY;
  }

  setTimesteps(n: number): void {
    const N = this.config.num_train_timesteps;
    checkStepCount(this.name, n, Number.POSITIVE_INFINITY); // diffusers does not bound n by N here
    const last = N - this.clippedCount();
    let ts: number[];
    if (this.config.timestep_spacing === 'linspace') {
      ts = npLinspace(0, last - 1, n + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, -1);
    } else if (this.config.timestep_spacing === 'leading') {
      const ratio = Math.floor(last / (n + 1));
      ts = [];
      for (let i = n; i >= 1; i--) ts.push(i * ratio + this.config.steps_offset);
    } else {
      ts = npArange(last, 0, -(N / n)).map((v) => roundHalfEven(v) - 1);
    }
    let sig: number[];
    if (this.config.use_karras_sigmas) {
      const logS = Array.from(this.trainSigmas, Math.log);
      const sMin = this.config.sigma_min ?? this.trainSigmas[0];
      const sMax = this.config.sigma_max ?? this.trainSigmas[this.trainSigmas.length - 1];
      sig = karrasSigmas(sMin, sMax, n);
      ts = sig.map((s) => {
        const t = sigmaToT(s, logS);
        return Math.trunc(this.config.beta_schedule !== 'squaredcos_cap_v2' ? roundHalfEven(t) : t);
      });
    } else {
      sig = ts.map((t) => interpIndex(t, this.trainSigmas));
    }
    const final = this.config.final_sigmas_type === 'sigma_min' ? this.trainSigmas[0] : 0;
    this.sigmas = [...sig, final].map(f32);
    this.timesteps = ts;
    this.prevX0 = null;
    this.lowerOrderNums = 0;
    this.stepIndex = null;
    this.beginIndex = null;
    this.numInferenceSteps = n;
  }

  /**
   * lambda_min_clipped: how many of the last training timesteps have λ_t = log √ᾱ_t − log √(1−ᾱ_t)
   * (float32, as diffusers' lambda_t) below it (torch.searchsorted over the flipped λ; 0 for −∞).
   */
  private clippedCount(): number {
    const min = this.config.lambda_min_clipped;
    if (min === Number.NEGATIVE_INFINITY) return 0;
    const bound = f32(min);
    let count = 0;
    for (const a of this.alphasCumprod) {
      const lambda = f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a))))));
      if (lambda < bound) count++;
    }
    return count;
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }

  /** diffusers: second match when a timestep repeats; the last index when it is not in the schedule */
  private indexForTimestep(timestep: number): number {
    const idx: number[] = [];
    this.timesteps.forEach((t, i) => {
      if (t === timestep) idx.push(i);
    });
    if (idx.length === 0) return this.timesteps.length - 1;
    return idx.length > 1 ? idx[1] : idx[0];
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (this.sigmas.length === 0) throw new Error('scheduler dpmpp_2m: call setTimesteps before step');
    checkSameLength('dpmpp_2m.step', modelOutput, sample);
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexForTimestep(timestep);
    const i = this.stepIndex;
    const n = this.timesteps.length;
    if (i >= n) throw new Error(`scheduler dpmpp_2m: all ${n} steps are done; call setTimesteps again`);
    const lowerOrderFinal =
      i === n - 1 &&
      (this.config.euler_at_final ||
        (this.config.lower_order_final && n < 15) ||
        this.config.final_sigmas_type === 'zero');
    // (diffusers' lower_order_second only matters for third order, which 2M never uses)

    const at = (s: number) => {
      const alpha = 1 / Math.sqrt(s * s + 1);
      return { alpha, sigma: s * alpha, lambda: Math.log(alpha) - Math.log(s * alpha) };
    };
    const s0 = at(this.sigmas[i]);
    const t = at(this.sigmas[i + 1]);

    // convert_model_output: the data prediction x̂0 (dpmsolver++)
    const len = sample.length;
    const x0 = new Float64Array(len);
    const p = this.config.prediction_type;
    for (let k = 0; k < len; k++) {
      const m = modelOutput[k];
      if (p === 'epsilon') x0[k] = (sample[k] - s0.sigma * m) / s0.alpha;
      else if (p === 'sample') x0[k] = m;
      else x0[k] = s0.alpha * sample[k] - s0.sigma * m;
    }

    const h = t.lambda - s0.lambda;
    const em1 = Math.exp(-h) - 1; // e^{−h} − 1 (= −1 when σ_t = 0)
    const ratio = t.sigma / s0.sigma;
    const prevSample = new Float32Array(len);
    const prev = this.prevX0;
    if (this.config.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal || !prev) {
      for (let k = 0; k < len; k++) prevSample[k] = ratio * sample[k] - t.alpha * em1 * x0[k];
    } else {
      const s1 = at(this.sigmas[i - 1]);
      const r0 = (s0.lambda - s1.lambda) / h;
      const midpoint = this.config.solver_type === 'midpoint';
      const c1 = midpoint ? -0.5 * (t.alpha * em1) : t.alpha * (em1 / h + 1);
      for (let k = 0; k < len; k++) {
        const d1 = (1 / r0) * (x0[k] - prev[k]);
        prevSample[k] = ratio * sample[k] - t.alpha * em1 * x0[k] + c1 * d1;
      }
    }
    if (this.lowerOrderNums < this.config.solver_order) this.lowerOrderNums++;
    this.prevX0 = x0;
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: toF32(x0) };
  }

  /** x_t = α_t·x0 + σ_t·ε with the VP (α_t, σ_t) of the step at this timestep (or the begin index). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('dpmpp_2m.addNoise', noise, original);
    if (this.sigmas.length === 0) throw new Error('scheduler dpmpp_2m: call setTimesteps before addNoise');
    const idx = this.beginIndex === null ? this.indexForTimestep(timestep) : (this.stepIndex ?? this.beginIndex);
    const s = this.sigmas[idx];
    const alpha = 1 / Math.sqrt(s * s + 1);
    const sigma = s * alpha;
    const out = new Float32Array(original.length);
    for (let k = 0; k < out.length; k++) out[k] = alpha * original[k] + sigma * noise[k];
    return out;
  }

  /**
   * σ of the schedule step with this timestep if there is one (the current step when the timestep
   * repeats, as rounded Karras timesteps can), else np.interp over the training σ.
   */
  sigmaAt(timestep: number): number {
    const cur = this.stepIndex ?? this.beginIndex;
    if (cur !== null && this.timesteps[cur] === timestep) return this.sigmas[cur];
    const i = this.timesteps.indexOf(timestep);
    if (i >= 0) return this.sigmas[i];
    const N = this.trainSigmas.length;
    if (!Number.isFinite(timestep) || timestep < 0 || timestep > N - 1) {
      throw new Error(`scheduler dpmpp_2m sigmaAt: timestep must be in [0, ${N - 1}] (got ${timestep})`);
    }
    return interpIndex(timestep, this.trainSigmas);
  }

  timestepsForStrength(strength: number): number[] {
    if (this.sigmas.length === 0) throw new Error('scheduler dpmpp_2m: call setTimesteps before timestepsForStrength');
    // diffusers' get_timesteps slices at n − ⌊n·s⌋ of the n requested steps (the grid may hold n + 1)
    const start = strengthStart(this.numInferenceSteps || this.timesteps.length, strength);
    this.setBeginIndex(start);
    return this.timesteps.slice(start);
  }
}
