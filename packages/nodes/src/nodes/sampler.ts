/** Scheduler and Sampler nodes. */
import { defineNode } from '@priorgraph/core';
import { guiderFactsOf, schedulerFactsOf, shapeOf, type TensorFacts, tensorBytes } from '../facts.ts';
import { batchConflict, runSampling } from '../sampling.ts';
import {
  KEY_RULES,
  maxInferenceSteps,
  parseSchedulerConfigJson,
  readSchedulerConfig,
  resolveConfig,
  SCHEDULER_NAMES,
  type SchedulerConfig,
  type SchedulerName,
} from '../schedulers/index.ts';
import type { GuiderValue, LatentValue, ModelValue, SchedulerValue } from '../types.ts';
import { framesRefusal, latentDims, withBatch } from '../video.ts';
import { forInput, runtime } from './common.ts';

/** The Scheduler node's own keys: config_json (Python-style JSON allowed) plus its option inputs. */
function schedulerOverrides(configJson: string, karras: boolean, eta: number): Partial<SchedulerConfig> {
  const overrides = readSchedulerConfig(parseSchedulerConfigJson(configJson || '{}'));
  if (karras) overrides.use_karras_sigmas = true;
  if (eta > 0) overrides.eta = eta;
  return overrides;
}

/** The Karras option is honoured by the schedulers whose diffusers class has it; elsewhere it is refused. */
function karrasRefusal(name: SchedulerName, karras: boolean): string | null {
  if (!karras || !SCHEDULER_NAMES.includes(name) || KEY_RULES[name].use_karras_sigmas) return null;
  return `scheduler ${name} has no Karras σ option (euler and dpmpp_2m have it)`;
}

export const Scheduler = defineNode({
  type: 'Scheduler',
  version: 1,
  category: 'sampling',
  description:
    "A noise scheduler (diffusers semantics). Its config is the reference model's scheduler_config.json (or the connected model's), overridden by config_json and the options here.",
  inputs: {
    scheduler: { kind: 'combo', options: SCHEDULER_NAMES, default: 'ddim' },
    use_karras_sigmas: { kind: 'boolean', default: false, description: 'DPM-Solver++ 2M / Euler: Karras σ spacing' },
    eta: { kind: 'float', default: 0, min: 0, max: 1, step: 0.05, description: 'DDIM η' },
    config_json: {
      kind: 'string',
      default: '{}',
      multiline: true,
      description: 'scheduler_config.json keys to override',
    },
    model: { kind: 'socket', type: 'MODEL', optional: true, description: 'take the base config from this model' },
  },
  outputs: [{ name: 'SCHEDULER', type: 'SCHEDULER' }],
  validate: (inputs) => {
    const karras = karrasRefusal(inputs.scheduler as SchedulerName, inputs.use_karras_sigmas === true);
    if (karras) return [{ input: 'use_karras_sigmas', message: karras }];
    if (typeof inputs.config_json !== 'string') return [];
    try {
      const overrides = schedulerOverrides(inputs.config_json, inputs.use_karras_sigmas === true, Number(inputs.eta));
      // the chosen scheduler's key rules (a value it does not support is refused here already)
      if (SCHEDULER_NAMES.includes(inputs.scheduler as SchedulerName)) {
        resolveConfig(inputs.scheduler as SchedulerName, overrides);
      }
      return [];
    } catch (e) {
      return [{ input: 'config_json', message: (e as Error).message }];
    }
  },
  infer({ scheduler, config_json }, linked) {
    // A connected model's own config may still change the limit; that is checked when it runs.
    if (linked.model !== undefined) return undefined;
    const name = scheduler as SchedulerName;
    const overrides = readSchedulerConfig(JSON.parse(String(config_json ?? '{}') || '{}'));
    return {
      outputs: {
        SCHEDULER: {
          maxSteps: (strength: number) => maxInferenceSteps(name, overrides, strength),
          describe: `scheduler ${name}`,
        },
      },
    };
  },
  async execute({ scheduler, use_karras_sigmas, eta, config_json, model }) {
    await forInput('use_karras_sigmas', () => {
      const karras = karrasRefusal(scheduler as SchedulerName, use_karras_sigmas);
      if (karras) throw new Error(karras);
    });
    const overrides = await forInput('config_json', () => schedulerOverrides(config_json, use_karras_sigmas, eta));
    const s: SchedulerValue = {
      kind: 'SCHEDULER',
      name: scheduler as SchedulerName,
      overrides,
      base: model ? (model as ModelValue).schedulerConfig : null,
    };
    return { SCHEDULER: s };
  },
});

export const Sampler = defineNode({
  type: 'Sampler',
  version: 1,
  category: 'sampling',
  displayName: 'Sampler (KSampler-like)',
  description:
    "Runs the denoising loop (still latents [B,C,h,w] or video latents [B,C,T,h,w]) inside the worker of the reference model (other models called concurrently through shared memory): seeded noise (Philox4x32-10, createRng), GUIDER, SCHEDULER, steps, denoise strength (img2img from latent_image). Progress every step, a latent→RGB preview every preview_every steps (at most 10 a second; the final step's always), stops within one step when cancelled. Batch: latent_image's batch wins; batch_size only repeats a latent of batch 1 (or sets the batch without a latent); a batch_size above 1 that differs from the latent's batch is refused at validation.",
  inputs: {
    guider: { kind: 'socket', type: 'GUIDER' },
    scheduler: { kind: 'socket', type: 'SCHEDULER' },
    seed: { kind: 'seed', default: 0 },
    steps: { kind: 'int', default: 20, min: 1, max: 1000 },
    denoise: { kind: 'float', default: 1, min: 0.01, max: 1, step: 0.01 },
    batch_size: {
      kind: 'int',
      default: 1,
      min: 1,
      max: 64,
      description:
        "images per run when latent_image is not connected or holds 1; a connected latent's own batch wins (a different batch_size above 1 is refused)",
    },
    preview_every: { kind: 'int', default: 5, min: 0, max: 1000, description: '0 = no previews' },
    latent_image: { kind: 'socket', type: 'LATENT', optional: true },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  infer({ steps, denoise, batch_size }, linked) {
    const problems: Array<{ input: string; message: string }> = [];
    const sch = schedulerFactsOf(linked.scheduler);
    const strength = typeof denoise === 'number' ? denoise : 1;
    if (sch && typeof steps === 'number') {
      const max = sch.maxSteps(strength);
      if (steps > max) {
        problems.push({
          input: 'steps',
          message: `${steps} steps is more than ${sch.describe} allows (at most ${max}${strength < 1 ? ` at denoise ${strength}` : ''})`,
        });
      }
    }
    const lat = shapeOf(linked.latent_image);
    if (!lat) return { problems };
    const frames = latentDims(lat).frames;
    for (const m of guiderFactsOf(linked.guider)?.models ?? []) {
      const refused = framesRefusal(m, frames, `the model ${m.path}`);
      if (refused) problems.push({ input: 'latent_image', message: refused });
    }
    const lb = lat[0];
    const asked = typeof batch_size === 'number' ? batch_size : 1;
    const conflict = batchConflict(asked, lb);
    if (conflict) problems.push({ input: 'batch_size', message: conflict });
    const shape = withBatch(lat, lb === 1 ? Math.max(1, asked) : lb) as TensorFacts['shape'];
    // x, noise, the result, and a doubled (two-branch guidance) model input and output.
    return { outputs: { LATENT: { shape } }, bytes: tensorBytes(lat) + 7 * tensorBytes(shape), problems };
  },
  async execute({ guider, scheduler, seed, steps, denoise, batch_size, preview_every, latent_image }, ctx) {
    const g = guider as GuiderValue;
    if (g?.kind !== 'GUIDER') throw new Error('input "guider": not a GUIDER');
    const s = scheduler as SchedulerValue;
    if (s?.kind !== 'SCHEDULER') throw new Error('input "scheduler": not a SCHEDULER');
    const lat = (latent_image as LatentValue | undefined) ?? null;
    if (denoise < 1 && !lat) throw new Error('input "denoise": a denoise strength below 1 needs a latent_image');
    const r = await runSampling({
      pool: runtime(ctx),
      guider: g,
      scheduler: s,
      steps,
      seed,
      denoise,
      batchSize: batch_size,
      latent: lat,
      previewEvery: preview_every,
      owner: ctx.promptId,
      hooks: {
        signal: ctx.signal,
        onProgress: (v, max) => ctx.progress(v, max),
        onPreview: (png) => ctx.preview({ format: 'png', data: png }),
      },
    });
    if (r.cancelled || !r.latents) {
      const e = new Error('sampling cancelled');
      e.name = 'AbortError';
      throw e;
    }
    const out: LatentValue = { samples: r.latents, shape: r.shape };
    return { LATENT: out };
  },
});
