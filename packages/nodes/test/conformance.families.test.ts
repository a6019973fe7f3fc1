/**
 * DiT, PixArt-α and SDXL conformance: tiny models of the real architectures built by diffusers' and
 * transformers' own classes and exported as users do (tools/conformance/{dit,pixart,sdxl}.py), run from
 * a workflow document through the Executor — loaders, encoders, denoisers, guider, scheduler, sampler —
 * and compared with diffusers' own pipelines (float32) and a float64 prior swap, from the same initial
 * noise (priorgraph's seeded noise, handed to diffusers). Bound: relative L2 error ≤ 1e-4 on latents.
 * (Per-test timeout 180 s: sessions load and run on 2 shared cores; nothing here measures time.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineNode, definePlugin, Executor, Registry, type WorkflowDocument } from '@priorgraph/core';
import { afterAll, describe, expect, it } from 'vitest';
import plugin, { stopRuntime } from '../src/index.ts';
import { loadJsonTokenizer } from '../src/models/tokenizer-json.ts';
import { createRng } from '../src/rng.ts';
import type { ImageValue, LatentValue } from '../src/types.ts';
import { makeHost } from './helpers.ts';

const ROOT = fileURLToPath(new URL('./fixtures/conformance/', import.meta.url));
const ref = (family: string) =>
  existsSync(join(ROOT, family, 'reference.json'))
    ? JSON.parse(readFileSync(join(ROOT, family, 'reference.json'), 'utf8'))
    : {};
const BOUND = 1e-4;

// a test plugin whose output nodes hand the LATENT / IMAGE values back to the test
const captured = new Map<string, LatentValue | ImageValue>();
const CaptureLatent = defineNode({
  type: 'CaptureLatent',
  version: 1,
  category: 'test',
  inputs: { samples: { kind: 'socket', type: 'LATENT' }, key: { kind: 'string', default: '' } },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  execute({ samples, key }) {
    captured.set(key, samples as LatentValue);
    return {};
  },
});
const CaptureImage = defineNode({
  type: 'CaptureImage',
  version: 1,
  category: 'test',
  inputs: { images: { kind: 'socket', type: 'IMAGE' }, key: { kind: 'string', default: '' } },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  execute({ images, key }) {
    captured.set(key, images as ImageValue);
    return {};
  },
});

const host = makeHost({ modelRoots: [ROOT] });
const registry = new Registry();
registry.register(plugin, '@priorgraph/nodes');
registry.register(definePlugin({ name: 'conftest', version: '1.0.0', nodes: [CaptureLatent, CaptureImage] }));
const executor = new Executor(registry, { host });
afterAll(async () => {
  await stopRuntime();
});

type Spec = { type: string; inputs: Record<string, unknown> };
const L = (node: string, output: string) => ({ node, output });
function doc(nodes: Record<string, Spec>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes)) {
    const type = n.type.startsWith('Capture') ? `conftest.${n.type}` : `priorgraph.${n.type}`;
    out[id] = { type, version: 1, mode: 'normal', inputs: n.inputs };
  }
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}

async function run(nodes: Record<string, Spec>) {
  const key = `k${Math.random()}`;
  nodes.cap = { type: 'CaptureLatent', inputs: { samples: L('sample', 'LATENT'), key } };
  if (nodes.decode) nodes.capimg = { type: 'CaptureImage', inputs: { images: L('decode', 'IMAGE'), key: `${key}img` } };
  const r = await executor.run(doc(nodes), { promptId: key });
  expect(r.error?.message ?? '').toBe('');
  expect(r.status).toBe('success');
  return {
    latent: captured.get(key) as LatentValue,
    image: (captured.get(`${key}img`) as ImageValue | undefined) ?? null,
  };
}

/** Scheduler + Sampler (+ an 8×8 EmptyLatentImage for exports of any size). */
function sampler(seed: number, steps: number, scheduler: string, anySize = false): Record<string, Spec> {
  return {
    ...(anySize
      ? { lat: { type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1, channels: 4 } } }
      : {}),
    sched: { type: 'Scheduler', inputs: { scheduler, use_karras_sigmas: false, eta: 0, config_json: '{}' } },
    sample: {
      type: 'Sampler',
      inputs: {
        guider: L('guide', 'GUIDER'),
        scheduler: L('sched', 'SCHEDULER'),
        seed,
        steps,
        denoise: 1,
        batch_size: 1,
        preview_every: 0,
        ...(anySize ? { latent_image: L('lat', 'LATENT') } : {}),
      },
    },
  };
}

const guider = (type: 'CFGGuider' | 'PriorSwapCFGGuider', a: string, b: string, cfg: number): Spec => ({
  type,
  inputs: {
    ...(type === 'CFGGuider' ? { positive: L(a, 'DENOISER'), negative: L(b, 'DENOISER') } : {}),
    ...(type === 'PriorSwapCFGGuider' ? { model: L(a, 'DENOISER'), prior: L(b, 'DENOISER') } : {}),
    cfg,
    guidance_rescale: 0,
    interval_sigma_lo: 0,
    interval_sigma_hi: 0,
  },
});
const denoiser = (model: [string, string], cond: [string, string]): Spec => ({
  type: 'Denoiser',
  inputs: { model: L(...model), conditioning: L(...cond) },
});

/** ‖a − b‖₂ / ‖b‖₂ */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function expectClose(name: string, got: ArrayLike<number>, want: number[], bound = BOUND) {
  const e = relErr(got, want);
  console.log(`${name}: relative L2 error ${e.toExponential(2)} (bound ${bound})`);
  expect(e).toBeLessThanOrEqual(bound);
}

/** The reference's initial noise is the Sampler's: createRng(seed).randn, to float32 precision. */
function expectSameNoise(r: { seed: number; noise: number[] }) {
  const mine = createRng(r.seed).randn(r.noise.length);
  expect(relErr(mine, r.noise)).toBeLessThan(1e-7);
}

describe('DiT (class-conditional, learned σ, null class = num_classes)', { timeout: 180_000 }, () => {
  const r = ref('dit');
  const common = (): Record<string, Spec> => ({
    load: { type: 'DiffusersLoader', inputs: { model_path: 'dit/base' } },
    cls: {
      type: 'ClassLabelConditioning',
      inputs: { class_id: r.class_id, null_class: false, model: L('load', 'MODEL') },
    },
    nul: { type: 'ClassLabelConditioning', inputs: { class_id: 0, null_class: true, model: L('load', 'MODEL') } },
    ...sampler(r.seed, r.steps, r.scheduler),
  });

  it("matches diffusers' DiTPipeline (CFG against the null class), latents and decoded image", async () => {
    expectSameNoise(r);
    const { latent, image } = await run({
      ...common(),
      pos: denoiser(['load', 'MODEL'], ['cls', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['nul', 'CONDITIONING']),
      guide: guider('CFGGuider', 'pos', 'neg', r.guidance_scale),
      decode: { type: 'VAEDecode', inputs: { samples: L('sample', 'LATENT'), vae: L('load', 'VAE') } },
    });
    expect(latent.shape).toEqual(r.shape);
    expectClose('DiT pipeline latents', latent.samples, r.pipeline.latents);
    expect(image?.shape).toEqual(r.pipeline.image_shape);
    expectClose('DiT pipeline image', image!.data, r.pipeline.image);
  });

  it('prior swap: the fine-tune with the class, the base DiT with its null class (float64 reference)', async () => {
    const { latent } = await run({
      ...common(),
      ft: { type: 'UNetLoader', inputs: { unet_path: 'dit/finetune' } },
      pos: denoiser(['ft', 'MODEL'], ['cls', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['nul', 'CONDITIONING']),
      guide: guider('PriorSwapCFGGuider', 'pos', 'neg', r.guidance_scale),
    });
    expectClose('DiT prior swap latents', latent.samples, r.priorswap.latents);
  });
});

describe('PixArt-α (T5 encoder with attention mask, learned σ, linear β, DPM-Solver++)', { timeout: 180_000 }, () => {
  const r = ref('pixart');
  const common = (): Record<string, Spec> => ({
    load: { type: 'DiffusersLoader', inputs: { model_path: 'pixart/base' } },
    enc: { type: 'T5TextEncode', inputs: { clip: L('load', 'CLIP'), text: r.prompt, max_length: r.max_length } },
    ...sampler(r.seed, r.steps, r.scheduler, true),
  });

  it("the tokenizer.json tokenizer gives transformers' ids and masks", () => {
    const tok = loadJsonTokenizer(join(ROOT, 'pixart/base/tokenizer'), r.max_length);
    for (const t of r.tokens as Array<{ text: string; ids: number[]; mask: number[] }>) {
      expect(tok.encode(t.text), t.text).toEqual(t.ids);
      const n = Math.min(tok.encodeRaw(t.text).length, r.max_length);
      expect(
        t.mask.reduce((a, b) => a + b, 0),
        t.text,
      ).toBe(n);
    }
  });

  it("matches diffusers' PixArtAlphaPipeline (CFG with the empty prompt)", async () => {
    expectSameNoise(r);
    const { latent } = await run({
      ...common(),
      pos: denoiser(['load', 'MODEL'], ['enc', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['enc', 'EMPTY']),
      guide: guider('CFGGuider', 'pos', 'neg', r.guidance_scale),
    });
    expectClose('PixArt pipeline latents', latent.samples, r.pipeline.latents);
  });

  it('prior swap: the fine-tune with the prompt, the base with "" and its mask (float64 reference)', async () => {
    const { latent } = await run({
      ...common(),
      ft: { type: 'UNetLoader', inputs: { unet_path: 'pixart/finetune' } },
      pos: denoiser(['ft', 'MODEL'], ['enc', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['enc', 'EMPTY']),
      guide: guider('PriorSwapCFGGuider', 'pos', 'neg', r.guidance_scale),
    });
    expectClose('PixArt prior swap latents', latent.samples, r.priorswap.latents);
  });
});

describe("the paper's cross-architecture prior: a DiT fine-tune guided against PixArt-α's unconditional", {
  timeout: 180_000,
}, () => {
  const r = ref('pixart').crossprior ?? {};
  it('PriorSwapCFGGuider across architectures (class label vs T5 empty prompt) matches a float64 loop', async () => {
    const { latent } = await run({
      ft: { type: 'UNetLoader', inputs: { unet_path: 'dit/finetune' } },
      cls: {
        type: 'ClassLabelConditioning',
        inputs: { class_id: r.class_id, null_class: false, model: L('ft', 'MODEL') },
      },
      base: { type: 'DiffusersLoader', inputs: { model_path: 'pixart/base' } },
      enc: { type: 'T5TextEncode', inputs: { clip: L('base', 'CLIP'), text: '', max_length: 120 } },
      pos: denoiser(['ft', 'MODEL'], ['cls', 'CONDITIONING']),
      neg: denoiser(['base', 'MODEL'], ['enc', 'EMPTY']),
      guide: guider('PriorSwapCFGGuider', 'pos', 'neg', r.guidance_scale),
      ...sampler(r.seed, r.steps, r.scheduler),
    });
    expectClose('DiT ← PixArt cross prior latents', latent.samples, r.latents);
  });
});

describe('SDXL (optimum export: two text encoders, text_embeds and time_ids)', { timeout: 180_000 }, () => {
  const r = ref('sdxl');
  const common = (): Record<string, Spec> => ({
    load: { type: 'DiffusersLoader', inputs: { model_path: 'sdxl/base' } },
    enc: {
      type: 'CLIPTextEncodeSDXL',
      inputs: {
        clip: L('load', 'CLIP'),
        text: r.prompt,
        text_2: '',
        width: r.pixels,
        height: r.pixels,
        crop_w: 0,
        crop_h: 0,
        target_width: r.pixels,
        target_height: r.pixels,
      },
    },
    zero: { type: 'ConditioningZeroOut', inputs: { conditioning: L('enc', 'EMPTY') } },
    ...sampler(r.seed, r.steps, r.scheduler, true),
  });

  it("matches diffusers' StableDiffusionXLPipeline (zeroed unconditional branch, Euler)", async () => {
    expectSameNoise(r);
    const { latent } = await run({
      ...common(),
      pos: denoiser(['load', 'MODEL'], ['enc', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['zero', 'CONDITIONING']),
      guide: guider('CFGGuider', 'pos', 'neg', r.guidance_scale),
    });
    expectClose('SDXL pipeline latents', latent.samples, r.pipeline.latents);
  });

  it('prior swap: the fine-tuned UNet with the prompt, the base with zeros (float64 reference)', async () => {
    const { latent } = await run({
      ...common(),
      ft: { type: 'UNetLoader', inputs: { unet_path: 'sdxl/finetune' } },
      pos: denoiser(['ft', 'MODEL'], ['enc', 'CONDITIONING']),
      neg: denoiser(['load', 'MODEL'], ['zero', 'CONDITIONING']),
      guide: guider('PriorSwapCFGGuider', 'pos', 'neg', r.guidance_scale),
    });
    expectClose('SDXL prior swap latents', latent.samples, r.priorswap.latents);
  });

  it('an SDXL UNet given a plain text conditioning is refused, naming the missing input', async () => {
    const r2 = await executor.run(
      doc({
        ...common(),
        plain: { type: 'CLIPTextEncode', inputs: { clip: L('load', 'CLIP'), text: r.prompt } },
        pos: denoiser(['load', 'MODEL'], ['plain', 'CONDITIONING']),
        neg: denoiser(['load', 'MODEL'], ['zero', 'CONDITIONING']),
        guide: guider('CFGGuider', 'pos', 'neg', r.guidance_scale),
        cap: { type: 'CaptureLatent', inputs: { samples: L('sample', 'LATENT'), key: 'refused' } },
      }),
      { promptId: 'refused' },
    );
    expect(r2.status).toBe('error');
    expect(r2.error?.message).toMatch(/text_embeds/);
    expect(r2.error?.message).toMatch(/CLIPTextEncodeSDXL/);
  });
});

describe('the new conditioning nodes refuse what does not fit, naming the input', { timeout: 180_000 }, () => {
  const fails = async (nodes: Record<string, Spec>, node: string, pattern: RegExp) => {
    const r = await executor.run(doc(nodes), { promptId: `bad${Math.random()}`, outputs: [node] });
    expect(r.status).toBe('error');
    expect(r.error?.nodeId).toBe(node);
    expect(r.error?.message).toMatch(pattern);
  };
  const sdxlEnc = (clip: string) => ({
    type: 'CLIPTextEncodeSDXL',
    inputs: {
      clip: L(clip, 'CLIP'),
      text: 'x',
      text_2: '',
      width: 16,
      height: 16,
      crop_w: 0,
      crop_h: 0,
      target_width: 16,
      target_height: 16,
    },
  });
  const probe = (src: string, out = 'CONDITIONING'): Spec => ({
    type: 'ConditioningZeroOut',
    inputs: { conditioning: L(src, out) },
  });

  it('CLIPTextEncodeSDXL on a one-encoder CLIP, T5TextEncode on a CLIP encoder', async () => {
    await fails(
      {
        load: { type: 'DiffusersLoader', inputs: { model_path: 'pixart/base' } },
        enc: sdxlEnc('load'),
        z: probe('enc'),
      },
      'enc',
      /input "clip".*not an SDXL-style CLIP/,
    );
    await fails(
      {
        load: { type: 'DiffusersLoader', inputs: { model_path: 'sdxl/base' } },
        enc: { type: 'T5TextEncode', inputs: { clip: L('load', 'CLIP'), text: 'x', max_length: 120 } },
        z: probe('enc'),
      },
      'enc',
      /input "clip".*no attention_mask input/,
    );
  });

  it('a class id past the null class, and null_class without a model', async () => {
    await fails(
      {
        load: { type: 'DiffusersLoader', inputs: { model_path: 'dit/base' } },
        cls: { type: 'ClassLabelConditioning', inputs: { class_id: 1001, model: L('load', 'MODEL') } },
        z: probe('cls'),
      },
      'cls',
      /input "class_id": 1001 is past the null class 1000/,
    );
    await fails(
      { cls: { type: 'ClassLabelConditioning', inputs: { class_id: 0, null_class: true } }, z: probe('cls') },
      'cls',
      /input "model"/,
    );
  });
});
