/** Shared by the float64 tests of the guidance math: random vectors, tolerances, a seeded PRNG. */
import fc from 'fast-check';
import { expect } from 'vitest';

export const vec = (n: number) => fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: n, maxLength: n });
export const sized = fc.integer({ min: 1, max: 24 }).chain((n) => fc.tuple(vec(n), vec(n), vec(n), vec(n)));
export const scale = fc.double({ min: 0, max: 15, noNaN: true });
export const alphaBar = fc.double({ min: 1e-4, max: 0.9999, noNaN: true });

export function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-9) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i])));
}

/** A small seeded PRNG for inputs drawn inside a property (mulberry32). */
export function mulberry(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
