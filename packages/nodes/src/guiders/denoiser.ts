/**
 * The DENOISER node: a model with its conditioning, the unit every guider combines. For (x_t, t) it
 * predicts x̂0 through the model's own prediction_type and ᾱ (done in the sampling loop).
 */
import { defineNode } from '@priorgraph/core';
import { modelFactsOf } from '../facts.ts';
import { classCountOf } from '../nodes/conditioning.ts';
import type { ConditioningValue, DenoiserValue, LatentValue } from '../types.ts';
import { asModel, imageLatentRefusal } from './common.ts';

export const Denoiser = defineNode({
  type: 'Denoiser',
  version: 1,
  category: 'sampling/guidance',
  description:
    'A model with its conditioning: for (x_t, t) it predicts x̂0, converted from the model prediction_type with its own noise schedule. 8-channel (InstructPix2Pix-style) models take an image latent.',
  inputs: {
    model: { kind: 'socket', type: 'MODEL' },
    conditioning: {
      kind: 'socket',
      type: 'CONDITIONING',
      optional: true,
      description: 'none for an unconditional model',
    },
    image_latent: {
      kind: 'socket',
      type: 'LATENT',
      optional: true,
      description: '8-channel models: the source image latent',
    },
  },
  outputs: [{ name: 'DENOISER', type: 'DENOISER' }],
  infer(_inputs, linked) {
    const m = modelFactsOf(linked.model);
    const refused = imageLatentRefusal(linked.model, linked.image_latent);
    return {
      outputs: m ? { DENOISER: m } : {},
      problems: refused ? [{ input: 'image_latent', message: refused }] : [],
    };
  },
  execute({ model, conditioning, image_latent }) {
    const m = asModel(model, 'model');
    const cond = (conditioning as ConditioningValue | undefined) ?? null;
    if (m.sig.encoderHiddenStatesName && !cond?.ehs) {
      throw new Error(
        `input "conditioning": the model ${m.path} needs a text conditioning (it has an encoder_hidden_states input)`,
      );
    }
    if (m.sig.classLabelsName && cond?.classLabel == null) {
      throw new Error(
        `input "conditioning": the model ${m.path} is class-conditional: connect a Class Label conditioning`,
      );
    }
    const classes = m.sig.classLabelsName ? classCountOf(m) : null;
    if (classes !== null && cond?.classLabel != null && !(cond.classLabel >= 0 && cond.classLabel <= classes)) {
      throw new Error(
        `input "conditioning": class label ${cond.classLabel} is out of range for ${m.path} (classes 0–${classes - 1}, null class ${classes})`,
      );
    }
    const d: DenoiserValue = {
      kind: 'DENOISER',
      model: m,
      cond,
      concat: (image_latent as LatentValue | undefined) ?? null,
    };
    return { DENOISER: d };
  },
});
