/** No guidance: one denoiser, its ε as it is. */
import { defineNode } from '@priorgraph/core';
import { asDenoiser, type GuidanceMethod, guider, guiderInfer } from './common.ts';

export const singleMethod: GuidanceMethod<Record<string, never>> = {
  name: 'single',
  combine: ([e]) => e,
};

export const BasicGuider = defineNode({
  type: 'BasicGuider',
  version: 1,
  category: 'sampling/guidance',
  description: 'No guidance: one denoiser.',
  inputs: { denoiser: { kind: 'socket', type: 'DENOISER' } },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer: guiderInfer('denoiser'),
  execute({ denoiser }) {
    return { GUIDER: guider(singleMethod, 'single', [asDenoiser(denoiser, 'denoiser')], {}) };
  },
});
