/**
 * What every guider shares: the table-entry type the sampling loop dispatches through, the node-side
 * checks of its inputs (socket values, one latent space), and the options several guiders offer
 * (guidance rescale, guidance interval). A guidance method itself is one file next to this one.
 */

import type { NodeFacts } from '@priorgraph/core';
import { type ModelFacts, modelFactsOf, shapeOf } from '../facts.ts';
import {
  effectiveScale,
  epsilonToPrediction,
  type PredictionType,
  predictionToX0,
  rescaleGuidance,
  type Vec,
  x0ToEpsilon,
} from '../guidance/index.ts';
import { describeSignature } from '../models/signature.ts';
import type { DenoiserValue, Guider, GuiderValue, ModelValue } from '../types.ts';
import { describeFrames } from '../video.ts';

/** Where the sampling loop stands when it asks a method to combine: x = x_t (the model input), the
 *  reference ᾱ and σ, the batch size, and the reference model's own output parameterization. */
export interface StepPoint {
  x: Float32Array;
  alphaBar: number;
  sigma: number;
  batch: number;
  predictionType: PredictionType;
}

/** A guidance method's entry in the sampling loop's table (guiders/index.ts). */
export interface GuidanceMethod<P> {
  /** the GUIDER's `method` */
  readonly name: string;
  /** the denoisers (indices into the GUIDER's list) to evaluate at σ; all of them when absent */
  branches?(params: P, sigma: number): readonly number[];
  /** ε̃ (w.r.t. the reference ᾱ) from the ε of those denoisers, in that order */
  combine(eps: Vec[], params: P, at: StepPoint): Vec;
}

/** A table entry, typed by its params, stored next to others with other params. */
// biome-ignore lint/suspicious/noExplicitAny: the table holds methods of every params type
export type AnyGuidanceMethod = GuidanceMethod<any>;

/** The GUIDER value of a method: its denoisers (the first one is the reference) and its params. */
export function guider<P>(
  method: GuidanceMethod<P>,
  label: string,
  denoisers: DenoiserValue[],
  params: P,
): Guider<DenoiserValue, P> {
  return { kind: 'GUIDER', method: method.name, label, denoisers, params };
}

export function asModel(v: unknown, input: string): ModelValue {
  const m = v as ModelValue | null;
  if (m?.kind !== 'MODEL') throw new Error(`input "${input}": not a MODEL`);
  return m;
}

export function asDenoiser(v: unknown, input: string): DenoiserValue {
  const d = v as DenoiserValue | null;
  if (d?.kind !== 'DENOISER') throw new Error(`input "${input}": not a DENOISER`);
  return d;
}

/** Refuse two models that do not share the latent space (channels, fixed size, declared latent_space). */
export function checkSameLatentSpace(a: ModelValue, b: ModelValue): void {
  const sa = a.sig;
  const sb = b.sig;
  const reasons: string[] = [];
  if (sa.latentChannels !== sb.latentChannels)
    reasons.push(`${sa.latentChannels} vs ${sb.latentChannels} latent channels`);
  if (sa.height && sb.height && (sa.height !== sb.height || sa.width !== sb.width)) {
    reasons.push(`latent size ${sa.height}×${sa.width} vs ${sb.height}×${sb.width}`);
  }
  const frames = framesMismatch(sa, sb);
  if (frames) reasons.push(frames);
  if (a.latentSpace && b.latentSpace && a.latentSpace !== b.latentSpace) {
    reasons.push(`model_index.json latent_space "${a.latentSpace}" vs "${b.latentSpace}"`);
  }
  if (reasons.length) {
    throw new Error(
      `models do not share a latent space and cannot be combined: ${a.name} (${a.path}: ${describeSignature(sa)}) and ${b.name} (${b.path}: ${describeSignature(sb)}): ${reasons.join('; ')}`,
    );
  }
}

/** Why two models cannot share one latent along the frame axis (a video and a still model, or two
 *  video models fixing different frame counts), or null. */
export function framesMismatch(a: { video: boolean; frames: number | null }, b: typeof a): string | null {
  if (a.video !== b.video)
    return `a ${a.video ? 'video' : 'still-image'} model and a ${b.video ? 'video' : 'still-image'} model`;
  if (a.frames && b.frames && a.frames !== b.frames) return `${a.frames} vs ${b.frames} frames`;
  return null;
}

/** A guider node's `infer`: its models (the DENOISER/MODEL facts of `inputs`) as GUIDER facts, and a
 *  problem on the input whose model does not fit the first one's frame axis. */
export function guiderInfer(...inputs: string[]) {
  return (_inputs: Record<string, unknown>, linked: Record<string, unknown>): NodeFacts => {
    const models: Array<{ input: string; m: ModelFacts }> = [];
    for (const input of inputs) {
      const m = modelFactsOf(linked[input]);
      if (m) models.push({ input, m });
    }
    const problems: NonNullable<NodeFacts['problems']> = [];
    for (const { input, m } of models.slice(1)) {
      const why = framesMismatch(models[0].m, m);
      if (why) {
        problems.push({
          input,
          message: `${m.path} cannot be combined with ${models[0].m.path} (input "${models[0].input}"): ${why}`,
        });
      }
    }
    return { outputs: { GUIDER: { models: models.map((x) => x.m) } }, problems };
  };
}

/** Why a linked image latent cannot condition the linked model: a video latent for a still model, or
 *  one of other frames than a video model's (a still image latent conditions every frame). */
export function imageLatentRefusal(model: unknown, latent: unknown): string | null {
  const m = modelFactsOf(model);
  const shape = shapeOf(latent);
  if (!m || !shape || shape.length === 4) return null;
  const frames = shape[2];
  if (!m.video) return `${m.path} is a still-image model and cannot be conditioned on ${describeFrames(frames)}`;
  if (m.frames && m.frames !== frames) return `${m.path} takes ${m.frames} frames, the image latent has ${frames}`;
  return null;
}

/** Every denoiser of a guider shares the reference's latent space. */
export function checkGuider(g: GuiderValue): void {
  const ds = g.denoisers;
  if (!ds.length) throw new Error(`guider "${g.label}" has no denoiser`);
  for (const d of ds.slice(1)) if (d.model.path !== ds[0].model.path) checkSameLatentSpace(ds[0].model, d.model);
}

/** checkGuider with the node's input names in the message. */
export function checked<G extends GuiderValue>(g: G, inputs: string): G {
  try {
    checkGuider(g);
  } catch (e) {
    throw new Error(`inputs ${inputs}: ${(e as Error).message}`);
  }
  return g;
}

/** The options of the guiders that rescale and may guide on an interval of σ only. */
export const guidanceOptions = {
  guidance_rescale: {
    kind: 'float',
    default: 0,
    min: 0,
    max: 1,
    step: 0.05,
    description: "φ of CFG rescale (Lin et al. 2023), in the model's own parameterization; 0 = off, ~0.7 typical",
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

/** The values of those options, as the node received them. */
export interface GuidanceOptions {
  guidance_rescale: number;
  interval_sigma_lo: number;
  interval_sigma_hi: number;
}

/** Those options off: no rescale, no interval. */
export const noGuidanceOptions: GuidanceOptions = { guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };

/** The scale in force at σ: w inside the guidance interval (σ ∈ (lo, hi], 0 = unbounded), 1 outside. */
export function scaleAt(w: number, sigma: number, o: Partial<GuidanceOptions>): number {
  const lo = o.interval_sigma_lo ?? 0;
  const hi = o.interval_sigma_hi ?? 0;
  return effectiveScale(w, sigma, lo > 0 ? lo : null, hi > 0 ? hi : null);
}

/** Guidance rescale (φ = guidance_rescale) applied as diffusers' rescale_noise_cfg applies it: to the
 *  model's own output, i.e. in the reference model's parameterization (ε, v or x̂0), then back to ε.
 *  `guided` and `positive` are ε w.r.t. the reference ᾱ. */
export function rescaled(guided: Vec, positive: Vec, phi: number, at: StepPoint): Vec {
  if (!(phi > 0)) return guided;
  const type = at.predictionType;
  if (type === 'epsilon') return rescaleGuidance(guided, positive, phi, at.batch);
  const g = epsilonToPrediction(guided, at.x, at.alphaBar, type);
  const p = epsilonToPrediction(positive, at.x, at.alphaBar, type);
  const r = rescaleGuidance(g, p, phi, at.batch);
  return x0ToEpsilon(predictionToX0(r, at.x, at.alphaBar, type), at.x, at.alphaBar);
}
