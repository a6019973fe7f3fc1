/** Encoders: text → CONDITIONING (and the empty-prompt conditioning), class labels → CONDITIONING. */
import { defineNode } from '@priorgraph/core';
import type { RuntimePool } from '../runtime/pool.ts';
import type { ClipValue, ConditioningValue } from '../types.ts';
import { checkFinite, forInput, runtime } from './common.ts';

/** Tokenize (pad/truncate to the encoder's length) and run the text encoder once for all prompts. */
export async function encodeTexts(clip: ClipValue, texts: string[], pool?: RuntimePool): Promise<ConditioningValue[]> {
  const L = clip.tokenizer.maxLength;
  const ids = new Int32Array(texts.length * L);
  for (let i = 0; i < texts.length; i++) ids.set(clip.tokenizer.encode(texts[i]), i * L);
  const handle = pool ? await pool.live(clip.handle) : clip.handle;
  const outs = await handle.run([{ name: 'input_ids', data: ids, dims: [texts.length, L] }]);
  const hidden = outs.find((o) => o.name === 'last_hidden_state') ?? outs[0];
  const pooled = outs.find((o) => o.name === 'pooler_output' || o.name === 'text_embeds') ?? null;
  if (hidden.dims.length !== 3 || hidden.dims[0] !== texts.length) {
    throw new Error(`${clip.path}: last_hidden_state has shape [${hidden.dims}], expected [${texts.length},${L},dim]`);
  }
  const [, seq, dim] = hidden.dims;
  const h = hidden.data as Float32Array;
  checkFinite(`${clip.path}: last_hidden_state`, h);
  return texts.map((text, i) => ({
    kind: 'CONDITIONING',
    ehs: h.slice(i * seq * dim, (i + 1) * seq * dim),
    ehsDims: [1, seq, dim],
    pooled: pooled ? (pooled.data as Float32Array).slice(i * pooled.dims[1], (i + 1) * pooled.dims[1]) : null,
    classLabel: null,
    text,
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

export const ClassLabelConditioning = defineNode({
  type: 'ClassLabelConditioning',
  version: 1,
  category: 'conditioning',
  displayName: 'Class Label',
  description:
    'A class-label conditioning for class-conditional models (DiT-style). The null class (often the number of classes) is the unconditional label.',
  inputs: {
    class_id: { kind: 'int', default: 0, min: 0, max: 1_000_000 },
  },
  outputs: [{ name: 'CONDITIONING', type: 'CONDITIONING' }],
  execute({ class_id }) {
    const c: ConditioningValue = {
      kind: 'CONDITIONING',
      ehs: null,
      ehsDims: null,
      pooled: null,
      classLabel: class_id,
      text: `class ${class_id}`,
    };
    return { CONDITIONING: c };
  },
});
