/**
 * The values that travel along the plugin's sockets (see docs/contracts.md §3). Each carries a
 * `sizeOf` for the executor's byte-bounded cache where it holds large arrays.
 */
import type { PredictionType } from './guidance/index.ts';
import type { DenoiserSignature } from './models/signature.ts';
import type { ClipTokenizer } from './models/tokenizer.ts';
import type { ModelHandle } from './runtime/pool.ts';
import type { SchedulerConfig, SchedulerName } from './schedulers/index.ts';

/** MODEL: a denoiser network (UNet or transformer) with its schedule. */
export interface ModelValue {
  kind: 'MODEL';
  /** the .onnx file (real path) */
  path: string;
  /** display name: the folder or file name */
  name: string;
  handle: ModelHandle;
  sig: DenoiserSignature;
  /** scheduler_config.json of its folder ({} when none): travels with the model */
  schedulerConfig: Partial<SchedulerConfig>;
  predictionType: PredictionType;
  /** model_index.json → priorgraph.latent_space, when declared */
  latentSpace: string | null;
}

/** CLIP: tokenizer + text encoder. */
export interface ClipValue {
  kind: 'CLIP';
  path: string;
  tokenizer: ClipTokenizer;
  handle: ModelHandle;
  idsType: string;
}

/** VAE: encoder and/or decoder with the config's scaling factor. */
export interface VaeValue {
  kind: 'VAE';
  name: string;
  encoder: ModelHandle | null;
  decoder: ModelHandle | null;
  scalingFactor: number;
  /** latent channels C (config.json latent_channels, or the decoder's fixed input channels); null = unknown */
  latentChannels: number | null;
}

/** CONDITIONING: text-encoder hidden states ([1, seq, dim]) and/or a class label. */
export interface ConditioningValue {
  kind: 'CONDITIONING';
  ehs: Float32Array | null;
  ehsDims: [number, number, number] | null;
  pooled: Float32Array | null;
  classLabel: number | null;
  /** the prompt (or "" / class id) for display */
  text: string;
}

/** LATENT, ComfyUI-style: scaled latents ×scaling_factor when they came from a VAE encode. */
export interface LatentValue {
  samples: Float32Array;
  shape: [number, number, number, number];
  /** the VAE scaling factor these latents were multiplied by (IP2P needs the unscaled image latent) */
  scalingFactor?: number;
}

/** IMAGE, ComfyUI's layout: [b, h, w, c] in [0, 1]. */
export interface ImageValue {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** DENOISER: (model, conditioning) → x̂0 for (x_t, t), via the model's own prediction type and ᾱ. */
export interface DenoiserValue {
  kind: 'DENOISER';
  model: ModelValue;
  cond: ConditioningValue | null;
  /** 8-channel models: the image latent to concatenate (unscaled), or null for zeros */
  concat: LatentValue | null;
}

export type GuiderValue =
  | { kind: 'GUIDER'; mode: 'single'; d: DenoiserValue }
  | {
      kind: 'GUIDER';
      mode: 'cfg';
      cond: DenoiserValue;
      uncond: DenoiserValue;
      scale: number;
      rescale: number;
      intervalLo: number | null;
      intervalHi: number | null;
      combine: 'cfg' | 'apg' | 'cfgzero';
      apgEta: number;
      apgNormThreshold: number;
      label: string;
    }
  | {
      kind: 'GUIDER';
      mode: 'two';
      full: DenoiserValue;
      imageOnly: DenoiserValue;
      uncond: DenoiserValue;
      textScale: number;
      imageScale: number;
      rescale: number;
      label: string;
    };

/** SCHEDULER: a name and config overrides (merged over the reference model's scheduler_config.json). */
export interface SchedulerValue {
  kind: 'SCHEDULER';
  name: SchedulerName;
  overrides: Partial<SchedulerConfig>;
  /** a full config taken from a model at the Scheduler node, if one was connected */
  base: Partial<SchedulerConfig> | null;
}
