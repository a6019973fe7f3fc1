/** End-to-end runs through core's Executor on the committed ONNX fixtures (real onnxruntime-node). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { runtimeStats, stopRuntime } from '../src/index.ts';
import { doc, link, makeExecutor, makeHost, runDoc, t2iGraph } from './helpers.ts';

afterAll(async () => {
  await stopRuntime();
});

describe('text-to-image through the Executor', () => {
  const host = makeHost();
  const { executor } = makeExecutor(host);

  it('runs CFG: progress every step, previews, a saved PNG carrying the workflow', async () => {
    const { result, events } = await runDoc(executor, t2iGraph({ guider: 'cfg', save: true, steps: 6 }));
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
    const prog = events.filter((e) => e.type === 'progress' && e.nodeId === 'sample');
    expect(prog.map((e) => (e as { value: number }).value)).toEqual([1, 2, 3, 4, 5, 6]);
    // a preview every 2 steps, coalesced at the source to at most 10 a second (a run of these tiny
    // models may take less): between one and three, the final step's always, after its progress
    const previews = events.filter((e) => e.type === 'preview');
    expect(previews.length).toBeGreaterThanOrEqual(1);
    expect(previews.length).toBeLessThanOrEqual(3);
    expect(events.lastIndexOf(previews.at(-1)!)).toBeGreaterThan(events.lastIndexOf(prog.at(-1)!));
    const p0 = (previews[0] as { image: { format: string; data: Uint8Array } }).image;
    expect(p0.format).toBe('png');
    expect(decode(p0.data).width).toBe(64); // the 8×8 latent preview enlarged
    const ui = result.outputs.out as { images: Array<{ filename: string; subfolder: string; type: string }> };
    expect(ui.images).toHaveLength(2);
    expect(ui.images[0]).toMatchObject({ subfolder: 'test', type: 'output' });
    const file = join(host.outputDir, 'test', ui.images[0].filename);
    const png = decode(readFileSync(file));
    expect([png.width, png.height]).toEqual([32, 32]);
    const wf = JSON.parse(png.text.workflow);
    expect(wf.nodes.sample.type).toBe('priorgraph.Sampler');
    const prompt = JSON.parse(png.text.prompt);
    expect(prompt.sample.class_type).toBe('priorgraph.Sampler');
    expect(prompt.sample.inputs.guider).toEqual(['guide', 0]);
    // a second run never overwrites
    const again = await runDoc(executor, t2iGraph({ guider: 'cfg', save: true, steps: 6 }));
    expect(again.result.status).toBe('success');
    expect(readdirSync(join(host.outputDir, 'test')).length).toBe(4);
  });

  it('is reproducible for a seed and differs across seeds', async () => {
    const a = await runDoc(executor, t2iGraph({ guider: 'priorswap', seed: 7 }));
    expect(a.result.status).toBe('success');
    executor.clearCache();
    const b = await runDoc(executor, t2iGraph({ guider: 'priorswap', seed: 7 }));
    const c = await runDoc(executor, t2iGraph({ guider: 'priorswap', seed: 8 }));
    const img = (r: typeof a) => (r.result.outputs.out as { images: Array<{ filename: string }> }).images[0].filename;
    const read = (r: typeof a) => decode(readFileSync(join(host.tempDir, img(r)))).data;
    expect(Buffer.from(read(a))).toEqual(Buffer.from(read(b)));
    expect(Buffer.from(read(a))).not.toEqual(Buffer.from(read(c)));
  });

  it('prior swap with a base of another schedule and parameterization (v-pred, cosine, learned sigma)', async () => {
    const ok = await runDoc(executor, t2iGraph({ guider: 'priorswap', prior: 'tiny-dit', priorCond: true }));
    expect(ok.result.error?.message ?? '').toBe('');
    expect(ok.result.status).toBe('success');
    // tiny-dit needs a text conditioning: its Denoiser without one is refused, naming the input and file
    const { result } = await runDoc(executor, t2iGraph({ guider: 'priorswap', prior: 'tiny-dit' }));
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('neg');
    expect(result.error?.message).toMatch(/input "conditioning"/);
    expect(result.error?.message).toMatch(/tiny-dit/);
  });

  it('refuses a prior with another latent space, naming both models', async () => {
    const { result } = await runDoc(executor, t2iGraph({ guider: 'priorswap', prior: 'single/other_latent.onnx' }));
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('guide');
    expect(result.error?.message).toMatch(/do not share a latent space/);
    expect(result.error?.message).toMatch(/tiny-t2i/);
    expect(result.error?.message).toMatch(/other_latent\.onnx/);
  });

  it('shares one loaded model between nodes and jobs', () => {
    const st = runtimeStats() as { loaded: Array<{ path: string; threads: number }> };
    const keys = st.loaded.map((l) => `${l.path}|${l.threads}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(st.loaded.some((l) => l.path.endsWith('tiny-t2i/unet/model.onnx'))).toBe(true);
  });

  it('stops within one step of cancellation', async () => {
    const ac = new AbortController();
    const d = t2iGraph({ guider: 'cfg', steps: 400, seed: 99 });
    let seen = 0;
    const events: string[] = [];
    const run = executor.run(d, {
      promptId: 'cancel',
      signal: ac.signal,
      onEvent: (e) => {
        events.push(e.type);
        if (e.type === 'progress' && e.nodeId === 'sample') {
          seen = e.value;
          if (e.value === 5) ac.abort();
        }
      },
    });
    const r = await run;
    expect(r.status).toBe('interrupted');
    expect(seen).toBeGreaterThanOrEqual(5);
    expect(seen).toBeLessThanOrEqual(7);
  });
});

describe('bad inputs name the node, the input and the file', () => {
  const host = makeHost();
  const { executor } = makeExecutor(host);

  it('a corrupt .onnx', async () => {
    const { result } = await runDoc(
      executor,
      doc({
        u: { type: 'UNetLoader', inputs: { unet_path: 'single/corrupt.onnx' } },
        d: { type: 'Denoiser', inputs: { model: link('u', 'MODEL') } },
        g: { type: 'BasicGuider', inputs: { denoiser: link('d', 'DENOISER') } },
        s: { type: 'Scheduler', inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' } },
        k: {
          type: 'Sampler',
          inputs: {
            guider: link('g', 'GUIDER'),
            scheduler: link('s', 'SCHEDULER'),
            seed: 1,
            steps: 2,
            denoise: 1,
            batch_size: 1,
            preview_every: 0,
          },
        },
        v: { type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1, channels: 4 } },
      }),
      { outputs: ['k'] },
    );
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('u');
    // refused at validation: the loader lists only files that look like denoisers (names input and file)
    expect(result.error?.message).toMatch(/unet_path/);
    expect(result.error?.message).toMatch(/corrupt\.onnx/);
  });

  it('a path outside the model roots (absolute, traversal) fails validation on that input', async () => {
    for (const p of ['/etc/passwd', '../../../../../etc/passwd', 'tiny-t2i/../../helpers.ts']) {
      const { result } = await runDoc(
        executor,
        doc({
          u: { type: 'UNetLoader', inputs: { unet_path: p } },
          x: { type: 'Denoiser', inputs: { model: link('u', 'MODEL') } },
        }),
        {
          outputs: ['x'],
        },
      );
      expect(result.status).toBe('error');
      expect(JSON.stringify(result.error)).toMatch(/unet_path/);
    }
  });

  it('latents of the wrong shape', async () => {
    const d = t2iGraph({ guider: 'cfg' });
    const nodes = d.nodes as Record<string, { type: string; inputs: Record<string, unknown> }>;
    nodes.lat = {
      type: 'priorgraph.EmptyLatentImage',
      version: 1,
      mode: 'normal',
      inputs: { width: 64, height: 64, batch_size: 1, channels: 3 },
    } as never;
    nodes.sample.inputs.latent_image = link('lat', 'LATENT');
    const { result } = await runDoc(executor, d);
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('sample');
    expect(result.error?.message).toMatch(/input "latent_image".*3 channels.*tiny-t2i/);
  });

  it('a missing file', async () => {
    const { result } = await runDoc(
      executor,
      doc({
        c: { type: 'CLIPLoader', inputs: { clip_path: 'tiny-base' } },
        e: { type: 'CLIPTextEncode', inputs: { clip: link('c', 'CLIP'), text: 'x' } },
      }),
      { outputs: ['e'] },
    );
    expect(result.status).toBe('error');
    expect(result.error?.message).toMatch(/clip_path/);
    // tiny-base has no text encoder, so the CLIP loader does not list it: refused at validation
    expect(result.error?.message).toMatch(/tiny-base/);
  });
});
