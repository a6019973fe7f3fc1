import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, cosine, decodeSamples, featureDistance, type Images, psnr, slice, ssim } from '../image-metrics.ts';

const img = (f: (p: number, k: number) => number, n = 1): Images => {
  const data = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < n * 32 * 32; i++) for (let k = 0; k < 3; k++) data[i * 3 + k] = f(i, k);
  return { data, shape: [n, 32, 32, 3] };
};

describe('image metrics', () => {
  it('PSNR of a uniform 0.1 offset is 20 dB; identical images give +∞', () => {
    const a = img(() => 0.5);
    const b = img(() => 0.6);
    // 10·log10(1 / 0.1²) = 20, up to float32 rounding of 0.5 and 0.6 (~1e-7 relative)
    expect(psnr(a, b, 0)).toBeCloseTo(20, 4);
    expect(psnr(a, a, 0)).toBe(Number.POSITIVE_INFINITY);
  });
  it('SSIM is 1 for identical images, symmetric, and below 1 for different ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        let s = seed;
        const rnd = () => {
          s = (s * 1103515245 + 12345) % 2147483648;
          return s / 2147483648;
        };
        const a = img(() => rnd());
        const b = img(() => rnd());
        expect(ssim(a, a, 0)).toBeCloseTo(1, 10);
        expect(Math.abs(ssim(a, b, 0) - ssim(b, a, 0))).toBeLessThan(1e-12);
        expect(ssim(a, b, 0)).toBeLessThan(0.5);
      }),
      { numRuns: 10 },
    );
  });
  it('feature distance is 1 − cosine (0 for parallel, 2 for opposite vectors)', () => {
    expect(featureDistance([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
    expect(featureDistance([1, 0], [-3, 0])).toBeCloseTo(2, 12);
    expect(cosine([1, 0], [0, 1])).toBe(0);
  });
  it('decodes uint8 CHW base64 samples into [n,32,32,3] and slices/concatenates batches', () => {
    const chw = new Uint8Array(3 * 32 * 32);
    chw.fill(255, 0, 1024); // red plane
    const b64 = Buffer.from(chw).toString('base64');
    const x = decodeSamples([b64, b64]);
    expect(x.shape).toEqual([2, 32, 32, 3]);
    expect([x.data[0], x.data[1], x.data[2]]).toEqual([1, 0, 0]);
    const y = concat([slice(x, 1), slice(x, 0)]);
    expect(y.shape).toEqual([2, 32, 32, 3]);
    expect(y.data).toEqual(x.data);
    expect(() => decodeSamples(['AAAA'])).toThrow(/sample 0: 3 bytes/);
  });
});
