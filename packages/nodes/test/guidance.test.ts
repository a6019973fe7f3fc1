/** The guidance math against float64 references written out independently here, on random inputs. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alphaBarOfSigma,
  effectiveScale,
  epsilonToPrediction,
  predictionToX0,
  rescaleGuidance,
  sigmaOfAlphaBar,
  x0ToEpsilon,
} from '../src/guidance/index.ts';
import { float32ToHalf, fromHalfBits, halfToFloat32, toHalfBits } from '../src/runtime/fp16.ts';
import { closestVarianceTimestep, createScheduler } from '../src/schedulers/index.ts';
import { alphaBar, close, mulberry, sized } from './float64.ts';

describe('rescale and interval vs float64 references', () => {
  it('rescale: φ·x·σ_pos/σ_cfg + (1−φ)·x per batch item (torch.std, unbiased)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 2, max: 10 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        (B, n, phi, seed) => {
          const rnd = mulberry(seed);
          const g = Float64Array.from({ length: B * n }, () => rnd() * 4 - 2);
          const p = Float64Array.from({ length: B * n }, () => rnd() * 4 - 2);
          const out = rescaleGuidance(g, p, phi, B);
          for (let b = 0; b < B; b++) {
            const gs = [...g.slice(b * n, (b + 1) * n)];
            const ps = [...p.slice(b * n, (b + 1) * n)];
            const sd = (xs: number[]) => {
              const m = xs.reduce((s, x) => s + x, 0) / xs.length;
              return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
            };
            const k = sd(ps) / sd(gs);
            close(
              out.slice(b * n, (b + 1) * n),
              gs.map((x) => phi * x * k + (1 - phi) * x),
              1e-9,
            );
          }
        },
      ),
    );
  });

  it('guidance interval: w inside (lo, hi], 1 outside', () => {
    expect(effectiveScale(5, 0.5, 0.34, 1.02)).toBe(5);
    expect(effectiveScale(5, 1.02, 0.34, 1.02)).toBe(5);
    expect(effectiveScale(5, 0.34, 0.34, 1.02)).toBe(1);
    expect(effectiveScale(5, 3, 0.34, 1.02)).toBe(1);
    expect(effectiveScale(5, 3, null, null)).toBe(5);
  });
});

describe('parameterization conversions (each with its own ᾱ)', () => {
  it('ε → x̂0 → ε round trip', () => {
    fc.assert(
      fc.property(sized, alphaBar, ([eps, x], ab) => {
        const x0 = predictionToX0(Float64Array.from(eps), Float64Array.from(x), ab, 'epsilon');
        close(x0ToEpsilon(x0, Float64Array.from(x), ab), eps, 1e-6);
      }),
    );
  });

  it('v-prediction: x_t = √ᾱ·x0 + √(1−ᾱ)·ε, v = √ᾱ·ε − √(1−ᾱ)·x0 recovers x0 and ε', () => {
    fc.assert(
      fc.property(sized, alphaBar, ([x0, eps], ab) => {
        const a = Math.sqrt(ab);
        const s = Math.sqrt(1 - ab);
        const xt = x0.map((v, i) => a * v + s * eps[i]);
        const v = x0.map((v0, i) => a * eps[i] - s * v0);
        close(predictionToX0(Float64Array.from(v), Float64Array.from(xt), ab, 'v_prediction'), x0, 1e-9);
        close(epsilonToPrediction(Float64Array.from(eps), Float64Array.from(xt), ab, 'v_prediction'), v, 1e-7);
        close(epsilonToPrediction(Float64Array.from(eps), Float64Array.from(xt), ab, 'sample'), x0, 1e-6);
        close(
          x0ToEpsilon(
            predictionToX0(Float64Array.from(x0), Float64Array.from(xt), ab, 'sample'),
            Float64Array.from(xt),
            ab,
          ),
          eps,
          1e-6,
        );
      }),
    );
  });

  it('σ ↔ ᾱ', () => {
    fc.assert(
      fc.property(alphaBar, (ab) => {
        expect(Math.abs(alphaBarOfSigma(sigmaOfAlphaBar(ab)) - ab)).toBeLessThan(1e-12);
      }),
    );
  });
});

describe('closest-variance timestep rule', () => {
  const sd = createScheduler('ddim', {
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    beta_end: 0.012,
  }).alphasCumprod;
  const cos = createScheduler('ddim', { beta_schedule: 'squaredcos_cap_v2' }).alphasCumprod;

  it('is the identity on the same schedule', () => {
    for (const t of [0, 1, 250, 999]) expect(closestVarianceTimestep(sd, sd[t])).toBe(t);
  });

  it('picks the argmin of |log σ′ − log σ| (checked by brute force) across schedules', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), (t) => {
        const got = closestVarianceTimestep(cos, sd[t]);
        const target = sigmaOfAlphaBar(sd[t]);
        let best = 0;
        for (let i = 0; i < cos.length; i++) {
          if (
            Math.abs(Math.log(sigmaOfAlphaBar(cos[i]) / target)) <
            Math.abs(Math.log(sigmaOfAlphaBar(cos[best]) / target))
          )
            best = i;
        }
        expect(got).toBe(best);
        // and it is monotone in t (both schedules are monotone)
        if (t > 0) expect(closestVarianceTimestep(cos, sd[t - 1])).toBeLessThanOrEqual(got);
      }),
    );
  });
});

describe('fp16 bit patterns', () => {
  it('round-trips every half value exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = fromHalfBits(h);
      if (Number.isNaN(v)) continue;
      expect(toHalfBits(v)).toBe(h);
    }
  });

  it('rounds float32 to the nearest half (ties to even) within half an ulp', () => {
    fc.assert(
      fc.property(fc.double({ min: -60000, max: 60000, noNaN: true }), (x) => {
        const h = toHalfBits(x);
        const back = fromHalfBits(h);
        const ulp = Math.max(2 ** -24, 2 ** (Math.floor(Math.log2(Math.abs(back) || 2 ** -24)) - 10));
        expect(Math.abs(back - Math.fround(x))).toBeLessThanOrEqual(ulp / 2 + 1e-12);
      }),
    );
    const a = Float32Array.from([0, 1, -2, 0.5, 65504, 1e-8]);
    expect([...halfToFloat32(float32ToHalf(a))]).toEqual([0, 1, -2, 0.5, 65504, 0]);
  });
});
