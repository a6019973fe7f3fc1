/** Image-encoder nodes and the Zero-1-to-3 / image-variation conditionings, on the shipped models
 *  (models/shapes-image-encoder, shapes-novel-views, shapes-image-variation) when present. */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeImages,
  encodePng,
  loadClipVision,
  loadDenoiserModel,
  projectEmbeds,
  RuntimePool,
  relativePose,
  stopRuntime,
} from '../src/index.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';

const MODELS = process.env.PRIORGRAPH_DEMO_MODELS ?? fileURLToPath(new URL('../../../models/', import.meta.url));
const present =
  existsSync(join(MODELS, 'shapes-image-encoder', 'image_encoder', 'model.onnx')) &&
  existsSync(join(MODELS, 'shapes-novel-views', 'cc_projection', 'model.onnx')) &&
  existsSync(join(MODELS, 'eval', 'novel_views_samples.json'));

const ivPresent = existsSync(join(MODELS, 'shapes-image-variation', 'image_projection', 'model.onnx'));

afterAll(async () => {
  await stopRuntime();
});

describe('relativePose (Zero-1-to-3 camera)', () => {
  it('maps degrees to [Δel rad, sin Δaz, cos Δaz, Δr]', () => {
    const [e, s, c, r] = relativePose(30, 90, 0.5);
    expect(e).toBeCloseTo(Math.PI / 6, 12);
    expect(s).toBeCloseTo(1, 12);
    expect(c).toBeCloseTo(0, 12);
    expect(r).toBe(0.5);
    expect(relativePose(0, 0, 0)).toEqual([0, 0, 1, 0]);
  });
  it('is 360°-periodic in azimuth and on the unit circle', () => {
    fc.assert(
      fc.property(fc.double({ min: -360, max: 360, noNaN: true }), (az) => {
        const [, s, c] = relativePose(0, az, 0);
        const [, s2, c2] = relativePose(0, az + 360, 0);
        // |sin|,|cos| ≤ 1 and one turn adds ≤ 720° of argument: float64 rounding of the angle ~1e-13
        expect(Math.abs(s - s2)).toBeLessThan(1e-12);
        expect(Math.abs(c - c2)).toBeLessThan(1e-12);
        expect(Math.abs(s * s + c * c - 1)).toBeLessThan(1e-14);
      }),
    );
  });
  it('refuses a non-finite pose naming the input', () => {
    expect(() => relativePose(Number.NaN, 0, 0)).toThrow(/input "elevation"/);
    expect(() => relativePose(0, Number.POSITIVE_INFINITY, 0)).toThrow(/input "azimuth"/);
  });
});

/** byte CHW base64 (models/eval/*_samples.json) → an RGBA PNG */
function pngOf(b64: string): Uint8Array {
  const chw = Buffer.from(b64, 'base64');
  const hw = 32 * 32;
  const rgba = new Uint8Array(hw * 4);
  for (let p = 0; p < hw; p++) {
    for (let k = 0; k < 3; k++) rgba[p * 4 + k] = chw[k * hw + p];
    rgba[p * 4 + 3] = 255;
  }
  return encodePng(rgba, 32, 32, 4);
}

describe.skipIf(!present)('image conditioning on the shipped models', () => {
  const host = makeHost({ modelRoots: [MODELS] });
  const { executor } = makeExecutor(host);
  mkdirSync(host.inputDir, { recursive: true });
  const samples = JSON.parse(readFileSync(join(MODELS, 'eval', 'novel_views_samples.json'), 'utf8')) as {
    samples: Array<{ input: string; targets: string[] }>;
  };
  writeFileSync(join(host.inputDir, 'view.png'), pngOf(samples.samples[0].input));
  writeFileSync(join(host.inputDir, 'other.png'), pngOf(samples.samples[1].input));
  writeFileSync(join(host.inputDir, 'big.png'), encodePng(new Uint8Array(64 * 64 * 4).fill(200), 64, 64, 4));

  const sched = {
    type: 'Scheduler',
    inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' },
  };
  const guidance = { guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
  /** the novel-view graph: CFG or prior swap (shapes-t2i with "" as ε(x,∅)) */
  const novel = (image: string, priorSwap: boolean, azimuth = 120) =>
    doc({
      t2i: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      nv: { type: 'UNetLoader', inputs: { unet_path: 'shapes-novel-views' } },
      cv: { type: 'CLIPVisionLoader', inputs: { clip_name: 'shapes-image-encoder' } },
      img: { type: 'LoadImage', inputs: { image } },
      enc: {
        type: 'CLIPVisionEncode',
        inputs: { clip_vision: link('cv', 'CLIP_VISION'), image: link('img', 'IMAGE') },
      },
      pose: {
        type: 'Zero123Conditioning',
        inputs: {
          model: link('nv', 'MODEL'),
          clip_vision_output: link('enc', 'CLIP_VISION_OUTPUT'),
          init_image: link('img', 'IMAGE'),
          vae: link('t2i', 'VAE'),
          elevation: 0,
          azimuth,
          radius: 0,
        },
      },
      pos: {
        type: 'Denoiser',
        inputs: {
          model: link('nv', 'MODEL'),
          conditioning: link('pose', 'positive'),
          image_latent: link('pose', 'image_latent'),
        },
      },
      neg: { type: 'Denoiser', inputs: { model: link('nv', 'MODEL'), conditioning: link('pose', 'negative') } },
      empty: { type: 'CLIPTextEncode', inputs: { clip: link('t2i', 'CLIP'), text: '' } },
      prior: { type: 'Denoiser', inputs: { model: link('t2i', 'MODEL'), conditioning: link('empty', 'CONDITIONING') } },
      g: priorSwap
        ? {
            type: 'PriorSwapCFGGuider',
            inputs: { model: link('pos', 'DENOISER'), prior: link('prior', 'DENOISER'), cfg: 5, ...guidance },
          }
        : {
            type: 'CFGGuider',
            inputs: { positive: link('pos', 'DENOISER'), negative: link('neg', 'DENOISER'), cfg: 5, ...guidance },
          },
      sched,
      s: {
        type: 'Sampler',
        inputs: {
          guider: link('g', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 3,
          steps: 4,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
        },
      },
      out: { type: 'VAEDecode', inputs: { samples: link('s', 'LATENT'), vae: link('t2i', 'VAE') } },
    });

  it('CFG and prior swap both run a few steps', async () => {
    for (const ps of [false, true]) {
      const { result } = await runDoc(executor, novel('view.png', ps), { outputs: ['out'] });
      expect(result.error?.message ?? '').toBe('');
      expect(result.status).toBe('success');
    }
  });

  it('the conditioning tensors: unit image embedding, [1,1,64] context, zero negative, pose-dependent', async () => {
    const pool = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 256 });
    try {
      const cv = await loadClipVision(pool, join(MODELS, 'shapes-image-encoder'));
      const out = await encodeImages(cv, imageOf(samples.samples[0].input), pool);
      expect(out.embedDims).toEqual([1, 64]);
      let n2 = 0;
      for (const v of out.imageEmbeds) n2 += v * v;
      // L2-normalised in float32: |‖e‖² − 1| ≤ 64 · 2⁻²³ · a few
      expect(Math.abs(n2 - 1)).toBeLessThan(64 * 2 ** -23 * 4);
      const m = await loadDenoiserModel(pool, join(MODELS, 'shapes-novel-views'));
      expect(m.sig.concatChannels).toBe(4);
      const a = await projectEmbeds(pool, m, 'cc_projection', out, { pose: relativePose(0, 60, 0) }, undefined, 'a');
      const b = await projectEmbeds(pool, m, 'cc_projection', out, { pose: relativePose(0, 180, 0) }, undefined, 'b');
      expect(a.positive.ehsDims).toEqual([1, 1, 64]);
      expect(a.negative.ehsDims).toEqual([1, 1, 64]);
      expect(a.negative.ehs!.every((v) => v === 0)).toBe(true);
      expect(a.positive.ehs!.some((v, i) => v !== b.positive.ehs![i])).toBe(true);
      // a second view of another object embeds elsewhere
      const o = await encodeImages(cv, imageOf(samples.samples[1].input), pool);
      expect(o.imageEmbeds.some((v, i) => v !== out.imageEmbeds[i])).toBe(true);
      if (ivPresent) {
        const iv = await loadDenoiserModel(pool, join(MODELS, 'shapes-image-variation'));
        const v = await projectEmbeds(pool, iv, 'image_projection', out, {}, undefined, 'iv');
        expect(v.positive.ehsDims).toEqual([1, 4, 64]);
        expect(v.negative.ehs!.every((x) => x === 0)).toBe(true);
      }
      // the model of another family member has no cc_projection: refused, naming what is missing
      const t2i = await loadDenoiserModel(pool, join(MODELS, 'shapes-t2i'));
      await expect(projectEmbeds(pool, t2i, 'cc_projection', out, {}, undefined, 'x')).rejects.toThrow(
        /no cc_projection/,
      );
    } finally {
      await pool.dispose();
    }
  });

  it('refuses an image of the wrong size and a model without a pose projection, naming node and input', async () => {
    const bad = await runDoc(executor, novel('big.png', false), { outputs: ['out'] });
    expect(bad.result.status).toBe('error');
    expect(bad.result.error?.message).toMatch(/enc|CLIPVisionEncode/);
    expect(bad.result.error?.message).toMatch(/input "image".*32×32/);
    const d = novel('view.png', false);
    (d.nodes.pose.inputs as Record<string, unknown>).model = link('t2i', 'MODEL');
    const wrong = await runDoc(executor, d, { outputs: ['out'] });
    expect(wrong.result.status).toBe('error');
    expect(wrong.result.error?.message).toMatch(/input "model"/);
  });
});

const EXAMPLES = fileURLToPath(new URL('../../../examples/workflows/', import.meta.url));

describe.skipIf(!present)('the image-conditioned example workflows run (3 steps, batch 1)', () => {
  const host = makeHost({ modelRoots: [MODELS] });
  const { executor } = makeExecutor(host);
  mkdirSync(host.inputDir, { recursive: true });
  copyFileSync(join(EXAMPLES, 'inputs', 'novel-views-input.png'), join(host.inputDir, 'novel-views-input.png'));
  const cases = ['novel-views-priorswap', ...(ivPresent ? ['image-variation-priorswap'] : [])];
  for (const name of cases) {
    it(name, async () => {
      const d = JSON.parse(readFileSync(join(EXAMPLES, `${name}.json`), 'utf8')) as {
        nodes: Record<string, { type: string; inputs: Record<string, unknown> }>;
      };
      for (const n of Object.values(d.nodes)) {
        if (n.type === 'priorgraph.Sampler') Object.assign(n.inputs, { steps: 3, batch_size: 1, preview_every: 0 });
      }
      const { result } = await runDoc(executor, d as never, { outputs: ['save'] });
      expect(result.error?.message ?? '').toBe('');
      expect(result.status).toBe('success');
    });
  }
});

/** byte CHW base64 → IMAGE [1,32,32,3] in [0,1] */
function imageOf(b64: string) {
  const chw = Buffer.from(b64, 'base64');
  const hw = 32 * 32;
  const data = new Float32Array(hw * 3);
  for (let p = 0; p < hw; p++) for (let k = 0; k < 3; k++) data[p * 3 + k] = chw[k * hw + p] / 255;
  return { data, shape: [1, 32, 32, 3] as [number, number, number, number] };
}
