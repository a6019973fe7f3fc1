/**
 * DENOISER and GUIDER nodes. A DENOISER wraps (MODEL, CONDITIONING); a GUIDER says how the sampler
 * combines denoisers each step (the math: src/guidance/; the batching/concurrency: src/runtime/).
 */
import { defineNode } from '@priorgraph/core';
import { checkGuider } from '../sampling.ts';
import type { ConditioningValue, DenoiserValue, GuiderValue, LatentValue, ModelValue } from '../types.ts';

function asModel(v: unknown, input: string): ModelValue {
  const m = v as ModelValue | null;
  if (m?.kind !== 'MODEL') throw new Error(`input "${input}": not a MODEL`);
  return m;
}
function asDenoiser(v: unknown, input: string): DenoiserValue {
  const d = v as DenoiserValue | null;
  if (d?.kind !== 'DENOISER') throw new Error(`input "${input}": not a DENOISER`);
  return d;
}
function checked(g: GuiderValue, inputs: string): GuiderValue {
  try {
    checkGuider(g);
  } catch (e) {
    throw new Error(`inputs ${inputs}: ${(e as Error).message}`);
  }
  return g;
}
const interval = (lo: number, hi: number) => ({ intervalLo: lo > 0 ? lo : null, intervalHi: hi > 0 ? hi : null });

/** The GUIDER of every two-branch combiner (CFG, prior swap, autoguidance, APG, CFG-Zero*): the
 *  combination itself lives in src/guidance, keyed by `combine`. */
function twoBranch(o: {
  cond: DenoiserValue;
  uncond: DenoiserValue;
  scale: number;
  rescale?: number;
  lo?: number;
  hi?: number;
  combine: 'cfg' | 'apg' | 'cfgzero';
  apgEta?: number;
  apgNormThreshold?: number;
  label: string;
}): GuiderValue {
  return {
    kind: 'GUIDER',
    mode: 'cfg',
    cond: o.cond,
    uncond: o.uncond,
    scale: o.scale,
    rescale: o.rescale ?? 0,
    ...interval(o.lo ?? 0, o.hi ?? 0),
    combine: o.combine,
    apgEta: o.apgEta ?? 1,
    apgNormThreshold: o.apgNormThreshold ?? 0,
    label: o.label,
  };
}

const guidanceOptions = {
  guidance_rescale: {
    kind: 'float',
    default: 0,
    min: 0,
    max: 1,
    step: 0.05,
    description: 'φ of CFG rescale (Lin et al. 2023); 0 = off, ~0.7 typical',
  },
  interval_sigma_lo: {
    kind: 'float',
    default: 0,
    min: 0,
    max: 1000,
    step: 0.01,
    description: 'guidance interval: guide only for σ > this (0 = no lower bound)',
  },
  interval_sigma_hi: {
    kind: 'float',
    default: 0,
    min: 0,
    max: 1000,
    step: 0.01,
    description: 'guidance interval: guide only for σ ≤ this (0 = no upper bound)',
  },
} as const;

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
    const d: DenoiserValue = {
      kind: 'DENOISER',
      model: m,
      cond,
      concat: (image_latent as LatentValue | undefined) ?? null,
    };
    return { DENOISER: d };
  },
});

export const BasicGuider = defineNode({
  type: 'BasicGuider',
  version: 1,
  category: 'sampling/guidance',
  description: 'No guidance: one denoiser.',
  inputs: { denoiser: { kind: 'socket', type: 'DENOISER' } },
  outputs: [{ name: 'GUIDER', type: 'GUIDER' }],
  execute({ denoiser }) {
    return { GUIDER: { kind: 'GUIDER', mode: 'single', d: asDenoiser(denoiser, 'denoiser') } satisfies GuiderValue };
  },
});

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
  execute({ positive, negative, cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi }) {
    const c = asDenoiser(positive, 'positive');
    const u = asDenoiser(negative, 'negative');
    if (c.model.path !== u.model.path) {
      throw new Error(
        `inputs "positive"/"negative": CFG uses one model, got ${c.model.path} and ${u.model.path}; use PriorSwapCFGGuider to take the unconditional branch from another model`,
      );
    }
    const g = twoBranch({
      cond: c,
      uncond: u,
      scale: cfg,
      rescale: guidance_rescale,
      lo: interval_sigma_lo,
      hi: interval_sigma_hi,
      combine: 'cfg',
      label: 'cfg',
    });
    return { GUIDER: g };
  },
});

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
  execute({ model, prior, cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi }) {
    const g = twoBranch({
      cond: asDenoiser(model, 'model'),
      uncond: asDenoiser(prior, 'prior'),
      scale: cfg,
      rescale: guidance_rescale,
      lo: interval_sigma_lo,
      hi: interval_sigma_hi,
      combine: 'cfg',
      label: 'prior-swap',
    });
    return { GUIDER: checked(g, '"model"/"prior"') };
  },
});

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
  execute({ good, bad, scale, guidance_rescale, interval_sigma_lo, interval_sigma_hi }) {
    const g = twoBranch({
      cond: asDenoiser(good, 'good'),
      uncond: asDenoiser(bad, 'bad'),
      scale,
      rescale: guidance_rescale,
      lo: interval_sigma_lo,
      hi: interval_sigma_hi,
      combine: 'cfg',
      label: 'autoguidance',
    });
    return { GUIDER: checked(g, '"good"/"bad"') };
  },
});

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
  execute({ positive, negative, cfg, eta, norm_threshold }) {
    const g = twoBranch({
      cond: asDenoiser(positive, 'positive'),
      uncond: asDenoiser(negative, 'negative'),
      scale: cfg,
      combine: 'apg',
      apgEta: eta,
      apgNormThreshold: norm_threshold,
      label: 'apg',
    });
    return { GUIDER: checked(g, '"positive"/"negative"') };
  },
});

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
  execute({ positive, negative, cfg, guidance_rescale, interval_sigma_lo, interval_sigma_hi }) {
    const g = twoBranch({
      cond: asDenoiser(positive, 'positive'),
      uncond: asDenoiser(negative, 'negative'),
      scale: cfg,
      rescale: guidance_rescale,
      lo: interval_sigma_lo,
      hi: interval_sigma_hi,
      combine: 'cfgzero',
      label: 'cfg-zero*',
    });
    return { GUIDER: checked(g, '"positive"/"negative"') };
  },
});

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
    const g: GuiderValue = {
      kind: 'GUIDER',
      mode: 'two',
      full,
      imageOnly,
      uncond,
      textScale: text_scale,
      imageScale: image_scale,
      rescale: guidance_rescale,
      label: prior ? 'ip2p-prior-swap' : 'ip2p',
    };
    return { GUIDER: checked(g, '"model"/"prior"') };
  },
});
