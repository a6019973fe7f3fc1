/** CFG's combine against a float64 reference written out here. */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { cfgCombine } from '../../src/guiders/cfg.ts';
import { close, scale, sized } from '../float64.ts';

describe('cfg', () => {
  it('CFG / prior swap: ε̃ = (1−w)·ε_u + w·ε_c', () => {
    fc.assert(
      fc.property(sized, scale, ([c, u], w) => {
        close(
          cfgCombine(Float64Array.from(c), Float64Array.from(u), w),
          c.map((ci, i) => (1 - w) * u[i] + w * ci),
        );
      }),
    );
  });

  it('CFG at w = 1 returns the conditional prediction', () => {
    fc.assert(
      fc.property(sized, ([c, u]) => {
        close(cfgCombine(Float64Array.from(c), Float64Array.from(u), 1), c);
      }),
    );
  });
});
