/**
 * Validation-time facts (core's `NodeFacts`) of this plugin's sockets, and the tensor sizes the
 * memory budget counts. LATENT and IMAGE facts are `{ shape }` (the same layout as the values:
 * latents [b, c, h, w], images [b, h, w, 3]); SCHEDULER facts carry the step limit of the chosen
 * scheduler. Float32 throughout: 4 bytes an element. The estimate counts the tensors that pass between
 * nodes and the copies a node makes of them, not a model's internal activations.
 */
import { DEFAULT_MAX_IMAGE_PIXELS, type HostInfo } from '@priorgraph/core';

export type Shape4 = [number, number, number, number];
export interface TensorFacts {
  shape: Shape4;
}
export interface SchedulerFacts {
  /** Most inference steps this scheduler config allows at denoise strength 1 (null: unknown). */
  maxSteps: (strength: number) => number;
  describe: string;
}

/** The pixel factor between latents and images (the VAEs here downsample by 8). */
export const VAE_FACTOR = 8;

export function tensorBytes(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1) * 4;
}

/** `{ shape }` of a linked LATENT or IMAGE, when its source told it. */
export function shapeOf(linked: unknown): Shape4 | null {
  const s = (linked as Partial<TensorFacts> | undefined)?.shape;
  return Array.isArray(s) && s.length === 4 && s.every((n) => Number.isFinite(n) && n > 0) ? (s as Shape4) : null;
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
