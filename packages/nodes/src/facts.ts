/**
 * Validation-time facts (core's `NodeFacts`) of this plugin's sockets, and the tensor sizes the
 * memory budget counts. LATENT and IMAGE facts are `{ shape }` (the same layout as the values:
 * latents [b, c, h, w] or [b, c, t, h, w], images [b, h, w, 3], plus `frames` for video frames);
 * SCHEDULER facts carry the step limit of the chosen scheduler; MODEL, DENOISER and GUIDER facts
 * carry what the models' graphs say about the latents they take (`ModelFacts`). Float32 throughout: 4 bytes an element. The estimate counts the tensors that pass between
 * nodes and the copies a node makes of them, not a model's internal activations.
 */
import { DEFAULT_MAX_IMAGE_PIXELS, type HostInfo } from '@priorgraph/core';

export type Shape4 = [number, number, number, number];
export type LatentShapeFacts = Shape4 | [number, number, number, number, number];
export interface TensorFacts {
  shape: LatentShapeFacts;
  /** IMAGE: frames per clip of a video */
  frames?: number;
}

/** What a loader can tell of a denoiser without loading it (its ONNX graph's `sample` input). */
export interface ModelFacts {
  /** the model file */
  path: string;
  video: boolean;
  /** T when the model fixes it */
  frames: number | null;
  /** the most frames it takes when T is dynamic (null: no stated limit) */
  maxFrames?: number | null;
}
/** GUIDER facts: the models of its denoisers, where their loaders told them. */
export interface GuiderFacts {
  models: ModelFacts[];
}
export interface SchedulerFacts {
  /** Most inference steps this scheduler config allows at denoise strength 1 (null: unknown). */
  maxSteps: (strength: number) => number;
  describe: string;
}

/** ComfyUI's pixel factor of Empty Latent Image (latent = pixels ÷ 8): a convention of that node, not a
 *  fact of any VAE. What a VAE really does is in its `VaeFacts`. */
export const EMPTY_LATENT_DIVISOR = 8;

/** VAE facts, from the VAE's config.json (its layout) without loading it. */
export interface VaeFacts {
  /** the VAE folder */
  path: string;
  /** pixels per latent cell along each side (8 for SD-style VAEs; 4 for the demo shapes VAE) */
  factor: number;
  /** latent channels, when the config says */
  channels: number | null;
}

export function vaeFactsOf(linked: unknown): VaeFacts | null {
  const v = linked as Partial<VaeFacts> | undefined;
  return typeof v?.path === 'string' && typeof v.factor === 'number' && v.factor > 0 ? (v as VaeFacts) : null;
}

export function tensorBytes(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1) * 4;
}

/** `{ shape }` of a linked LATENT or IMAGE, when its source told it. */
export function shapeOf(linked: unknown): LatentShapeFacts | null {
  const s = (linked as Partial<TensorFacts> | undefined)?.shape;
  const ok = Array.isArray(s) && (s.length === 4 || s.length === 5) && s.every((n) => Number.isFinite(n) && n > 0);
  return ok ? (s as LatentShapeFacts) : null;
}

/** Frames per clip of a linked IMAGE (1: stills), when its source told its shape. */
export function imageFramesOf(linked: unknown): number | null {
  if (!shapeOf(linked)) return null;
  const f = (linked as Partial<TensorFacts>).frames;
  return typeof f === 'number' && f > 0 ? f : 1;
}

export function modelFactsOf(linked: unknown): ModelFacts | null {
  const m = linked as Partial<ModelFacts> | undefined;
  return typeof m?.path === 'string' && typeof m.video === 'boolean' ? (m as ModelFacts) : null;
}

export function guiderFactsOf(linked: unknown): GuiderFacts | null {
  const g = linked as Partial<GuiderFacts> | undefined;
  return Array.isArray(g?.models) ? (g as GuiderFacts) : null;
}

export function schedulerFactsOf(linked: unknown): SchedulerFacts | null {
  const f = linked as Partial<SchedulerFacts> | undefined;
  return typeof f?.maxSteps === 'function' ? (f as SchedulerFacts) : null;
}

/** The largest image (width × height) loaders decode: `host.config.maxImagePixels` or 64 MP. */
export function maxImagePixels(host: HostInfo): number {
  const v = host.config?.maxImagePixels;
  return typeof v === 'number' && v > 0 ? v : DEFAULT_MAX_IMAGE_PIXELS;
}
