/**
 * Guidance rescale in the model's own parameterization, as diffusers' rescale_noise_cfg is applied to
 * the raw model output: written out here in float64 on v (or x̂0) predictions, then compared with what
 * the CFG method returns as ε with respect to the same ᾱ.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cfgMethod } from '../../src/guiders/cfg.ts';
import type { StepPoint } from '../../src/guiders/common.ts';
import { alphaBar, close, mulberry } from '../float64.ts';

/** torch.std over one item (unbiased) */
const sd = (xs: number[]) => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
};

/** diffusers: noise_cfg = u + w(c − u); rescaled = φ·noise_cfg·std(c)/std(noise_cfg) + (1−φ)·noise_cfg */
function rescaleNoiseCfg(c: number[], u: number[], w: number, phi: number, B: number): number[] {
  const n = c.length / B;
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const cb = c.slice(b * n, (b + 1) * n);
    const g = cb.map((ci, i) => u[b * n + i] + w * (ci - u[b * n + i]));
    const k = sd(cb) / sd(g);
    for (const gi of g) out.push(phi * gi * k + (1 - phi) * gi);
  }
  return out;
}

const params = (cfg: number, phi: number) => ({
  cfg,
  guidance_rescale: phi,
  interval_sigma_lo: 0,
  interval_sigma_hi: 0,
});

describe('guidance rescale in the model parameterization', () => {
  const cases = fc.tuple(
    fc.integer({ min: 1, max: 3 }),
    fc.integer({ min: 3, max: 12 }),
    fc.double({ min: 0.05, max: 1, noNaN: true }),
    fc.double({ min: 1.5, max: 12, noNaN: true }),
    alphaBar,
    fc.integer(),
  );

  for (const type of ['v_prediction', 'sample', 'epsilon'] as const) {
    it(`${type}: the CFG method rescales the model outputs as diffusers does`, () => {
      fc.assert(
        fc.property(cases, ([B, n, phi, w, ab, seed]) => {
          const rnd = mulberry(seed);
          const draw = () => Array.from({ length: B * n }, () => rnd() * 4 - 2);
          const x = draw();
          const oc = draw(); // the model's outputs, in its own parameterization
          const ou = draw();
          const a = Math.sqrt(ab);
          const s = Math.sqrt(1 - ab);
          // x_t = a·x0 + s·ε and v = a·ε − s·x0, so ε = a·v + s·x, and ε = (x − a·x0)/s
          const toEps = (o: number[]) =>
            o.map((oi, i) =>
              type === 'v_prediction' ? a * oi + s * x[i] : type === 'sample' ? (x[i] - a * oi) / s : oi,
            );
          const at: StepPoint = { x: Float32Array.from(x), alphaBar: ab, sigma: s / a, batch: B, predictionType: type };
          // x goes in as float32: compare against the reference on the same rounded x
          const xr = [...at.x];
          x.splice(0, x.length, ...xr);
          const got = cfgMethod.combine(
            [Float64Array.from(toEps(oc)), Float64Array.from(toEps(ou))],
            params(w, phi),
            at,
          );
          const want = toEps(rescaleNoiseCfg(oc, ou, w, phi, B));
          // float64 round-off (~1e-16) grows by at most 1/(√ᾱ·√(1−ᾱ)) ≤ 1e2 per conversion, three conversions
          close(got, want, 1e-9);
        }),
      );
    });
  }

  it('for a v-prediction model the result differs from rescaling ε (the parameterization matters)', () => {
    const x = Float32Array.from([1, -1, 0.5, 2]);
    const ec = Float64Array.from([0.3, -0.2, 0.9, -1.1]);
    const eu = Float64Array.from([0.1, 0.4, -0.3, 0.2]);
    const at = (predictionType: StepPoint['predictionType']): StepPoint => ({
      x,
      alphaBar: 0.3,
      sigma: Math.sqrt(0.7 / 0.3),
      batch: 1,
      predictionType,
    });
    const v = cfgMethod.combine([ec, eu], params(5, 0.7), at('v_prediction'));
    const e = cfgMethod.combine([ec, eu], params(5, 0.7), at('epsilon'));
    const gap = Math.max(...[...v].map((vi, i) => Math.abs(vi - e[i])));
    expect(gap).toBeGreaterThan(1e-3);
    // φ = 0: no rescale in any parameterization
    close(
      cfgMethod.combine([ec, eu], params(5, 0), at('v_prediction')),
      cfgMethod.combine([ec, eu], params(5, 0), at('epsilon')),
    );
  });
});
