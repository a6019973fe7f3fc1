/**
 * Shared schedule math: the training noise schedule (β, ᾱ), numpy-compatible timestep spacings,
 * sigma interpolation, Karras sigmas, and small float64 array helpers.
 *
 * Precision: diffusers builds β and ᾱ as float32 torch tensors (torch's CPU cumprod accumulates in
 * float64 and rounds each output to float32). We reproduce those float32 table values exactly
 * (Math.fround) and do all further arithmetic in float64, returning Float32Array.
 */
import type { SchedulerConfig } from './config.ts';

const f32 = Math.fround;

/**
 * βs of the training schedule, as the float32 values diffusers holds.
 * - linear:        β_i = linspace(β_start, β_end, N)_i
 * - scaled_linear: β_i = linspace(√β_start, √β_end, N)_i²   (Stable Diffusion)
 * - squaredcos_cap_v2: β_i = min(1 − ᾱ(t_{i+1})/ᾱ(t_i), 0.999), ᾱ(t) = cos²((t+0.008)/1.008 · π/2),
 *   t_i = i/N  (Nichol & Dhariwal 2021, "Improved DDPM", eq. 17)
 */
export function trainingBetas(cfg: SchedulerConfig): Float64Array {
  const n = cfg.num_train_timesteps;
  const betas = new Float64Array(n);
  if (cfg.trained_betas) {
    for (let i = 0; i < n; i++) betas[i] = f32(cfg.trained_betas[i]);
  } else if (cfg.beta_schedule === 'linear') {
    const lin = torchLinspaceF32(cfg.beta_start, cfg.beta_end, n);
    betas.set(lin);
  } else if (cfg.beta_schedule === 'scaled_linear') {
    const lin = torchLinspaceF32(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, n);
    for (let i = 0; i < n; i++) betas[i] = f32(lin[i] * lin[i]);
  } else if (cfg.beta_schedule === 'squaredcos_cap_v2') {
    const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < n; i++) betas[i] = f32(Math.min(1 - abar((i + 1) / n) / abar(i / n), 0.999));
  } else {
    throw new Error(`scheduler config key "beta_schedule": unsupported value ${JSON.stringify(cfg.beta_schedule)}`);
  }
  if (cfg.rescale_betas_zero_snr) return rescaleZeroTerminalSnr(betas);
  return betas;
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on CPU: step = (end−start)/(steps−1) and values
 * start + i·step for the first half, end − (steps−1−i)·step for the second half.
 */
function torchLinspaceF32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  const s = f32(start);
  const e = f32(end);
  const step = f32((e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)));
  }
  return out;
}

/**
 * Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1:
 * shift and scale √ᾱ so that √ᾱ_T = 0 and √ᾱ_0 is kept, then β back from ᾱ.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const sq = new Float64Array(n);
  let cum = 1;
  for (let i = 0; i < n; i++) {
    cum *= 1 - betas[i];
    sq[i] = Math.sqrt(f32(cum));
  }
  const s0 = sq[0];
  const sT = sq[n - 1];
  const abar = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = (sq[i] - sT) * (s0 / (s0 - sT));
    abar[i] = v * v;
  }
  const out = new Float64Array(n);
  out[0] = f32(1 - abar[0]);
  for (let i = 1; i < n; i++) out[i] = f32(1 - abar[i] / abar[i - 1]);
  return out;
}

/** ᾱ_t = ∏_{s≤t} (1 − β_s): float32 α, float64 running product, each ᾱ_t rounded to float32. */
export function alphasCumprodOf(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let cum = 1;
  for (let i = 0; i < betas.length; i++) {
    cum *= f32(1 - betas[i]);
    out[i] = f32(cum);
  }
  return out;
}

/** numpy's np.round: round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** np.linspace(start, stop, num) in float64 (y_i = start + i·step, last element = stop). */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/**
 * np.arange(start, stop, step) for float arguments, value for value: the length is
 * ⌈(stop − start)/step⌉ (so it can be one more than the quotient suggests, e.g. arange(1000, 0, −1000/61)
 * has 62 elements), the first two values are start and start + step, and the rest start + i·δ with
 * δ = (start + step) − start (numpy's fill), which is not always the same double as start + i·step.
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  if (len === 0) return [];
  const out: number[] = [start];
  if (len === 1) return out;
  const next = start + step;
  out.push(next);
  const delta = next - start;
  for (let i = 2; i < len; i++) out.push(start + i * delta);
  return out;
}

/**
 * diffusers' timestep spacings (descending) for DDIM / DDPM / Euler-type schedulers:
 * - linspace: linspace(0, N−1, n), reversed (rounded to integers if `integer`, else float32)
 * - leading:  (arange(n) · ⌊N/n⌋) reversed, + steps_offset
 * - trailing: round(arange(N, 0, −N/n)) − 1
 */
export function spacedTimesteps(cfg: SchedulerConfig, n: number, integer: boolean): number[] {
  const N = cfg.num_train_timesteps;
  if (cfg.timestep_spacing === 'linspace') {
    const t = npLinspace(0, N - 1, n).reverse();
    return integer ? t.map(roundHalfEven) : t.map(f32);
  }
  if (cfg.timestep_spacing === 'leading') {
    const ratio = Math.floor(N / n);
    const t: number[] = [];
    for (let i = n - 1; i >= 0; i--) t.push(i * ratio + cfg.steps_offset);
    return t;
  }
  if (cfg.timestep_spacing === 'trailing') {
    return npArange(N, 0, -(N / n)).map((v) => roundHalfEven(v) - 1);
  }
  throw new Error(`scheduler config key "timestep_spacing": unsupported value ${JSON.stringify(cfg.timestep_spacing)}`);
}

/**
 * Integer-timestep schedulers (DDIM, DDPM, PNDM) index the ᾱ table with each timestep. Leading
 * spacing with steps_offset > 0 can reach t ≥ N (e.g. N = 1000 steps with steps_offset 1 ends at
 * 1000): diffusers builds that grid and fails at the first step with an index error; we refuse it here.
 */
export function checkGridInTable(name: string, cfg: SchedulerConfig, timesteps: readonly number[]): void {
  const N = cfg.num_train_timesteps;
  const over = timesteps.find((t) => t >= N);
  if (over !== undefined) {
    throw new Error(
      `scheduler ${name}: ${timesteps.length} steps with timestep_spacing "${cfg.timestep_spacing}" and steps_offset ${cfg.steps_offset} reach timestep ${over}, past the ${N} training timesteps (diffusers builds this grid and fails at its first step); use fewer steps or steps_offset 0`,
    );
  }
}

/** σ = √((1−ᾱ)/ᾱ), the VP noise level of ᾱ (a function declaration, not a closure: vpSigmaAt calls it
 *  every step, and in development tsx wraps each closure it creates in a naming helper). */
export function sigmaOfAlphaBar(ab: number): number {
  return Math.sqrt((1 - ab) / ab);
}

/** The VP noise levels of the training schedule: σ_t = √((1−ᾱ_t)/ᾱ_t), computed as float32 like diffusers. */
export function trainingSigmas(alphasCumprod: Float64Array): Float64Array {
  const out = new Float64Array(alphasCumprod.length);
  for (let i = 0; i < out.length; i++) {
    const a = alphasCumprod[i];
    out[i] = f32(Math.sqrt(f32(f32(1 - a) / a)));
  }
  return out;
}

/** np.interp(x, arange(len(fp)), fp): piecewise linear in t, clamped at the ends. */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0];
  if (x >= n - 1) return fp[n - 1];
  const lo = Math.floor(x);
  const w = x - lo;
  if (w === 0) return fp[lo];
  return fp[lo] + (fp[lo + 1] - fp[lo]) * w;
}

/**
 * Karras et al. 2022 (EDM, eq. 5), ρ = 7: σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ.
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const ramp = npLinspace(0, 1, n);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/**
 * diffusers' _sigma_to_t: the fractional timestep whose log σ interpolates linearly between the two
 * training levels around it: t = (1−w)·lo + w·(lo+1), w = (log σ_lo − log σ)/(log σ_lo − log σ_lo+1).
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // low_idx = last index i with log σ_i ≤ log σ (log σ ascending in t), clipped to n−2
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (logSigma - logSigmas[i] >= 0) {
      count++;
    }
  }
  // np.cumsum(dists >= 0).argmax(): first index where the cumulative count reaches its maximum
  let low = 0;
  if (count > 0) {
    let c = 0;
    for (let i = 0; i < n; i++) {
      if (logSigma - logSigmas[i] >= 0) c++;
      if (c === count) {
        low = i;
        break;
      }
    }
  }
  low = Math.min(low, n - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(1, Math.max(0, w));
  return (1 - w) * low + w * (low + 1);
}

/** x0 prediction from a VP model output (DDIM/DDPM/LCM form, with α = √ᾱ_t, s = √(1−ᾱ_t)). */
export function predictX0(
  predictionType: SchedulerConfig['prediction_type'],
  modelOutput: Float32Array,
  sample: Float32Array,
  alphaProd: number,
): { x0: Float64Array; eps: Float64Array } {
  if (alphaProd === 0 && predictionType === 'epsilon') throw zeroSnrEpsilonError();
  const a = Math.sqrt(alphaProd);
  const s = Math.sqrt(1 - alphaProd);
  const n = sample.length;
  const x0 = new Float64Array(n);
  const eps = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = sample[i];
    const m = modelOutput[i];
    if (predictionType === 'epsilon') {
      // x0 = (x_t − √(1−ᾱ)·ε) / √ᾱ
      x0[i] = (x - s * m) / a;
      eps[i] = m;
    } else if (predictionType === 'sample') {
      // ε = (x_t − √ᾱ·x0) / √(1−ᾱ)
      x0[i] = m;
      eps[i] = (x - a * m) / s;
    } else {
      // v = √ᾱ·ε − √(1−ᾱ)·x0  ⇒  x0 = √ᾱ·x_t − √(1−ᾱ)·v,  ε = √ᾱ·v + √(1−ᾱ)·x_t
      x0[i] = a * x - s * m;
      eps[i] = a * m + s * x;
    }
  }
  return { x0, eps };
}

/** At ᾱ_t = 0 (a zero-terminal-SNR schedule's last training step) ε carries no information on x0. */
export function zeroSnrEpsilonError(): Error {
  return new Error(
    'scheduler config key "prediction_type": "epsilon" cannot be sampled from ᾱ_t = 0 (zero terminal SNR: x̂0 = (x − ε)/0); a rescale_betas_zero_snr model predicts v (prediction_type "v_prediction")',
  );
}

/**
 * Closest-variance timestep rule (prior swap across schedules): the index t′ of `alphasCumprod` whose
 * ᾱ′ is closest to ᾱ, compared in log σ = ½·(log(1−ᾱ) − log ᾱ), which orders as ᾱ does and is well
 * conditioned at both ends. The ends are exact: ᾱ = 0 (σ = ∞, a zero-terminal-SNR start) maps to the
 * noisiest entry — one with ᾱ′ = 0 if the table has it, else the smallest ᾱ′ — and ᾱ = 1 (σ = 0) to
 * the least noisy. Ties go to the lower index.
 */
export function closestVarianceTimestep(alphasCumprod: ArrayLike<number>, alphaBar: number): number {
  if (!(alphaBar >= 0 && alphaBar <= 1)) {
    throw new Error(`closest-variance timestep: ᾱ must be in [0, 1] (got ${alphaBar})`);
  }
  const logSigma = (ab: number) => 0.5 * (Math.log1p(-ab) - Math.log(ab)); // +∞ at 0, −∞ at 1
  const target = logSigma(alphaBar);
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let i = 0; i < alphasCumprod.length; i++) {
    const v = logSigma(alphasCumprod[i]);
    // equal infinities are distance 0 (∞ − ∞ would be NaN); one infinite side is distance ∞
    const d = v === target ? 0 : Math.abs(v - target);
    if (
      d < bestD ||
      (bestD === Number.POSITIVE_INFINITY && d === bestD && isFartherEnd(alphasCumprod, i, best, alphaBar))
    ) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** With every distance infinite (ᾱ = 0 or 1 and no exact entry): prefer the entry nearer that end. */
function isFartherEnd(alphasCumprod: ArrayLike<number>, i: number, best: number, alphaBar: number): boolean {
  return alphaBar === 0 ? alphasCumprod[i] < alphasCumprod[best] : alphasCumprod[i] > alphasCumprod[best];
}

export function clampInPlace(a: Float64Array, range: number): void {
  for (let i = 0; i < a.length; i++) a[i] = Math.min(range, Math.max(-range, a[i]));
}

export function checkSameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new Error(`scheduler ${what}: model output has ${a.length} elements but sample has ${b.length}`);
  }
}

/** VP forward process: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4). */
export function addNoiseVp(original: Float32Array, noise: Float32Array, alphaProd: number): Float32Array {
  checkSameLength('addNoise', noise, original);
  const a = Math.sqrt(alphaProd);
  const s = Math.sqrt(1 - alphaProd);
  const out = new Float32Array(original.length);
  for (let i = 0; i < out.length; i++) out[i] = a * original[i] + s * noise[i];
  return out;
}

export function checkStepCount(name: string, n: number, N: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`scheduler ${name}: numInferenceSteps must be a positive integer (got ${n})`);
  }
  if (n > N) {
    throw new Error(`scheduler ${name}: numInferenceSteps ${n} is larger than num_train_timesteps ${N}`);
  }
}

/** diffusers' img2img get_timesteps: keep the last min(⌊n·s⌋, n) steps (of order-1 schedulers). */
export function strengthStart(n: number, strength: number): number {
  if (!(strength > 0 && strength <= 1)) {
    throw new Error(`denoise strength must be in (0, 1] (got ${strength})`);
  }
  const initTimestep = Math.min(Math.floor(n * strength), n);
  return Math.max(n - initTimestep, 0);
}

/** float64 → float32 copy (TypedArray.set; several times faster than Float32Array.from) */
export function toF32(a: Float64Array): Float32Array {
  const out = new Float32Array(a.length);
  out.set(a);
  return out;
}
