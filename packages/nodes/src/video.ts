/**
 * The frame axis. A LATENT is a still [B, C, h, w] or a video [B, C, T, h, w] (diffusers' video UNet
 * layout); an IMAGE carries video as its frames in the batch, [B·T, H, W, C] with `frames: T` (and
 * `fps`). Everything that walks latents per batch item uses `latentDims` here, so the same code serves
 * both ranks: a batch item is C·T·h·w values (C·h·w for a still), channel-major.
 */
/** A still latent [B, C, h, w] or a video latent [B, C, T, h, w]. */
export type LatentShape = [number, number, number, number] | [number, number, number, number, number];

export interface LatentDims {
  batch: number;
  channels: number;
  /** T, or null for a still latent */
  frames: number | null;
  height: number;
  width: number;
  /** values per channel of one batch item: T·h·w (h·w for a still) */
  perChannel: number;
  /** the axes after the channel axis: [T, h, w] or [h, w] */
  inner: number[];
}

export function latentDims(shape: readonly number[]): LatentDims {
  if (shape.length !== 4 && shape.length !== 5) {
    throw new Error(`a latent has shape [B,C,h,w] or [B,C,T,h,w], got [${shape}]`);
  }
  const [batch, channels, ...inner] = shape;
  const frames = inner.length === 3 ? inner[0] : null;
  const height = inner[inner.length - 2];
  const width = inner[inner.length - 1];
  return { batch, channels, frames, height, width, perChannel: inner.reduce((a, b) => a * b, 1), inner };
}

/** "8 frames" / "a still" for messages. */
export function describeFrames(frames: number | null): string {
  return frames === null ? 'a still latent [B,C,h,w]' : `a video latent of ${frames} frames [B,C,T,h,w]`;
}

/** The latent shape with another batch size. */
export function withBatch(shape: LatentShape, batch: number): LatentShape {
  return [batch, ...shape.slice(1)] as LatentShape;
}

/** [B, C, T, h, w] → [B·T, C, h, w] (each frame a batch item: what a still-image VAE decodes). */
export function foldFrames(samples: Float32Array, shape: LatentShape): { samples: Float32Array; shape: LatentShape } {
  const d = latentDims(shape);
  if (d.frames === null) return { samples, shape };
  const T = d.frames;
  const hw = d.height * d.width;
  const out = new Float32Array(samples.length);
  for (let b = 0; b < d.batch; b++)
    for (let c = 0; c < d.channels; c++)
      for (let t = 0; t < T; t++) {
        const from = ((b * d.channels + c) * T + t) * hw;
        out.set(samples.subarray(from, from + hw), ((b * T + t) * d.channels + c) * hw);
      }
  return { samples: out, shape: [d.batch * T, d.channels, d.height, d.width] };
}

/** [B·T, C, h, w] → [B, C, T, h, w] (the inverse of foldFrames). */
export function unfoldFrames(samples: Float32Array, shape: LatentShape, frames: number): Float32Array {
  const d = latentDims(shape);
  if (d.frames !== null || d.batch % frames !== 0)
    throw new Error(`cannot unfold [${shape}] into clips of ${frames} frames`);
  const B = d.batch / frames;
  const hw = d.height * d.width;
  const out = new Float32Array(samples.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < frames; t++)
      for (let c = 0; c < d.channels; c++) {
        const from = ((b * frames + t) * d.channels + c) * hw;
        out.set(samples.subarray(from, from + hw), ((b * d.channels + c) * frames + t) * hw);
      }
  return out;
}

/**
 * A latent laid out for `target` [B, C', …inner]: a still [B|1, C', h, w] is repeated over the target's
 * frames (an image latent conditioning every frame of a video model); a latent of the target's own rank
 * passes through. Batch 1 is repeated over the target batch. Values are multiplied by `k`.
 */
export function broadcastLatent(
  samples: Float32Array,
  shape: LatentShape,
  target: { batch: number; channels: number; inner: readonly number[] },
  k = 1,
): Float32Array {
  const d = latentDims(shape);
  const tFrames = target.inner.length === 3 ? target.inner[0] : null;
  const [th, tw] = target.inner.slice(-2);
  const tPerChannel = target.inner.reduce((a, b) => a * b, 1);
  const fits =
    d.channels === target.channels && (d.batch === 1 || d.batch === target.batch) && d.height === th && d.width === tw;
  if (!fits) throw new Error(`a latent [${shape}] does not fit [${target.batch},${target.channels},${target.inner}]`);
  if (d.frames !== null && d.frames !== tFrames) {
    throw new Error(`a latent of ${d.frames} frames does not fit ${describeFrames(tFrames)}`);
  }
  const repeat = tPerChannel / d.perChannel; // T when a still conditions a video, else 1
  const out = new Float32Array(target.batch * target.channels * tPerChannel);
  for (let b = 0; b < target.batch; b++) {
    const src = (d.batch === 1 ? 0 : b) * d.channels * d.perChannel;
    for (let c = 0; c < d.channels; c++) {
      const from = src + c * d.perChannel;
      for (let t = 0; t < repeat; t++) {
        const to = (b * target.channels + c) * tPerChannel + t * d.perChannel;
        for (let i = 0; i < d.perChannel; i++) out[to + i] = samples[from + i] * k;
      }
    }
  }
  return out;
}

/** Why a model cannot take latents of `frames` frames (null: a still latent), or null when it can. */
export function framesRefusal(
  sig: { video: boolean; frames: number | null; maxFrames?: number | null },
  frames: number | null,
  what = 'the model',
): string | null {
  if (!sig.video && frames !== null) return `${what} is a still-image model and cannot take ${describeFrames(frames)}`;
  if (sig.video && frames === null)
    return `${what} is a video model (${sig.frames ?? (sig.maxFrames ? `1 to ${sig.maxFrames}` : 'any number of')} frames) and needs a video latent [B,C,T,h,w] (EmptyVideoLatent), not a still latent`;
  if (sig.video && sig.frames && frames !== sig.frames)
    return `${what} takes ${sig.frames} frames, the latent has ${frames}`;
  if (sig.video && frames !== null && sig.maxFrames && frames > sig.maxFrames)
    return `${what} takes at most ${sig.maxFrames} frames (its config.json says so: priorgraph.frames.max), the latent has ${frames}`;
  return null;
}

/** Frame metadata of an IMAGE: T frames per clip (1 for stills) and the frame rate, when it is video. */
export function clipOf(img: { shape: readonly number[]; frames?: number; fps?: number }): {
  clips: number;
  frames: number;
  fps: number | null;
} {
  const frames = img.frames ?? 1;
  if (img.shape[0] % frames !== 0)
    throw new Error(`an IMAGE of ${img.shape[0]} items cannot hold clips of ${frames} frames`);
  return { clips: img.shape[0] / frames, frames, fps: img.fps ?? null };
}
