/**
 * Classifier-free guidance: ε̃ = ε_u + cfg·(ε_c − ε_u). One formula for CFG (ε_u from the same model
 * with the empty condition), prior swap (prior-swap.ts: ε_u from the base model) and autoguidance
 * (autoguidance.ts: ε_u from a worse model): only where ε_u comes from differs.
 */
import { defineNode } from '@priorgraph/core';
import type { Vec } from '../guidance/index.ts';
import type { DenoiserValue, Guider } from '../types.ts';
import {
  asDenoiser,
  type GuidanceMethod,
  type GuidanceOptions,
  guidanceOptions,
  guider,
  guiderInfer,
  rescaled,
  scaleAt,
} from './common.ts';

/** ε̃ = ε_u + cfg·(ε_c − ε_u) */
export function cfgCombine(cond: Vec, uncond: Vec, cfg: number): Float64Array {
  const out = new Float64Array(cond.length);
  for (let i = 0; i < out.length; i++) out[i] = uncond[i] + cfg * (cond[i] - uncond[i]);
  return out;
}

/** The params of a CFG GUIDER: the node's own inputs, by their names. */
export interface CfgParams extends GuidanceOptions {
  cfg: number;
}
/** denoisers: [conditional, unconditional] */
export type CfgGuiderValue = Guider<DenoiserValue, CfgParams>;

/** Only the conditional branch where the scale in force is 1 (outside the interval, or cfg = 1). */
export const twoBranches = (p: CfgParams, sigma: number): readonly number[] =>
  scaleAt(p.cfg, sigma, p) === 1 ? [0] : [0, 1];

export const cfgMethod: GuidanceMethod<CfgParams> = {
  name: 'cfg',
  branches: twoBranches,
  combine([c, u], p, at) {
    if (!u) return c;
    return rescaled(cfgCombine(c, u, scaleAt(p.cfg, at.sigma, p)), c, p.guidance_rescale, at);
  },
};

/** The CFG GUIDER (also prior swap's and autoguidance's: the same method). */
export function cfgGuider(label: string, cond: DenoiserValue, uncond: DenoiserValue, p: CfgParams): CfgGuiderValue {
  const { cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi } = p;
  return guider(cfgMethod, label, [cond, uncond], { cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi });
}

export const CFGGuider = defineNode({
  type: 'CFGGuider',
  version: 1,
  category: 'sampling/guidance',
  displayName: 'CFG Guider',
  description:
    'Classifier-free guidance with ONE model: ε̃ = ε(x,∅) + w·(ε(x,c) − ε(x,∅)); cond and uncond run in one batched call. At w = 1 the unconditional branch is skipped.',
  inputs: {
    positive: { kind: 'socket', type: 'DENOISER' },
    negative: {
      kind: 'socket',
      type: 'DENOISER',
      description: 'the same model with the empty / negative conditioning',
    },
    cfg: { kind: 'float', default: 7.5, min: 0, max: 100, step: 0.1 },
    ...guidanceOptions,
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('positive', 'negative'),
  execute({ positive, negative, ...params }) {
    const c = asDenoiser(positive, 'positive');
    const u = asDenoiser(negative, 'negative');
    if (c.model.path !== u.model.path) {
      throw new Error(
        `inputs "positive"/"negative": CFG uses one model, got ${c.model.path} and ${u.model.path}; use PriorSwapCFGGuider to take the unconditional branch from another model`,
      );
    }
    return { GUIDER: cfgGuider('cfg', c, u, params) };
  },
});
