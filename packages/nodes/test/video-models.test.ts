/** The shipped video pair (models/shapes-video-base, models/shapes-video-i2v; tools/train/video.py) through the
 *  real nodes: the example workflow validates and runs, and what the models cannot take is refused. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateWorkflow, type WorkflowDocument } from '@priorgraph/core';
import WebP from 'node-webpmux';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRuntime } from '../src/index.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';

const MODELS = process.env.PRIORGRAPH_DEMO_MODELS ?? fileURLToPath(new URL('../../../models/', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/workflows/video-i2v-priorswap.json', import.meta.url));
const has = (p: string) => existsSync(join(MODELS, p, 'model_index.json'));
const present = has('shapes-t2i') && has('shapes-video-base') && has('shapes-video-i2v');

afterAll(async () => {
  await stopRuntime();
});

type Nodes = Record<string, { type: string; inputs: Record<string, unknown> }>;

describe.skipIf(!present)('the video pair (models/shapes-video-*)', () => {
  const host = makeHost({ modelRoots: [MODELS] });
  const { registry, executor } = makeExecutor(host);

  /** The two-condition video graph; `patch` replaces nodes. */
  const graph = (patch: Nodes = {}) =>
    doc({
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      i2v: { type: 'UNetLoader', inputs: { unet_path: 'shapes-video-i2v' } },
      base: { type: 'UNetLoader', inputs: { unet_path: 'shapes-video-base' } },
      enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: 'a red circle moving left' } },
      still: { type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1, channels: 4 } },
      first: { type: 'VAEDecode', inputs: { samples: link('still', 'LATENT'), vae: link('load', 'VAE') } },
      first_latent: { type: 'VAEEncode', inputs: { pixels: link('first', 'IMAGE'), vae: link('load', 'VAE') } },
      bden: { type: 'Denoiser', inputs: { model: link('base', 'MODEL'), conditioning: link('enc', 'EMPTY') } },
      g: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('i2v', 'MODEL'),
          text: link('enc', 'CONDITIONING'),
          empty: link('enc', 'EMPTY'),
          image: link('first_latent', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          guidance_rescale: 0,
          prior: link('bden', 'DENOISER'),
        },
      },
      sched: {
        type: 'Scheduler',
        inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('i2v', 'MODEL') },
      },
      frames: { type: 'EmptyVideoLatent', inputs: { width: 64, height: 64, frames: 8, batch_size: 1 } },
      s: {
        type: 'Sampler',
        inputs: {
          guider: link('g', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 3,
          steps: 2,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
          latent_image: link('frames', 'LATENT'),
        },
      },
      dec: { type: 'VAEDecode', inputs: { samples: link('s', 'LATENT'), vae: link('load', 'VAE') } },
      out: { type: 'PreviewImage', inputs: { images: link('dec', 'IMAGE') } },
      ...patch,
    });
  const errorsOf = async (d: WorkflowDocument, node: string) => {
    const v = await validateWorkflow(d, registry, host);
    return (v.node_errors[node]?.errors ?? []).map((e) => `${e.extra_info.input_name}: ${e.details}`).join('\n');
  };

  it('examples/workflows/video-i2v-priorswap.json validates and runs (3 steps per sampler)', async () => {
    const d = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as WorkflowDocument;
    const v = await validateWorkflow(d, registry, host);
    expect(v.node_errors).toEqual({});
    expect(v.ok).toBe(true);
    const nodes = d.nodes as Record<string, { inputs: Record<string, unknown> }>;
    for (const id of ['first', 'video', 'video_swap']) nodes[id].inputs.steps = 3;
    const { result } = await runDoc(executor, d);
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
    for (const id of ['save', 'save_swap']) {
      const files = (result.outputs[id] as { images: Array<{ filename: string }> }).images;
      expect(files).toHaveLength(1);
      // read back by node-webpmux (not the encoder): 8 frames of 32×32 at 6 fps
      const webp = new WebP.Image();
      await webp.load(readFileSync(join(host.outputDir, files[0].filename)));
      expect(webp.hasAnim).toBe(true);
      expect([webp.width, webp.height]).toEqual([32, 32]);
      expect(webp.frames?.length).toBe(8);
      expect(webp.frames?.map((f: { delay: number }) => f.delay)).toEqual(Array(8).fill(167));
    }
  });

  it('a graph of the two real models validates; each model reads as video of 1 to 16 frames', async () => {
    const v = await validateWorkflow(graph(), registry, host);
    expect(v.node_errors).toEqual({});
    const { result } = await runDoc(executor, graph(), { outputs: ['out'] });
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
  });

  it('a still latent into the video models is refused at validation, naming the sampler input', async () => {
    const s = { type: 'Sampler', inputs: { ...samplerInputs(), latent_image: link('still', 'LATENT') } };
    const errs = await errorsOf(graph({ s }), 's');
    expect(errs).toMatch(/latent_image: .*shapes-video-i2v.* is a video model .* needs a video latent/);
  });

  it('more frames than the models take (their config.json: priorgraph.frames.max = 16) are refused at validation', async () => {
    const video = (frames: number) => ({
      frames: { type: 'EmptyVideoLatent', inputs: { width: 64, height: 64, frames, batch_size: 1 } },
    });
    expect(await errorsOf(graph(video(16)), 's')).toBe('');
    const errs = await errorsOf(graph(video(17)), 's');
    for (const m of ['shapes-video-i2v', 'shapes-video-base'])
      expect(errs).toMatch(
        new RegExp(`latent_image: the model .*${m}.* takes at most 16 frames .*, the latent has 17`),
      );
    // the same words at run time for a caller that skips validation
    const { result } = await runDoc(executor, graph(video(17)), { outputs: ['out'], validate: false });
    expect(result.status).toBe('error');
    expect(result.error?.message).toMatch(/takes at most 16 frames .*, the latent has 17/);
  });

  it('a still-image model as the prior of the video model is refused at validation', async () => {
    const errs = await errorsOf(
      graph({
        base: { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' } },
        bden: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } },
      }),
      'g',
    );
    expect(errs).toMatch(
      /prior: .*shapes-base.* cannot be combined with .*shapes-video-i2v.*: a video model and a still-image model/,
    );
  });

  it('an image condition of other frames than the sampled video is refused with the frame counts', async () => {
    const d = graph({
      clip4: { type: 'EmptyVideoLatent', inputs: { width: 64, height: 64, frames: 4, batch_size: 1 } },
      first: { type: 'VAEDecode', inputs: { samples: link('clip4', 'LATENT'), vae: link('load', 'VAE') } },
    });
    const { result } = await runDoc(executor, d, { outputs: ['out'] });
    expect(result.status).toBe('error');
    expect(result.error?.message ?? '').toMatch(/4 frames/);
  });
});

function samplerInputs() {
  return {
    guider: link('g', 'GUIDER'),
    scheduler: link('sched', 'SCHEDULER'),
    seed: 3,
    steps: 2,
    denoise: 1,
    batch_size: 1,
    preview_every: 0,
  };
}
