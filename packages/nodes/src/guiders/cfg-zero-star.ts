/**
 * CFG-Zero* (Fan et al. 2025, arXiv 2503.18886): CFG with the unconditional prediction scaled by the
 * optimized s* first (no zero-init here). Same params and branches as CFG (cfg.ts).
 */
import { defineNode } from '@priorgraph/core';
import type { Vec } from '../guidance/index.ts';
import { type CfgGuiderValue, type CfgParams, twoBranches } from './cfg.ts';
import {
  asDenoiser,
  checked,
  type GuidanceMethod,
  guidanceOptions,
  guider,
  guiderInfer,
  rescaled,
  scaleAt,
} from './common.ts';

/** Per batch item, on the predictions being combined:
 *  s* = ⟨v_c, v_u⟩ / ‖v_u‖² ;  v̂ = s*·v_u + cfg·(v_c − s*·v_u). */
export function cfgZeroStarCombine(cond: Vec, uncond: Vec, cfg: number, batch: number): Float64Array {
  const out = new Float64Array(cond.length);
  const n = cond.length / batch;
  for (let b = 0; b < batch; b++) {
    const o = b * n;
    let dot = 0;
    let uu = 0;
    for (let i = o; i < o + n; i++) {
      dot += cond[i] * uncond[i];
      uu += uncond[i] * uncond[i];
    }
    const st = uu > 0 ? dot / uu : 1;
    for (let i = o; i < o + n; i++) out[i] = st * uncond[i] + cfg * (cond[i] - st * uncond[i]);
  }
  return out;
}

export const cfgZeroStarMethod: GuidanceMethod<CfgParams> = {
  name: 'cfg-zero-star',
  branches: twoBranches,
  combine([c, u], p, at) {
    if (!u) return c;
    const e = cfgZeroStarCombine(c, u, scaleAt(p.cfg, at.sigma, p), at.batch);
    return rescaled(e, c, p.guidance_rescale, at);
  },
};

export const CFGZeroStarGuider = defineNode({
  type: 'CFGZeroStarGuider',
  version: 1,
  category: 'sampling/guidance',
  displayName: 'CFG-Zero* Guider',
  description:
    'CFG-Zero* (Fan et al. 2025): the unconditional prediction is scaled by s* = ⟨ε_c, ε_u⟩/‖ε_u‖² before guiding: ε̃ = s*·ε_u + w·(ε_c − s*·ε_u). The negative may come from another model (prior swap).',
  inputs: {
    positive: { kind: 'socket', type: 'DENOISER' },
    negative: { kind: 'socket', type: 'DENOISER' },
    cfg: { kind: 'float', default: 4, min: 0, max: 100, step: 0.1 },
    ...guidanceOptions,
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('positive', 'negative'),
  execute({ positive, negative, cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi }) {
    const ds = [asDenoiser(positive, 'positive'), asDenoiser(negative, 'negative')];
    const params = { cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi };
    const g: CfgGuiderValue = guider(cfgZeroStarMethod, 'cfg-zero*', ds, params);
    return { GUIDER: checked(g, '"positive"/"negative"') };
  },
});
