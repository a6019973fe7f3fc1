/**
 * VAE Decode's validation reads the VAE's pixel factor from the VAE's own config (its layout), never a
 * fixed 8: the demo shapes VAE downsamples by 4, so an 8×8 latent decodes to 32×32 (not 64×64) — and
 * the run agrees with what validation said.
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
    // video latents: frames folded into the batch
    expect(decodeFacts([1, 16, 3, 5, 7], facts).outputs?.IMAGE).toEqual({ shape: [3, 80, 112, 3], frames: 3 });
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

  it('the memory budget counts the image the VAE really makes: fits at factor 4, would not at an assumed 8', async () => {
    // a [4, 4, 512, 512] latent: 2048² images with this VAE (416 MiB while decoding), 4096² with an
    // SD-style one (1568 MiB); a 1 GiB budget tells them apart
    const g = doc({
      vae: { type: 'VAELoader', inputs: { vae_path: 'shapes-t2i' } },
      lat: { type: 'EmptyLatentImage', inputs: { width: 4096, height: 4096, batch_size: 4, channels: 4 } },
      dec: { type: 'VAEDecode', inputs: { samples: link('lat', 'LATENT'), vae: link('vae', 'VAE') } },
      show: { type: 'PreviewImage', inputs: { images: link('dec', 'IMAGE') } },
    });
    const GiB = 1024 ** 3;
    const v = await validateWorkflow(g, registry, host, { memoryBudgetBytes: GiB });
    expect(v.node_errors).toEqual({});
    expect(v.ok).toBe(true);
    const sdStyle = decodeFacts([4, 4, 512, 512], { path: 'sd', factor: 8, channels: 4 });
    expect(sdStyle.bytes).toBeGreaterThan(GiB);
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
