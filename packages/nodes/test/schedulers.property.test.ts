import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../src/rng.ts';
import {
  createScheduler,
  readSchedulerConfig,
  SCHEDULER_NAMES,
  type Scheduler,
  type SchedulerConfig,
  type SchedulerName,
} from '../src/schedulers/index.ts';

const N = 1000;

/** an arbitrary valid (scheduler, config, steps) */
const arbSetup = fc
  .record({
    name: fc.constantFrom(...SCHEDULER_NAMES),
    beta: fc.constantFrom<Partial<SchedulerConfig>>(
      {},
      { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 },
      { beta_schedule: 'squaredcos_cap_v2' },
    ),
    spacing: fc.constantFrom<SchedulerConfig['timestep_spacing']>('leading', 'trailing', 'linspace'),
    offset: fc.constantFrom(0, 1),
    karras: fc.boolean(),
    prediction: fc.constantFrom<SchedulerConfig['prediction_type']>('epsilon', 'v_prediction', 'sample'),
    steps: fc.integer({ min: 1, max: 60 }),
    skipPrk: fc.boolean(),
  })
  .filter((s) => !((s.name === 'euler_ancestral' || s.name === 'pndm') && s.prediction === 'sample'))
  .map((s) => {
    const config: Partial<SchedulerConfig> = {
      ...s.beta,
      timestep_spacing: s.spacing,
      steps_offset: s.offset,
      prediction_type: s.prediction,
      clip_sample: false,
    };
    if (s.name === 'euler' || s.name === 'dpmpp_2m') config.use_karras_sigmas = s.karras;
    // PNDM: both warm-ups; ᾱ = 1 after the last step, so that a perfect model ends at x0
    if (s.name === 'pndm') Object.assign(config, { skip_prk_steps: s.skipPrk, set_alpha_to_one: true });
    // LCM cannot take more steps than original_inference_steps
    // (and PNDM's Runge–Kutta warm-up needs 4: diffusers fails below)
    const steps =
      s.name === 'lcm' ? Math.min(s.steps, 50) : s.name === 'pndm' && !s.skipPrk ? Math.max(4, s.steps) : s.steps;
    return { name: s.name as SchedulerName, config, steps };
  });

/** what a perfect model outputs for the model input x_in at t, given the clean x0 */
function perfectOutput(s: Scheduler, xIn: Float32Array, t: number, x0: Float32Array): Float32Array {
  // the model input of every scheduler is the VP sample x_in = √ᾱ·x0 + √(1−ᾱ)·ε with σ² = (1−ᾱ)/ᾱ
  const sigma = s.sigmaAt(t);
  const a = 1 / Math.sqrt(1 + sigma * sigma);
  const b = sigma * a;
  const out = new Float32Array(xIn.length);
  for (let i = 0; i < out.length; i++) {
    const eps = (xIn[i] - a * x0[i]) / b;
    if (s.config.prediction_type === 'epsilon') out[i] = eps;
    else if (s.config.prediction_type === 'sample') out[i] = x0[i];
    else out[i] = a * eps - b * x0[i]; // v = √ᾱ·ε − √(1−ᾱ)·x0
  }
  return out;
}

describe('scheduler properties', () => {
  it('timesteps: decreasing, integer or float within [0, N), one per step; sigmas decreasing', () => {
    fc.assert(
      fc.property(arbSetup, ({ name, config, steps }) => {
        const s = createScheduler(name, config);
        s.setTimesteps(steps);
        // PNDM calls the model n + 1 times (PLMS: the first step twice) or n + 9 (4 per PRK step);
        const calls = name !== 'pndm' ? steps : config.skip_prk_steps ? steps + 1 : steps + 9;
        expect(s.timesteps.length).toBe(calls);
        // diffusers' DPM-Solver with Karras σ on the cosine schedule repeats (rounded) timesteps; PNDM
        // repeats the timesteps of its warm-up
        const strict = !(name === 'dpmpp_2m' && config.use_karras_sigmas) && name !== 'pndm';
        for (let i = 0; i < s.timesteps.length; i++) {
          const t = s.timesteps[i];
          expect(t).toBeGreaterThanOrEqual(0);
          expect(t).toBeLessThan(N);
          if (name !== 'euler' && name !== 'euler_ancestral') expect(Number.isInteger(t)).toBe(true);
          if (i > 0) {
            if (strict) expect(t).toBeLessThan(s.timesteps[i - 1]);
            else expect(t).toBeLessThanOrEqual(s.timesteps[i - 1]);
          }
        }
        for (let i = 1; i < s.sigmas.length; i++) expect(s.sigmas[i]).toBeLessThanOrEqual(s.sigmas[i - 1]);
        expect(s.initNoiseSigma).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('a perfect model recovers x0 (every scheduler, every prediction type, from pure noise)', () => {
    fc.assert(
      fc.property(arbSetup, fc.integer({ min: 0, max: 2 ** 31 }), ({ name, config, steps }, seed) => {
        const s = createScheduler(name, config);
        s.setTimesteps(steps);
        // diffusers' DDIM steps from t to t − ⌊N/n⌋, which for linspace/trailing spacing is not always
        // the next scheduled timestep; the model is then told a slightly different noise level than the
        // sample has, so no model is "perfect" there. Only schedules where the two agree are used.
        const ts = s.timesteps;
        fc.pre(name !== 'ddim' || ts.every((t, k) => k === ts.length - 1 || t - Math.floor(N / steps) === ts[k + 1]));
        // PNDM steps the same way (to t − ⌊N/n⌋): leading spacing, where that is the next timestep
        // and ε-prediction: diffusers' PNDM combines the raw outputs of several timesteps, and a perfect
        // model's v (unlike its ε) changes along the path, so with v the combination is not exact
        fc.pre(name !== 'pndm' || (config.timestep_spacing === 'leading' && config.prediction_type === 'epsilon'));
        const rng = createRng(seed);
        const n = 32;
        const x0 = rng.randn(n).map((v) => Math.tanh(v));
        const noise = rng.randn(n);
        let x: Float32Array = noise.map((v) => v * s.initNoiseSigma);
        for (const t of s.timesteps) {
          const xIn = s.scaleModelInput(x, t);
          x = s.step(perfectOutput(s, xIn, t, x0), t, x, rng).prevSample;
        }
        // Where the schedule ends: DDIM stops at t_last − ⌊N/n⌋, which is ≥ 0 for trailing spacing when
        // N/n has a fractional part ≥ ½ (diffusers' behaviour); DDIM keeps ε, so it ends at
        // √ᾱ_end·x0 + √(1−ᾱ_end)·ε. All others end at noise level 0.
        let end: Float32Array = x0;
        if (name === 'ddim') {
          const prev = s.timesteps[s.timesteps.length - 1] - Math.floor(N / steps);
          if (prev >= 0) end = s.addNoise(x0, noise, prev);
        }
        // LCM's boundary condition keeps c_skip·x_t ≈ 0.25/(10·t)² of the noisy sample on its last step
        // float32 rounding of the last input (≈ 6e-8·|x|) is amplified by σ of the last step when x̂0 is
        // recovered from it (σ ≈ 2·10⁴ at t = 999 of the cosine schedule)
        const sigmaLast = s.sigmaAt(ts[ts.length - 1]);
        const maxNoise = noise.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const tol = (name === 'lcm' ? 2e-3 : 1e-3) + 3e-7 * sigmaLast * maxNoise;
        for (let i = 0; i < n; i++) expect(Math.abs(x[i] - end[i])).toBeLessThan(tol);
      }),
      { numRuns: 300, maxSkipsPerRun: 1000 },
    );
  });

  it('DDIM with a perfect ε stays on the forward path x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε at every step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 100 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.constantFrom(0, 1),
        (steps, seed, offset) => {
          // leading spacing: the scheduled timesteps are exactly t − ⌊N/n⌋ apart
          const s = createScheduler('ddim', { clip_sample: false, timestep_spacing: 'leading', steps_offset: offset });
          s.setTimesteps(steps);
          const rng = createRng(seed);
          const x0 = rng.randn(16);
          const eps = rng.randn(16);
          let x = s.addNoise(x0, eps, s.timesteps[0]);
          // A derived per-element bound on |x − forward path|, not a guessed tolerance. Each float32 result
          // rounds by at most u·|value| (u = 2⁻²⁴); a DDIM step maps an error δ in x_t to √(ᾱ_prev/ᾱ_t)·δ in
          // x_prev (x̂0 divides by √ᾱ_t, the step multiplies by √ᾱ_prev), and the float64 arithmetic inside
          // a step adds a few 2⁻⁵² of the magnitudes it combines. The expected value rounds once more.
          const u = 2 ** -24;
          const u64 = 8 * 2 ** -52;
          const bound = Float64Array.from(x, (v) => u * Math.abs(v));
          for (let k = 0; k < s.timesteps.length; k++) {
            const t = s.timesteps[k];
            const xPrevStep = x;
            x = s.step(eps, t, x).prevSample;
            // diffusers' DDIM goes to t − ⌊N/n⌋ (not necessarily the next scheduled timestep); ᾱ = 1 below 0
            const prev = t - Math.floor(N / steps);
            const aT = s.alphasCumprod[t];
            const aPrev = prev < 0 ? 1 : s.alphasCumprod[prev];
            const gain = Math.sqrt(aPrev / aT);
            const expected = prev < 0 ? x0 : s.addNoise(x0, eps, prev);
            for (let i = 0; i < 16; i++) {
              const mags = gain * (Math.abs(xPrevStep[i]) + Math.abs(eps[i])) + Math.abs(eps[i]);
              bound[i] = gain * bound[i] + u * Math.abs(x[i]) + u64 * mags;
              const allowed = bound[i] + u * Math.abs(expected[i]);
              // a factor 2 over the first-order bound; a wrong step is off by O(|x|), not by rounding
              expect(Math.abs(x[i] - expected[i]), `step ${k} (t=${t}), element ${i}`).toBeLessThanOrEqual(2 * allowed);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('img2img: timestepsForStrength is the tail of the schedule with ⌊n·s⌋ steps; addNoise matches sigmaAt', () => {
    fc.assert(
      fc.property(arbSetup, fc.double({ min: 0.05, max: 1, noNaN: true }), ({ name, config, steps }, strength) => {
        const s = createScheduler(name, config);
        s.setTimesteps(steps);
        const all = [...s.timesteps];
        if (name === 'lcm' && Math.trunc(s.config.original_inference_steps * strength) < steps) {
          expect(() => s.timestepsForStrength(strength)).toThrow(/strength/);
          return;
        }
        const ts = s.timestepsForStrength(strength);
        if (name === 'lcm') {
          expect(ts.length).toBe(steps);
        } else if (name === 'pndm') {
          // diffusers' get_timesteps slices the model-call list at n − ⌊n·s⌋ (PNDM's order is 1)
          expect(ts).toEqual(all.slice(steps - Math.min(Math.floor(steps * strength), steps)));
        } else {
          expect(ts.length).toBe(Math.min(Math.floor(steps * strength), steps));
          expect(ts).toEqual(all.slice(all.length - ts.length));
        }
        if (ts.length === 0) return;
        const x0 = Float32Array.of(0.5, -0.25, 1);
        const eps = Float32Array.of(1, 2, -1);
        const noisy = s.addNoise(x0, eps, ts[0]);
        const sigma = s.sigmaAt(ts[0]);
        const vp = name !== 'euler' && name !== 'euler_ancestral';
        const a = vp ? 1 / Math.sqrt(1 + sigma * sigma) : 1;
        for (let i = 0; i < 3; i++) {
          expect(noisy[i]).toBeCloseTo(a * (x0[i] + sigma * eps[i]), 4);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("DDIM's ε step is the general formula's arithmetic bit for bit (x̂0 in float64, clipped, η noise)", () => {
    const cases = fc.record({
      clip: fc.boolean(),
      range: fc.constantFrom(0.5, 1, 2),
      eta: fc.constantFrom(0, 0.5, 1),
      alphaToOne: fc.boolean(),
      steps: fc.integer({ min: 1, max: 50 }),
      scale: fc.constantFrom(0.5, 3, 20),
      seed: fc.nat(1000),
    });
    fc.assert(
      fc.property(cases, ({ clip, range, eta, alphaToOne, steps, scale, seed }) => {
        const config = { clip_sample: clip, clip_sample_range: range, eta, set_alpha_to_one: alphaToOne };
        const s = createScheduler('ddim', { ...config, prediction_type: 'epsilon' });
        s.setTimesteps(steps);
        const data = createRng(seed);
        const noise = createRng(seed + 1);
        const refNoise = createRng(seed + 1);
        let x: Float32Array = data.randn(37).map((v) => v * scale);
        for (const t of s.timesteps) {
          const eps = data.randn(37).map((v) => v * scale);
          const got = s.step(eps, t, x, noise);
          // diffusers' DDIMScheduler.step, written out (the general path of ddim.ts)
          const aT = s.alphasCumprod[t];
          const prev = t - Math.floor(N / steps);
          const aPrev = prev >= 0 ? s.alphasCumprod[prev] : alphaToOne ? 1 : s.alphasCumprod[0];
          const std = eta * Math.sqrt(((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev));
          const z = eta > 0 ? refNoise.randn(37) : null;
          const want = new Float32Array(37);
          const x0s = new Float32Array(37);
          for (let i = 0; i < 37; i++) {
            let x0 = (x[i] - Math.sqrt(1 - aT) * eps[i]) / Math.sqrt(aT);
            if (clip) x0 = Math.min(range, Math.max(-range, x0));
            x0s[i] = x0;
            let v = Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev - std * std) * eps[i];
            if (z) v += std * z[i];
            want[i] = v;
          }
          expect(got.prevSample).toEqual(want);
          expect(got.predOriginalSample).toEqual(x0s);
          x = got.prevSample;
        }
      }),
      { seed: 14, numRuns: 60 },
    );
  });

  it('setTimesteps starts fresh state: a second run reproduces the first', () => {
    for (const name of SCHEDULER_NAMES) {
      const s = createScheduler(name);
      const run = () => {
        s.setTimesteps(12);
        const rng = createRng(5);
        let x: Float32Array = rng.randn(8).map((v) => v * s.initNoiseSigma);
        for (const t of s.timesteps) {
          const xIn = s.scaleModelInput(x, t);
          x = s.step(
            xIn.map((v) => 0.5 * v),
            t,
            x,
            rng,
          ).prevSample;
        }
        return x;
      };
      expect(run(), name).toEqual(run());
    }
  });
});

describe('scheduler configuration and errors', () => {
  it('reads a Stable Diffusion scheduler_config.json, leaving out metadata keys', () => {
    const json = {
      _class_name: 'PNDMScheduler',
      _diffusers_version: '0.6.0',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      num_train_timesteps: 1000,
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      trained_betas: null,
      clip_sample: false,
    };
    const cfg = readSchedulerConfig(json);
    expect(cfg).toEqual({
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      num_train_timesteps: 1000,
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      trained_betas: null,
      clip_sample: false,
    });
    const s = createScheduler('euler', cfg);
    expect(s.config.timestep_spacing).toBe('linspace'); // EulerDiscreteScheduler's default
    expect(createScheduler('ddim', cfg).config.timestep_spacing).toBe('leading');
  });

  it('bad values give an error naming the key', () => {
    expect(() => readSchedulerConfig({ beta_schedule: 'sigmoid' })).toThrow(/"beta_schedule"/);
    expect(() => readSchedulerConfig({ num_train_timesteps: 10.5 })).toThrow(/"num_train_timesteps"/);
    expect(() => readSchedulerConfig({ prediction_type: 'flow' })).toThrow(/"prediction_type"/);
    expect(() => readSchedulerConfig({ timestep_spacing: 3 })).toThrow(/"timestep_spacing"/);
    expect(() => readSchedulerConfig('nope')).toThrow(/JSON object/);
    expect(() => createScheduler('ddim', { thresholding: true })).toThrow(/"thresholding": true is not supported/);
    expect(() => createScheduler('ddpm', { variance_type: 'learned_range' })).toThrow(/"variance_type"/);
    expect(() => createScheduler('ddim', { trained_betas: [0.1, 0.2] })).toThrow(/"trained_betas"/);
    expect(() => createScheduler('nope' as SchedulerName)).toThrow(/unknown scheduler/);
    expect(() => readSchedulerConfig({ solver_order: 4 })).toThrow(/"solver_order"/);
    expect(() => createScheduler('euler', { interpolation_type: 'log_linear' })).toThrow(/"interpolation_type"/);
  });

  it("a model's config for another scheduler class: its keys are ignored, the chosen class's keys checked", () => {
    // e.g. a DPM-Solver 3M config with learned variances (read from scheduler_config.json)
    const cfg = readSchedulerConfig({
      _class_name: 'DPMSolverMultistepScheduler',
      algorithm_type: 'sde-dpmsolver++',
      solver_order: 3,
      variance_type: 'learned_range',
      interpolation_type: 'log_linear',
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
    });
    // dpmpp_2m is DPMSolverMultistepScheduler: a different algorithm or order is refused, not replaced
    expect(() => createScheduler('dpmpp_2m', { ...cfg, solver_order: 2 })).toThrow(
      /"algorithm_type": "sde-dpmsolver\+\+" is not supported/,
    );
    expect(() => createScheduler('dpmpp_2m', { ...cfg, algorithm_type: 'dpmsolver++' })).toThrow(
      /"solver_order": 3 is not supported/,
    );
    expect(createScheduler('ddim', cfg).alphasCumprod[999]).toBeCloseTo(0.0046601, 6);
    expect(() => createScheduler('euler', cfg)).toThrow(/"interpolation_type": "log_linear"/);
    expect(() => createScheduler('ddpm', cfg)).toThrow(/"variance_type"/);
  });

  it('misuse gives clear errors', () => {
    const d = createScheduler('ddim');
    expect(() => d.step(new Float32Array(4), 999, new Float32Array(4))).toThrow(/setTimesteps/);
    d.setTimesteps(10);
    expect(() => d.step(new Float32Array(3), 900, new Float32Array(4))).toThrow(/3 elements/);
    expect(() => d.step(new Float32Array(4), 900.5, new Float32Array(4))).toThrow(/integer/);
    expect(() => d.setTimesteps(1001)).toThrow(/larger than/);
    expect(() => d.setTimesteps(0)).toThrow(/positive/);
    expect(() => d.timestepsForStrength(0)).toThrow(/strength/);
    const ea = createScheduler('euler_ancestral');
    ea.setTimesteps(5);
    expect(() => ea.step(new Float32Array(2), ea.timesteps[0], new Float32Array(2))).toThrow(/rng/);
    const e = createScheduler('euler');
    e.setTimesteps(5);
    expect(() => e.scaleModelInput(new Float32Array(2), 123.25)).toThrow(/not in the current schedule/);
    expect(() => createScheduler('lcm').setTimesteps(51)).toThrow(/original_inference_steps/);
    for (const name of ['euler', 'dpmpp_2m', 'lcm'] as const) {
      const s = createScheduler(name);
      s.setTimesteps(2);
      const rng = createRng(1);
      let x: Float32Array = new Float32Array(2);
      for (const t of s.timesteps) x = s.step(new Float32Array(2), t, x, rng).prevSample;
      expect(() => s.step(new Float32Array(2), s.timesteps[1], x, rng), name).toThrow(/steps are done/);
    }
  });

  it('trained_betas give the same schedule as the equivalent beta_schedule', () => {
    const betas = Array.from({ length: N }, (_, i) => 0.0001 + ((0.02 - 0.0001) * i) / (N - 1));
    const a = createScheduler('ddim', { trained_betas: betas });
    const b = createScheduler('ddim');
    for (let i = 0; i < N; i += 97) expect(a.alphasCumprod[i]).toBeCloseTo(b.alphasCumprod[i], 6);
  });
});
