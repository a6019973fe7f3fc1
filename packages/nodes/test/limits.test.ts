/**
 * Issue 16, items 2 and 6: what cannot run is refused at validation, naming the node and input,
 * before anything allocates. Steps beyond what the scheduler allows; a latent/image graph whose
 * tensors exceed the per-job memory budget (EmptyLatentImage 8192² × 64 into VAEDecode); a PNG that
 * declares 25000 × 25000 (refused from its header, at validation and again when LoadImage runs).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type NodeContext, validateWorkflow } from '@priorgraph/core';
import { describe, expect, it } from 'vitest';
import { LoadImage } from '../src/nodes/images.ts';
import { doc, link, makeExecutor, makeHost } from './helpers.ts';

const host = makeHost();
const { registry } = makeExecutor(host);
const GiB = 2 ** 30;

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A PNG whose header declares width × height (RGB, 8 bit); no pixel data follows. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function samplerGraph(scheduler: string, steps: number, configJson = '{}', width = 64, batch = 1) {
  return doc({
    L: { type: 'DiffusersLoader', inputs: { model_path: 'tiny-t2i' } },
    T: { type: 'CLIPTextEncode', inputs: { clip: link('L', 'CLIP'), text: 'a cat' } },
    N: { type: 'Denoiser', inputs: { model: link('L', 'MODEL'), conditioning: link('T', 'CONDITIONING') } },
    G: { type: 'BasicGuider', inputs: { denoiser: link('N', 'DENOISER') } },
    C: { type: 'Scheduler', inputs: { scheduler, use_karras_sigmas: false, eta: 0, config_json: configJson } },
    E: { type: 'EmptyLatentImage', inputs: { width, height: width, batch_size: batch, channels: 4 } },
    K: {
      type: 'Sampler',
      inputs: {
        guider: link('G', 'GUIDER'),
        scheduler: link('C', 'SCHEDULER'),
        seed: 1,
        steps,
        denoise: 1,
        batch_size: 1,
        preview_every: 0,
        latent_image: link('E', 'LATENT'),
      },
    },
    D: { type: 'VAEDecode', inputs: { samples: link('K', 'LATENT'), vae: link('L', 'VAE') } },
    S: { type: 'SaveImage', inputs: { images: link('D', 'IMAGE'), filename_prefix: 'x' } },
  });
}

describe('steps beyond what the scheduler allows', () => {
  it('lcm with 1000 steps is refused on the Sampler, input steps', async () => {
    const v = await validateWorkflow(samplerGraph('lcm', 1000), registry, host);
    expect(v.ok).toBe(false);
    const errs = v.node_errors.K?.errors ?? [];
    expect(errs).toHaveLength(1);
    expect(errs[0].extra_info.input_name).toBe('steps');
    expect(errs[0].details).toMatch(/1000 steps is more than scheduler lcm allows \(at most 50\)/);
    expect(Object.keys(v.node_errors)).toEqual(['K']);
  });

  it('a config_json with fewer training timesteps lowers the limit; within it passes', async () => {
    const bad = await validateWorkflow(samplerGraph('ddim', 600, '{"num_train_timesteps": 500}'), registry, host);
    expect(bad.node_errors.K?.errors[0].details).toMatch(/at most 500/);
    const ok = await validateWorkflow(samplerGraph('ddim', 1000), registry, host);
    expect(ok.node_errors).toEqual({});
    expect(ok.ok).toBe(true);
    const lcm = await validateWorkflow(samplerGraph('lcm', 50), registry, host);
    expect(lcm.ok).toBe(true);
  });
});

describe('memory budget', () => {
  const bomb = () =>
    doc({
      L: { type: 'DiffusersLoader', inputs: { model_path: 'tiny-t2i' } },
      E: { type: 'EmptyLatentImage', inputs: { width: 8192, height: 8192, batch_size: 64, channels: 4 } },
      D: { type: 'VAEDecode', inputs: { samples: link('E', 'LATENT'), vae: link('L', 'VAE') } },
      S: { type: 'SaveImage', inputs: { images: link('D', 'IMAGE'), filename_prefix: 'x' } },
    });

  it('EmptyLatentImage 8192² × 64 into VAEDecode is refused on VAEDecode, naming sizes', async () => {
    const v = await validateWorkflow(bomb(), registry, host, { memoryBudgetBytes: 8 * GiB });
    expect(v.ok).toBe(false);
    const d = v.node_errors.D?.errors ?? [];
    expect(d[0]?.type).toBe('memory_budget_exceeded');
    // the tiny VAE's config says it upsamples by 4: a [64, 4, 1024, 1024] latent decodes to
    // [64, 4096, 4096, 3], float32 twice (decoder output and image), plus the latent twice.
    const image = 64 * 4096 * 4096 * 3 * 4;
    const latent = 64 * 4 * 1024 * 1024 * 4;
    expect(d[0].extra_info.estimated_bytes).toBe(2 * image + 2 * latent);
    expect(d[0].details).toMatch(/node D \(priorgraph\.VAEDecode\) would hold about 26\.0 GiB/);
    expect(d[0].details).toContain('8.0 GiB');
    // The latent alone (1 GiB) fits; SaveImage holds the image again and is refused too.
    expect(v.node_errors.E).toBeUndefined();
    expect(v.node_errors.S?.errors[0].type).toBe('memory_budget_exceeded');
  });

  it('the same graph at 512² passes; without a budget nothing is refused', async () => {
    const small = bomb();
    (small.nodes.E.inputs as Record<string, unknown>).width = 512;
    (small.nodes.E.inputs as Record<string, unknown>).height = 512;
    (small.nodes.E.inputs as Record<string, unknown>).batch_size = 1;
    const v = await validateWorkflow(small, registry, host, { memoryBudgetBytes: 8 * GiB });
    expect(v.node_errors).toEqual({});
    expect(v.ok).toBe(true);
    expect((await validateWorkflow(bomb(), registry, host)).ok).toBe(true);
  });

  it('the sampler counts its batch: a batch of 64 at 4096² over a 1 GiB budget is refused on the Sampler', async () => {
    const v = await validateWorkflow(samplerGraph('ddim', 20, '{}', 4096, 64), registry, host, {
      memoryBudgetBytes: 1 * GiB,
    });
    expect(v.node_errors.K?.errors.map((e) => e.type)).toEqual(['memory_budget_exceeded']);
    // The latent itself is [64, 4, 512, 512] float32 = 256 MiB: within the budget.
    expect(v.node_errors.E).toBeUndefined();
  });
});

describe('image bombs', () => {
  mkdirSync(host.inputDir, { recursive: true });
  writeFileSync(join(host.inputDir, 'bomb.png'), pngHeader(25000, 25000));
  writeFileSync(join(host.inputDir, 'fine.png'), pngHeader(640, 480));
  const graph = (image: string) =>
    doc({
      I: { type: 'LoadImage', inputs: { image } },
      S: { type: 'SaveImage', inputs: { images: link('I', 'IMAGE'), filename_prefix: 'x' } },
    });

  it('a PNG declaring 25000×25000 is refused at validation on LoadImage.image', async () => {
    const v = await validateWorkflow(graph('bomb.png'), registry, host);
    expect(v.ok).toBe(false);
    const e = v.node_errors.I?.errors[0];
    expect(e?.extra_info.input_name).toBe('image');
    expect(e?.details).toMatch(/bomb\.png: PNG declares 25000×25000 = 625,000,000 pixels, over the limit/);
    const fine = await validateWorkflow(graph('fine.png'), registry, host, { memoryBudgetBytes: GiB });
    expect(fine.node_errors.I).toBeUndefined();
  });

  it('LoadImage refuses it from the header when it runs, before decoding', async () => {
    const ctx = { host, nodeId: 'I', promptId: 'p' } as unknown as NodeContext;
    await expect(async () => LoadImage.execute({ image: 'bomb.png' }, ctx)).rejects.toThrow(
      /25000×25000.*refused before decoding/,
    );
  });

  it('host.config.maxImagePixels lowers the limit', async () => {
    const strict = { ...host, config: { ...host.config, maxImagePixels: 100 * 100 } };
    const v = await validateWorkflow(graph('fine.png'), registry, strict);
    expect(v.node_errors.I?.errors[0].details).toMatch(/640×480/);
  });
});

describe('batch: the latent and the Sampler (issue 15, item 10)', () => {
  const batched = (latentBatch: number, samplerBatch: number) => {
    const g = samplerGraph('ddim', 20, '{}', 64, latentBatch);
    (g.nodes.K.inputs as Record<string, unknown>).batch_size = samplerBatch;
    return g;
  };

  it('a Sampler batch_size that differs from the latent batch is refused at validation, naming both inputs', async () => {
    const v = await validateWorkflow(batched(3, 2), registry, host);
    expect(v.ok).toBe(false);
    const errs = v.node_errors.K?.errors ?? [];
    expect(errs).toHaveLength(1);
    expect(errs[0].extra_info.input_name).toBe('batch_size');
    expect(errs[0].details).toMatch(
      /batch_size 2 conflicts with latent_image, which holds a batch of 3: set batch_size to 1 .* or to 3/,
    );
  });

  it('the latent batch wins over batch_size 1; batch_size repeats a latent of batch 1; equal batches pass', async () => {
    for (const [lb, sb] of [
      [3, 1],
      [1, 4],
      [2, 2],
    ]) {
      const v = await validateWorkflow(batched(lb, sb), registry, host);
      expect(v.node_errors, `${lb}/${sb}`).toEqual({});
    }
  });
});
