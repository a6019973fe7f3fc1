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

/** CLIP: tokenizer + text encoder (a CLIP BPE or T5 tokenizer). SDXL-style folders carry a second
 *  encoder (text_encoder_2 + tokenizer_2) in `second`. */
export interface ClipValue {
  kind: 'CLIP';
  path: string;
  tokenizer: ClipTokenizer;
  handle: ModelHandle;
  idsType: string;
  second?: Omit<ClipValue, 'kind' | 'second'>;
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
  /** further denoiser inputs this conditioning supplies, by ONNX input name, each [1, …]: SDXL's
   *  added conditioning (text_embeds, time_ids), a T5 encoder's encoder_attention_mask */
  extra?: Record<string, ExtraTensor>;
}

/** A named conditioning tensor (leading dimension 1 or the batch size). */
export interface ExtraTensor {
  data: Float32Array;
  dims: number[];
}

/** A still latent [B, C, h, w] or a video latent [B, C, T, h, w] (see video.ts). */
export type LatentShape = [number, number, number, number] | [number, number, number, number, number];

/** LATENT, ComfyUI-style: scaled latents ×scaling_factor when they came from a VAE encode. */
export interface LatentValue {
  samples: Float32Array;
  shape: LatentShape;
  /** the VAE scaling factor these latents were multiplied by (IP2P needs the unscaled image latent) */
  scalingFactor?: number;
}

/** IMAGE, ComfyUI's layout: [b, h, w, c] in [0, 1]. Video: the frames of each clip in the batch,
 *  [B·T, h, w, c], with `frames` = T and the frame rate (video.ts). */
export interface ImageValue {
  data: Float32Array;
  shape: [number, number, number, number];
  /** frames per clip (absent: stills) */
  frames?: number;
  /** frames per second of the clip, when known */
  fps?: number;
}

/** DENOISER: (model, conditioning) → x̂0 for (x_t, t), via the model's own prediction type and ᾱ. */
export interface DenoiserValue {
  kind: 'DENOISER';
  model: ModelValue;
  cond: ConditioningValue | null;
  /** 8-channel models: the image latent to concatenate (unscaled), or null for zeros */
  concat: LatentValue | null;
}

/** GUIDER: how the sampler combines denoisers each step. One shape on both sides of the sampling plan:
 *  D = DenoiserValue on the node side, DenoiserSpec in the plan the loop runs (runtime/plan.ts).
 *  `method` names the entry of the loop's table (guiders/index.ts); `params` are that method's inputs. */
export interface Guider<D, P = unknown> {
  kind: 'GUIDER';
  method: string;
  /** for logs and errors: cfg, prior-swap, ip2p, ... */
  label: string;
  /** the branches; the first is the reference (its schedule and parameterization are the run's) */
  denoisers: D[];
  params: P;
}

export type GuiderValue<P = unknown> = Guider<DenoiserValue, P>;

/** SCHEDULER: a name and config overrides (merged over the reference model's scheduler_config.json). */
export interface SchedulerValue {
  kind: 'SCHEDULER';
  name: SchedulerName;
  overrides: Partial<SchedulerConfig>;
  /** a full config taken from a model at the Scheduler node, if one was connected */
  base: Partial<SchedulerConfig> | null;
}
