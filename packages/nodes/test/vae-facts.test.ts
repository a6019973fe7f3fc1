/**
 * VAE Decode's validation reads the VAE's pixel factor from the VAE's own config (its layout), never a
 * fixed 8: the demo shapes VAE downsamples by 4, so an 8×8 latent decodes to 32×32 (not 64×64) — and
 * the run agrees with what validation said. Latents with channels the VAE does not take are refused
 * before the run, naming the input.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { validateWorkflow } from '@priorgraph/core';
import { describe, expect, it } from 'vitest';
import { loadVae, vaeFactorOf, vaeFacts } from '../src/models/load.ts';
import { DiffusersLoader, VAELoader } from '../src/nodes/loaders.ts';
import { decodeFacts, VAEDecode, vaeDecode } from '../src/nodes/vae.ts';
import { RuntimePool } from '../src/runtime/pool.ts';
import { doc, link, makeExecutor, makeHost } from './helpers.ts';

const DEMO = resolve(import.meta.dirname, '..', '..', '..', 'models');
const haveDemo = existsSync(join(DEMO, 'shapes-t2i', 'vae_decoder', 'config.json'));

describe('the VAE pixel factor comes from the VAE config', () => {
  it('downsample_factor when given, else 2^(blocks − 1) of diffusers AutoencoderKL, else unknown', () => {
    expect(vaeFactorOf({ downsample_factor: 4, block_out_channels: [1, 2, 3, 4] })).toBe(4);
    expect(vaeFactorOf({ block_out_channels: [128, 256, 512, 512] })).toBe(8);
    expect(vaeFactorOf({ block_out_channels: [64, 128] })).toBe(2);
    expect(vaeFactorOf({ scaling_factor: 0.18215 })).toBeNull();
    expect(vaeFactorOf({ downsample_factor: 0 })).toBeNull();
  });

  it('a synthetic VAE with factor 16: the decoded IMAGE facts follow it; without facts no size is claimed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-vae-'));
    mkdirSync(join(dir, 'vae_decoder'));
    writeFileSync(
      join(dir, 'vae_decoder', 'config.json'),
      JSON.stringify({ block_out_channels: [1, 2, 3, 4, 5], latent_channels: 16 }),
    );
    const facts = vaeFacts(dir);
    expect(facts).toEqual({ path: dir, factor: 16, channels: 16 });
    const f = decodeFacts([2, 16, 5, 7], facts);
    expect(f.outputs?.IMAGE).toEqual({ shape: [2, 80, 112, 3] });
    expect(f.problems).toEqual([]);
    // video latents: frames folded into the batch
    expect(decodeFacts([1, 16, 3, 5, 7], facts).outputs?.IMAGE).toEqual({ shape: [3, 80, 112, 3], frames: 3 });
    // wrong channels: a problem on "samples" naming both counts
    const bad = decodeFacts([1, 4, 5, 7], facts);
    expect(bad.problems).toEqual([{ input: 'samples', message: expect.stringMatching(/4 channels.*16-channel/) }]);
    // no VAE facts: a memory estimate, but no image size
    const unknown = decodeFacts([1, 4, 5, 7], null);
    expect(unknown.outputs).toBeUndefined();
    expect(unknown.bytes).toBeGreaterThan(0);
  });
});

describe.skipIf(!haveDemo)('the demo shapes VAE (factor 4) through validation and a run', () => {
  const host = makeHost({ modelRoots: [DEMO] });
  const { registry } = makeExecutor(host);

  it('the loaders tell factor 4 and 4 channels from the layout', () => {
    const viaFolder = DiffusersLoader.infer!({ model_path: 'shapes-t2i' }, {}, host)?.outputs?.VAE;
    const viaVae = VAELoader.infer!({ vae_path: 'shapes-t2i' }, {}, host)?.outputs?.VAE;
    for (const v of [viaFolder, viaVae]) expect(v).toMatchObject({ factor: 4, channels: 4 });
    const lat = VAEDecode.infer!({}, { samples: { shape: [1, 4, 8, 8] }, vae: viaVae }, host);
    expect(lat?.outputs?.IMAGE).toEqual({ shape: [1, 32, 32, 3] });
  });

  const graph = (channels: number) =>
    doc({
      vae: { type: 'VAELoader', inputs: { vae_path: 'shapes-t2i' } },
      lat: { type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1, channels } },
      dec: { type: 'VAEDecode', inputs: { samples: link('lat', 'LATENT'), vae: link('vae', 'VAE') } },
      show: { type: 'PreviewImage', inputs: { images: link('dec', 'IMAGE') } },
    });

  it('latents with the wrong channel count are refused at validation, naming the node and input', async () => {
    const v = await validateWorkflow(graph(3), registry, host);
    expect(v.ok).toBe(false);
    expect(Object.keys(v.node_errors)).toEqual(['dec']);
    const errors = JSON.stringify(v.node_errors);
    expect(errors).toContain('dec');
    expect(errors).toContain('samples');
    expect(errors).toMatch(/3 channels.*4-channel/);
    expect((await validateWorkflow(graph(4), registry, host)).ok).toBe(true);
  });

  it('the decoded image has the size validation inferred (8×8 latent → 32×32)', async () => {
    const vae = VAELoader.infer!({ vae_path: 'shapes-t2i' }, {}, host)?.outputs?.VAE;
    const inferred = VAEDecode.infer!({}, { samples: { shape: [1, 4, 8, 8] }, vae }, host)?.outputs?.IMAGE;
    const pool = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 64 });
    try {
      const loaded = await loadVae(pool, join(DEMO, 'shapes-t2i'));
      const image = await vaeDecode(loaded, { samples: new Float32Array(4 * 8 * 8), shape: [1, 4, 8, 8] });
      expect(image.shape).toEqual((inferred as { shape: number[] }).shape);
    } finally {
      await pool.dispose();
    }
  });
});
