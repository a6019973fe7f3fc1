import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frechetDistance, kid, meanCov, mulberry32, sqrtPsd, symmetricEigen, wilson } from '../stats.ts';

function randomSpd(d: number, seed: number): Float64Array {
  const rnd = mulberry32(seed);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d * d; i++) a[i] = rnd() - 0.5;
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[i * d + k] * a[j * d + k];
      out[i * d + j] = s + (i === j ? 0.1 : 0);
    }
  return out;
}

describe('evaluation statistics', () => {
  it('eigen-decomposition reconstructs the matrix', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer(), (d, seed) => {
        const a = randomSpd(d, seed);
        const { values, vectors } = symmetricEigen(a, d);
        for (let i = 0; i < d; i++)
          for (let j = 0; j < d; j++) {
            let s = 0;
            for (let k = 0; k < d; k++) s += vectors[i * d + k] * values[k] * vectors[j * d + k];
            expect(s).toBeCloseTo(a[i * d + j], 8);
          }
      }),
      { numRuns: 30 },
    );
  });

  it('the PSD square root squares back', () => {
    const d = 6;
    const a = randomSpd(d, 7);
    const s = sqrtPsd(a, d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let v = 0;
        for (let k = 0; k < d; k++) v += s[i * d + k] * s[k * d + j];
        expect(v).toBeCloseTo(a[i * d + j], 9);
      }
  });

  it('Fréchet distance: zero for identical Gaussians, closed form for 1-D and diagonal cases', () => {
    const d = 5;
    const cov = randomSpd(d, 3);
    const mean = new Float64Array([1, 2, 3, 4, 5]);
    expect(frechetDistance({ mean, cov }, { mean, cov }, d)).toBeLessThan(1e-9);
    // 1-D: (m1-m2)^2 + (s1 - s2)^2
    expect(frechetDistance({ mean: [0], cov: [4] }, { mean: [3], cov: [9] }, 1)).toBeCloseTo(9 + 1, 10);
    // diagonal: sum over dims
    const fd = frechetDistance({ mean: [0, 0], cov: [1, 0, 0, 4] }, { mean: [1, 1], cov: [4, 0, 0, 1] }, 2);
    expect(fd).toBeCloseTo(2 + 1 + 1, 10);
  });

  it('Fréchet distance is symmetric and grows with a mean shift', () => {
    const d = 4;
    const a = { mean: new Float64Array(d), cov: randomSpd(d, 11) };
    const b = { mean: new Float64Array([0.5, 0, 0, 0]), cov: randomSpd(d, 12) };
    const ab = frechetDistance(a, b, d);
    expect(frechetDistance(b, a, d)).toBeCloseTo(ab, 8);
    const c = { mean: new Float64Array([5, 0, 0, 0]), cov: b.cov };
    expect(frechetDistance(a, c, d)).toBeGreaterThan(ab);
  });

  it('meanCov matches a hand computation', () => {
    const { mean, cov } = meanCov(
      [
        [1, 2],
        [3, 6],
        [5, 10],
      ],
      2,
    );
    expect(Array.from(mean)).toEqual([3, 6]);
    expect(Array.from(cov)).toEqual([4, 8, 8, 16]);
  });

  it('Wilson interval contains the estimate and narrows with n', () => {
    const a = wilson(8, 10);
    const b = wilson(800, 1000);
    expect(a.lo).toBeLessThan(0.8);
    expect(a.hi).toBeGreaterThan(0.8);
    expect(b.hi - b.lo).toBeLessThan(a.hi - a.lo);
  });

  it('KID matches a hand computation in one dimension', () => {
    // k(a, b) = (ab + 1)³: within x 1, within y 7³ = 343, across (1 + 1 + 27 + 64) = 93
    expect(kid([[0], [1]], [[2], [3]], 1)).toBeCloseTo(1 + 343 - (2 * 93) / 4, 10);
  });

  it('KID is unbiased: over every equally likely draw from one distribution its mean is exactly 0', () => {
    // two points with equal probability; all 4 ordered draws of 2 for x and for y (16 combinations)
    const pts = [
      [0.3, -0.7],
      [-1.2, 0.4],
    ];
    const draws = [0, 1].flatMap((i) => [0, 1].map((j) => [pts[i], pts[j]]));
    let sum = 0;
    for (const x of draws) for (const y of draws) sum += kid(x, y, 2);
    expect(Math.abs(sum / 16)).toBeLessThan(1e-12);
  });

  it('KID is symmetric, about 0 for two samples of one distribution, and grows with a mean shift', () => {
    const rnd = mulberry32(7);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const sample = (n: number, shift: number) => Array.from({ length: n }, () => [gauss() + shift, gauss(), gauss()]);
    const a = sample(200, 0);
    const b = sample(200, 0);
    const c = sample(200, 1);
    expect(kid(a, b, 3)).toBeCloseTo(kid(b, a, 3), 12);
    expect(kid(a, c, 3)).toBeGreaterThan(10 * Math.abs(kid(a, b, 3)));
    expect(() => kid([[1]], [[1], [2]], 1)).toThrow(/at least 2 samples/);
    // the kernel scale: features multiplied by s and scale s give the same value
    const s = 7.5;
    const times = (rows: number[][]) => rows.map((r) => r.map((v) => v * s));
    expect(kid(times(a), times(c), 3, s)).toBeCloseTo(kid(a, c, 3), 9);
  });
});
