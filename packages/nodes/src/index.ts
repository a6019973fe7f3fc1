/**
 * @priorgraph/nodes — the built-in diffusion node library (plugin "priorgraph").
 *
 * Default export: the plugin. Named exports: the node definitions, the scheduler API (`schedulers`),
 * the guidance math, the runtime (worker pool, `runtimeStats()`), and model-loading helpers.
 */
import { definePlugin, type PluginDefinition, Registry } from '@priorgraph/core';
import { guiderNodes } from './guiders/index.ts';
import {
  CLIPTextEncode,
  CLIPTextEncodeSDXL,
  ClassLabelConditioning,
  ConditioningZeroOut,
  T5TextEncode,
} from './nodes/conditioning.ts';
import { imageConditioningNodes } from './nodes/image-conditioning.ts';
import { ImageCompare, LoadImage, PreviewImage, SaveImage, setPromptRegistry } from './nodes/images.ts';
import { CLIPLoader, DiffusersLoader, UNetLoader, VAELoader } from './nodes/loaders.ts';
import { Sampler, Scheduler } from './nodes/sampler.ts';
import { EmptyLatentImage, EmptyVideoLatent, VAEDecode, VAEEncode } from './nodes/vae.ts';
import { animationNodes } from './nodes/video-out.ts';
import { startRuntime, stopRuntime } from './runtime/index.ts';
import * as schedulers from './schedulers/index.ts';

export const nodes = [
  DiffusersLoader,
  UNetLoader,
  CLIPLoader,
  VAELoader,
  CLIPTextEncode,
  CLIPTextEncodeSDXL,
  T5TextEncode,
  ConditioningZeroOut,
  ClassLabelConditioning,
  ...imageConditioningNodes,
  VAEEncode,
  VAEDecode,
  EmptyLatentImage,
  EmptyVideoLatent,
  ...guiderNodes,
  Scheduler,
  Sampler,
  LoadImage,
  SaveImage,
  PreviewImage,
  ImageCompare,
  ...animationNodes,
] as const;

const plugin: PluginDefinition = definePlugin({
  name: 'priorgraph',
  version: '0.1.0',
  description:
    'Diffusion nodes on onnxruntime-node: loaders, encoders, denoisers, CFG / prior-swap guidance, schedulers, sampler, images',
  nodes,
  setup(host, log) {
    startRuntime(host, log);
  },
  async dispose() {
    await stopRuntime();
  },
});

// the ComfyUI "prompt" chunk of saved PNGs needs output indices of this plugin's nodes
const promptRegistry = new Registry();
promptRegistry.register(plugin, '@priorgraph/nodes');
setPromptRegistry(promptRegistry);

export default plugin;
export * as guidance from './guidance/index.ts';
export * from './guiders/index.ts';
export { decodePng, encodePng } from './image-utils.ts';
export { loadClip, loadDenoiserModel, loadFolder, loadVae } from './models/load.ts';
export { confinePath, scanModels } from './models/paths.ts';
export { denoiserSignature } from './models/signature.ts';
export { buildClipTokenizer, loadClipTokenizer, parseMerges } from './models/tokenizer.ts';
export * from './nodes/conditioning.ts';
export { encodeTexts } from './nodes/conditioning.ts';
export * from './nodes/image-conditioning.ts';
export { compareGrid, ImageCompare, LoadImage, PreviewImage, SaveImage, saveImages } from './nodes/images.ts';
export * from './nodes/loaders.ts';
export * from './nodes/sampler.ts';
export * from './nodes/vae.ts';
export { vaeDecode, vaeEncode } from './nodes/vae.ts';
export { createRng } from './rng.ts';
export { getRuntime, runtimeStats, sample, startRuntime, stopRuntime } from './runtime/index.ts';
export { ModelHandle, RuntimePool } from './runtime/pool.ts';
export { runSampling } from './sampling.ts';
export type * from './types.ts';
export { plugin, schedulers };
