/**
 * Adaptive projected guidance (Sadat et al. 2024, arXiv 2410.02416), without momentum, on x̂0.
 */
import { defineNode } from '@priorgraph/core';
import { predictionToX0, type Vec, x0ToEpsilon } from '../guidance/index.ts';
import type { DenoiserValue, Guider } from '../types.ts';
import { asDenoiser, checked, type GuidanceMethod, guider, guiderInfer } from './common.ts';

/** Per batch item, on x̂0 predictions:
 *  Δ = D_c − D_u; if r = norm_threshold > 0: Δ ← Δ·min(1, r/‖Δ‖); Δ∥ = (⟨Δ,D_c⟩/‖D_c‖²)·D_c,
 *  Δ⊥ = Δ − Δ∥; D = D_c + (cfg−1)·(Δ⊥ + η·Δ∥). */
export function apgCombine(
  cond: Vec,
  uncond: Vec,
  cfg: number,
  eta: number,
  norm_threshold: number,
  batch: number,
): Float64Array {
  const out = new Float64Array(cond.length);
  const n = cond.length / batch;
  for (let b = 0; b < batch; b++) {
    const o = b * n;
    let dd = 0;
    for (let i = o; i < o + n; i++) dd += (cond[i] - uncond[i]) ** 2;
    const scale = norm_threshold > 0 && dd > 0 ? Math.min(1, norm_threshold / Math.sqrt(dd)) : 1;
    let dot = 0;
    let cc = 0;
    for (let i = o; i < o + n; i++) {
      dot += (cond[i] - uncond[i]) * scale * cond[i];
      cc += cond[i] * cond[i];
    }
    const k = cc > 0 ? dot / cc : 0;
    for (let i = o; i < o + n; i++) {
      const d = (cond[i] - uncond[i]) * scale;
      const par = k * cond[i];
      out[i] = cond[i] + (cfg - 1) * (d - par + eta * par);
    }
  }
  return out;
}

/** The node's own inputs, by their names. */
export interface ApgParams {
  cfg: number;
  eta: number;
  norm_threshold: number;
}
/** denoisers: [positive, negative] */
export type ApgGuiderValue = Guider<DenoiserValue, ApgParams>;

export const apgMethod: GuidanceMethod<ApgParams> = {
  name: 'apg',
  branches: (p) => (p.cfg === 1 ? [0] : [0, 1]),
  combine([c, u], p, at) {
    if (!u) return c;
    // APG works on x̂0 (D): convert, combine, convert back
    const dc = predictionToX0(c, at.x, at.alphaBar, 'epsilon');
    const du = predictionToX0(u, at.x, at.alphaBar, 'epsilon');
    return x0ToEpsilon(apgCombine(dc, du, p.cfg, p.eta, p.norm_threshold, at.batch), at.x, at.alphaBar);
  },
};

export const APGGuider = defineNode({
  type: 'APGGuider',
  version: 1,
  category: 'sampling/guidance',
  displayName: 'APG Guider',
  description:
    'Adaptive projected guidance (Sadat et al. 2024) on x̂0: Δ = D_c − D_u clamped to ‖Δ‖ ≤ r, split parallel/orthogonal to D_c, D = D_c + (w−1)(Δ⊥ + η·Δ∥). The negative may come from another model (prior swap).',
  inputs: {
    positive: { kind: 'socket', type: 'DENOISER' },
    negative: { kind: 'socket', type: 'DENOISER' },
    cfg: { kind: 'float', default: 7.5, min: 0, max: 100, step: 0.1 },
    eta: { kind: 'float', default: 0, min: 0, max: 1, step: 0.05 },
    norm_threshold: { kind: 'float', default: 0, min: 0, max: 1000, step: 0.5, description: 'r; 0 = no clamp' },
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('positive', 'negative'),
  execute({ positive, negative, cfg, eta, norm_threshold }) {
    const ds = [asDenoiser(positive, 'positive'), asDenoiser(negative, 'negative')];
    const g: ApgGuiderValue = guider(apgMethod, 'apg', ds, { cfg, eta, norm_threshold });
    return { GUIDER: checked(g, '"positive"/"negative"') };
  },
});
