/**
 * Image conditioning: a CLIP-vision-like image encoder (CLIPVisionLoader, CLIPVisionEncode →
 * CLIP_VISION_OUTPUT, ComfyUI's names) and the two conditionings built on its image embedding:
 *  - Zero-1-to-3 novel views (Zero123Conditioning): cc_projection(image_embeds ‖ relative camera pose)
 *    as the cross-attention context, plus the input view's latent for the denoiser's concat channels;
 *  - image variations (ImageEmbedConditioning, Versatile-Diffusion / unCLIP style): a projection of the
 *    image embedding alone.
 * The projection is a component of the denoiser's own diffusers folder (<folder>/<component>/model.onnx,
 * as diffusers' Zero123 pipeline keeps cc_projection); both nodes go through `projectEmbeds`. Their
 * negative conditioning is all zeros (Zero-1-to-3's and Versatile Diffusion's unconditional input); the
 * concat latent of the unconditional branch is zero too — a Denoiser without image_latent gives that.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defineNode, type HostInfo } from '@priorgraph/core';
import { confinePath, modelsFor } from '../models/paths.ts';
import type { ModelHandle, RuntimePool } from '../runtime/pool.ts';
import type { ConditioningValue, ImageValue, LatentValue, ModelValue, VaeValue } from '../types.ts';
import { checkFinite, confineValidator, forInput, handleValue, runtime } from './common.ts';
import { vaeEncode } from './vae.ts';

/** CLIP_VISION: an image encoder taking pixel_values [b,3,h,w] in [−1,1]. */
export interface ClipVisionValue {
  kind: 'CLIP_VISION';
  path: string;
  handle: ModelHandle;
  /** the fixed input size [h, w] */
  size: [number, number];
}

/** CLIP_VISION_OUTPUT: image_embeds [b, d] and, when the encoder gives them, tokens [b, n, k]. */
export interface ClipVisionOutputValue {
  kind: 'CLIP_VISION_OUTPUT';
  imageEmbeds: Float32Array;
  embedDims: [number, number];
  tokens: Float32Array | null;
  tokenDims: [number, number, number] | null;
}

/** The image encoder file of a folder (image_encoder/model.onnx) or the .onnx file itself. */
export function imageEncoderFile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const f = join(path, 'image_encoder', 'model.onnx');
  if (!existsSync(f)) throw new Error(`${path}: no image_encoder/model.onnx`);
  return f;
}

export async function loadClipVision(pool: RuntimePool, path: string, owner?: string): Promise<ClipVisionValue> {
  const file = imageEncoderFile(path);
  const handle = await pool.load(file, { owner });
  const px = handle.info.inputs.find((i) => i.name === 'pixel_values') ?? handle.info.inputs[0];
  const [, c, h, w] = px?.shape ?? [];
  if (px?.shape.length !== 4 || c !== 3 || typeof h !== 'number' || typeof w !== 'number' || h <= 0) {
    throw new Error(`${file}: not an image encoder (expected pixel_values [b,3,h,w] with a fixed size)`);
  }
  if (!handle.info.outputs.some((o) => o.name === 'image_embeds'))
    throw new Error(`${file}: not an image encoder (no image_embeds output)`);
  return { kind: 'CLIP_VISION', path: handle.path, handle, size: [h, w] };
}

/** IMAGE [b,h,w,c] in [0,1] → image_embeds (and tokens). */
export async function encodeImages(
  cv: ClipVisionValue,
  img: ImageValue,
  pool?: RuntimePool,
): Promise<ClipVisionOutputValue> {
  const [b, h, w, c] = img.shape;
  if (h !== cv.size[0] || w !== cv.size[1]) {
    throw new Error(`the image encoder ${cv.path} takes ${cv.size[0]}×${cv.size[1]} images, got ${h}×${w}`);
  }
  if (c !== 3 && c !== 4) throw new Error(`expected an RGB(A) image, got ${c} channels`);
  checkFinite('image', img.data);
  const x = new Float32Array(b * 3 * h * w);
  for (let n = 0; n < b; n++)
    for (let p = 0; p < h * w; p++)
      for (let k = 0; k < 3; k++) x[(n * 3 + k) * h * w + p] = img.data[(n * h * w + p) * c + k] * 2 - 1;
  const handle = pool ? await pool.live(cv.handle) : cv.handle;
  const name = handle.info.inputs.find((i) => i.name === 'pixel_values')?.name ?? handle.info.inputs[0].name;
  const outs = await handle.run([{ name, data: x, dims: [b, 3, h, w] }]);
  const e = outs.find((o) => o.name === 'image_embeds')!;
  const t = outs.find((o) => o.name === 'last_hidden_state') ?? null;
  checkFinite(`${cv.path}: image_embeds`, e.data as Float32Array);
  return {
    kind: 'CLIP_VISION_OUTPUT',
    imageEmbeds: e.data as Float32Array,
    embedDims: [e.dims[0], e.dims[1]],
    tokens: t ? (t.data as Float32Array) : null,
    tokenDims: t ? [t.dims[0], t.dims[1], t.dims[2]] : null,
  };
}

/** Zero-1-to-3's relative camera: [Δelevation (radians), sin Δazimuth, cos Δazimuth, Δradius],
 *  from degrees (elevation, azimuth) and the radius change. */
export function relativePose(
  elevationDeg: number,
  azimuthDeg: number,
  radius: number,
): [number, number, number, number] {
  for (const [k, v] of Object.entries({ elevation: elevationDeg, azimuth: azimuthDeg, radius })) {
    if (!Number.isFinite(v)) throw new Error(`input "${k}": ${v} is not a finite number`);
  }
  const a = (azimuthDeg * Math.PI) / 180;
  return [(elevationDeg * Math.PI) / 180, Math.sin(a), Math.cos(a), radius];
}

/** The projection component of a denoiser's diffusers folder: <folder>/<component>/model.onnx. */
export function projectionFile(m: ModelValue, component: string): string {
  const f = join(dirname(dirname(m.path)), component, 'model.onnx');
  if (!existsSync(f)) {
    throw new Error(
      `${m.path}: its folder has no ${component}/model.onnx — this model is not conditioned this way (load the matching fine-tune)`,
    );
  }
  return f;
}

/** Run a denoiser folder's projection on image_embeds [b,d] (plus further [b,k] inputs, e.g. the pose)
 *  → encoder_hidden_states [b, seq, dim]; also the zero conditioning of the same shape. */
export async function projectEmbeds(
  pool: RuntimePool,
  m: ModelValue,
  component: string,
  cvo: ClipVisionOutputValue,
  extra: Record<string, number[]>,
  owner: string | undefined,
  label: string,
): Promise<{ positive: ConditioningValue; negative: ConditioningValue }> {
  const file = projectionFile(m, component);
  const h = await pool.load(file, { owner });
  const [b, d] = cvo.embedDims;
  const want = h.input('image_embeds')?.shape[1];
  if (typeof want === 'number' && want > 0 && want !== d) {
    throw new Error(`${file} takes ${want}-d image embeddings, the image encoder gave ${d}-d`);
  }
  const feeds = [{ name: 'image_embeds', data: cvo.imageEmbeds, dims: [b, d] }];
  for (const [name, row] of Object.entries(extra)) {
    const k = h.input(name)?.shape[1];
    if (!h.input(name)) throw new Error(`${file} has no input "${name}"`);
    if (typeof k === 'number' && k > 0 && k !== row.length)
      throw new Error(`${file}: "${name}" has ${k} values, got ${row.length}`);
    const data = new Float32Array(b * row.length);
    for (let i = 0; i < b; i++) data.set(row, i * row.length);
    feeds.push({ name, data, dims: [b, row.length] });
  }
  const [out] = await h.run(feeds);
  if (out.dims.length !== 3 || out.dims[0] !== b) {
    throw new Error(`${file}: output has shape [${out.dims}], expected [${b},seq,dim]`);
  }
  const ehs = out.data as Float32Array;
  checkFinite(`${file}: output`, ehs);
  const ehsDims: [number, number, number] = [b, out.dims[1], out.dims[2]];
  const base = { kind: 'CONDITIONING' as const, ehsDims, pooled: null, classLabel: null };
  return {
    positive: { ...base, ehs, pooled: cvo.imageEmbeds.slice(), text: label },
    negative: { ...base, ehs: new Float32Array(ehs.length), text: `zero (${label})` },
  };
}

function asClipVision(v: unknown, input: string): ClipVisionValue {
  const c = v as ClipVisionValue | null;
  if (c?.kind !== 'CLIP_VISION') throw new Error(`input "${input}": not a CLIP_VISION (use Load CLIP Vision)`);
  return c;
}

function asClipVisionOutput(v: unknown, input: string): ClipVisionOutputValue {
  const c = v as ClipVisionOutputValue | null;
  if (c?.kind !== 'CLIP_VISION_OUTPUT')
    throw new Error(`input "${input}": not a CLIP_VISION_OUTPUT (use CLIP Vision Encode)`);
  return c;
}

function asModelIn(v: unknown, input: string): ModelValue {
  const m = v as ModelValue | null;
  if (m?.kind !== 'MODEL') throw new Error(`input "${input}": not a MODEL`);
  return m;
}

const clipVisionModels = (h: HostInfo) => modelsFor(h, 'clip_vision');

export const CLIPVisionLoader = defineNode({
  type: 'CLIPVisionLoader',
  version: 1,
  category: 'loaders',
  displayName: 'Load CLIP Vision',
  description:
    'Loads an image encoder: a folder with image_encoder/model.onnx (pixel_values [b,3,h,w] in [−1,1] → image_embeds, optionally last_hidden_state), or that .onnx file.',
  inputs: { clip_name: { kind: 'combo', options: clipVisionModels, description: 'folder or file under a model root' } },
  outputs: [{ name: 'CLIP_VISION', type: 'CLIP_VISION' }],
  validate: confineValidator('clip_name'),
  async execute({ clip_name }, ctx) {
    return forInput('clip_name', async () => {
      const p = confinePath(clip_name, ctx.host.modelRoots, 'clip_name');
      return { CLIP_VISION: handleValue(await loadClipVision(runtime(ctx), p, ctx.promptId)) };
    });
  },
});

export const CLIPVisionEncode = defineNode({
  type: 'CLIPVisionEncode',
  version: 1,
  category: 'conditioning',
  displayName: 'CLIP Vision Encode',
  description: 'Image → image embedding (image_embeds [b,d], and tokens when the encoder gives them).',
  inputs: {
    clip_vision: { kind: 'socket', type: 'CLIP_VISION' },
    image: { kind: 'socket', type: 'IMAGE' },
    crop: {
      kind: 'combo',
      options: ['center', 'none'],
      default: 'center',
      optional: true,
      description:
        "ComfyUI's input, accepted for its prompts: images must already be the encoder's size (nothing is resized)",
    },
  },
  outputs: [{ name: 'CLIP_VISION_OUTPUT', type: 'CLIP_VISION_OUTPUT' }],
  async execute({ clip_vision, image }, ctx) {
    const cv = asClipVision(clip_vision, 'clip_vision');
    const out = await forInput('image', () => encodeImages(cv, image as ImageValue, runtime(ctx)));
    return { CLIP_VISION_OUTPUT: out };
  },
});

export const Zero123Conditioning = defineNode({
  type: 'Zero123Conditioning',
  version: 1,
  category: 'conditioning',
  displayName: 'Camera Pose Conditioning (Zero-1-to-3)',
  description:
    "Zero-1-to-3: the cross-attention context is the model folder's cc_projection of [image_embeds ‖ Δelevation (rad), sin Δazimuth, cos Δazimuth, Δradius] (the target camera relative to the input view's); the input view's latent goes to the Denoiser's image_latent (concat channels). NEGATIVE is all zeros; give the negative Denoiser no image_latent (zeros), as Zero-1-to-3's unconditional input.",
  inputs: {
    model: { kind: 'socket', type: 'MODEL', description: 'the novel-view model (its folder holds cc_projection/)' },
    clip_vision_output: { kind: 'socket', type: 'CLIP_VISION_OUTPUT', description: 'the input view, encoded' },
    init_image: { kind: 'socket', type: 'IMAGE', description: 'the input view' },
    vae: { kind: 'socket', type: 'VAE' },
    elevation: { kind: 'float', default: 0, min: -180, max: 180, step: 1, description: 'Δ elevation, degrees' },
    azimuth: { kind: 'float', default: 60, min: -360, max: 360, step: 1, description: 'Δ azimuth, degrees' },
    radius: { kind: 'float', default: 0, min: -10, max: 10, step: 0.05, description: 'Δ camera distance' },
  },
  outputs: [
    { name: 'positive', type: 'CONDITIONING' },
    { name: 'negative', type: 'CONDITIONING' },
    { name: 'image_latent', type: 'LATENT', description: "the input view's latent (VAE Encode of init_image)" },
  ],
  async execute({ model, clip_vision_output, init_image, vae, elevation, azimuth, radius }, ctx) {
    const m = asModelIn(model, 'model');
    const cvo = asClipVisionOutput(clip_vision_output, 'clip_vision_output');
    const img = init_image as ImageValue;
    if (img?.shape?.[0] !== cvo.embedDims[0]) {
      throw new Error(
        `input "init_image": ${img?.shape?.[0]} image(s), but clip_vision_output encodes ${cvo.embedDims[0]}`,
      );
    }
    if (m.sig.concatChannels <= 0)
      throw new Error(
        `input "model": ${m.path} takes no concatenated image latent (${m.sig.inChannels} input channels)`,
      );
    const pose = relativePose(elevation, azimuth, radius);
    const pool = runtime(ctx);
    const { positive, negative } = await forInput('model', () =>
      projectEmbeds(
        pool,
        m,
        'cc_projection',
        cvo,
        { pose },
        ctx.promptId,
        `pose Δel ${elevation}° Δaz ${azimuth}° Δr ${radius}`,
      ),
    );
    const v = vae as VaeValue | null;
    if (v?.kind !== 'VAE') throw new Error('input "vae": not a VAE');
    const lat: LatentValue = await forInput('init_image', () => vaeEncode(v, img, pool));
    if (lat.shape[1] !== m.sig.concatChannels)
      throw new Error(
        `input "vae": gives ${lat.shape[1]}-channel latents, ${m.path} concatenates ${m.sig.concatChannels}`,
      );
    return { positive, negative, image_latent: lat };
  },
});

export const ImageEmbedConditioning = defineNode({
  type: 'ImageEmbedConditioning',
  version: 1,
  category: 'conditioning',
  displayName: 'Image Embedding Conditioning (image variation)',
  description:
    "Versatile-Diffusion / unCLIP-style image variation: the cross-attention context is the model folder's image_projection of the image embedding (no text). NEGATIVE is all zeros (the model's unconditional input).",
  inputs: {
    model: {
      kind: 'socket',
      type: 'MODEL',
      description: 'the image-variation model (its folder holds image_projection/)',
    },
    clip_vision_output: { kind: 'socket', type: 'CLIP_VISION_OUTPUT' },
  },
  outputs: [
    { name: 'positive', type: 'CONDITIONING' },
    { name: 'negative', type: 'CONDITIONING' },
  ],
  async execute({ model, clip_vision_output }, ctx) {
    const m = asModelIn(model, 'model');
    const cvo = asClipVisionOutput(clip_vision_output, 'clip_vision_output');
    const r = await forInput('model', () =>
      projectEmbeds(runtime(ctx), m, 'image_projection', cvo, {}, ctx.promptId, 'image embedding'),
    );
    return r;
  },
});

export const imageConditioningNodes = [
  CLIPVisionLoader,
  CLIPVisionEncode,
  Zero123Conditioning,
  ImageEmbedConditioning,
] as const;
