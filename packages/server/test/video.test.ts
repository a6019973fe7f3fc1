/**
 * Video over the ComfyUI API with the real built-in plugin: a ComfyUI API prompt that samples a tiny
 * rank-5 denoiser (written by the test), decodes the frames and saves them as animated WebP, APNG and
 * (with Debian's ffmpeg on the PATH) MP4. /history reports them as ComfyUI reports animated outputs
 * (`images` with `animated: [true]`), and /view serves each with its content type.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodesPlugin from '@priorgraph/nodes';
import { afterAll, describe, expect, it } from 'vitest';
import { writeVideoModel } from '../../nodes/test/video-fixtures.ts';
import { createServer, type PriorgraphServer, silentLogger } from '../src/index.js';
import { FIXTURES_DIR } from '../testkit/demo-workflow.js';
import { get, post, WsRecorder } from '../testkit/index.js';

const FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'pg-video-server-'));
const models = join(dir, 'models');
writeVideoModel(models, 'video-uncond', {
  inC: 4,
  frames: 4,
  k: { a: 0.4, b: 0, c: 0, d: 0.0005, e: 0.3 },
  ehs: false,
});
let server: PriorgraphServer | null = null;
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A ComfyUI API prompt: sample 2 clips of 4 frames, decode, save with the given nodes. */
function prompt(saves: Record<string, { class_type: string; inputs: Record<string, unknown> }>) {
  return {
    m: { class_type: 'UNetLoader', inputs: { unet_path: 'video-uncond' } },
    d: { class_type: 'Denoiser', inputs: { model: ['m', 0] } },
    g: { class_type: 'BasicGuider', inputs: { denoiser: ['d', 0] } },
    sched: {
      class_type: 'Scheduler',
      inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' },
    },
    lat: { class_type: 'EmptyVideoLatent', inputs: { width: 64, height: 64, frames: 4, batch_size: 2 } },
    sample: {
      class_type: 'Sampler',
      inputs: {
        guider: ['g', 0],
        scheduler: ['sched', 0],
        seed: 5,
        steps: 2,
        denoise: 1,
        batch_size: 1,
        preview_every: 1,
        latent_image: ['lat', 0],
      },
    },
    vae: { class_type: 'VAELoader', inputs: { vae_path: 'tiny-t2i' } },
    dec: { class_type: 'VAEDecode', inputs: { samples: ['sample', 0], vae: ['vae', 0] } },
    ...saves,
  };
}

async function run(url: string, p: Record<string, unknown>) {
  const ws = await WsRecorder.open(url, 'video-ws');
  const r = await post(url, '/prompt', { prompt: p, client_id: 'video-ws' });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const id = r.json.prompt_id as string;
  await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 120_000);
  const err = ws.of(id).find((f) => f.type === 'execution_error');
  expect(err?.data.exception_message ?? '').toBe('');
  ws.close();
  return (await get(url, `/history/${id}`)).json[id].outputs as Record<
    string,
    { images: Array<Record<string, string>>; animated: boolean[] }
  >;
}

describe('animated outputs over the ComfyUI API', () => {
  it('history reports images + animated: [true]; /view serves image/webp, image/png, video/mp4, image/gif', async () => {
    server = createServer({
      port: 0,
      dataDir: dir,
      modelRoots: [FIXTURES_DIR, models],
      plugins: [{ plugin: nodesPlugin, source: '@priorgraph/nodes', module: '@priorgraph/nodes' }],
      log: silentLogger,
    });
    const { url } = await server.listen();
    const saves: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {
      webp: {
        class_type: 'SaveAnimatedWEBP',
        inputs: {
          images: ['dec', 0],
          filename_prefix: 'clip',
          fps: 8,
          lossless: false,
          quality: 90,
          method: 'fastest',
        },
      },
      apng: {
        class_type: 'SaveAnimatedPNG',
        inputs: { images: ['dec', 0], filename_prefix: 'clip', fps: 8, compress_level: 4 },
      },
    };
    if (FFMPEG)
      saves.mp4 = { class_type: 'SaveVideo', inputs: { images: ['dec', 0], filename_prefix: 'clip', fps: 8, crf: 23 } };
    const outputs = await run(url, prompt(saves));
    const want: Record<string, string> = { webp: 'image/webp', apng: 'image/png', mp4: 'video/mp4' };
    for (const node of Object.keys(saves)) {
      const o = outputs[node];
      expect(o.animated).toEqual([true]);
      expect(o.images).toHaveLength(2); // one file per clip
      for (const f of o.images) {
        expect(f.type).toBe('output');
        const v = await fetch(
          `${url}/view?${new URLSearchParams({ filename: f.filename, subfolder: f.subfolder, type: f.type })}`,
        );
        expect(v.status).toBe(200);
        expect(v.headers.get('content-type')).toContain(want[node]);
        expect((await v.arrayBuffer()).byteLength).toBeGreaterThan(100);
      }
    }
    // a GIF (e.g. from another tool) in the input folder
    writeFileSync(join(dir, 'input', 'anim.gif'), Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
    const gif = await fetch(`${url}/view?filename=anim.gif&type=input`);
    expect(gif.status).toBe(200);
    expect(gif.headers.get('content-type')).toContain('image/gif');
  });
});
