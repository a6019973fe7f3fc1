/**
 * Zero-terminal-SNR schedules (Lin et al. 2023: rescale_betas_zero_snr, trailing spacing, v-prediction,
 * as SD 2.x fine-tunes ship them): every scheduler samples without NaN or ∞ from the first step at
 * ᾱ_T = 0; and the closest-variance timestep rule is right at both ends (ᾱ → 0 and ᾱ → 1).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../src/rng.ts';
import {
  closestVarianceTimestep,
  createScheduler,
  SCHEDULER_NAMES,
  type SchedulerConfig,
} from '../src/schedulers/index.ts';

const ZERO_SNR: Partial<SchedulerConfig> = {
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  beta_end: 0.012,
  rescale_betas_zero_snr: true,
  timestep_spacing: 'trailing',
  prediction_type: 'v_prediction',
  clip_sample: false,
};

describe('zero terminal SNR with v-prediction', () => {
  it('the schedule ends at ᾱ_T = 0 (VP schedulers; Euler-type and DPM hold 2⁻²⁴ there, as diffusers)', () => {
    for (const name of SCHEDULER_NAMES) {
      const s = createScheduler(name, ZERO_SNR);
      const last = s.alphasCumprod[s.alphasCumprod.length - 1];
      if (name === 'euler' || name === 'euler_ancestral' || name === 'dpmpp_2m') expect(last, name).toBe(2 ** -24);
      else expect(last, name).toBe(0);
    }
  });

  it('every scheduler, every step count, any bounded model output: all samples finite', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SCHEDULER_NAMES),
        fc.integer({ min: 1, max: 60 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (name, n, skipPrk, seed) => {
          const cfg = { ...ZERO_SNR, ...(name === 'pndm' ? { skip_prk_steps: skipPrk } : {}) };
          const steps = name === 'lcm' ? Math.min(n, 50) : name === 'pndm' && !skipPrk ? Math.max(4, n) : n;
          const s = createScheduler(name, cfg);
          s.setTimesteps(steps);
          const rng = createRng(seed);
          let x: Float32Array = rng.randn(16).map((v) => v * s.initNoiseSigma);
          for (const t of s.timesteps) {
            const xIn = s.scaleModelInput(x, t);
            // a model's v is O(1): here a bounded function of its input plus noise
            const noise = rng.randn(16);
            const v = xIn.map((u, i) => Math.tanh(u) + 0.5 * noise[i]);
            x = s.step(v, t, x, rng).prevSample;
            for (const e of x) expect(Number.isFinite(e), `${name} n=${steps} t=${t}`).toBe(true);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a perfect v-model recovers x0 from the ᾱ = 0 start (VP schedulers, exact at the first step)', () => {
    for (const name of ['ddim', 'ddpm', 'lcm', 'pndm'] as const) {
      const s = createScheduler(name, { ...ZERO_SNR, ...(name === 'pndm' ? { skip_prk_steps: true } : {}) });
      s.setTimesteps(4);
      const t = s.timesteps[0];
      expect(s.alphasCumprod[t], name).toBe(0);
      const x0 = Float32Array.of(0.5, -0.25, 0.75);
      const eps = Float32Array.of(1, -2, 0.3);
      const x = eps; // ᾱ = 0: x_T = ε
      const v = x0.map((u) => -u); // v = √ᾱ·ε − √(1−ᾱ)·x0 = −x0
      const out = s.step(v, t, x, createRng(1));
      const pred = out.predOriginalSample;
      if (pred && name !== 'lcm') for (let i = 0; i < 3; i++) expect(pred[i]).toBeCloseTo(x0[i], 6);
      for (const e of out.prevSample) expect(Number.isFinite(e)).toBe(true);
    }
  });

  it('ε-prediction cannot start at ᾱ = 0: a clear error, not NaN', () => {
    for (const name of ['ddim', 'ddpm', 'lcm', 'pndm'] as const) {
      const s = createScheduler(name, { ...ZERO_SNR, prediction_type: 'epsilon', skip_prk_steps: name === 'pndm' });
      s.setTimesteps(4);
      expect(() => s.step(new Float32Array(2), s.timesteps[0], new Float32Array(2), createRng(1)), name).toThrow(
        /"prediction_type": "epsilon" cannot be sampled from ᾱ_t = 0/,
      );
    }
  });
});

describe('closest-variance timestep rule at the ends of the schedule', () => {
  const sd = createScheduler('ddim', {
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    beta_end: 0.012,
  }).alphasCumprod;
  const zsnr = createScheduler('ddim', ZERO_SNR).alphasCumprod;

  it('ᾱ = 0 (σ = ∞) maps to the noisiest timestep; to the entry with ᾱ = 0 when there is one', () => {
    expect(closestVarianceTimestep(sd, 0)).toBe(999);
    expect(closestVarianceTimestep(zsnr, 0)).toBe(999);
    expect(closestVarianceTimestep(sd, 1e-300)).toBe(999);
    // a finite σ is infinitely far (in log σ) from σ = ∞: the noisiest entry with finite σ
    expect(closestVarianceTimestep(zsnr, 1e-300)).toBe(998);
  });

  it('ᾱ = 1 (σ = 0) maps to the least noisy timestep', () => {
    expect(closestVarianceTimestep(sd, 1)).toBe(0);
    expect(closestVarianceTimestep(zsnr, 1)).toBe(0);
    expect(closestVarianceTimestep(sd, 1 - 1e-16)).toBe(0);
  });

  it('each entry maps to itself and an ᾱ between two entries to the nearer in log σ (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 998 }), fc.double({ min: 0, max: 1, noNaN: true }), (t, w) => {
        for (const table of [sd, zsnr]) {
          expect(closestVarianceTimestep(table, table[t])).toBe(t);
          const ls = (a: number) => 0.5 * (Math.log1p(-a) - Math.log(a));
          const lo = ls(table[t]);
          const hi = ls(table[t + 1]);
          if (!Number.isFinite(hi)) continue; // t + 1 = T of the zero-SNR table
          const target = lo + w * (hi - lo);
          const ab = 1 / (1 + Math.exp(2 * target));
          const got = closestVarianceTimestep(table, ab);
          const tLogSigma = ls(ab);
          expect([t, t + 1]).toContain(got);
          expect(Math.abs(ls(table[got]) - tLogSigma)).toBeLessThanOrEqual(
            Math.abs(ls(table[got === t ? t + 1 : t]) - tLogSigma) + 1e-12,
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it('ᾱ outside [0, 1] is refused', () => {
    expect(() => closestVarianceTimestep(sd, Number.NaN)).toThrow(/ᾱ must be in \[0, 1\]/);
    expect(() => closestVarianceTimestep(sd, -0.1)).toThrow(/ᾱ must be in \[0, 1\]/);
  });
});
