/**
 * Video latents [B, C, T, h, w] through the sampler and the guiders, against float64 formulas, on tiny
 * rank-5 ONNX denoisers the test writes (video-fixtures.ts); the frame-axis helpers; and the
 * validation refusals (a still model given a video latent, a video model given a still one, two
 * models of mismatched frames).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateWorkflow } from '@priorgraph/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { cfgGuider } from '../src/guiders/cfg.ts';
import { guider as guiderValue, noGuidanceOptions } from '../src/guiders/common.ts';
import { twoConditionMethod } from '../src/guiders/ip2p.ts';
import { loadDenoiserModel, loadVae } from '../src/models/load.ts';
import { vaeDecode, vaeEncode } from '../src/nodes/vae.ts';
import { createRng } from '../src/rng.ts';
import { RuntimePool } from '../src/runtime/pool.ts';
import { runSampling } from '../src/sampling.ts';
import { createScheduler, readSchedulerConfig } from '../src/schedulers/index.ts';
import type { ConditioningValue, DenoiserValue, GuiderValue, LatentShape, LatentValue } from '../src/types.ts';
import { broadcastLatent, foldFrames, unfoldFrames } from '../src/video.ts';
import { mulberry } from './float64.ts';
import { doc, FIXTURES, link, makeExecutor, makeHost } from './helpers.ts';
import { DDIM_CONFIG, EHS_DIM, EHS_SEQ, type VideoCoefs, videoEps, writeVideoModel } from './video-fixtures.ts';

const T = 3;
const root = mkdtempSync(join(tmpdir(), 'pg-video-'));
const K: Record<string, VideoCoefs> = {
  ft: { a: 0.5, b: 0.75, c: 0, d: 0.0007, e: 0.1 },
  base: { a: 0.3, b: -0.5, c: 0, d: 0.0003, e: -0.2 },
  i2v: { a: 0.6, b: 0.4, c: 0.8, d: 0.0005, e: 0.05 },
};
writeVideoModel(root, 'video-ft', { inC: 4, frames: T, k: K.ft });
writeVideoModel(root, 'video-base', { inC: 4, frames: T, k: K.base });
writeVideoModel(root, 'video-i2v', { inC: 8, frames: T, k: K.i2v });
writeVideoModel(root, 'video-4f', { inC: 4, frames: 4, k: K.base });

const pool = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 64 });
afterAll(() => pool.dispose());

/** A conditioning [1, 8, 64] of seeded values, and its mean (what the test models read of it). */
function cond(seed: number, text: string): { c: ConditioningValue; mean: number } {
  const rnd = mulberry(seed);
  const ehs = Float32Array.from({ length: EHS_SEQ * EHS_DIM }, () => rnd() * 2 - 1);
  const mean = ehs.reduce((s, v) => s + v, 0) / ehs.length;
  return {
    c: { kind: 'CONDITIONING', ehs, ehsDims: [1, EHS_SEQ, EHS_DIM], pooled: null, classLabel: null, text },
    mean,
  };
}

const u = 2 ** -24; // float32 unit roundoff

/**
 * One DDIM step (steps = 1) of a guider on a video batch, against: noise from the same Philox stream,
 * every model output in float64 from its formula, the guidance formula in float64, the scheduler's step.
 * Tolerance: each model output in float32 carries at most 8 roundings of its largest term (4 products,
 * 4 sums) plus the mean of 512 hidden-state values (≤ 512·u·max|ehs|·|b|); the guided ε̃ at most Σ|w_i|
 * times that, plus its own float32 rounding; one DDIM step to x̂0 multiplies ε̃ by √(1−ᾱ)/√ᾱ.
 */
async function checkOneStep(
  g: GuiderValue,
  reference: (x: Float32Array, t: number, shape: number[]) => { eps: Float64Array; gain: number; terms: number },
) {
  const B = 2;
  const latent: LatentValue = { samples: new Float32Array(1 * 4 * T * 2 * 3), shape: [1, 4, T, 2, 3] };
  const seed = 7;
  const r = await runSampling({
    pool,
    guider: g,
    scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
    steps: 1,
    seed,
    denoise: 1,
    batchSize: B,
    latent,
    previewEvery: 1,
  });
  expect(r.shape).toEqual([B, 4, T, 2, 3]);
  const shape = r.shape as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  const sched = createScheduler('ddim', readSchedulerConfig(DDIM_CONFIG));
  sched.setTimesteps(1);
  const t = sched.timesteps[0];
  const rng = createRng(seed);
  const x = rng.randn(n);
  const { eps, gain, terms } = reference(x, t, shape);
  const want = sched.step(Float32Array.from(eps), t, x, rng).prevSample;
  const ab = sched.alphasCumprod[t];
  const amp = Math.sqrt(1 - ab) / Math.sqrt(ab);
  const epsTol = gain * (8 * u * terms + 512 * u) + 2 * u * Math.max(...eps.map(Math.abs));
  const got = r.latents!;
  expect(got.length).toBe(n);
  for (let i = 0; i < n; i++) {
    expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(amp * epsTol + 4 * u * Math.abs(want[i]));
  }
}

/** The largest |term| of a model formula over the batch (bounds the float32 roundings of its output). */
const termsOf = (k: VideoCoefs, x: Float32Array, img: ArrayLike<number> | null, t: number) =>
  Math.max(...x.map(Math.abs)) * Math.abs(k.a) +
  (img ? Math.max(...Array.from(img, Math.abs)) * Math.abs(k.c) : 0) +
  Math.abs(k.b) +
  Math.abs(k.d * t) +
  Math.abs(k.e * (T - 1));

describe('video latents through the sampler and the guiders (float64 references)', () => {
  it('CFG on one video model: ε̃ = ε(∅) + w·(ε(c) − ε(∅)) on [B,4,T,h,w]', async () => {
    const ft = await loadDenoiserModel(pool, join(root, 'video-ft'));
    expect(ft.sig).toMatchObject({ video: true, frames: T, latentChannels: 4, inChannels: 4 });
    const pos = cond(1, 'a ball rolls right');
    const neg = cond(2, '');
    const w = 4.5;
    const g = cfgGuider(
      'cfg',
      { kind: 'DENOISER', model: ft, cond: pos.c, concat: null },
      { kind: 'DENOISER', model: ft, cond: neg.c, concat: null },
      { cfg: w, ...noGuidanceOptions },
    );
    await checkOneStep(g, (x, t, shape) => {
      const c = videoEps(K.ft, shape, x, null, [pos.mean, pos.mean], t);
      const un = videoEps(K.ft, shape, x, null, [neg.mean, neg.mean], t);
      return {
        eps: c.map((v, i) => un[i] + w * (v - un[i])),
        gain: Math.abs(1 - w) + Math.abs(w),
        terms: termsOf(K.ft, x, null, t),
      };
    });
  });

  it('prior swap: the unconditional term from the video base model', async () => {
    const ft = await loadDenoiserModel(pool, join(root, 'video-ft'));
    const base = await loadDenoiserModel(pool, join(root, 'video-base'));
    const pos = cond(3, 'a square turns');
    const neg = cond(4, '');
    const w = 6;
    const g = cfgGuider(
      'prior-swap',
      { kind: 'DENOISER', model: ft, cond: pos.c, concat: null },
      { kind: 'DENOISER', model: base, cond: neg.c, concat: null },
      { cfg: w, ...noGuidanceOptions },
    );
    await checkOneStep(g, (x, t, shape) => {
      const c = videoEps(K.ft, shape, x, null, [pos.mean, pos.mean], t);
      const un = videoEps(K.base, shape, x, null, [neg.mean, neg.mean], t);
      return {
        eps: c.map((v, i) => un[i] + w * (v - un[i])),
        gain: Math.abs(1 - w) + Math.abs(w),
        terms: Math.max(termsOf(K.ft, x, null, t), termsOf(K.base, x, null, t)),
      };
    });
  });

  it('two conditions (image + text) with a prior: a still first-frame latent repeated over T, ε(∅,∅) from the base', async () => {
    const i2v = await loadDenoiserModel(pool, join(root, 'video-i2v'));
    const base = await loadDenoiserModel(pool, join(root, 'video-base'));
    expect(i2v.sig).toMatchObject({ video: true, frames: T, latentChannels: 4, concatChannels: 4 });
    const text = cond(5, 'the circle moves up');
    const empty = cond(6, '');
    const rnd = mulberry(11);
    // the first frame's latent, ×scaling_factor as VAE Encode gives it (the model takes it unscaled)
    const sf = 0.5;
    const first: LatentValue = {
      samples: Float32Array.from({ length: 4 * 2 * 3 }, () => rnd() * 2 - 1),
      shape: [1, 4, 2, 3],
      scalingFactor: sf,
    };
    const sT = 7.5;
    const sI = 1.5;
    const d = (m: typeof i2v, c: ConditioningValue, concat: LatentValue | null): DenoiserValue => ({
      kind: 'DENOISER',
      model: m,
      cond: c,
      concat,
    });
    const g = guiderValue(
      twoConditionMethod,
      'ip2p-prior-swap',
      [d(i2v, text.c, first), d(i2v, empty.c, first), d(base, empty.c, null)],
      { text_scale: sT, image_scale: sI, guidance_rescale: 0 },
    );
    await checkOneStep(g, (x, t, shape) => {
      const [B, C, TT, h, w] = shape;
      // the image latent of every frame of every item: first[c, y, x] / sf, independent of b and f
      const img = new Float64Array(B * C * TT * h * w);
      for (let b = 0; b < B; b++)
        for (let c = 0; c < C; c++)
          for (let f = 0; f < TT; f++)
            for (let p = 0; p < h * w; p++) img[((b * C + c) * TT + f) * h * w + p] = first.samples[c * h * w + p] / sf;
      const full = videoEps(K.i2v, shape, x, img, [text.mean, text.mean], t);
      const imageOnly = videoEps(K.i2v, shape, x, img, [empty.mean, empty.mean], t);
      const un = videoEps(K.base, shape, x, null, [empty.mean, empty.mean], t);
      return {
        eps: full.map((v, i) => un[i] + sI * (imageOnly[i] - un[i]) + sT * (v - imageOnly[i])),
        gain: Math.abs(1 - sI) + Math.abs(sI - sT) + Math.abs(sT),
        terms: Math.max(termsOf(K.i2v, x, img, t), termsOf(K.base, x, null, t)),
      };
    });
  });

  it('refuses at run time a still latent for a video model and two models of different frame counts', async () => {
    const ft = await loadDenoiserModel(pool, join(root, 'video-ft'));
    const four = await loadDenoiserModel(pool, join(root, 'video-4f'));
    const pos = cond(1, 'x');
    const run = (g: GuiderValue, shape: LatentShape) =>
      runSampling({
        pool,
        guider: g,
        scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
        steps: 1,
        seed: 1,
        denoise: 1,
        batchSize: 1,
        latent: { samples: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape },
        previewEvery: 0,
      });
    const dn = (m: typeof ft): DenoiserValue => ({ kind: 'DENOISER', model: m, cond: pos.c, concat: null });
    const single = guiderValue({ name: 'single', combine: ([e]) => e }, 'basic', [dn(ft)], {});
    await expect(run(single, [1, 4, 2, 3])).rejects.toThrow(
      /input "latent_image": the model is a video model \(3 frames\) and needs a video latent/,
    );
    await expect(run(single, [1, 4, 5, 2, 3])).rejects.toThrow(/takes 3 frames, the latent has 5/);
    const mixed = cfgGuider('prior-swap', dn(ft), dn(four), { cfg: 3, ...noGuidanceOptions });
    await expect(run(mixed, [1, 4, 3, 2, 3])).rejects.toThrow(
      /cannot be combined: video-ft .* and video-4f .*: 3 vs 4 frames/,
    );
  });
});

describe('the frame axis', () => {
  it('fold [B,C,T,h,w] → [B·T,C,h,w] and back is the identity; each frame is a batch item', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        (B, C, TT, h, w) => {
          const shape: LatentShape = [B, C, TT, h, w];
          const x = Float32Array.from({ length: B * C * TT * h * w }, (_, i) => i);
          const f = foldFrames(x, shape);
          expect(f.shape).toEqual([B * TT, C, h, w]);
          for (let b = 0; b < B; b++)
            for (let c = 0; c < C; c++)
              for (let t = 0; t < TT; t++)
                for (let p = 0; p < h * w; p++)
                  expect(f.samples[((b * TT + t) * C + c) * h * w + p]).toBe(x[((b * C + c) * TT + t) * h * w + p]);
          expect(unfoldFrames(f.samples, f.shape, TT)).toEqual(x);
        },
      ),
    );
  });

  it('a still latent broadcast over frames; one of the wrong frames is refused', () => {
    const still = Float32Array.from({ length: 2 * 2 * 2 }, (_, i) => i + 1);
    const out = broadcastLatent(still, [1, 2, 2, 2], { batch: 2, channels: 2, inner: [3, 2, 2] }, 2);
    for (let b = 0; b < 2; b++)
      for (let c = 0; c < 2; c++)
        for (let t = 0; t < 3; t++)
          for (let p = 0; p < 4; p++) expect(out[((b * 2 + c) * 3 + t) * 4 + p]).toBe(2 * still[c * 4 + p]);
    expect(() =>
      broadcastLatent(new Float32Array(2 * 4 * 4), [1, 2, 4, 2, 2], { batch: 1, channels: 2, inner: [3, 2, 2] }),
    ).toThrow(/4 frames does not fit a video latent of 3 frames/);
  });
});

describe('validation refuses what cannot take video', () => {
  const host = makeHost({ modelRoots: [FIXTURES, root] });
  const { registry } = makeExecutor(host);
  const sched = {
    type: 'Scheduler',
    inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' },
  };
  const sampler = (latent: string) => ({
    type: 'Sampler',
    inputs: {
      guider: link('guide', 'GUIDER'),
      scheduler: link('sched', 'SCHEDULER'),
      seed: 1,
      steps: 2,
      denoise: 1,
      batch_size: 1,
      preview_every: 0,
      latent_image: link(latent, 'LATENT'),
    },
  });
  const graph = (model: string, latent: { type: string; inputs: Record<string, unknown> }, prior?: string) =>
    doc({
      m: { type: 'UNetLoader', inputs: { unet_path: model } },
      ...(prior ? { p: { type: 'UNetLoader', inputs: { unet_path: prior } } } : {}),
      d: { type: 'Denoiser', inputs: { model: link('m', 'MODEL') } },
      ...(prior ? { pd: { type: 'Denoiser', inputs: { model: link('p', 'MODEL') } } } : {}),
      guide: prior
        ? {
            type: 'PriorSwapCFGGuider',
            inputs: {
              model: link('d', 'DENOISER'),
              prior: link('pd', 'DENOISER'),
              cfg: 3,
              guidance_rescale: 0,
              interval_sigma_lo: 0,
              interval_sigma_hi: 0,
            },
          }
        : { type: 'BasicGuider', inputs: { denoiser: link('d', 'DENOISER') } },
      sched,
      lat: latent,
      s: sampler('lat'),
      vae: { type: 'VAELoader', inputs: { vae_path: 'tiny-t2i' } },
      dec: { type: 'VAEDecode', inputs: { samples: link('s', 'LATENT'), vae: link('vae', 'VAE') } },
      out: { type: 'PreviewImage', inputs: { images: link('dec', 'IMAGE') } },
    });
  const video = { type: 'EmptyVideoLatent', inputs: { width: 24, height: 16, frames: T, batch_size: 1 } };
  const still = { type: 'EmptyLatentImage', inputs: { width: 24, height: 16, batch_size: 1 } };
  const errorsOf = async (d: ReturnType<typeof doc>, node: string) => {
    const v = await validateWorkflow(d, registry, host);
    return v.node_errors[node]?.errors.map((e) => `${e.extra_info.input_name}: ${e.details}`) ?? [];
  };

  it('a video latent into a still-image model', async () => {
    const errs = await errorsOf(graph('tiny-base', video), 's');
    expect(errs.join('\n')).toMatch(
      /latent_image: .*tiny-base.* is a still-image model and cannot take a video latent of 3 frames/,
    );
  });

  it('a still latent into a video model', async () => {
    const errs = await errorsOf(graph('video-ft', still), 's');
    expect(errs.join('\n')).toMatch(
      /latent_image: .*video-ft.* is a video model \(3 frames\) and needs a video latent/,
    );
  });

  it('two video models of mismatched frame counts, and a video with a still model', async () => {
    expect((await errorsOf(graph('video-ft', video, 'video-4f'), 'guide')).join('\n')).toMatch(
      /prior: .*video-4f.* cannot be combined with .*video-ft.*: 3 vs 4 frames/,
    );
    expect((await errorsOf(graph('video-ft', video, 'tiny-base'), 'guide')).join('\n')).toMatch(
      /prior: .*tiny-base.* cannot be combined with .*video-ft.*: a video model and a still-image model/,
    );
  });

  it('a video graph that fits validates', async () => {
    const v = await validateWorkflow(graph('video-ft', video, 'video-base'), registry, host);
    expect(v.error).toBeUndefined();
    expect(v.node_errors).toEqual({});
    expect(v.ok).toBe(true);
  });
});

describe('VAE: video latents decode frame by frame, video frames encode to a video latent', () => {
  it('decode [B,4,T,h,w] = each frame decoded as a still; frames: T; encode of those frames gives [B,4,T,h,w]', async () => {
    const vae = await loadVae(pool, join(FIXTURES, 'tiny-t2i'));
    const rnd = mulberry(3);
    const [B, C, TT, h, w] = [2, 4, 3, 8, 8]; // the tiny VAE takes 8×8 latents
    const samples = Float32Array.from({ length: B * C * TT * h * w }, () => rnd() * 2 - 1);
    const img = await vaeDecode(vae, { samples, shape: [B, C, TT, h, w] }, pool);
    expect(img.frames).toBe(TT);
    const [, H, W] = img.shape; // the fixture VAE's own factor
    expect(img.shape).toEqual([B * TT, H, W, 3]);
    const per = H * W * 3;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < TT; t++) {
        const frame = new Float32Array(C * h * w);
        for (let c = 0; c < C; c++)
          frame.set(samples.subarray(((b * C + c) * TT + t) * h * w, ((b * C + c) * TT + t + 1) * h * w), c * h * w);
        const still = await vaeDecode(vae, { samples: frame, shape: [1, C, h, w] }, pool);
        expect(still.frames).toBeUndefined();
        // the same network on the same values, batched or not: equal within float32 convolution reordering
        const got = img.data.subarray((b * TT + t) * per, (b * TT + t + 1) * per);
        for (let i = 0; i < per; i += 7) expect(Math.abs(got[i] - still.data[i])).toBeLessThan(1e-5);
      }
    const lat = await vaeEncode(vae, img, pool);
    expect(lat.shape).toEqual([B, C, TT, h, w]);
    const one = await vaeEncode(vae, { data: img.data.subarray(0, per), shape: [1, H, W, 3] }, pool);
    expect(one.shape).toEqual([1, C, h, w]);
    // frame 0 of clip 0 of the video latent is the still encoding of that frame
    for (let c = 0; c < C; c++)
      for (let p = 0; p < h * w; p++)
        expect(Math.abs(lat.samples[c * TT * h * w + p] - one.samples[c * h * w + p])).toBeLessThan(1e-5);
  });
});
