/** APG's combine against a float64 reference written out here. */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { apgCombine } from '../../src/guiders/apg.ts';
import { cfgCombine } from '../../src/guiders/cfg.ts';
import { close, scale, sized } from '../float64.ts';

describe('apg', () => {
  it('APG with η = 1 and no clamp is CFG on x̂0; with η = 0 it drops the parallel part', () => {
    fc.assert(
      fc.property(sized, scale, ([c, u], w) => {
        const C = Float64Array.from(c);
        const U = Float64Array.from(u);
        close(apgCombine(C, U, w, 1, 0, 1), cfgCombine(C, U, w), 1e-9);
        const cc = c.reduce((s, x) => s + x * x, 0);
        if (cc < 1e-6) return;
        const out = apgCombine(C, U, w, 0, 0, 1);
        const d = c.map((x, i) => x - u[i]);
        const k = d.reduce((s, x, i) => s + x * c[i], 0) / cc;
        close(
          out,
          c.map((x, i) => x + (w - 1) * (d[i] - k * x)),
          1e-8,
        );
      }),
    );
  });
});
