/**
 * Autoguidance (Karras et al. 2024, arXiv 2406.02507): D = D_bad + w·(D_good − D_bad), the same
 * condition for both, the guide a smaller or less-trained model. The method is CFG's (cfg.ts).
 */
import { defineNode } from '@priorgraph/core';
import { cfgGuider } from './cfg.ts';
import { asDenoiser, checked, guidanceOptions, guiderInfer } from './common.ts';

export const AutoGuidance = defineNode({
  type: 'AutoGuidance',
  version: 1,
  category: 'sampling/guidance',
  description:
    'Autoguidance (Karras et al. 2024): D = D_bad + w·(D_good − D_bad), the same condition for both; the guide is a smaller or less-trained model. The two calls run concurrently.',
  inputs: {
    good: { kind: 'socket', type: 'DENOISER' },
    bad: { kind: 'socket', type: 'DENOISER' },
    scale: { kind: 'float', default: 2, min: 0, max: 100, step: 0.1 },
    ...guidanceOptions,
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('good', 'bad'),
  execute({ good, bad, scale, ...options }) {
    // the saved input is "scale" (ComfyUI documents); the method's name for it is cfg
    const g = cfgGuider('autoguidance', asDenoiser(good, 'good'), asDenoiser(bad, 'bad'), { cfg: scale, ...options });
    return { GUIDER: checked(g, '"good"/"bad"') };
  },
});
