/**
 * The two-condition guider of InstructPix2Pix (c1 = image, c2 = text), with an optional prior swap of
 * the fully unconditional term.
 */
import { defineNode } from '@priorgraph/core';
import type { Vec } from '../guidance/index.ts';
import type { ConditioningValue, DenoiserValue, Guider, LatentValue } from '../types.ts';
import {
  asDenoiser,
  asModel,
  checked,
  type GuidanceMethod,
  guidanceOptions,
  guider,
  guiderInfer,
  imageLatentRefusal,
  rescaled,
} from './common.ts';

/** ε̃ = ε(∅,∅) + γ1·(ε(c1,∅) − ε(∅,∅)) + γ2·(ε(c1,c2) − ε(c1,∅)); prior swap replaces only ε(∅,∅). */
export function twoConditionCombine(
  full: Vec /* ε(c1,c2) */,
  imageOnly: Vec /* ε(c1,∅) */,
  uncond: Vec /* ε(∅,∅) */,
  image_scale: number,
  text_scale: number,
): Float64Array {
  const out = new Float64Array(full.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = uncond[i] + image_scale * (imageOnly[i] - uncond[i]) + text_scale * (full[i] - imageOnly[i]);
  }
  return out;
}

/** The node's own inputs, by their names. */
export interface TwoConditionParams {
  text_scale: number;
  image_scale: number;
  guidance_rescale: number;
}
/** denoisers: [ε(c1,c2), ε(c1,∅), ε(∅,∅)] */
export type TwoConditionGuiderValue = Guider<DenoiserValue, TwoConditionParams>;

export const twoConditionMethod: GuidanceMethod<TwoConditionParams> = {
  name: 'two-condition',
  combine([full, img, unc], p, at) {
    return rescaled(twoConditionCombine(full, img, unc, p.image_scale, p.text_scale), full, p.guidance_rescale, at);
  },
};

export const InstructPix2PixGuider = defineNode({
  type: 'InstructPix2PixGuider',
  version: 1,
  category: 'sampling/guidance',
  displayName: 'InstructPix2Pix Guider',
  description:
    'Two conditions (c1 = image, c2 = text): ε̃ = ε(∅,∅) + s_img·(ε(c1,∅) − ε(∅,∅)) + s_txt·(ε(c1,c2) − ε(c1,∅)). With a prior, only the fully unconditional ε(∅,∅) comes from the base model (which sees only the 4-channel x_t); the two other terms run in one batched call of the edit model, concurrently with the base.',
  inputs: {
    model: { kind: 'socket', type: 'MODEL', description: 'the 8-channel edit model' },
    text: { kind: 'socket', type: 'CONDITIONING' },
    empty: { kind: 'socket', type: 'CONDITIONING', description: 'the empty-prompt conditioning' },
    image: {
      kind: 'socket',
      type: 'LATENT',
      description: 'the source image latent (VAE Encode output; used unscaled)',
    },
    text_scale: { kind: 'float', default: 7.5, min: 0, max: 100, step: 0.1 },
    image_scale: { kind: 'float', default: 1.5, min: 0, max: 100, step: 0.1 },
    prior: {
      kind: 'socket',
      type: 'DENOISER',
      optional: true,
      description: 'base model + null condition (prior swap)',
    },
    guidance_rescale: guidanceOptions.guidance_rescale,
  },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  infer(inputs, linked) {
    const facts = guiderInfer('model', 'prior')(inputs, linked);
    const refused = imageLatentRefusal(linked.model, linked.image);
    if (refused) facts.problems?.push({ input: 'image', message: refused });
    return facts;
  },
  execute({ model, text, empty, image, text_scale, image_scale, prior, guidance_rescale }) {
    const m = asModel(model, 'model');
    if (m.sig.concatChannels <= 0) {
      throw new Error(
        `input "model": ${m.path} takes ${m.sig.inChannels} input channels; the two-condition form needs an 8-channel (x_t ‖ image latent) model`,
      );
    }
    const img = image as LatentValue;
    const t = text as ConditioningValue;
    const e = empty as ConditioningValue;
    const full: DenoiserValue = { kind: 'DENOISER', model: m, cond: t, concat: img };
    const imageOnly: DenoiserValue = { kind: 'DENOISER', model: m, cond: e, concat: img };
    const uncond: DenoiserValue = prior
      ? asDenoiser(prior, 'prior')
      : { kind: 'DENOISER', model: m, cond: e, concat: null };
    const g: TwoConditionGuiderValue = guider(
      twoConditionMethod,
      prior ? 'ip2p-prior-swap' : 'ip2p',
      [full, imageOnly, uncond],
      {
        text_scale,
        image_scale,
        guidance_rescale,
      },
    );
    return { GUIDER: checked(g, '"model"/"prior"') };
  },
});
