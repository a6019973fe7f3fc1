/**
 * PNDM — Liu, Ren, Lin & Zhao 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"
 * (diffusers' PNDMScheduler; the scheduler Stable Diffusion 1.x ships, with skip_prk_steps).
 *
 * The transfer φ (eq. 9) from x_t to x_{t−δ} along a noise estimate ε:
 *   x_{t−δ} = √(ᾱ_{t−δ}/ᾱ_t)·x_t − (ᾱ_{t−δ} − ᾱ_t) / (ᾱ_t·√(1−ᾱ_{t−δ}) + √(ᾱ_t(1−ᾱ_t)ᾱ_{t−δ}))·ε
 *           = √ᾱ_{t−δ}·x̂0 + √(1−ᾱ_{t−δ})·ε,  x̂0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t   (the same, finite at ᾱ_t = 0)
 * ᾱ_{t−δ} = ᾱ_0 or 1 (set_alpha_to_one) below t = 0. With v-prediction the combined output is read as
 * v at t (ε = √ᾱ_t·v + √(1−ᾱ_t)·x_t; x̂0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v).
 *
 * Pseudo linear multistep (PLMS, eq. 12) on the model outputs e_i, newest first:
 *   e' = (55e_0 − 59e_1 + 37e_2 − 9e_3)/24,  with (23e_0 − 16e_1 + 5e_2)/12, (3e_0 − e_1)/2 while
 *   fewer are known. skip_prk_steps (crowsonkb's PLMS, Stable Diffusion): the first step is taken
 *   twice — an Euler step x_t → x_{t−δ}, then from x_t again with (e(x_t) + e(x_{t−δ}))/2, so the
 *   model is called n+1 times for n steps (diffusers' timesteps: t_1, t_2, t_2, t_3, …).
 * Otherwise (pseudo Runge–Kutta, eq. 13) the first three steps are fourth-order RK steps of four
 * model calls each at t, t−δ/2, t−δ/2, t−δ (12 calls), then PLMS: n + 9 calls in all.
 */
import {
  addNoiseVp,
  alphasCumprodOf,
  checkGridInTable,
  checkSameLength,
  checkStepCount,
  spacedTimesteps,
  strengthStart,
  trainingBetas,
  zeroSnrEpsilonError,
} from './common.ts';
import type { SchedulerConfig } from './config.ts';
import { vpSigmaAt } from './ddim.ts';
import type { Scheduler, StepResult } from './types.ts';

export class PndmScheduler implements Scheduler {
  readonly name = 'pndm' as const;
  readonly order = 1;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: readonly number[] = [];
  sigmas: readonly number[] = [];
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps = 0;
  private prkCount = 0;
  // step state (diffusers' counter, ets, cur_sample, cur_model_output)
  private counter = 0;
  private ets: Float32Array[] = [];
  private curSample: Float32Array | null = null;
  private curModelOutput: Float64Array | null = null;

  constructor(readonly config: Readonly<SchedulerConfig>) {
    this.alphasCumprod = alphasCumprodOf(trainingBetas(config));
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  /** diffusers' set_timesteps: the PRK warm-up timesteps (unless skip_prk_steps), then the PLMS ones. */
  /** Any number of steps, as diffusers' scheduler takes. */
  maxInferenceSteps(): number {
    return Number.POSITIVE_INFINITY;
  }

  setTimesteps(n: number): void {
    const N = this.config.num_train_timesteps;
    checkStepCount(this.name, n, Number.POSITIVE_INFINITY); // diffusers' PNDM does not bound n by N
    const asc = spacedTimesteps(this.config, n, true).reverse(); // diffusers' _timesteps (ascending)
    checkGridInTable(this.name, this.config, asc);
    let prk: number[] = [];
    let plms: number[];
    if (this.config.skip_prk_steps) {
      // concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]
      plms = [...asc.slice(0, -1), ...asc.slice(-2, -1), ...asc.slice(-1)].reverse();
    } else {
      if (n < 4) {
        throw new Error(
          `scheduler pndm: the pseudo Runge–Kutta warm-up needs at least 4 steps (got ${n}; diffusers' PNDMScheduler fails too); use skip_prk_steps: true`,
        );
      }
      const half = Math.floor(Math.floor(N / n) / 2);
      const last4 = asc.slice(-4);
      const rep: number[] = [];
      for (const t of last4) rep.push(t, t + half); // repeat(2) + tile([0, half])
      const r2: number[] = [];
      for (const t of rep.slice(0, -1)) r2.push(t, t); // [:-1].repeat(2)
      prk = r2.slice(1, -1).reverse();
      plms = asc.slice(0, Math.max(0, asc.length - 3)).reverse();
    }
    this.prkCount = prk.length;
    this.timesteps = [...prk, ...plms];
    this.sigmas = this.timesteps.map((t) => this.sigmaAt(t));
    this.numInferenceSteps = n;
    this.counter = 0;
    this.ets = [];
    this.curSample = null;
    this.curModelOutput = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** ᾱ at a timestep as torch indexes it (a negative index counts from the end, as in Python). */
  private alphaAt(t: number): number {
    const N = this.alphasCumprod.length;
    if (!Number.isInteger(t) || t >= N || t < -N) {
      throw new Error(`scheduler pndm: timestep must be an integer in [0, ${N}) (got ${t})`);
    }
    return this.alphasCumprod[t < 0 ? N + t : t];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === 0) throw new Error('scheduler pndm: call setTimesteps before step');
    checkSameLength('pndm.step', modelOutput, sample);
    if (this.counter < this.prkCount && !this.config.skip_prk_steps) return this.stepPrk(modelOutput, timestep, sample);
    return this.stepPlms(modelOutput, timestep, sample);
  }

  /** one of the four stages of a pseudo Runge–Kutta step */
  private stepPrk(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    const N = this.config.num_train_timesteps;
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(Math.floor(N / this.numInferenceSteps) / 2);
    const prevTimestep = timestep - diffToPrev;
    const t = this.timesteps[Math.floor(this.counter / 4) * 4];
    const len = sample.length;
    const acc = this.curModelOutput ?? new Float64Array(len);
    let out: Float64Array = Float64Array.from(modelOutput);
    const stage = this.counter % 4;
    if (stage === 0) {
      for (let i = 0; i < len; i++) acc[i] += modelOutput[i] / 6;
      this.ets.push(modelOutput);
      this.curSample = sample;
      this.curModelOutput = acc;
    } else if (stage === 1 || stage === 2) {
      for (let i = 0; i < len; i++) acc[i] += modelOutput[i] / 3;
      this.curModelOutput = acc;
    } else {
      out = new Float64Array(len);
      for (let i = 0; i < len; i++) out[i] = acc[i] + modelOutput[i] / 6;
      this.curModelOutput = null;
    }
    const from = this.curSample ?? sample;
    const prevSample = this.prevSample(from, t, prevTimestep, out);
    this.counter++;
    return { prevSample };
  }

  /** a pseudo linear multistep step (and the doubled first step of skip_prk_steps) */
  private stepPlms(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new Error('scheduler pndm: PLMS steps need the 12 pseudo Runge–Kutta warm-up calls first');
    }
    const N = this.config.num_train_timesteps;
    const delta = Math.floor(N / this.numInferenceSteps);
    let prevTimestep = timestep - delta;
    let t = timestep;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      prevTimestep = timestep;
      t = timestep + delta;
    }
    const e = this.ets;
    const k = e.length;
    const len = sample.length;
    const out = new Float64Array(len);
    let from = sample;
    if (k === 1 && this.counter === 0) {
      out.set(modelOutput);
      this.curSample = sample;
    } else if (k === 1 && this.counter === 1) {
      for (let i = 0; i < len; i++) out[i] = (modelOutput[i] + e[0][i]) / 2;
      from = this.curSample ?? sample;
      this.curSample = null;
    } else if (k === 2) {
      for (let i = 0; i < len; i++) out[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (k === 3) {
      for (let i = 0; i < len; i++) out[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      for (let i = 0; i < len; i++) out[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    const prevSample = this.prevSample(from, t, prevTimestep, out);
    this.counter++;
    return { prevSample };
  }

  /** the transfer φ of eq. 9 (module comment) */
  private prevSample(sample: Float32Array, t: number, prevT: number, out: Float64Array): Float32Array {
    const a = this.alphaAt(t);
    const ap = prevT >= 0 ? this.alphaAt(prevT) : this.finalAlphaCumprod;
    const len = sample.length;
    const res = new Float32Array(len);
    if (this.config.prediction_type === 'v_prediction') {
      // x̂0 and ε from v (finite for every ᾱ_t, also 0 at a zero-terminal-SNR start)
      const sa = Math.sqrt(a);
      const sb = Math.sqrt(1 - a);
      const cx0 = Math.sqrt(ap);
      const ceps = Math.sqrt(1 - ap);
      for (let i = 0; i < len; i++) {
        const x0 = sa * sample[i] - sb * out[i];
        const eps = sa * out[i] + sb * sample[i];
        res[i] = cx0 * x0 + ceps * eps;
      }
      return res;
    }
    if (a === 0) throw zeroSnrEpsilonError();
    const b = 1 - a;
    const cSample = Math.sqrt(ap / a);
    const denom = a * Math.sqrt(1 - ap) + Math.sqrt(a * b * ap);
    const cOut = (ap - a) / denom;
    for (let i = 0; i < len; i++) res[i] = cSample * sample[i] - cOut * out[i];
    return res;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVp(original, noise, this.alphaAt(timestep));
  }

  sigmaAt(timestep: number): number {
    return vpSigmaAt(this.alphasCumprod, timestep);
  }

  /** diffusers' img2img: the timesteps from index n − min(⌊n·s⌋, n) on (PNDM's order is 1). */
  timestepsForStrength(strength: number): number[] {
    if (this.numInferenceSteps === 0) throw new Error('scheduler pndm: call setTimesteps before timestepsForStrength');
    return this.timesteps.slice(strengthStart(this.numInferenceSteps, strength));
  }
}
