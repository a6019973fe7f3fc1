/**
 * The example workflows for real model families (examples/workflows/real/, made by
 * tools/examples/make-examples.ts) run as shipped — only the step count and the image size changed —
 * on the conformance fixtures (tiny models of the real architectures, exported by optimum / diffusers'
 * tools), laid out in a temporary model root under the folder names the examples expect (the names a
 * user's exports get). Each runs through core's Executor with the built-in nodes to a saved image, and
 * its ComfyUI API form (.api.json) imports back to the same graph.
 *
 * Which fixture stands in for which folder (the fine-tunes are the fixtures' seeded "fine-tunes" where
 * a family has one; SD 1.x has none, so its export stands in for "my-sd15-finetune"):
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Executor, fromComfyPrompt, type HostInfo, readImageHeader, type WorkflowDocument } from '@priorgraph/core';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRuntime } from '../src/index.ts';
import { conformanceRegistry, materializeAs, probed, relErr, workflow } from './conformance-fixtures.ts';

const REAL = fileURLToPath(new URL('../../../examples/workflows/real/', import.meta.url));

/** example → {fixture: folder name the example expects} */
const LAYOUT: Record<string, Record<string, string>> = {
  'sd15-priorswap-sd21': { 'sd1-optimum': 'my-sd15-finetune', 'sd2-optimum': 'stable-diffusion-2-1' },
  'ip2p-sd-prior': { 'ip2p-optimum': 'instruct-pix2pix', 'sd1-optimum': 'stable-diffusion-v1-5' },
  'dit-imagenet-priorswap': { 'dit/finetune': 'my-dit-finetune', 'dit/base': 'DiT-XL-2-256' },
  'sd15-pixart-prior': { 'sd1-optimum': 'my-sd15-finetune', 'pixart/base': 'PixArt-XL-2-512x512' },
  'sdxl-priorswap': { 'sdxl/finetune': 'my-sdxl-finetune', 'sdxl/base': 'stable-diffusion-xl-base-1.0' },
};
/** The folder whose VAE decodes each example's images. */
const VAE: Record<string, string> = {
  'sd15-priorswap-sd21': 'my-sd15-finetune',
  'ip2p-sd-prior': 'instruct-pix2pix',
  'dit-imagenet-priorswap': 'DiT-XL-2-256',
  'sd15-pixart-prior': 'my-sd15-finetune',
  'sdxl-priorswap': 'stable-diffusion-xl-base-1.0',
};
/** The samplers with the model's own unconditional branch, and with the prior's. */
const SAMPLERS: Record<string, [string, string]> = {
  'sd15-priorswap-sd21': ['sample_cfg', 'sample_swap'],
  'ip2p-sd-prior': ['edit', 'edit_swap'],
  'dit-imagenet-priorswap': ['sample_cfg', 'sample_swap'],
  'sd15-pixart-prior': ['sample_cfg', 'sample_swap'],
  'sdxl-priorswap': ['sample_cfg', 'sample_swap'],
};
/** The tiny models' size: 64×64 pixels, i.e. 8×8 latents (the DiT export fixes it). */
const PIXELS = 64;
const STEPS = 2;

function host(): HostInfo {
  const base = mkdtempSync(join(tmpdir(), 'pg-real-examples-'));
  const modelRoot = join(base, 'models');
  for (const folders of Object.values(LAYOUT)) materializeAs(modelRoot, folders);
  // the IP2P example's source image (the fixture's 64×64 PNG) under the name it expects
  const inputDir = join(base, 'input');
  materializeAs(join(base, 'inputs-tmp'), { 'inputs-sd': 'inputs-sd' });
  mkdirSync(inputDir, { recursive: true });
  copyFileSync(join(base, 'inputs-tmp', 'inputs-sd', 'ip2p-source.png'), join(inputDir, 'source.png'));
  return {
    modelRoots: [modelRoot],
    outputDir: join(base, 'output'),
    inputDir,
    tempDir: join(base, 'temp'),
    config: { executionProviders: ['cpu'], modelMemoryBudgetMB: 512 },
  };
}

const H = host();
const registry = conformanceRegistry();
const executor = new Executor(registry, { host: H });
afterAll(async () => {
  await stopRuntime();
});

const load = (name: string, ext: string) => JSON.parse(readFileSync(join(REAL, `${name}${ext}`), 'utf8'));

/** The example with fewer steps and the tiny models' size; nothing else changed. */
function shrunk(doc: WorkflowDocument): WorkflowDocument {
  const d = structuredClone(doc);
  for (const n of Object.values(d.nodes)) {
    const i = n.inputs as Record<string, unknown>;
    if (n.type === 'priorgraph.Sampler') i.steps = STEPS;
    if (n.type === 'priorgraph.EmptyLatentImage') Object.assign(i, { width: PIXELS, height: PIXELS });
    if (n.type === 'priorgraph.CLIPTextEncodeSDXL')
      Object.assign(i, { width: PIXELS, height: PIXELS, target_width: PIXELS, target_height: PIXELS });
  }
  return d;
}

describe('examples/workflows/real on the conformance fixtures', { timeout: 300_000 }, () => {
  it('every example under examples/workflows/real/ is run here', () => {
    const docs = readdirSync(REAL).filter((f) => f.endsWith('.json') && !f.endsWith('.api.json'));
    expect(docs.map((f) => f.replace(/\.json$/, '')).sort()).toEqual(Object.keys(LAYOUT).sort());
  });

  it('sd15-pixart-prior the other way round also runs: a PixArt-α fine-tune with SD 1.5 "" as the prior', async () => {
    materializeAs(H.modelRoots[0], { 'pixart/finetune': 'my-pixart-finetune' });
    const L = (node: string, output: string) => ({ node, output });
    const d = workflow({
      base: { type: 'DiffusersLoader', inputs: { model_path: 'PixArt-XL-2-512x512' } },
      ft: { type: 'UNetLoader', inputs: { unet_path: 'my-pixart-finetune' } },
      prompt: { type: 'T5TextEncode', inputs: { clip: L('base', 'CLIP'), text: 'a lighthouse', max_length: 120 } },
      sd: { type: 'DiffusersLoader', inputs: { model_path: 'my-sd15-finetune' } },
      sd_empty: { type: 'CLIPTextEncode', inputs: { clip: L('sd', 'CLIP'), text: '' } },
      cond: { type: 'Denoiser', inputs: { model: L('ft', 'MODEL'), conditioning: L('prompt', 'CONDITIONING') } },
      prior: { type: 'Denoiser', inputs: { model: L('sd', 'MODEL'), conditioning: L('sd_empty', 'EMPTY') } },
      swap: {
        type: 'PriorSwapCFGGuider',
        inputs: {
          model: L('cond', 'DENOISER'),
          prior: L('prior', 'DENOISER'),
          cfg: 4.5,
          guidance_rescale: 0,
          interval_sigma_lo: 0,
          interval_sigma_hi: 0,
        },
      },
      sched: {
        type: 'Scheduler',
        inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: L('ft', 'MODEL') },
      },
      latent: { type: 'EmptyLatentImage', inputs: { width: PIXELS, height: PIXELS, batch_size: 1, channels: 4 } },
      sample: {
        type: 'Sampler',
        inputs: {
          guider: L('swap', 'GUIDER'),
          scheduler: L('sched', 'SCHEDULER'),
          seed: 42,
          steps: STEPS,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
          latent_image: L('latent', 'LATENT'),
        },
      },
      probe: { type: 'conftest.Probe', inputs: { key: 'reverse', latent: L('sample', 'LATENT') } },
    });
    const r = await executor.run(d, { promptId: 'reverse' });
    expect(r.error?.message ?? '').toBe('');
    expect(r.status).toBe('success');
    expect(probed.get('reverse')?.latent?.samples.every(Number.isFinite)).toBe(true);
  });

  for (const name of Object.keys(LAYOUT)) {
    it(`${name}: its description names the folders it expects`, () => {
      const doc = load(name, '.json') as WorkflowDocument & { meta: { description: string } };
      expect(doc.meta.description.startsWith('Expects model folders: ')).toBe(true);
      for (const folder of Object.values(LAYOUT[name])) expect(doc.meta.description).toContain(folder);
    });

    it(`${name}: its ComfyUI API form imports to the same graph`, () => {
      const doc = load(name, '.json') as WorkflowDocument;
      const back = fromComfyPrompt(load(name, '.api.json'), registry);
      expect(Object.keys(back.nodes).sort()).toEqual(Object.keys(doc.nodes).sort());
      for (const [id, n] of Object.entries(doc.nodes)) {
        expect(back.nodes[id].type, id).toBe(n.type);
        expect(back.nodes[id].version, id).toBe(n.version);
        expect(back.nodes[id].title, id).toBe(n.title);
        expect(back.nodes[id].inputs, id).toEqual(n.inputs);
      }
    });

    it(`${name}: runs through the Executor to a saved image (${STEPS} steps, ${PIXELS}×${PIXELS})`, async () => {
      const doc = shrunk(load(name, '.json'));
      // record the two samplers' latents (own unconditional branch, and the prior's)
      const [own, swapped] = SAMPLERS[name];
      for (const id of [own, swapped])
        doc.nodes[`probe_${id}`] = {
          type: 'conftest.Probe',
          version: 1,
          mode: 'normal',
          inputs: { key: `${name}/${id}`, latent: { node: id, output: 'LATENT' } },
        } as WorkflowDocument['nodes'][string];
      const r = await executor.run(doc, { promptId: name });
      expect(r.error?.message ?? '').toBe('');
      expect(r.status).toBe('success');
      const images = (r.outputs.save as { images?: Array<{ filename: string; subfolder: string }> }).images ?? [];
      expect(images.length).toBe(1);
      const file = join(H.outputDir, images[0].subfolder, images[0].filename);
      const header = readImageHeader(readFileSync(file));
      // a row of the compared images (CFG | prior swap, or source | edit | edit with the prior), each the
      // 8×8 latent decoded by that fixture's VAE (2^(levels−1)× up: SD's four levels 8×, the DiT, PixArt
      // and SDXL fixtures' two levels 2×), above its label
      const vae = JSON.parse(readFileSync(join(H.modelRoots[0], VAE[name], 'vae_decoder', 'config.json'), 'utf8'));
      const side = (PIXELS / 8) * 2 ** (vae.block_out_channels.length - 1);
      expect(header.height).toBeGreaterThan(side);
      expect(header.width).toBeGreaterThanOrEqual(2 * side);
      const a = probed.get(`${name}/${own}`)?.latent;
      const b = probed.get(`${name}/${swapped}`)?.latent;
      expect(a?.shape).toEqual(b?.shape);
      expect(a!.samples.every(Number.isFinite) && b!.samples.every(Number.isFinite)).toBe(true);
      // the same graph but for the unconditional branch: any difference is the prior's (same seed and
      // noise; equal inputs give bit-equal results)
      expect(relErr(b!.samples, a!.samples)).toBeGreaterThan(0);
    });
  }
});
