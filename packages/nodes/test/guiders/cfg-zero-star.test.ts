/** CFG-Zero*'s combine against a float64 reference written out here. */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { cfgCombine } from '../../src/guiders/cfg.ts';
import { cfgZeroStarCombine } from '../../src/guiders/cfg-zero-star.ts';
import { close, scale, sized } from '../float64.ts';

describe('cfg-zero-star', () => {
  it('CFG-Zero*: s* = ⟨c,u⟩/‖u‖², then s*·u + w·(c − s*·u); s* = 1 gives CFG', () => {
    fc.assert(
      fc.property(sized, scale, ([c, u], w) => {
        const uu = u.reduce((a, x) => a + x * x, 0);
        if (uu < 1e-6) return;
        const st = c.reduce((a, x, i) => a + x * u[i], 0) / uu;
        close(
          cfgZeroStarCombine(Float64Array.from(c), Float64Array.from(u), w, 1),
          c.map((ci, i) => st * u[i] + w * (ci - st * u[i])),
          1e-8,
        );
        // u ∥ c with ⟨c,u⟩ = ‖u‖² (c = u) → s* = 1 → plain CFG
        close(
          cfgZeroStarCombine(Float64Array.from(u), Float64Array.from(u), w, 1),
          cfgCombine(Float64Array.from(u), Float64Array.from(u), w),
          1e-9,
        );
      }),
    );
  });
});
