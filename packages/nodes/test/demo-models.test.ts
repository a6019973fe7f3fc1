/** End-to-end runs on the shipped demo family (models/shapes-*), when it is present in the checkout. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRuntime } from '../src/index.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';

/** models/ of the checkout, or PRIORGRAPH_DEMO_MODELS (e.g. a fresh export before it is committed) */
const MODELS = process.env.PRIORGRAPH_DEMO_MODELS ?? fileURLToPath(new URL('../../../models/', import.meta.url));
const has = (p: string) => existsSync(join(MODELS, p, 'model_index.json'));
const present = has('shapes-t2i') && has('shapes-base');

afterAll(async () => {
  await stopRuntime();
});

describe.skipIf(!present)('demo models (models/shapes-*)', () => {
  const host = makeHost({ modelRoots: [MODELS] });
  const { executor } = makeExecutor(host);
  const sched = {
    type: 'Scheduler',
    inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' },
  };
  const t2i = (prior: string | null, extra: Record<string, { type: string; inputs: Record<string, unknown> }> = {}) =>
    doc({
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: 'a red circle' } },
      pos: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'CONDITIONING') } },
      neg: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'EMPTY') } },
      cfg: {
        type: 'CFGGuider',
        inputs: {
          positive: link('pos', 'DENOISER'),
          negative: link('neg', 'DENOISER'),
          cfg: 3,
          guidance_rescale: 0,
          interval_sigma_lo: 0,
          interval_sigma_hi: 0,
        },
      },
      ...(prior
        ? {
            base: { type: 'UNetLoader', inputs: { unet_path: prior } },
            bden: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } },
            ps: {
              type: 'PriorSwapCFGGuider',
              inputs: {
                model: link('pos', 'DENOISER'),
                prior: link('bden', 'DENOISER'),
                cfg: 3,
                guidance_rescale: 0,
                interval_sigma_lo: 0,
                interval_sigma_hi: 0,
              },
            },
          }
        : {}),
      sched,
      s1: {
        type: 'Sampler',
        inputs: {
          guider: link('cfg', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 5,
          steps: 20,
          denoise: 1,
          batch_size: 2,
          preview_every: 5,
        },
      },
      d1: { type: 'VAEDecode', inputs: { samples: link('s1', 'LATENT'), vae: link('load', 'VAE') } },
      ...(prior
        ? {
            s2: {
              type: 'Sampler',
              inputs: {
                guider: link('ps', 'GUIDER'),
                scheduler: link('sched', 'SCHEDULER'),
                seed: 5,
                steps: 20,
                denoise: 1,
                batch_size: 2,
                preview_every: 5,
              },
            },
            d2: { type: 'VAEDecode', inputs: { samples: link('s2', 'LATENT'), vae: link('load', 'VAE') } },
            cmp: {
              type: 'ImageCompare',
              inputs: {
                image_a: link('d1', 'IMAGE'),
                label_a: 'CFG',
                image_b: link('d2', 'IMAGE'),
                label_b: 'PRIOR SWAP',
                label_c: '',
                label_d: '',
              },
            },
            save: { type: 'SaveImage', inputs: { images: link('cmp', 'IMAGE'), filename_prefix: 'demo' } },
          }
        : { save: { type: 'SaveImage', inputs: { images: link('d1', 'IMAGE'), filename_prefix: 'demo' } } }),
      ...extra,
    });

  it('text-to-image, CFG vs prior swap with shapes-base, saved side by side', async () => {
    const { result } = await runDoc(executor, t2i('shapes-base'));
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
    const f = (result.outputs.save as { images: Array<{ filename: string }> }).images[0].filename;
    const png = decode(readFileSync(join(host.outputDir, f)));
    // not a constant image
    const px = png.data;
    let min = 255;
    let max = 0;
    for (let i = 0; i < px.length; i++) {
      min = Math.min(min, px[i]);
      max = Math.max(max, px[i]);
    }
    expect(max - min).toBeGreaterThan(50);
    expect(JSON.parse(png.text.workflow).nodes.ps.type).toBe('priorgraph.PriorSwapCFGGuider');
  });

  it.skipIf(!has('shapes-dit'))(
    'a DiT prior (other schedule, v-prediction, learned sigma) on the same latent space',
    async () => {
      const { result } = await runDoc(executor, t2i('shapes-dit'));
      expect(result.error?.message ?? '').toBe('');
      expect(result.status).toBe('success');
    },
  );

  it.skipIf(!has('shapes-edit'))('InstructPix2Pix edit with the base as prior', async () => {
    const d = doc({
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      edit: { type: 'UNetLoader', inputs: { unet_path: 'shapes-edit' } },
      base: { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' } },
      enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: 'make it blue' } },
      src: { type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1, channels: 4 } },
      bden: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } },
      g: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('edit', 'MODEL'),
          text: link('enc', 'CONDITIONING'),
          empty: link('enc', 'EMPTY'),
          image: link('src', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          guidance_rescale: 0,
          prior: link('bden', 'DENOISER'),
        },
      },
      sched,
      s: {
        type: 'Sampler',
        inputs: {
          guider: link('g', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 1,
          steps: 10,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
        },
      },
    });
    const { result } = await runDoc(executor, d, { outputs: ['s'] });
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
  });
});
