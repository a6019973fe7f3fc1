/** VAE encode (image → latents × scaling_factor), decode (÷ scaling_factor), empty latents. */
import { defineNode, type NodeFacts } from '@priorgraph/core';
import {
  EMPTY_LATENT_DIVISOR,
  type LatentShapeFacts,
  type Shape4,
  shapeOf,
  tensorBytes,
  type VaeFacts,
  vaeFactsOf,
} from '../facts.ts';
import type { RuntimePool } from '../runtime/pool.ts';
import type { ImageValue, LatentValue, VaeValue } from '../types.ts';
import { clipOf, foldFrames, latentDims, unfoldFrames } from '../video.ts';
import { checkFinite, forInput, runtime } from './common.ts';

function asVae(v: unknown, input: string): VaeValue {
  const vae = v as VaeValue | null;
  if (vae?.kind !== 'VAE')
    throw new Error(`input "${input}": not a VAE (does the loaded folder have vae_encoder/ and vae_decoder/?)`);
  return vae;
}

/** Latents → IMAGE. A video latent [B, C, T, h, w] is decoded frame by frame (T folded into the batch):
 *  the IMAGE holds B·T frames with `frames: T`. */
export async function vaeDecode(vae: VaeValue, video: LatentValue, pool?: RuntimePool): Promise<ImageValue> {
  if (!vae.decoder) throw new Error(`${vae.name}: this VAE has no decoder (vae_decoder/model.onnx)`);
  const decoder = pool ? await pool.live(vae.decoder) : vae.decoder;
  const meta = vae.decoder.info.inputs[0];
  const wantC = meta.shape[1];
  const frames = latentDims(video.shape).frames;
  const lat = foldFrames(video.samples, video.shape);
  const [b, c, h, w] = lat.shape as Shape4;
  if (typeof wantC === 'number' && wantC > 0 && wantC !== c) {
    throw new Error(`${vae.decoder.path}: the decoder takes ${wantC}-channel latents, got ${c} channels`);
  }
  const z = new Float32Array(lat.samples.length);
  for (let i = 0; i < z.length; i++) z[i] = lat.samples[i] / vae.scalingFactor;
  const [out] = await decoder.run([{ name: meta.name, data: z, dims: [b, c, h, w] }]);
  const [ob, oc, oh, ow] = out.dims;
  if (out.dims.length !== 4 || ob !== b || oc < 3)
    throw new Error(`${vae.decoder.path}: decoder output has shape [${out.dims}]`);
  const src = out.data as Float32Array;
  checkFinite(`${vae.decoder.path}: decoded image`, src);
  const data = new Float32Array(b * oh * ow * 3);
  for (let n = 0; n < b; n++) {
    for (let p = 0; p < oh * ow; p++) {
      for (let k = 0; k < 3; k++) {
        const v = (src[(n * oc + k) * oh * ow + p] + 1) / 2;
        data[(n * oh * ow + p) * 3 + k] = v < 0 ? 0 : Math.min(v, 1);
      }
    }
  }
  return frames === null ? { data, shape: [b, oh, ow, 3] } : { data, shape: [b, oh, ow, 3], frames };
}

/** IMAGE → latents. Stills give [B, C, h, w]; video frames (`frames: T`) give a video latent
 *  [B, C, T, h, w], each frame encoded as a batch item. */
export async function vaeEncode(vae: VaeValue, img: ImageValue, pool?: RuntimePool): Promise<LatentValue> {
  const still = await encodeItems(vae, img, pool);
  const { clips, frames } = clipOf(img);
  if (img.frames === undefined) return still;
  const [, C, h, w] = still.shape as Shape4;
  const samples = unfoldFrames(still.samples, still.shape, frames);
  return { samples, shape: [clips, C, frames, h, w], scalingFactor: still.scalingFactor };
}

async function encodeItems(vae: VaeValue, img: ImageValue, pool?: RuntimePool): Promise<LatentValue> {
  if (!vae.encoder) throw new Error(`${vae.name}: this VAE has no encoder (vae_encoder/model.onnx)`);
  const encoder = pool ? await pool.live(vae.encoder) : vae.encoder;
  const meta = vae.encoder.info.inputs[0];
  const [b, h, w, c] = img.shape;
  const fh = meta.shape[2];
  const fw = meta.shape[3];
  if (typeof fh === 'number' && fh > 0 && (fh !== h || fw !== w)) {
    throw new Error(`${vae.encoder.path}: the encoder takes ${fh}×${fw} images, got ${h}×${w}`);
  }
  const x = new Float32Array(b * 3 * h * w);
  for (let n = 0; n < b; n++) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++)
        x[(n * 3 + k) * h * w + p] = img.data[(n * h * w + p) * c + Math.min(k, c - 1)] * 2 - 1;
    }
  }
  const [out] = await encoder.run([{ name: meta.name, data: x, dims: [b, 3, h, w] }]);
  const [ob, oc, oh, ow] = out.dims;
  const src = out.data as Float32Array;
  checkFinite(`${vae.encoder.path}: encoded latents`, src);
  // An encoder that returns the latent distribution (mean ‖ log-variance, 2C channels: optimum's
  // "latent_parameters") gives its mode, the mean, as diffusers does (retrieve_latents 'argmax').
  const C = vae.latentChannels ?? (out.name === 'latent_parameters' ? oc / 2 : oc);
  if (out.dims.length !== 4 || ob !== b || (oc !== C && oc !== 2 * C)) {
    throw new Error(
      `${vae.encoder.path}: encoder output has shape [${out.dims}], expected [${b},${C} or ${2 * C},h,w] for ${C}-channel latents`,
    );
  }
  const samples = new Float32Array(b * C * oh * ow);
  const per = C * oh * ow;
  for (let n = 0; n < b; n++) {
    const from = n * oc * oh * ow;
    for (let i = 0; i < per; i++) samples[n * per + i] = src[from + i] * vae.scalingFactor;
  }
  return { samples, shape: [b, C, oh, ow], scalingFactor: vae.scalingFactor };
}

/** VAE Decode's facts: the IMAGE is the latent × the VAE's own pixel factor (from its config, never
 *  assumed). Without VAE facts the image size stays unknown, and the memory estimate takes an
 *  SD-style factor of 8. */
export function decodeFacts(lat: LatentShapeFacts, vae: VaeFacts | null): NodeFacts {
  const { batch, frames, height, width } = latentDims(lat);
  const f = vae?.factor ?? 8;
  const shape: Shape4 = [batch * (frames ?? 1), height * f, width * f, 3];
  // the latent, its unscaled copy (and a video's frame-folded one), the decoder's output and the image
  const bytes = (frames === null ? 2 : 3) * tensorBytes(lat) + 2 * tensorBytes(shape);
  if (!vae) return { bytes };
  return { outputs: { IMAGE: frames === null ? { shape } : { shape, frames } }, bytes };
}

export const VAEDecode = defineNode({
  type: 'VAEDecode',
  version: 1,
  category: 'latent',
  displayName: 'VAE Decode',
  inputs: { samples: { kind: 'socket', type: 'LATENT' }, vae: { kind: 'socket', type: 'VAE' } },
  outputs: [{ name: 'IMAGE', type: 'IMAGE' }],
  infer(_inputs, linked) {
    const lat = shapeOf(linked.samples);
    if (!lat) return undefined;
    return decodeFacts(lat, vaeFactsOf(linked.vae));
  },
  async execute({ samples, vae }, ctx) {
    const v = asVae(vae, 'vae');
    return { IMAGE: await forInput('samples', () => vaeDecode(v, samples as LatentValue, runtime(ctx))) };
  },
});

export const VAEEncode = defineNode({
  type: 'VAEEncode',
  version: 1,
  category: 'latent',
  displayName: 'VAE Encode',
  description:
    'Image → latents, multiplied by the VAE config scaling_factor. Video frames (an IMAGE with frames) give a video latent [B, C, T, h, w].',
  inputs: { pixels: { kind: 'socket', type: 'IMAGE' }, vae: { kind: 'socket', type: 'VAE' } },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  infer(_inputs, linked) {
    const img = shapeOf(linked.pixels);
    if (!img) return undefined;
    // the image and its channel-first copy (the latent is 1/64 of that per channel); no LATENT facts:
    // its channel count is the VAE's, known when it loads
    return { bytes: 2 * tensorBytes(img) };
  },
  async execute({ pixels, vae }, ctx) {
    const v = asVae(vae, 'vae');
    return { LATENT: await forInput('pixels', () => vaeEncode(v, pixels as ImageValue, runtime(ctx))) };
  },
});

export const EmptyLatentImage = defineNode({
  type: 'EmptyLatentImage',
  version: 1,
  category: 'latent',
  displayName: 'Empty Latent Image',
  description:
    "Zero latents for an image of width × height pixels, as ComfyUI sizes them: the latent is (width ÷ 8) × (height ÷ 8), right for a VAE that downsamples by 8 (SD-style). The decoded image is latent × the VAE's factor: the demo shapes VAE downsamples by 4, so the default 64×64 gives its models their 8×8 latent and 32×32 images. The sampler replaces the zeros with seeded noise; its batch is this node's batch_size (the Sampler's batch_size only repeats a batch of 1).",
  inputs: {
    width: {
      kind: 'int',
      default: 64,
      min: 8,
      max: 8192,
      step: 8,
      description:
        'output image width in pixels with an SD-style VAE (latent width = width ÷ 8); with the demo shapes VAE (factor 4) the image is width ÷ 2: 64 → 32 pixels',
    },
    height: {
      kind: 'int',
      default: 64,
      min: 8,
      max: 8192,
      step: 8,
      description:
        'output image height in pixels with an SD-style VAE (latent height = height ÷ 8); with the demo shapes VAE (factor 4) the image is height ÷ 2: 64 → 32 pixels',
    },
    batch_size: {
      kind: 'int',
      default: 1,
      min: 1,
      max: 64,
      description: 'images per run: the Sampler keeps this batch (its own batch_size only repeats a batch of 1)',
    },
    // optional: ComfyUI's EmptyLatentImage has no channels input, and its prompts must validate
    channels: {
      kind: 'int',
      default: 4,
      min: 1,
      max: 64,
      optional: true,
      description: 'latent channels (4 for SD-style VAEs)',
    },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  infer({ width, height, batch_size, channels }) {
    const shape: [number, number, number, number] = [
      Number(batch_size),
      Number(channels ?? 4),
      Math.max(1, Math.floor(Number(height) / EMPTY_LATENT_DIVISOR)),
      Math.max(1, Math.floor(Number(width) / EMPTY_LATENT_DIVISOR)),
    ];
    return { outputs: { LATENT: { shape } }, bytes: tensorBytes(shape) };
  },
  execute({ width, height, batch_size, channels: ch }) {
    const channels = ch ?? 4;
    const h = Math.max(1, Math.floor(height / EMPTY_LATENT_DIVISOR));
    const w = Math.max(1, Math.floor(width / EMPTY_LATENT_DIVISOR));
    const l: LatentValue = {
      samples: new Float32Array(batch_size * channels * h * w),
      shape: [batch_size, channels, h, w],
    };
    return { LATENT: l };
  },
});

export const EmptyVideoLatent = defineNode({
  type: 'EmptyVideoLatent',
  version: 1,
  category: 'latent/video',
  displayName: 'Empty Video Latent',
  description:
    'Zero video latents [batch, channels, frames, height ÷ 8, width ÷ 8] for a video model; the sampler replaces them with seeded noise.',
  inputs: {
    // pixels ÷ 8 as EmptyLatentImage (the default gives the demo family's 8×8 latents)
    width: { kind: 'int', default: 64, min: 8, max: 8192, step: 8 },
    height: { kind: 'int', default: 64, min: 8, max: 8192, step: 8 },
    frames: { kind: 'int', default: 8, min: 1, max: 1024 },
    batch_size: { kind: 'int', default: 1, min: 1, max: 64 },
    channels: { kind: 'int', default: 4, min: 1, max: 64, optional: true, description: 'latent channels' },
  },
  outputs: [{ name: 'LATENT', type: 'LATENT' }],
  infer({ width, height, frames, batch_size, channels }) {
    const shape = videoLatentShape(Number(width), Number(height), Number(frames), Number(batch_size), channels);
    return { outputs: { LATENT: { shape } }, bytes: tensorBytes(shape) };
  },
  execute({ width, height, frames, batch_size, channels }) {
    const shape = videoLatentShape(width, height, frames, batch_size, channels);
    const l: LatentValue = { samples: new Float32Array(tensorBytes(shape) / 4), shape };
    return { LATENT: l };
  },
});

function videoLatentShape(
  width: number,
  height: number,
  frames: number,
  batch: number,
  channels: unknown,
): [number, number, number, number, number] {
  const h = Math.max(1, Math.floor(height / EMPTY_LATENT_DIVISOR));
  const w = Math.max(1, Math.floor(width / EMPTY_LATENT_DIVISOR));
  return [batch, typeof channels === 'number' ? channels : 4, frames, h, w];
}
