/**
 * Scheduler configuration: diffusers' `scheduler_config.json` keys (snake_case), their per-scheduler
 * defaults (the defaults of each diffusers scheduler class's `__init__`), validation with zod, and the
 * key policy — what each scheduler does with each key (README.md in this folder, "Config keys").
 * No key is silently dropped: each is honoured, inert (accepted; it changes nothing here), supported
 * only at some values (others refused, naming key and value), a key of another scheduler class
 * (ignored, as diffusers' `from_config` ignores it), metadata (`_class_name`, …), or refused as unknown.
 */
import { z } from 'zod';

export type SchedulerName = 'ddim' | 'euler' | 'euler_ancestral' | 'dpmpp_2m' | 'ddpm' | 'lcm' | 'pndm';
export const SCHEDULER_NAMES: readonly SchedulerName[] = Object.freeze([
  'ddim',
  'euler',
  'euler_ancestral',
  'dpmpp_2m',
  'ddpm',
  'lcm',
  'pndm',
]);

/** The diffusers class each scheduler implements (whose config keys it reads). */
export const DIFFUSERS_CLASS: Readonly<Record<SchedulerName, string>> = {
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  euler_ancestral: 'EulerAncestralDiscreteScheduler',
  dpmpp_2m: 'DPMSolverMultistepScheduler',
  ddpm: 'DDPMScheduler',
  lcm: 'LCMScheduler',
  pndm: 'PNDMScheduler',
};

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
  /** DDIM, LCM, PNDM: ᾱ used after the last step (1, or ᾱ_0 when false). */
  set_alpha_to_one: boolean;
  /** DDIM, DDPM, LCM: clamp the predicted x0 to ±clip_sample_range. */
  clip_sample: boolean;
  clip_sample_range: number;
  /** Euler, DPM-Solver++ 2M: Karras et al. (2022) ρ=7 noise levels. */
  use_karras_sigmas: boolean;
  /** Euler, DPM-Solver: exponential / beta-distribution σ spacings (only false is supported). */
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  /** DPM-Solver: Lu et al.'s uniform-λ spacing, flow-matching σ (only false is supported). */
  use_lu_lambdas: boolean;
  use_flow_sigmas: boolean;
  flow_shift: number;
  use_dynamic_shifting: boolean;
  time_shift_type: string;
  /** DPM-Solver: timesteps whose λ = log(α/σ) is below this are not used (−∞ = all). */
  lambda_min_clipped: number;
  /** Euler: 'discrete' timesteps (only; 'continuous' feeds the model 0.25·log σ). */
  timestep_type: 'discrete' | 'continuous';
  /** PNDM: skip the Runge–Kutta warm-up (Stable Diffusion's PLMS). */
  skip_prk_steps: boolean;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
  /** Dynamic thresholding (Imagen): only false is supported. */
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  /** DDPM: fixed variances; DPM-Solver: null or learned (the model's 2C output, of which step gets C). */
  variance_type:
    | 'fixed_small'
    | 'fixed_small_log'
    | 'fixed_large'
    | 'fixed_large_log'
    | 'learned'
    | 'learned_range'
    | null;
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
  /** DPM-Solver: 1 or 2 for dpmpp_2m (3 is refused). */
  solver_order: number;
  /** DPM-Solver variant; dpmpp_2m runs 'dpmsolver++' only. */
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
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_lu_lambdas: false,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
  lambda_min_clipped: Number.NEGATIVE_INFINITY,
  timestep_type: 'discrete',
  skip_prk_steps: false,
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
  // DPMSolverMultistepScheduler(algorithm_type='dpmsolver++', solver_order=2); variance_type None
  dpmpp_2m: { ...base, timestep_spacing: 'linspace', clip_sample: false, variance_type: null },
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
  // PNDMScheduler: set_alpha_to_one False, skip_prk_steps False
  pndm: { ...base, set_alpha_to_one: false, clip_sample: false },
};

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
/** a number or −∞ (Python's -Infinity, as diffusers writes lambda_min_clipped's default) */
const numberOrMinusInf = z.custom<number>(
  (v) => typeof v === 'number' && !Number.isNaN(v) && v !== Number.POSITIVE_INFINITY,
  'must be a number or -Infinity',
);

/** zod schema of the keys this library reads (all optional). */
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
    use_exponential_sigmas: z
      .boolean()
      .nullable()
      .transform((v) => v ?? false),
    use_beta_sigmas: z
      .boolean()
      .nullable()
      .transform((v) => v ?? false),
    use_lu_lambdas: z
      .boolean()
      .nullable()
      .transform((v) => v ?? false),
    use_flow_sigmas: z
      .boolean()
      .nullable()
      .transform((v) => v ?? false),
    flow_shift: finite.positive(),
    use_dynamic_shifting: z.boolean(),
    time_shift_type: z.string(),
    lambda_min_clipped: numberOrMinusInf,
    timestep_type: z.enum(['discrete', 'continuous']),
    skip_prk_steps: z.boolean(),
    rescale_betas_zero_snr: z.boolean(),
    thresholding: z.boolean(),
    dynamic_thresholding_ratio: finite.gt(0).max(1),
    sample_max_value: finite.positive(),
    variance_type: z
      .enum(['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range'])
      .nullable(),
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

type Key = keyof SchedulerConfig;

/**
 * What a scheduler does with a key of its diffusers class:
 * - `'honoured'`: used as diffusers uses it;
 * - `{ inert }`: accepted at any (valid) value, changes nothing here, with the reason;
 * - `{ only }`: honoured at these values (the first is diffusers' default); other values are refused.
 */
export type KeyRule = 'honoured' | { inert: string } | { only: readonly unknown[] };

const H = 'honoured' as const;
const onlyFalse = { only: [false] } as const;
const thresholdInert = { inert: 'used only by dynamic thresholding, which is not supported (thresholding: false)' };

/** Keys describing the trained model (its noise schedule and output): every scheduler honours them. */
const MODEL_KEYS = {
  num_train_timesteps: H,
  beta_start: H,
  beta_end: H,
  beta_schedule: H,
  trained_betas: H,
  prediction_type: H,
  rescale_betas_zero_snr: H,
} as const satisfies Partial<Record<Key, KeyRule>>;

/** η (priorgraph's DDIM extension) is DDIM's alone: a non-zero η elsewhere is refused. */
const NO_ETA = { eta: { only: [0] } } as const;
const SPACING_KEYS = { timestep_spacing: H, steps_offset: H } as const;
const THRESHOLD_KEYS = {
  thresholding: onlyFalse,
  dynamic_thresholding_ratio: thresholdInert,
  sample_max_value: thresholdInert,
} as const;

/**
 * The key policy: for each scheduler, every key of its diffusers class's `__init__` (diffusers
 * a3608b5), plus `rescale_betas_zero_snr` everywhere (a model key) and DDIM's `eta` (priorgraph).
 */
export const KEY_RULES: Readonly<Record<SchedulerName, Readonly<Partial<Record<Key, KeyRule>>>>> = {
  ddim: {
    ...MODEL_KEYS,
    ...SPACING_KEYS,
    ...THRESHOLD_KEYS,
    clip_sample: H,
    clip_sample_range: H,
    set_alpha_to_one: H,
    eta: H,
  },
  euler: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...SPACING_KEYS,
    interpolation_type: { only: ['linear'] },
    use_karras_sigmas: H,
    use_exponential_sigmas: onlyFalse,
    use_beta_sigmas: onlyFalse,
    sigma_min: H,
    sigma_max: H,
    timestep_type: { only: ['discrete'] },
    final_sigmas_type: H,
  },
  euler_ancestral: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...SPACING_KEYS,
    prediction_type: { only: ['epsilon', 'v_prediction'] },
  },
  dpmpp_2m: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...SPACING_KEYS,
    ...THRESHOLD_KEYS,
    solver_order: { only: [2, 1] },
    algorithm_type: { only: ['dpmsolver++'] },
    solver_type: H,
    lower_order_final: H,
    euler_at_final: H,
    use_karras_sigmas: H,
    use_exponential_sigmas: onlyFalse,
    use_beta_sigmas: onlyFalse,
    use_lu_lambdas: onlyFalse,
    use_flow_sigmas: onlyFalse,
    flow_shift: { inert: 'used only with use_flow_sigmas or dynamic shifting, which are not supported' },
    use_dynamic_shifting: onlyFalse,
    time_shift_type: { inert: 'used only with use_dynamic_shifting, which is not supported' },
    final_sigmas_type: H,
    lambda_min_clipped: H,
    // learned variances: the model outputs 2C channels and step gets the first C (as diffusers);
    // fixed variances change nothing in DPM-Solver
    variance_type: H,
    // diffusers reads these from the config when present (Karras σ range)
    sigma_min: H,
    sigma_max: H,
  },
  ddpm: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...SPACING_KEYS,
    ...THRESHOLD_KEYS,
    variance_type: { only: ['fixed_small', 'fixed_small_log', 'fixed_large', null] },
    clip_sample: H,
    clip_sample_range: H,
  },
  lcm: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...THRESHOLD_KEYS,
    original_inference_steps: H,
    clip_sample: H,
    clip_sample_range: H,
    set_alpha_to_one: H,
    timestep_spacing: { inert: "LCMScheduler's schedule does not read it" },
    steps_offset: { inert: "LCMScheduler's schedule does not read it" },
    timestep_scaling: H,
  },
  pndm: {
    ...MODEL_KEYS,
    ...NO_ETA,
    ...SPACING_KEYS,
    prediction_type: { only: ['epsilon', 'v_prediction'] },
    skip_prk_steps: H,
    set_alpha_to_one: H,
  },
};

/**
 * Every `__init__` key of every diffusers scheduler class (diffusers a3608b5, all
 * `schedulers/scheduling_*.py` but Flax). A key of another class than the chosen scheduler's is
 * ignored, as diffusers' `from_config` ignores it; a key in no class is refused as unknown.
 */
export const DIFFUSERS_SCHEDULER_KEYS: ReadonlySet<string> = new Set([
  'algorithm_type',
  'alpha_cum_end',
  'alpha_cum_start',
  'base_image_seq_len',
  'base_shift',
  'beta_end',
  'beta_schedule',
  'beta_start',
  'block_length',
  'clip_denoised',
  'clip_sample',
  'clip_sample_range',
  'correct_steps',
  'corrector_k',
  'corrector_order',
  'corrector_selection',
  'corrector_selection_tau',
  'corrector_steps',
  'disable_corrector',
  'dynamic_thresholding_ratio',
  'editing_threshold',
  'entropy_bound',
  'eta',
  'euler_at_final',
  'final_sigmas_type',
  'flow_shift',
  'gamma',
  'gamma_cum_end',
  'gamma_cum_start',
  'interpolation_type',
  'invert_sigmas',
  'lambda_min_clipped',
  'lower_order_final',
  'mask_token_id',
  'masking_schedule',
  'max_image_seq_len',
  'max_shift',
  'minimal_topk',
  'noise_sampler_seed',
  'num_inference_steps',
  'num_train_timesteps',
  'num_vec_classes',
  'original_inference_steps',
  'predict_x0',
  'prediction_type',
  'predictor_order',
  'rescale_betas_zero_snr',
  'rho',
  's',
  's_noise',
  'sample_max_value',
  'sampling_eps',
  'scale_factors',
  'scaler',
  'scheduler_type',
  'set_alpha_to_one',
  'shift',
  'shift_terminal',
  'sigma_data',
  'sigma_max',
  'sigma_min',
  'sigma_schedule',
  'skip_prk_steps',
  'snr',
  'snr_shift_scale',
  'solver_order',
  'solver_p',
  'solver_type',
  'stage_range',
  'stages',
  'steps_offset',
  'stochastic_sampling',
  't_max',
  't_min',
  'tau_func',
  'threshold',
  'thresholding',
  'time_shift_type',
  'timestep_scaling',
  'timestep_spacing',
  'timestep_type',
  'trained_betas',
  'upscale_mode',
  'use_beta_sigmas',
  'use_dynamic_shifting',
  'use_exponential_sigmas',
  'use_flow_sigmas',
  'use_karras_sigmas',
  'use_lu_lambdas',
  'variance_type',
]);

/**
 * Reads a parsed `scheduler_config.json` object. Metadata keys (`_class_name`, `_diffusers_version`,
 * any key starting with `_`) and keys that only other diffusers scheduler classes read are accepted
 * and left out; the keys the schedulers here read are validated (a bad value throws an Error naming
 * the key); a key no diffusers scheduler has is refused.
 */
export function readSchedulerConfig(json: unknown): Partial<SchedulerConfig> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('scheduler config: expected a JSON object');
  }
  const known = schedulerConfigSchema.shape;
  const picked: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (v === undefined || k.startsWith('_')) continue;
    if (Object.hasOwn(known, k)) picked[k] = v;
    else if (!DIFFUSERS_SCHEDULER_KEYS.has(k)) {
      throw new Error(
        `scheduler config key ${JSON.stringify(k)}: unknown (no diffusers scheduler has it; got ${formatValue(v)})`,
      );
    }
  }
  const r = schedulerConfigSchema.safeParse(picked);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => {
      const key = i.path.join('.');
      return `scheduler config key "${key}": ${i.message} (got ${formatValue(picked[String(i.path[0])])})`;
    });
    throw new Error(msgs.join('; '));
  }
  return r.data as Partial<SchedulerConfig>;
}

/** JSON text of a value, with Python's spellings of non-finite numbers. */
function formatValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return JSON.stringify(v) ?? String(v);
}

/**
 * Parses the text of a `scheduler_config.json` as Python's json module writes it: standard JSON plus
 * the bare tokens NaN, Infinity and -Infinity (diffusers writes `"lambda_min_clipped": -Infinity`).
 */
export function parseSchedulerConfigJson(text: string): unknown {
  const marker = '\u0000pg-nonfinite:';
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // copy a string literal verbatim (with its escapes)
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const token = ['-Infinity', 'Infinity', 'NaN'].find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(marker + token);
      i += token.length;
      continue;
    }
    out += c;
    i++;
  }
  const values: Record<string, number> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity };
  return JSON.parse(out, (_k, v) =>
    typeof v === 'string' && v.startsWith(marker) ? values[v.slice(marker.length)] : v,
  );
}

/** Checks every given key against the scheduler's rules (module comment); throws naming key and value. */
function checkKeyRules(name: SchedulerName, given: Partial<SchedulerConfig>): void {
  const rules = KEY_RULES[name];
  for (const [k, v] of Object.entries(given)) {
    const rule = rules[k as Key];
    if (rule === undefined || rule === 'honoured' || 'inert' in rule) continue; // other classes' keys: ignored
    if (!rule.only.includes(v)) {
      throw new Error(
        `scheduler config key ${JSON.stringify(k)}: ${formatValue(v)} is not supported by scheduler ${name} (${DIFFUSERS_CLASS[name]}; supported: ${rule.only.map(formatValue).join(', ')})`,
      );
    }
  }
}

/** Merges a partial config over the scheduler's defaults and checks the key rules and cross-key constraints. */
export function resolveConfig(name: SchedulerName, partial: Partial<SchedulerConfig> = {}): SchedulerConfig {
  const checked = readSchedulerConfig(partial);
  checkKeyRules(name, checked);
  const cfg: SchedulerConfig = { ...SCHEDULER_DEFAULTS[name], ...checked };
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
