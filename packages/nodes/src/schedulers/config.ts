/**
 * Scheduler configuration: diffusers' `scheduler_config.json` keys (snake_case), their per-scheduler
 * defaults (the defaults of each diffusers scheduler class's `__init__`), and validation with zod.
 */
import { z } from 'zod';

export type SchedulerName = 'ddim' | 'euler' | 'euler_ancestral' | 'dpmpp_2m' | 'ddpm' | 'lcm';
export const SCHEDULER_NAMES: readonly SchedulerName[] = Object.freeze([
  'ddim',
  'euler',
  'euler_ancestral',
  'dpmpp_2m',
  'ddpm',
  'lcm',
]);

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas?: number[] | null;
  prediction_type: PredictionType;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  /** DDIM, LCM: ᾱ used after the last step (1, or ᾱ_0 when false). */
  set_alpha_to_one: boolean;
  /** DDIM, DDPM, LCM: clamp the predicted x0 to ±clip_sample_range. */
  clip_sample: boolean;
  clip_sample_range: number;
  /** Euler, DPM-Solver++ 2M: Karras et al. (2022) ρ=7 noise levels. */
  use_karras_sigmas: boolean;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
  /** Dynamic thresholding (Imagen). Accepted in a config, but a step with it true throws (needs per-image shapes). */
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  /** DDPM: only 'fixed_small' (and 'fixed_small_log', 'fixed_large') are supported. */
  variance_type: 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'fixed_large_log' | 'learned' | 'learned_range';
  /** LCM: the number of skipping steps of the original (distillation) schedule. */
  original_inference_steps: number;
  /** LCM: scale of the timestep in the boundary condition c_skip/c_out. */
  timestep_scaling: number;
  /** Euler, DPM-Solver++: what the final sigma is ('zero' or 'sigma_min'). */
  final_sigmas_type: 'zero' | 'sigma_min';
  /** DPM-Solver++: use first order for the final step(s) when steps < 15. */
  lower_order_final: boolean;
  /** DPM-Solver++: use Euler for the final step. */
  euler_at_final: boolean;
  /** DPM-Solver: dpmpp_2m uses 1 when this is 1, else 2 (a model config's 3 is read but means 2 here). */
  solver_order: number;
  /** DPM-Solver variant of a model's config; dpmpp_2m always runs 'dpmsolver++' (the name fixes it). */
  algorithm_type: 'dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver++' | 'sde-dpmsolver';
  /** DPM-Solver++: 'midpoint' or 'heun' for the second-order update. */
  solver_type: 'midpoint' | 'heun';
  /** Euler: sigma interpolation; only 'linear' (np.interp in t) is implemented. */
  interpolation_type: 'linear' | 'log_linear';
  /** Euler/DPM: optional overrides of the Karras σ range. */
  sigma_min?: number | null;
  sigma_max?: number | null;
  /** DDIM only (priorgraph extension, not a diffusers config key): η of DDIM; 0 = deterministic. */
  eta: number;
}

const base = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
  set_alpha_to_one: true,
  clip_sample: true,
  clip_sample_range: 1.0,
  use_karras_sigmas: false,
  rescale_betas_zero_snr: false,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  variance_type: 'fixed_small',
  original_inference_steps: 50,
  timestep_scaling: 10.0,
  final_sigmas_type: 'zero',
  lower_order_final: true,
  euler_at_final: false,
  solver_order: 2,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  interpolation_type: 'linear',
  sigma_min: null,
  sigma_max: null,
  eta: 0,
} as const satisfies SchedulerConfig;

/** diffusers' `__init__` defaults per scheduler class (keys that class does not have keep `base`). */
export const SCHEDULER_DEFAULTS: Readonly<Record<SchedulerName, Readonly<SchedulerConfig>>> = {
  // DDIMScheduler
  ddim: { ...base },
  // EulerDiscreteScheduler: timestep_spacing 'linspace'; no clipping
  euler: { ...base, timestep_spacing: 'linspace', clip_sample: false },
  // EulerAncestralDiscreteScheduler
  euler_ancestral: { ...base, timestep_spacing: 'linspace', clip_sample: false },
  // DPMSolverMultistepScheduler(algorithm_type='dpmsolver++', solver_order=2)
  dpmpp_2m: { ...base, timestep_spacing: 'linspace', clip_sample: false },
  // DDPMScheduler
  ddpm: { ...base },
  // LCMScheduler: beta_start 0.00085, beta_end 0.012, scaled_linear, clip_sample false
  lcm: {
    ...base,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    clip_sample: false,
  },
};

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

/** zod schema of the keys this library reads (all optional); unknown keys are dropped. */
export const schedulerConfigSchema = z
  .object({
    num_train_timesteps: z.number().int().min(2).max(100_000),
    beta_start: finite.positive(),
    beta_end: finite.positive(),
    beta_schedule: z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2']),
    trained_betas: z.array(finite.min(0).max(1)).min(2).nullable(),
    prediction_type: z.enum(['epsilon', 'v_prediction', 'sample']),
    timestep_spacing: z.enum(['leading', 'trailing', 'linspace']),
    steps_offset: z.number().int().min(0),
    set_alpha_to_one: z.boolean(),
    clip_sample: z.boolean(),
    clip_sample_range: finite.positive(),
    use_karras_sigmas: z
      .boolean()
      .nullable()
      .transform((v) => v ?? false),
    rescale_betas_zero_snr: z.boolean(),
    thresholding: z.boolean(),
    dynamic_thresholding_ratio: finite.gt(0).max(1),
    sample_max_value: finite.positive(),
    variance_type: z
      .enum(['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range'])
      .nullable()
      .transform((v) => v ?? 'fixed_small'),
    original_inference_steps: z.number().int().min(1),
    timestep_scaling: finite.positive(),
    final_sigmas_type: z.enum(['zero', 'sigma_min']),
    lower_order_final: z.boolean(),
    euler_at_final: z.boolean(),
    solver_order: z.number().int().min(1).max(3),
    algorithm_type: z.enum(['dpmsolver++', 'dpmsolver', 'sde-dpmsolver++', 'sde-dpmsolver']),
    solver_type: z.enum(['midpoint', 'heun']),
    interpolation_type: z.enum(['linear', 'log_linear']),
    sigma_min: finite.positive().nullable(),
    sigma_max: finite.positive().nullable(),
    eta: finite.min(0),
  })
  .partial();

/**
 * Reads a parsed `scheduler_config.json` object. Unknown keys (`_class_name`, `_diffusers_version`,
 * keys of other schedulers) are ignored; a known key with a bad value throws an Error naming the key.
 */
export function readSchedulerConfig(json: unknown): Partial<SchedulerConfig> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('scheduler config: expected a JSON object');
  }
  const known = schedulerConfigSchema.shape;
  const picked: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (Object.hasOwn(known, k) && v !== undefined) picked[k] = v;
  }
  const r = schedulerConfigSchema.safeParse(picked);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => {
      const key = i.path.join('.');
      return `scheduler config key "${key}": ${i.message} (got ${JSON.stringify(picked[String(i.path[0])])})`;
    });
    throw new Error(msgs.join('; '));
  }
  const out = r.data as Partial<SchedulerConfig>;
  return out;
}

/** Merges a partial config over the scheduler's defaults and checks cross-key constraints. */
export function resolveConfig(name: SchedulerName, partial: Partial<SchedulerConfig> = {}): SchedulerConfig {
  const checked = readSchedulerConfig(partial);
  const cfg: SchedulerConfig = { ...SCHEDULER_DEFAULTS[name], ...checked };
  if (name === 'dpmpp_2m') {
    // keys of a model's default DPM scheduler that the name 'dpmpp_2m' overrides
    cfg.algorithm_type = 'dpmsolver++';
    cfg.solver_order = cfg.solver_order === 1 ? 1 : 2;
  }
  if (name === 'euler' && cfg.interpolation_type !== 'linear') {
    throw new Error(
      `scheduler config key "interpolation_type": ${JSON.stringify(cfg.interpolation_type)} is not supported by euler (only "linear")`,
    );
  }
  if (cfg.trained_betas && cfg.trained_betas.length !== cfg.num_train_timesteps) {
    throw new Error(
      `scheduler config key "trained_betas": length ${cfg.trained_betas.length} differs from num_train_timesteps ${cfg.num_train_timesteps}`,
    );
  }
  if (!cfg.trained_betas && cfg.beta_end < cfg.beta_start && cfg.beta_schedule !== 'squaredcos_cap_v2') {
    throw new Error(`scheduler config key "beta_end": ${cfg.beta_end} is smaller than beta_start ${cfg.beta_start}`);
  }
  return cfg;
}
