/** Models and runtime on the committed fixtures: metadata per model kind, dtypes, the worker pool, path
 *  confinement, and the sampling loop (in the workers) against an in-process onnxruntime reference. */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { singleMethod } from '../src/guiders/basic.ts';
import { cfgGuider } from '../src/guiders/cfg.ts';
import { guider as guiderValue, noGuidanceOptions } from '../src/guiders/common.ts';
import { twoConditionMethod } from '../src/guiders/ip2p.ts';
import { loadClip, loadDenoiserModel, loadFolder } from '../src/models/load.ts';
import { confinePath } from '../src/models/paths.ts';
import { encodeTexts } from '../src/nodes/conditioning.ts';
import { createRng } from '../src/rng.ts';
import { callsOneAtATime, RuntimePool } from '../src/runtime/pool.ts';
import { runSampling } from '../src/sampling.ts';
import { createScheduler } from '../src/schedulers/index.ts';
import type { ConditioningValue, DenoiserValue, GuiderValue, LatentValue, ModelValue } from '../src/types.ts';
import { fixture } from './helpers.ts';

const pool = new RuntimePool({ defaultThreads: 2, memoryBudgetMB: 64 });
afterAll(() => pool.dispose());

describe('denoiser signatures from session metadata', () => {
  it('text-conditioned UNet: float32 timestep, encoder_hidden_states', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-t2i'));
    expect(m.sig).toMatchObject({
      sampleName: 'sample',
      timestepType: 'float32',
      encoderHiddenStatesName: 'encoder_hidden_states',
      inChannels: 4,
      latentChannels: 4,
      height: 8,
      width: 8,
      fp16: false,
      learnedSigma: false,
    });
    expect(m.schedulerConfig.beta_schedule).toBe('scaled_linear');
    expect(m.latentSpace).toBe('tiny-vae-4x8x8');
  });
  it('unconditional base: int64 timestep, no encoder_hidden_states', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-base'));
    expect(m.sig).toMatchObject({ timestepType: 'int64', encoderHiddenStatesName: null });
    const [out] = await m.handle.run([
      { name: 'sample', data: new Float32Array(2 * 4 * 64), dims: [2, 4, 8, 8] },
      { name: 'timestep', data: Float32Array.from([999, 10]), dims: [2] },
    ]);
    expect(out.dims).toEqual([2, 4, 8, 8]);
    expect(out.data).toBeInstanceOf(Float32Array);
  });
  it('transformer with learned sigma: 2C outputs, v-prediction, cosine schedule', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-dit'));
    expect(m.sig).toMatchObject({ sampleName: 'hidden_states', outChannels: 8, latentChannels: 4, learnedSigma: true });
    expect(m.predictionType).toBe('v_prediction');
    expect(m.schedulerConfig.beta_schedule).toBe('squaredcos_cap_v2');
  });
  it('InstructPix2Pix-style 8-channel input', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-edit'));
    expect(m.sig).toMatchObject({ inChannels: 8, latentChannels: 4, concatChannels: 4, outChannels: 4 });
  });
  it('class-conditional (class_labels int64)', async () => {
    const m = await loadDenoiserModel(pool, fixture('single/class_cond.onnx'));
    expect(m.sig.classLabelsName).toBe('class_labels');
    expect(m.handle.input('class_labels')?.type).toBe('int64');
  });
  it('fp16 model: Uint16 bit patterns in and out, same result as its fp32 twin within fp16 precision', async () => {
    const h16 = await loadDenoiserModel(pool, fixture('single/unet_fp16.onnx'));
    const h32 = await loadDenoiserModel(pool, fixture('single/external/model.onnx')); // same weights, external data
    expect(h16.sig.fp16).toBe(true);
    expect(h16.handle.input('timestep')?.type).toBe('float16');
    const x = createRng(3).randn(4 * 64);
    const ehs = createRng(4).randn(16 * 32);
    const feeds = [
      { name: 'sample', data: x, dims: [1, 4, 8, 8] },
      { name: 'timestep', data: Float32Array.from([500]), dims: [1] },
      { name: 'encoder_hidden_states', data: ehs, dims: [1, 16, 32] },
    ];
    const [a] = await h16.handle.run(feeds);
    const [b] = await h32.handle.run(feeds);
    expect(a.data).toBeInstanceOf(Float32Array);
    let maxErr = 0;
    for (let i = 0; i < a.data.length; i++) maxErr = Math.max(maxErr, Math.abs(Number(a.data[i]) - Number(b.data[i])));
    expect(maxErr).toBeGreaterThan(0); // really fp16
    expect(maxErr).toBeLessThan(5e-3);
  });
  it('a corrupt .onnx and a missing file are errors naming the file', async () => {
    await expect(pool.load(fixture('single/corrupt.onnx'))).rejects.toThrow(/corrupt\.onnx/);
    await expect(pool.load(fixture('single/nope.onnx'))).rejects.toThrow(/not found.*nope\.onnx/);
    await expect(loadDenoiserModel(pool, fixture('tiny-t2i/text_encoder/model.onnx'))).rejects.toThrow(
      /text_encoder.*not a denoiser/,
    );
  });
  it('shares a session per file and evicts least recently used over the memory budget', async () => {
    const small = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 0.03 }); // ~30 kB: one tiny UNet
    try {
      const a = await small.load(fixture('tiny-t2i/unet/model.onnx'));
      const a2 = await small.load(fixture('tiny-t2i/unet/model.onnx'));
      expect(a2).toBe(a);
      await small.load(fixture('tiny-base/unet/model.onnx'));
      await small.load(fixture('tiny-edit/unet/model.onnx'));
      const paths = small.stats().loaded.map((l) => l.path);
      expect(paths.some((p) => p.includes('tiny-t2i'))).toBe(false);
      expect(paths.some((p) => p.includes('tiny-edit'))).toBe(true);
    } finally {
      await small.dispose();
    }
  });
  it('a value whose model was evicted loads it again on use', async () => {
    const small = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 0.08 }); // ~80 kB: the text encoder alone
    try {
      const clip = await loadClip(small, fixture('tiny-t2i'));
      await small.load(fixture('tiny-base/unet/model.onnx')); // evicts the text encoder
      expect(small.stats().loaded.some((l) => l.path.includes('text_encoder'))).toBe(false);
      const [c] = await encodeTexts(clip, ['a red circle'], small);
      expect(c.ehsDims).toEqual([1, 16, 32]);
    } finally {
      await small.dispose();
    }
  });
  it('an execution provider that cannot load falls back to cpu with a warning', async () => {
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const p = new RuntimePool({ executionProviders: ['cuda', 'cpu'], defaultThreads: 1, log });
    try {
      const h = await p.load(fixture('tiny-base/unet/model.onnx'));
      expect(h.info.provider).toBe('cpu');
      expect(warnings.join('\n')).toMatch(/cuda.*falling back to cpu/);
    } finally {
      await p.dispose();
    }
  });
});

describe('path confinement', () => {
  const root = fixture('');
  it('resolves relative paths under a root', () => {
    expect(confinePath('tiny-t2i', [root], 'model_path')).toMatch(/tiny-t2i$/);
  });
  it('refuses absolute paths, traversal and symlink escapes, naming the input', () => {
    expect(() => confinePath('/etc/hostname', [root], 'model_path')).toThrow(/input "model_path".*outside/);
    expect(() => confinePath('../../package.json', [root], 'unet_path')).toThrow(/input "unet_path".*outside/);
    const dir = mkdtempSync(join(tmpdir(), 'pg-root-'));
    const outside = mkdtempSync(join(tmpdir(), 'pg-out-'));
    writeFileSync(join(outside, 'x.onnx'), 'x');
    symlinkSync(join(outside, 'x.onnx'), join(dir, 'link.onnx'));
    expect(() => confinePath('link.onnx', [dir], 'unet_path')).toThrow(/input "unet_path".*symlink/);
    expect(() => confinePath('missing.onnx', [dir], 'unet_path')).toThrow(/input "unet_path".*not found/);
  });
});

// --- the sampling coordinator against an in-process reference --------------------------------------------
async function session(file: string) {
  return ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
}
async function callRef(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const out = await s.run(feeds);
  return out[s.outputNames[0]].data as Float32Array;
}
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

/** The tiny text encoder's output for `text`, as conditioning. */
async function tinyCond(
  clip: Awaited<ReturnType<typeof loadFolder>>['clip'],
  text: string,
): Promise<ConditioningValue> {
  const [h] = await clip!.handle.run([
    { name: 'input_ids', data: Int32Array.from(clip!.tokenizer.encode(text)), dims: [1, 16] },
  ]);
  return {
    kind: 'CONDITIONING',
    ehs: h.data as Float32Array,
    ehsDims: [1, 16, 32],
    pooled: null,
    classLabel: null,
    text,
  };
}

describe('sampling loop in the workers = in-process reference', () => {
  // the tiny fixtures' calls run together (pool.ts callsOneAtATime) unless the pool treats every model
  // as large (smallModelBytes 0): then, with all cores per session, one after the other — the same
  // latents either way
  it.each([false, true])(
    'prior-swap CFG (DDIM, 3 steps, batch 2): fine-tuned + int64 base, matching a step loop written here (calls one at a time: %s)',
    async (oneAtATime) => {
      const own = new RuntimePool(
        oneAtATime ? { smallModelBytes: 0, memoryBudgetMB: 64 } : { defaultThreads: 1, memoryBudgetMB: 64 },
      );
      onTestFinished(() => own.dispose());
      const { model, clip } = await loadFolder(own, fixture('tiny-t2i'));
      const base = await loadDenoiserModel(own, fixture('tiny-base'));
      expect(callsOneAtATime([model.handle, base.handle])).toBe(oneAtATime);
      const cond = await tinyCond(clip, 'a red circle');
      const w = 3.5;
      const guider: GuiderValue = cfgGuider(
        'ps',
        { kind: 'DENOISER', model, cond, concat: null },
        { kind: 'DENOISER', model: base, cond: null, concat: null },
        { cfg: w, ...noGuidanceOptions },
      );
      const r = await runSampling({
        pool: own,
        guider,
        scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
        steps: 3,
        seed: 11,
        denoise: 1,
        batchSize: 2,
        latent: null,
        previewEvery: 0,
      });
      expect(r.calls).toBe(6);

      const ft = await session(fixture('tiny-t2i/unet/model.onnx'));
      const bs = await session(fixture('tiny-base/unet/model.onnx'));
      const sched = createScheduler('ddim', model.schedulerConfig);
      sched.setTimesteps(3);
      const rng = createRng(11);
      let lat = rng.randn(2 * 4 * 64);
      const ehs2 = new Float32Array(2 * 16 * 32);
      ehs2.set(cond.ehs!, 0);
      ehs2.set(cond.ehs!, 16 * 32);
      for (const t of sched.timesteps) {
        const x = sched.scaleModelInput(lat, t);
        const ec = await callRef(ft, {
          sample: f32(x, [2, 4, 8, 8]),
          timestep: f32(Float32Array.from([t, t]), [2]),
          encoder_hidden_states: f32(ehs2, [2, 16, 32]),
        });
        const eu = await callRef(bs, {
          sample: f32(x, [2, 4, 8, 8]),
          timestep: new ort.Tensor('int64', BigInt64Array.from([BigInt(t), BigInt(t)]), [2]),
        });
        const e = Float32Array.from(ec, (c, i) => eu[i] + w * (c - eu[i]));
        lat = sched.step(e, t, lat, rng).prevSample;
      }
      let maxErr = 0;
      for (let i = 0; i < lat.length; i++) maxErr = Math.max(maxErr, Math.abs(lat[i] - r.latents![i]));
      expect(maxErr).toBeLessThan(1e-5);
    },
  );

  it('prior swap with a base of another schedule, v-prediction and learned sigma (closest-variance timestep, x̂0 conversion)', async () => {
    const { model, clip } = await loadFolder(pool, fixture('tiny-t2i'));
    const dit = await loadDenoiserModel(pool, fixture('tiny-dit'));
    const cond = await tinyCond(clip, 'a red circle');
    const empty = await tinyCond(clip, '');
    const w = 3;
    const guider: GuiderValue = cfgGuider(
      'ps',
      { kind: 'DENOISER', model, cond, concat: null },
      { kind: 'DENOISER', model: dit, cond: empty, concat: null },
      { cfg: w, ...noGuidanceOptions },
    );
    const r = await runSampling({
      pool,
      guider,
      scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
      steps: 3,
      seed: 4,
      denoise: 1,
      batchSize: 1,
      latent: null,
      previewEvery: 0,
    });

    const ft = await session(fixture('tiny-t2i/unet/model.onnx'));
    const bs = await session(fixture('tiny-dit/transformer/model.onnx'));
    const sched = createScheduler('ddim', model.schedulerConfig);
    const ditAb = createScheduler('ddim', dit.schedulerConfig).alphasCumprod;
    sched.setTimesteps(3);
    const rng = createRng(4);
    let lat = rng.randn(4 * 64);
    for (const t of sched.timesteps) {
      const ab = sched.alphasCumprod[t];
      const sigma = Math.sqrt((1 - ab) / ab);
      let tp = 0;
      for (let i = 1; i < ditAb.length; i++) {
        const d = (j: number) => Math.abs(Math.log(Math.sqrt((1 - ditAb[j]) / ditAb[j])) - Math.log(sigma));
        if (d(i) < d(tp)) tp = i;
      }
      const abp = ditAb[tp];
      const ec = await callRef(ft, {
        sample: f32(lat, [1, 4, 8, 8]),
        timestep: f32(Float32Array.from([t]), [1]),
        encoder_hidden_states: f32(cond.ehs!, [1, 16, 32]),
      });
      const out = await callRef(bs, {
        hidden_states: f32(lat, [1, 4, 8, 8]),
        timestep: f32(Float32Array.from([tp]), [1]),
        encoder_hidden_states: f32(empty.ehs!, [1, 16, 32]),
      });
      const e = new Float32Array(4 * 64);
      for (let i = 0; i < e.length; i++) {
        const v = out[i]; // learned sigma: the first 4 of 8 channels
        const x0 = Math.sqrt(abp) * lat[i] - Math.sqrt(1 - abp) * v;
        const eu = (lat[i] - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
        e[i] = eu + w * (ec[i] - eu);
      }
      lat = sched.step(e, t, lat, rng).prevSample;
    }
    let maxErr = 0;
    for (let i = 0; i < lat.length; i++) maxErr = Math.max(maxErr, Math.abs(lat[i] - r.latents![i]));
    expect(maxErr).toBeLessThan(1e-4);
  });

  it('InstructPix2Pix two-condition form: batch [text+image, image only, zeros] in one call', async () => {
    const edit = await loadDenoiserModel(pool, fixture('tiny-edit'));
    const rnd = createRng(5);
    const ehsT = rnd.randn(16 * 32);
    const ehsE = rnd.randn(16 * 32);
    const img: LatentValue = { samples: rnd.randn(4 * 64), shape: [1, 4, 8, 8], scalingFactor: 0.5 };
    const c = (ehs: Float32Array): ConditioningValue => ({
      kind: 'CONDITIONING',
      ehs,
      ehsDims: [1, 16, 32],
      pooled: null,
      classLabel: null,
      text: '',
    });
    const D = (cond: ConditioningValue, concat: LatentValue | null): DenoiserValue => ({
      kind: 'DENOISER',
      model: edit,
      cond,
      concat,
    });
    const guider: GuiderValue = guiderValue(
      twoConditionMethod,
      'ip2p',
      [D(c(ehsT), img), D(c(ehsE), img), D(c(ehsE), null)],
      {
        text_scale: 7.5,
        image_scale: 1.5,
        guidance_rescale: 0,
      },
    );
    const r = await runSampling({
      pool,
      guider,
      scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
      steps: 2,
      seed: 3,
      denoise: 1,
      batchSize: 1,
      latent: null,
      previewEvery: 0,
    });
    expect(r.calls).toBe(2); // one batched call per step

    const s = await session(fixture('tiny-edit/unet/model.onnx'));
    const sched = createScheduler('ddim', edit.schedulerConfig);
    sched.setTimesteps(2);
    const rng = createRng(3);
    let lat = rng.randn(4 * 64);
    const unscaled = Float32Array.from(img.samples, (v) => v / 0.5);
    for (const t of sched.timesteps) {
      const x = sched.scaleModelInput(lat, t);
      const sample = new Float32Array(3 * 8 * 64);
      for (let k = 0; k < 3; k++) {
        sample.set(x, k * 8 * 64);
        if (k < 2) sample.set(unscaled, k * 8 * 64 + 4 * 64);
      }
      const ehs = new Float32Array(3 * 16 * 32);
      ehs.set(ehsT, 0);
      ehs.set(ehsE, 16 * 32);
      ehs.set(ehsE, 2 * 16 * 32);
      const out = await callRef(s, {
        sample: f32(sample, [3, 8, 8, 8]),
        timestep: f32(Float32Array.from([t, t, t]), [3]),
        encoder_hidden_states: f32(ehs, [3, 16, 32]),
      });
      const n = 4 * 64;
      const e = new Float32Array(n);
      for (let i = 0; i < n; i++)
        e[i] = out[2 * n + i] + 1.5 * (out[n + i] - out[2 * n + i]) + 7.5 * (out[i] - out[n + i]);
      lat = sched.step(e, t, lat, rng).prevSample;
    }
    let maxErr = 0;
    for (let i = 0; i < lat.length; i++) maxErr = Math.max(maxErr, Math.abs(lat[i] - r.latents![i]));
    expect(maxErr).toBeLessThan(1e-5);
  });

  it('computes no unconditional branch at w = 1 or outside the guidance interval', async () => {
    const { model, clip } = await loadFolder(pool, fixture('tiny-t2i'));
    const base = await loadDenoiserModel(pool, fixture('tiny-base'));
    const cond = await tinyCond(clip, '');
    const cond0: DenoiserValue = { kind: 'DENOISER', model, cond, concat: null };
    const uncond0: DenoiserValue = { kind: 'DENOISER', model: base, cond: null, concat: null };
    const ps = (cfg: number, interval_sigma_lo: number) =>
      cfgGuider('ps', cond0, uncond0, { ...noGuidanceOptions, cfg, interval_sigma_lo });
    const run = (g: GuiderValue) =>
      runSampling({
        pool,
        guider: g,
        scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
        steps: 4,
        seed: 1,
        denoise: 1,
        batchSize: 1,
        latent: null,
        previewEvery: 0,
      });
    const one = await run(ps(1, 0));
    const five = await run(ps(5, 0));
    const outside = await run(ps(5, 1000));
    // one call per step to the fine-tuned model only; with guidance, one more per step to the base
    expect(one.calls).toBe(4);
    expect(five.calls).toBe(8);
    expect(outside.calls).toBe(4);
    expect(outside.latents).toEqual(one.latents);
    expect(five.latents).not.toEqual(one.latents);
  });

  it('two sampling runs on the same session at once are served one after the other, with the same results', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-base'));
    const g: GuiderValue = guiderValue(
      singleMethod,
      'single',
      [{ kind: 'DENOISER', model: m, cond: null, concat: null }],
      {},
    );
    const run = (seed: number) =>
      runSampling({
        pool,
        guider: g,
        scheduler: { kind: 'SCHEDULER', name: 'euler_ancestral', overrides: {}, base: null },
        steps: 5,
        seed,
        denoise: 1,
        batchSize: 1,
        latent: null,
        previewEvery: 0,
      });
    const [a, b] = await Promise.all([run(1), run(2)]);
    const a2 = await run(1);
    expect(a.latents).toEqual(a2.latents);
    expect(b.latents).not.toEqual(a.latents);
  });

  it('class-conditional model with a null-class prior from the same model', async () => {
    const m: ModelValue = await loadDenoiserModel(pool, fixture('single/class_cond.onnx'));
    const cl = (k: number): ConditioningValue => ({
      kind: 'CONDITIONING',
      ehs: null,
      ehsDims: null,
      pooled: null,
      classLabel: k,
      text: '',
    });
    const g: GuiderValue = cfgGuider(
      'cfg',
      { kind: 'DENOISER', model: m, cond: cl(3), concat: null },
      { kind: 'DENOISER', model: m, cond: cl(10), concat: null },
      {
        cfg: 4,
        guidance_rescale: 0.7,
        interval_sigma_lo: 0,
        interval_sigma_hi: 0,
      },
    );
    const r = await runSampling({
      pool,
      guider: g,
      scheduler: { kind: 'SCHEDULER', name: 'euler', overrides: {}, base: null },
      steps: 3,
      seed: 2,
      denoise: 1,
      batchSize: 2,
      latent: null,
      previewEvery: 0,
    });
    expect(r.shape).toEqual([2, 4, 8, 8]);
    expect(r.latents!.every(Number.isFinite)).toBe(true);
  });
});

describe('CLIP loader', () => {
  it('pads and truncates to the encoder length', async () => {
    const c = await loadClip(pool, fixture('tiny-t2i'));
    expect(c.tokenizer.maxLength).toBe(16);
    const ids = c.tokenizer.encode('red circle blue');
    expect(ids).toHaveLength(16);
    expect(ids[0]).toBe(c.tokenizer.bosId);
    expect(ids.slice(0, 5)).toEqual([
      c.tokenizer.bosId,
      ...c.tokenizer.encodeRaw('red circle blue').slice(1, 4),
      c.tokenizer.eosId,
    ]);
    const long = c.tokenizer.encode('red '.repeat(40));
    expect(long).toHaveLength(16);
    expect(long[15]).toBe(c.tokenizer.eosId);
  });
});
