/** The two-condition (InstructPix2Pix) combine against a float64 reference written out here. */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { twoConditionCombine } from '../../src/guiders/ip2p.ts';
import { close, scale, sized } from '../float64.ts';

describe('ip2p', () => {
  it('two-condition form: (1−s_i)·ε(∅,∅) + (s_i−s_t)·ε(c1,∅) + s_t·ε(c1,c2)', () => {
    fc.assert(
      fc.property(sized, scale, scale, ([full, img, unc], si, st) => {
        const ref = full.map((f, i) => (1 - si) * unc[i] + (si - st) * img[i] + st * f);
        close(
          twoConditionCombine(Float64Array.from(full), Float64Array.from(img), Float64Array.from(unc), si, st),
          ref,
          1e-8,
        );
      }),
    );
  });
});
