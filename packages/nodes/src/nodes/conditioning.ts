/** Encoders: text → CONDITIONING (and the empty-prompt conditioning), class labels → CONDITIONING. */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defineNode } from '@priorgraph/core';
import type { RuntimePool } from '../runtime/pool.ts';
import type { ClipValue, ConditioningValue, ModelValue } from '../types.ts';
import { checkFinite, forInput, runtime } from './common.ts';

type EncoderPart = Omit<ClipValue, 'kind' | 'second'>;

/** What one text encoder gives for a batch of prompts: hidden states [n, seq, dim] (the last layer, or
 *  the penultimate hidden_states.{N−1} output), the pooled/projected embedding [n, p] when it has one,
 *  and the attention mask [n, seq] (1 up to the end token) it was called with. */
export interface EncoderOutput {
  hidden: Float32Array;
  dims: [number, number, number];
  pooled: Float32Array | null;
  pooledDim: number;
  mask: Float32Array;
}

/** Tokenize (pad/truncate to `maxLength`, default the tokenizer's) and run the encoder once for all
 *  prompts. An encoder with an attention_mask input (T5) is given the mask. */
export async function runTextEncoder(
  part: EncoderPart,
  texts: string[],
  pool?: RuntimePool,
  opts: { layer?: 'last' | 'penultimate'; maxLength?: number } = {},
): Promise<EncoderOutput> {
  const L = opts.maxLength ?? part.tokenizer.maxLength;
  const n = texts.length;
  const ids = new Int32Array(n * L);
  const mask = new Float32Array(n * L);
  for (let i = 0; i < n; i++) {
    let raw = part.tokenizer.encodeRaw(texts[i]);
    if (raw.length > L) raw = [...raw.slice(0, L - 1), raw[raw.length - 1]];
    for (let j = 0; j < L; j++) {
      ids[i * L + j] = j < raw.length ? raw[j] : part.tokenizer.padId;
      mask[i * L + j] = j < raw.length ? 1 : 0;
    }
  }
  const handle = pool ? await pool.live(part.handle) : part.handle;
  const inputs = [{ name: 'input_ids', data: ids, dims: [n, L] }];
  if (handle.info.inputs.some((x) => x.name === 'attention_mask'))
    inputs.push({ name: 'attention_mask', data: Int32Array.from(mask), dims: [n, L] });
  const outs = await handle.run(inputs);
  let hidden = outs.find((o) => o.name === 'last_hidden_state') ?? outs[0];
  if (opts.layer === 'penultimate') {
    const layers = outs.filter((o) => /^hidden_states\.\d+$/.test(o.name));
    const last = Math.max(...layers.map((o) => Number(o.name.split('.')[1])));
    const pen = layers.find((o) => o.name === `hidden_states.${last - 1}`);
    if (!pen) {
      throw new Error(
        `${part.path}: the text encoder has no hidden_states.N outputs, needed for the penultimate layer (export it with output_hidden_states, as optimum does for SDXL)`,
      );
    }
    hidden = pen;
  }
  const pooled = outs.find((o) => o.name === 'text_embeds') ?? outs.find((o) => o.name === 'pooler_output') ?? null;
  if (hidden.dims.length !== 3 || hidden.dims[0] !== n || hidden.dims[1] !== L) {
    throw new Error(`${part.path}: ${hidden.name} has shape [${hidden.dims}], expected [${n},${L},dim]`);
  }
  const h = hidden.data as Float32Array;
  checkFinite(`${part.path}: ${hidden.name}`, h);
  return {
    hidden: h,
    dims: [n, L, hidden.dims[2]],
    pooled: pooled ? (pooled.data as Float32Array) : null,
    pooledDim: pooled ? pooled.dims[1] : 0,
    mask,
  };
}

/** Tokenize (pad/truncate to the encoder's length) and run the text encoder once for all prompts. */
export async function encodeTexts(
  clip: ClipValue,
  texts: string[],
  pool?: RuntimePool,
  maxLength?: number,
): Promise<ConditioningValue[]> {
  const o = await runTextEncoder(clip, texts, pool, { maxLength });
  const [, seq, dim] = o.dims;
  const withMask = clip.handle.info.inputs.some((x) => x.name === 'attention_mask');
  return texts.map((text, i) => ({
    kind: 'CONDITIONING',
    ehs: o.hidden.slice(i * seq * dim, (i + 1) * seq * dim),
    ehsDims: [1, seq, dim],
    pooled: o.pooled ? o.pooled.slice(i * o.pooledDim, (i + 1) * o.pooledDim) : null,
    classLabel: null,
    text,
    ...(withMask
      ? { extra: { encoder_attention_mask: { data: o.mask.slice(i * seq, (i + 1) * seq), dims: [1, seq] } } }
      : {}),
  }));
}

export const CLIPTextEncode = defineNode({
  type: 'CLIPTextEncode',
  version: 1,
  category: 'conditioning',
  displayName: 'CLIP Text Encode',
  description:
    'Encodes a prompt with the CLIP BPE tokenizer (padded/truncated to the model length) and the text encoder. Also outputs the empty-prompt conditioning for unconditional branches.',
  inputs: {
    clip: { kind: 'socket', type: 'CLIP' },
    text: { kind: 'string', default: '', multiline: true },
  },
  outputs: [
    { name: 'CONDITIONING', type: 'CONDITIONING' },
    { name: 'EMPTY', type: 'CONDITIONING', description: 'the empty-prompt ("") conditioning' },
  ],
  async execute({ clip, text }, ctx) {
    const c = clip as ClipValue | null;
    if (c?.kind !== 'CLIP') throw new Error('input "clip": not a CLIP (does the loaded folder have a text_encoder/?)');
    const [cond, empty] = await forInput('clip', () => encodeTexts(c, [text, ''], runtime(ctx)));
    return { CONDITIONING: cond, EMPTY: empty };
  },
});

/** The class count of a class-conditional transformer, from its diffusers config.json
 *  (num_embeds_ada_norm; DiT's label table has one more row, the null class). */
export function numClassesOf(m: ModelValue): number {
  const n = classCountOf(m);
  if (n === null) {
    const file = join(dirname(m.path), 'config.json');
    throw new Error(
      existsSync(file)
        ? `${file}: no num_embeds_ada_norm (number of classes)`
        : `${m.path}: no config.json next to it to read the number of classes`,
    );
  }
  return n;
}

/** numClassesOf, or null when no config.json next to the model states it (a bare .onnx file). */
export function classCountOf(m: ModelValue): number | null {
  const file = join(dirname(m.path), 'config.json');
  if (!existsSync(file)) return null;
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as { num_embeds_ada_norm?: unknown; num_classes?: unknown };
  const n = cfg.num_embeds_ada_norm ?? cfg.num_classes;
  return typeof n === 'number' ? n : null;
}

export const ClassLabelConditioning = defineNode({
  type: 'ClassLabelConditioning',
  version: 1,
  category: 'conditioning',
  displayName: 'Class Label',
  description:
    "A class-label conditioning for class-conditional models (DiT-style), fed to the model's class_labels input. The null class (DiT: the number of classes, 1000 for ImageNet) is the unconditional label: with a model connected, null_class takes it from the model's config.json and class_id is checked against it.",
  inputs: {
    class_id: { kind: 'int', default: 0, min: 0, max: 1_000_000 },
    null_class: {
      kind: 'boolean',
      default: false,
      optional: true,
      description: "the model's null (unconditional) class (needs the model connected)",
    },
    model: { kind: 'socket', type: 'MODEL', optional: true, description: 'the class-conditional model' },
  },
  outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING' }],
  async execute({ class_id, null_class, model }) {
    const m = (model as ModelValue | undefined) ?? null;
    let id = class_id;
    if (m) {
      const n = await forInput('model', () => numClassesOf(m));
      if (null_class) id = n;
      else if (class_id > n) throw new Error(`input "class_id": ${class_id} is past the null class ${n} of ${m.path}`);
    } else if (null_class)
      throw new Error('input "model": null_class needs the model connected (to read its class count)');
    const c: ConditioningValue = {
      kind: 'CONDITIONING',
      ehs: null,
      ehsDims: null,
      pooled: null,
      classLabel: id,
      text: null_class ? `null class ${id}` : `class ${id}`,
    };
    return { CONDITIONING: c };
  },
});

export const T5TextEncode = defineNode({
  type: 'T5TextEncode',
  version: 1,
  category: 'conditioning',
  displayName: 'T5 Text Encode',
  description:
    "Encodes a prompt with a T5 encoder (PixArt-style): tokenizer.json tokens padded to max_length, the encoder called with the attention mask, and the mask handed on to the denoiser's encoder_attention_mask. Also outputs the empty-prompt conditioning.",
  inputs: {
    clip: {
      kind: 'socket',
      type: 'CLIP',
      description: 'a folder with tokenizer/tokenizer.json and a T5 text_encoder/',
    },
    text: { kind: 'string', default: '', multiline: true },
    max_length: {
      kind: 'int',
      default: 120,
      min: 1,
      max: 4096,
      description: 'tokens the prompt is padded/truncated to (PixArt-α: 120, PixArt-Σ: 300)',
    },
  },
  outputs: [
    { name: 'CONDITIONING', type: 'CONDITIONING' },
    { name: 'EMPTY', type: 'CONDITIONING', description: 'the empty-prompt ("") conditioning' },
  ],
  async execute({ clip, text, max_length }, ctx) {
    const c = clip as ClipValue | null;
    if (c?.kind !== 'CLIP') throw new Error('input "clip": not a CLIP (does the loaded folder have a text_encoder/?)');
    if (!c.handle.info.inputs.some((i) => i.name === 'attention_mask'))
      throw new Error(`input "clip": ${c.path} has no attention_mask input (not a T5-style encoder)`);
    const [cond, empty] = await forInput('clip', () => encodeTexts(c, [text, ''], runtime(ctx), max_length));
    return { CONDITIONING: cond, EMPTY: empty };
  },
});

const px = (d: number) => ({ kind: 'int' as const, default: d, min: 0, max: 16384, step: 8 });

/** SDXL's text conditioning for a batch of prompt pairs: the two encoders' penultimate hidden states
 *  concatenated on the feature axis, the second encoder's projected pooled embedding (text_embeds) and
 *  time_ids = (original h, w, crop top, left, target h, w), as diffusers' StableDiffusionXLPipeline. */
export async function encodeSdxl(
  clip: ClipValue,
  pairs: Array<[string, string]>,
  timeIds: number[],
  pool?: RuntimePool,
): Promise<ConditioningValue[]> {
  if (!clip.second) throw new Error(`${clip.path}: not an SDXL-style CLIP (no text_encoder_2/ and tokenizer_2/)`);
  const a = await runTextEncoder(
    clip,
    pairs.map((p) => p[0]),
    pool,
    { layer: 'penultimate' },
  );
  const b = await runTextEncoder(
    clip.second,
    pairs.map((p) => p[1]),
    pool,
    { layer: 'penultimate' },
  );
  if (a.dims[1] !== b.dims[1])
    throw new Error(`${clip.path}: the two text encoders take ${a.dims[1]} and ${b.dims[1]} tokens`);
  if (!b.pooled) throw new Error(`${clip.second.path}: the second text encoder has no text_embeds output`);
  const [, seq, d1] = a.dims;
  const d2 = b.dims[2];
  return pairs.map(([t1, t2], i) => {
    const ehs = new Float32Array(seq * (d1 + d2));
    for (let s = 0; s < seq; s++) {
      ehs.set(a.hidden.subarray((i * seq + s) * d1, (i * seq + s + 1) * d1), s * (d1 + d2));
      ehs.set(b.hidden.subarray((i * seq + s) * d2, (i * seq + s + 1) * d2), s * (d1 + d2) + d1);
    }
    const pooled = b.pooled!.slice(i * b.pooledDim, (i + 1) * b.pooledDim);
    return {
      kind: 'CONDITIONING',
      ehs,
      ehsDims: [1, seq, d1 + d2],
      pooled,
      classLabel: null,
      text: t1 === t2 ? t1 : `${t1} | ${t2}`,
      extra: {
        text_embeds: { data: pooled, dims: [1, b.pooledDim] },
        time_ids: { data: Float32Array.from(timeIds), dims: [1, timeIds.length] },
      },
    } satisfies ConditioningValue;
  });
}

export const CLIPTextEncodeSDXL = defineNode({
  type: 'CLIPTextEncodeSDXL',
  version: 1,
  category: 'conditioning',
  displayName: 'CLIP Text Encode (SDXL)',
  description:
    "SDXL conditioning from both text encoders: penultimate hidden states of each, concatenated; the second encoder's pooled projection as text_embeds; and the size/crop micro-conditioning as time_ids (original size, crop top-left, target size, in pixels). Also outputs the empty-prompt conditioning with the same time_ids (for zeros, as diffusers' force_zeros_for_empty_prompt, use Conditioning Zero Out).",
  inputs: {
    clip: { kind: 'socket', type: 'CLIP', description: 'an SDXL folder: text_encoder/ + text_encoder_2/' },
    text: { kind: 'string', default: '', multiline: true, description: 'prompt for the first encoder (CLIP ViT-L)' },
    text_2: {
      kind: 'string',
      default: '',
      multiline: true,
      description: 'prompt for the second encoder (OpenCLIP ViT-bigG); empty = the same as text',
    },
    width: px(1024),
    height: px(1024),
    crop_w: px(0),
    crop_h: px(0),
    target_width: px(1024),
    target_height: px(1024),
  },
  outputs: [
    { name: 'CONDITIONING', type: 'CONDITIONING' },
    { name: 'EMPTY', type: 'CONDITIONING', description: 'the empty-prompt ("") conditioning, same time_ids' },
  ],
  async execute({ clip, text, text_2, width, height, crop_w, crop_h, target_width, target_height }, ctx) {
    const c = clip as ClipValue | null;
    if (c?.kind !== 'CLIP') throw new Error('input "clip": not a CLIP (does the loaded folder have a text_encoder/?)');
    const timeIds = [height, width, crop_h, crop_w, target_height, target_width];
    const pairs: Array<[string, string]> = [
      [text, text_2 === '' ? text : text_2],
      ['', ''],
    ];
    const [cond, empty] = await forInput('clip', () => encodeSdxl(c, pairs, timeIds, runtime(ctx)));
    return { CONDITIONING: cond, EMPTY: empty };
  },
});

export const ConditioningZeroOut = defineNode({
  type: 'ConditioningZeroOut',
  version: 1,
  category: 'conditioning',
  displayName: 'Conditioning Zero Out',
  description:
    "Zeros the hidden states and pooled embedding of a conditioning, keeping its shape, mask and time_ids: the unconditional input diffusers' SDXL pipeline uses for an empty negative prompt (force_zeros_for_empty_prompt).",
  inputs: { conditioning: { kind: 'socket', type: 'CONDITIONING' } },
  outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING' }],
  execute({ conditioning }) {
    const c = conditioning as ConditioningValue | null;
    if (c?.kind !== 'CONDITIONING') throw new Error('input "conditioning": not a CONDITIONING');
    if (c.classLabel !== null && !c.ehs)
      throw new Error('input "conditioning": a class label has no zero form (use the null class id instead)');
    const extra = { ...(c.extra ?? {}) };
    if (extra.text_embeds)
      extra.text_embeds = { data: new Float32Array(extra.text_embeds.data.length), dims: extra.text_embeds.dims };
    const out: ConditioningValue = {
      ...c,
      ehs: c.ehs ? new Float32Array(c.ehs.length) : null,
      pooled: c.pooled ? new Float32Array(c.pooled.length) : null,
      text: `zeros(${c.text})`,
      extra,
    };
    return { CONDITIONING: out };
  },
});
