/** Loaders: a diffusers-layout folder → MODEL, CLIP, VAE; and each part alone. Paths are relative to
 *  the model roots (combo lists what is found there) and confined to them. */
import { defineNode, type HostInfo } from '@priorgraph/core';
import { denoiserFacts, loadClip, loadDenoiserModel, loadFolder, loadVae, vaeFacts } from '../models/load.ts';
import { confinePath, type ModelRole, modelsFor } from '../models/paths.ts';
import { confineValidator, forInput, handleValue, runtime } from './common.ts';

/** MODEL facts for validation (video or still, frames) from the denoiser's graph, read without loading. */
const modelFacts = (input: string) => (inputs: Record<string, unknown>, _linked: unknown, host: HostInfo) => {
  const facts = denoiserFacts(confinePath(String(inputs[input]), host.modelRoots, input));
  return facts ? { outputs: { MODEL: facts } } : undefined;
};

/** VAE facts (pixel factor, latent channels) from the VAE's config.json, read without loading. */
const vaeFactsFor = (input: string) => (inputs: Record<string, unknown>, _linked: unknown, host: HostInfo) => {
  const facts = vaeFacts(confinePath(String(inputs[input]), host.modelRoots, input));
  return facts ? { outputs: { VAE: facts } } : undefined;
};

/** Each loader lists only the models that fit it (see modelsFor). */
const models = (role: ModelRole) => (h: HostInfo) => modelsFor(h, role);

export const DiffusersLoader = defineNode({
  type: 'DiffusersLoader',
  version: 1,
  category: 'loaders',
  displayName: 'Load Diffusers Model (ONNX)',
  description:
    'Loads a folder in the diffusers ONNX layout (model_index.json, unet/ or transformer/, text_encoder/, tokenizer/, vae_encoder/, vae_decoder/, scheduler/). The scheduler config travels with MODEL.',
  inputs: {
    model_path: { kind: 'combo', options: models('pipeline'), description: 'folder under a model root' },
  },
  outputs: [
    { name: 'MODEL', type: 'MODEL' },
    { name: 'CLIP', type: 'CLIP' },
    { name: 'VAE', type: 'VAE' },
  ],
  validate: confineValidator('model_path'),
  infer: (inputs, _linked, host) => {
    const dir = confinePath(String(inputs.model_path), host.modelRoots, 'model_path');
    const model = denoiserFacts(dir);
    const vae = vaeFacts(dir);
    return { outputs: { ...(model ? { MODEL: model } : {}), ...(vae ? { VAE: vae } : {}) } };
  },
  async execute({ model_path }, ctx) {
    return forInput('model_path', async () => {
      const dir = confinePath(model_path, ctx.host.modelRoots, 'model_path');
      const { model, clip, vae } = await loadFolder(runtime(ctx), dir, { owner: ctx.promptId });
      return { MODEL: handleValue(model), CLIP: clip ? handleValue(clip) : null, VAE: vae ? handleValue(vae) : null };
    });
  },
});

export const UNetLoader = defineNode({
  type: 'UNetLoader',
  version: 1,
  category: 'loaders',
  displayName: 'Load UNet / Transformer',
  description:
    'Loads a denoiser network: a diffusers folder (its unet/ or transformer/) or a single .onnx file (external weights next to it load by path).',
  inputs: { unet_path: { kind: 'combo', options: models('denoiser') } },
  outputs: [{ name: 'MODEL', type: 'MODEL' }],
  validate: confineValidator('unet_path'),
  infer: modelFacts('unet_path'),
  async execute({ unet_path }, ctx) {
    return forInput('unet_path', async () => {
      const p = confinePath(unet_path, ctx.host.modelRoots, 'unet_path');
      return { MODEL: handleValue(await loadDenoiserModel(runtime(ctx), p, { owner: ctx.promptId })) };
    });
  },
});

export const CLIPLoader = defineNode({
  type: 'CLIPLoader',
  version: 1,
  category: 'loaders',
  displayName: 'Load CLIP',
  description: 'Loads tokenizer/ (vocab.json + merges.txt) and text_encoder/model.onnx of a diffusers folder.',
  inputs: { clip_path: { kind: 'combo', options: models('clip') } },
  outputs: [{ name: 'CLIP', type: 'CLIP' }],
  validate: confineValidator('clip_path'),
  async execute({ clip_path }, ctx) {
    return forInput('clip_path', async () => {
      const p = confinePath(clip_path, ctx.host.modelRoots, 'clip_path');
      return { CLIP: handleValue(await loadClip(runtime(ctx), p, { owner: ctx.promptId })) };
    });
  },
});

export const VAELoader = defineNode({
  type: 'VAELoader',
  version: 1,
  category: 'loaders',
  displayName: 'Load VAE',
  description: 'Loads vae_encoder/ and vae_decoder/ of a diffusers folder (scaling_factor from their config.json).',
  inputs: { vae_path: { kind: 'combo', options: models('vae') } },
  outputs: [{ name: 'VAE', type: 'VAE' }],
  validate: confineValidator('vae_path'),
  infer: vaeFactsFor('vae_path'),
  async execute({ vae_path }, ctx) {
    return forInput('vae_path', async () => {
      const p = confinePath(vae_path, ctx.host.modelRoots, 'vae_path');
      return { VAE: handleValue(await loadVae(runtime(ctx), p, { owner: ctx.promptId })) };
    });
  },
});
