/**
 * Prior swap ("Unconditional Priors Matter!", arXiv 2503.20240): CFG whose unconditional branch comes
 * from the base model: ε̃ = ε_base(x,∅) + w·(ε_ft(x,c) − ε_base(x,∅)). The method is CFG's (cfg.ts);
 * the base's schedule and parameterization are matched in the sampling loop (closest-variance rule).
 */
import { defineNode } from '@priorgraph/core';
import { cfgGuider } from './cfg.ts';
import { asDenoiser, checked, guidanceOptions, guiderInfer } from './common.ts';

export const PriorSwapCFGGuider = defineNode({
  type: 'PriorSwapCFGGuider',
  version: 1,
  category: 'sampling/guidance',
  displayName: 'Prior-Swap CFG Guider',
  description:
    'Unconditional Priors Matter (arXiv 2503.20240): ε̃ = ε_base(x,∅) + w·(ε_ft(x,c) − ε_base(x,∅)). The fine-tuned and base calls run concurrently. A base with another schedule or parameterization is matched by the closest-variance timestep rule; models with another latent space are refused.',
  inputs: {
    model: { kind: 'socket', type: 'DENOISER', description: 'the fine-tuned model with the condition' },
    prior: {
      kind: 'socket',
      type: 'DENOISER',
      description: 'the base model with its null condition (or none if unconditional)',
    },
    cfg: { kind: 'float', default: 5, min: 0, max: 100, step: 0.1 },
    ...guidanceOptions,
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('model', 'prior'),
  execute({ model, prior, ...params }) {
    const g = cfgGuider('prior-swap', asDenoiser(model, 'model'), asDenoiser(prior, 'prior'), params);
    return { GUIDER: checked(g, '"model"/"prior"') };
  },
});
