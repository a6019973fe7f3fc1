/** Image-to-image graphs through the Executor: LoadImage → VAEEncode → InstructPix2Pix guider (with and
 *  without a prior) / img2img with denoise < 1 → VAEDecode → ImageCompare → SaveImage; plus the other
 *  guiders (autoguidance, APG, class labels) as nodes. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { decode } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePng, previewPng, STORED_PREVIEW_BYTES, zlibStored } from '../src/image-utils.ts';
import { stopRuntime } from '../src/index.ts';
import { compareGrid } from '../src/nodes/images.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';

afterAll(async () => {
  await stopRuntime();
});

const host = makeHost();
const { executor, registry } = makeExecutor(host);
mkdirSync(join(host.inputDir, 'sub'), { recursive: true });
{
  const rgb = new Uint8Array(32 * 32 * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 256;
  writeFileSync(join(host.inputDir, 'sub', 'src.png'), encodePng(rgb, 32, 32, 3));
}

const sched = { type: 'Scheduler', inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' } };
const sampler = (guider: string, extra: Record<string, unknown> = {}) => ({
  type: 'Sampler',
  inputs: {
    guider: link(guider, 'GUIDER'),
    scheduler: link('sched', 'SCHEDULER'),
    seed: 3,
    steps: 4,
    denoise: 1,
    batch_size: 1,
    preview_every: 0,
    ...extra,
  },
});

/** The RGBA pixels of a decoded PNG, an indexed one through its palette. */
function rgbaOf(png: ReturnType<typeof decode>): Uint8Array {
  if (!png.palette) return png.data as Uint8Array;
  const out = new Uint8Array(png.width * png.height * 4);
  for (let i = 0; i < png.data.length; i++) out.set([...png.palette[png.data[i]], 255].slice(0, 4), i * 4);
  return out;
}

describe('step preview PNG', () => {
  it("stores small previews' rows: a zlib stream node's inflate reads back byte for byte (seeded)", () => {
    // lengths around the stored block's limit (65,535 bytes) and the threshold previews use
    const len = fc.oneof(
      fc.integer({ min: 0, max: 300 }),
      fc.integer({ min: STORED_PREVIEW_BYTES - 2, max: STORED_PREVIEW_BYTES + 2 }),
      fc.integer({ min: 65_530, max: 65_540 }),
      fc.integer({ min: 131_065, max: 131_080 }),
    );
    fc.assert(
      fc.property(len, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (n, seed) => {
        const raw = new Uint8Array(n);
        let x = seed | 1;
        for (let i = 0; i < n; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          raw[i] = x & 255;
        }
        expect(new Uint8Array(inflateSync(zlibStored(raw)))).toEqual(raw); // inflate checks the Adler-32 too
      }),
      { seed: 16, numRuns: 40 },
    );
  });

  it('is the strip enlarged by nearest neighbour to at least 64 px, pixel for pixel (seeded)', () => {
    // a strip: any size, its pixels from a few colours (a palette) or from all, opaque or not
    const strip = fc
      .record({
        w: fc.integer({ min: 1, max: 40 }),
        h: fc.integer({ min: 1, max: 40 }),
        colours: fc.integer({ min: 1, max: 300 }),
        opaque: fc.boolean(),
        unaligned: fc.boolean(),
      })
      .chain((p) =>
        fc.record({
          p: fc.constant(p),
          table: fc.uint8Array({ minLength: p.colours * 4, maxLength: p.colours * 4 }),
          pick: fc.array(fc.nat(p.colours - 1), { minLength: p.w * p.h, maxLength: p.w * p.h }),
        }),
      );
    fc.assert(
      fc.property(strip, ({ p, table, pick }) => {
        const { w, h } = p;
        const px = new Uint8Array(w * h * 4);
        pick.forEach((c, i) => {
          px.set(table.subarray(c * 4, c * 4 + 4), i * 4);
          if (p.opaque) px[i * 4 + 3] = 255;
        });
        // an unaligned view too (the strip of a message may start anywhere in its buffer)
        const rgba = p.unaligned ? new Uint8Array([0, ...px]).subarray(1) : px;
        const png = decode(previewPng(rgba, w, h));
        const k = Math.max(1, Math.ceil(64 / Math.max(w, h)));
        expect([png.width, png.height]).toEqual([w * k, h * k]);
        const got = rgbaOf(png);
        for (let y = 0; y < h * k; y++)
          for (let x = 0; x < w * k; x++)
            for (let c = 0; c < 4; c++) {
              const g = got[(y * w * k + x) * 4 + c];
              const want = rgba[(Math.floor(y / k) * w + Math.floor(x / k)) * 4 + c];
              if (g !== want) expect([x, y, c, g]).toEqual([x, y, c, want]);
            }
      }),
      { seed: 14, numRuns: 60 },
    );
  });
});

describe('image graphs', () => {
  it('InstructPix2Pix with and without a prior, compared side by side and saved', async () => {
    const d = doc({
      t2i: { type: 'DiffusersLoader', inputs: { model_path: 'tiny-t2i' } },
      edit: { type: 'UNetLoader', inputs: { unet_path: 'tiny-edit' } },
      base: { type: 'UNetLoader', inputs: { unet_path: 'tiny-base' } },
      img: { type: 'LoadImage', inputs: { image: 'sub/src.png' } },
      enc: { type: 'VAEEncode', inputs: { pixels: link('img', 'IMAGE'), vae: link('t2i', 'VAE') } },
      txt: { type: 'CLIPTextEncode', inputs: { clip: link('t2i', 'CLIP'), text: 'make it blue' } },
      prior: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } },
      g1: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('edit', 'MODEL'),
          text: link('txt', 'CONDITIONING'),
          empty: link('txt', 'EMPTY'),
          image: link('enc', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          guidance_rescale: 0,
        },
      },
      g2: {
        type: 'InstructPix2PixGuider',
        inputs: {
          model: link('edit', 'MODEL'),
          text: link('txt', 'CONDITIONING'),
          empty: link('txt', 'EMPTY'),
          image: link('enc', 'LATENT'),
          text_scale: 7.5,
          image_scale: 1.5,
          guidance_rescale: 0.7,
          prior: link('prior', 'DENOISER'),
        },
      },
      sched,
      s1: sampler('g1'),
      s2: sampler('g2'),
      d1: { type: 'VAEDecode', inputs: { samples: link('s1', 'LATENT'), vae: link('t2i', 'VAE') } },
      d2: { type: 'VAEDecode', inputs: { samples: link('s2', 'LATENT'), vae: link('t2i', 'VAE') } },
      cmp: {
        type: 'ImageCompare',
        inputs: {
          image_a: link('d1', 'IMAGE'),
          label_a: 'IP2P',
          image_b: link('d2', 'IMAGE'),
          label_b: 'PRIOR SWAP',
          label_c: '',
          label_d: '',
        },
      },
      save: { type: 'SaveImage', inputs: { images: link('cmp', 'IMAGE'), filename_prefix: 'cmp' } },
    });
    const { result } = await runDoc(executor, d);
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
    const f = (result.outputs.save as { images: Array<{ filename: string }> }).images[0].filename;
    const png = decode(readFileSync(join(host.outputDir, f)));
    // two columns (each as wide as the longer of image and label) + gaps; a 16-px label strip above one row
    expect(png.width).toBeGreaterThanOrEqual(2 * 32 + 3 * 4);
    expect(png.height).toBe(16 + 32 + 2 * 4);
    expect(png.text.workflow).toContain('InstructPix2PixGuider');
  });

  it('img2img: denoise < 1 starts from the encoded image; denoise without a latent is refused', async () => {
    const base = {
      t2i: { type: 'DiffusersLoader', inputs: { model_path: 'tiny-t2i' } },
      img: { type: 'LoadImage', inputs: { image: 'sub/src.png' } },
      enc: { type: 'VAEEncode', inputs: { pixels: link('img', 'IMAGE'), vae: link('t2i', 'VAE') } },
      txt: { type: 'CLIPTextEncode', inputs: { clip: link('t2i', 'CLIP'), text: 'a red circle' } },
      pos: { type: 'Denoiser', inputs: { model: link('t2i', 'MODEL'), conditioning: link('txt', 'CONDITIONING') } },
      neg: { type: 'Denoiser', inputs: { model: link('t2i', 'MODEL'), conditioning: link('txt', 'EMPTY') } },
      g: {
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
      sched,
    };
    const progress: number[] = [];
    const ok = await executor.run(
      doc({ ...base, s: sampler('g', { denoise: 0.5, steps: 10, latent_image: link('enc', 'LATENT') }) }),
      {
        promptId: 'i2i',
        outputs: ['s'],
        onEvent: (e) => {
          if (e.type === 'progress') progress.push(e.max);
        },
      },
    );
    expect(ok.status).toBe('success');
    expect(progress[0]).toBe(5); // strength 0.5 of 10 steps
    const bad = await runDoc(executor, doc({ ...base, s: sampler('g', { denoise: 0.5 }) }), { outputs: ['s'] });
    expect(bad.result.status).toBe('error');
    expect(bad.result.error?.message).toMatch(/input "denoise"/);
  });

  it('autoguidance, APG, CFG-Zero* and class-label guidance run as nodes', async () => {
    const d = doc({
      cls: { type: 'UNetLoader', inputs: { unet_path: 'single/class_cond.onnx' } },
      c3: { type: 'ClassLabelConditioning', inputs: { class_id: 3 } },
      cnull: { type: 'ClassLabelConditioning', inputs: { class_id: 10 } },
      good: { type: 'Denoiser', inputs: { model: link('cls', 'MODEL'), conditioning: link('c3', 'CONDITIONING') } },
      unc: { type: 'Denoiser', inputs: { model: link('cls', 'MODEL'), conditioning: link('cnull', 'CONDITIONING') } },
      basem: { type: 'UNetLoader', inputs: { unet_path: 'tiny-base' } },
      bad: { type: 'Denoiser', inputs: { model: link('basem', 'MODEL') } },
      ag: {
        type: 'AutoGuidance',
        inputs: {
          good: link('good', 'DENOISER'),
          bad: link('bad', 'DENOISER'),
          scale: 2,
          guidance_rescale: 0,
          interval_sigma_lo: 0,
          interval_sigma_hi: 0,
        },
      },
      zero: {
        type: 'CFGZeroStarGuider',
        inputs: {
          positive: link('good', 'DENOISER'),
          negative: link('unc', 'DENOISER'),
          cfg: 4,
          guidance_rescale: 0,
          interval_sigma_lo: 0,
          interval_sigma_hi: 0,
        },
      },
      apg: {
        type: 'APGGuider',
        inputs: {
          positive: link('good', 'DENOISER'),
          negative: link('unc', 'DENOISER'),
          cfg: 5,
          eta: 0,
          norm_threshold: 10,
        },
      },
      sched: {
        type: 'Scheduler',
        inputs: { scheduler: 'dpmpp_2m', use_karras_sigmas: true, eta: 0, config_json: '{}' },
      },
      s1: sampler('ag'),
      s2: sampler('apg'),
      s3: sampler('zero'),
    });
    const { result } = await runDoc(executor, d, { outputs: ['s1', 's2', 's3'] });
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
  });

  it('a bad scheduler config is a validation error on config_json', async () => {
    const { result } = await runDoc(
      executor,
      doc({
        sched: {
          type: 'Scheduler',
          inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{"beta_schedule": "nope"}' },
        },
      }),
      {
        outputs: ['sched'],
      },
    );
    expect(result.status).toBe('error');
    expect(JSON.stringify(result.error)).toMatch(/config_json|beta_schedule/);
  });

  it('LoadImage outside the input folder is refused on its input', async () => {
    const { result } = await runDoc(
      executor,
      doc({
        img: { type: 'LoadImage', inputs: { image: '../../../etc/passwd' } },
        p: { type: 'PreviewImage', inputs: { images: link('img', 'IMAGE') } },
      }),
    );
    expect(result.status).toBe('error');
    expect(JSON.stringify(result.error)).toMatch(/image/);
  });

  it('the compare grid draws each label in a real font above its column, the same pixels every time', async () => {
    const white = {
      data: new Float32Array(10 * 10 * 3).fill(1),
      shape: [1, 10, 10, 3] as [number, number, number, number],
    };
    const strip = (g: { data: Float32Array; shape: number[] }, col: number) => {
      // the label strip (16 px) over one 14-px-wide column (4-px gaps): 1 where ink is
      const [, , W] = g.shape;
      const cellW = (W - 3 * 4) / 2;
      const x0 = 4 + col * (cellW + 4);
      return Array.from({ length: 16 * cellW }, (_, i) => {
        const p = Math.floor(i / cellW) * W + x0 + (i % cellW);
        return g.data[p * 3] < 0.5 ? 1 : 0;
      });
    };
    const count = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const g = await compareGrid([white, white], ['A', 'B']);
    const [, H, W] = g.shape;
    expect(count(strip(g, 0))).toBeGreaterThan(10); // label pixels in the strip
    expect(count(strip(g, 1))).toBeGreaterThan(10);
    expect(strip(g, 0)).not.toEqual(strip(g, 1)); // two letters, two shapes
    // anti-aliased edges: grey levels between ink and paper, which a bitmap font never draws
    expect(Array.from(g.data.subarray(0, 16 * W * 3)).some((v) => v > 0.1 && v < 0.9)).toBe(true);
    let darkBelow = 0;
    for (let p = 16 * W; p < H * W; p++) if (g.data[p * 3] < 0.5) darkBelow++;
    expect(darkBelow).toBe(0);
    // deterministic: the font is loaded from its package, never from the system
    expect(Array.from((await compareGrid([white, white], ['A', 'B'])).data)).toEqual(Array.from(g.data));
    // a label wider than its image widens the column; markup in a label is text, not SVG
    const wide = await compareGrid([white, white], ['<PRIOR & SWAP>', 'B']);
    expect(wide.shape[2]).toBeGreaterThan(W + 60);
    expect(wide.shape[1]).toBe(H);
  });

  it('registry lists the nodes with their combos', async () => {
    const info = (await registry.objectInfo(host)) as Record<
      string,
      { input: { required: Record<string, unknown[]> } }
    >;
    expect(Object.keys(info)).toContain('priorgraph.PriorSwapCFGGuider');
    const combo = info['priorgraph.DiffusersLoader'].input.required.model_path[0] as string[];
    expect(combo).toEqual(expect.arrayContaining(['tiny-t2i', 'tiny-base', 'tiny-dit', 'tiny-edit']));
  });
});
