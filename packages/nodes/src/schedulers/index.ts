/**
 * Noise schedulers with diffusers' semantics (set_timesteps / scale_model_input / step / add_noise),
 * configured by scheduler_config.json keys. See README.md in this folder.
 */
import { alphasCumprodOf, trainingBetas } from './common.ts';

export { closestVarianceTimestep } from './common.ts';

import {
  readSchedulerConfig,
  resolveConfig,
  SCHEDULER_DEFAULTS,
  SCHEDULER_NAMES,
  type SchedulerConfig,
  type SchedulerName,
} from './config.ts';
import { DdimScheduler } from './ddim.ts';
import { DdpmScheduler } from './ddpm.ts';
import { DpmSolverPP2MScheduler } from './dpmpp_2m.ts';
import { EulerScheduler } from './euler.ts';
import { EulerAncestralScheduler } from './euler_ancestral.ts';
import { LcmScheduler } from './lcm.ts';
import { PndmScheduler } from './pndm.ts';
import type { Scheduler } from './types.ts';

export type {
  BetaSchedule,
  PredictionType,
  SchedulerConfig,
  SchedulerName,
  TimestepSpacing,
} from './config.ts';
export {
  DIFFUSERS_CLASS,
  DIFFUSERS_SCHEDULER_KEYS,
  KEY_RULES,
  type KeyRule,
  parseSchedulerConfigJson,
  readSchedulerConfig,
  resolveConfig,
  SCHEDULER_DEFAULTS,
  SCHEDULER_NAMES,
  schedulerConfigSchema,
} from './config.ts';
export type { Rng, Scheduler, StepResult } from './types.ts';

const factories: Record<SchedulerName, (cfg: SchedulerConfig) => Scheduler> = {
  ddim: (cfg) => new DdimScheduler(cfg),
  euler: (cfg) => new EulerScheduler(cfg),
  euler_ancestral: (cfg) => new EulerAncestralScheduler(cfg),
  dpmpp_2m: (cfg) => new DpmSolverPP2MScheduler(cfg),
  ddpm: (cfg) => new DdpmScheduler(cfg),
  lcm: (cfg) => new LcmScheduler(cfg),
  pndm: (cfg) => new PndmScheduler(cfg),
};

/**
 * Creates a scheduler. `config` takes diffusers' scheduler_config.json keys (validated; missing keys
 * get that diffusers scheduler class's defaults). Call setTimesteps(n) before stepping.
 */
export function createScheduler(name: SchedulerName, config: Partial<SchedulerConfig> = {}): Scheduler {
  if (!SCHEDULER_NAMES.includes(name)) {
    throw new Error(`unknown scheduler ${JSON.stringify(name)}; expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  return factories[name](resolvedConfig(name, config));
}

/** Configs that resolved, by scheduler and config: a sampling run creates its scheduler in the model
 *  worker from the same config run after run, and reading it through the schema took 0.1–0.3 ms of
 *  each run's start there (2-core development machine). Frozen, so the schedulers can share one. A
 *  config that fails is not kept (it fails again, with its message). */
const resolvedConfigs = new Map<string, Readonly<SchedulerConfig>>();
/** JSON of the config with every string, non-finite number (JSON writes null) and bigint (JSON refuses
 *  it) tagged with its type, so that no two configs share a key; a cycle: no key (read as before). */
function configKey(name: SchedulerName, config: Partial<SchedulerConfig>): string | null {
  try {
    const tagged = (_k: string, v: unknown) =>
      typeof v === 'string' || typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v))
        ? `${typeof v}:${v}`
        : v;
    return `${name}:${JSON.stringify(config, tagged)}`;
  } catch {
    return null;
  }
}
function resolvedConfig(name: SchedulerName, config: Partial<SchedulerConfig>): Readonly<SchedulerConfig> {
  const key = configKey(name, config);
  let cfg = key === null ? undefined : resolvedConfigs.get(key);
  if (!cfg) {
    cfg = Object.freeze(resolveConfig(name, config));
    if (resolvedConfigs.size >= 64) resolvedConfigs.clear();
    if (key !== null) resolvedConfigs.set(key, cfg);
  }
  return cfg;
}

/**
 * The training schedule ᾱ_t (t = 0..N−1) that a model's scheduler config describes: only the model
 * keys (num_train_timesteps, beta_*, trained_betas, rescale_betas_zero_snr) are read, so a config
 * written for any scheduler class gives its model's ᾱ.
 */
export function trainingAlphasCumprod(config: Partial<SchedulerConfig> = {}): Float64Array {
  const c = readSchedulerConfig(config);
  const cfg: SchedulerConfig = { ...SCHEDULER_DEFAULTS.ddim };
  for (const k of [
    'num_train_timesteps',
    'beta_start',
    'beta_end',
    'beta_schedule',
    'trained_betas',
    'rescale_betas_zero_snr',
  ] as const) {
    if (c[k] !== undefined) (cfg as unknown as Record<string, unknown>)[k] = c[k];
  }
  return alphasCumprodOf(trainingBetas(resolveConfig('ddim', cfg)));
}

/** The most inference steps `setTimesteps(n, strength)` accepts for this scheduler and config (each
 *  scheduler states its own limit: maxInferenceSteps on the Scheduler). */
export function maxInferenceSteps(name: SchedulerName, config: Partial<SchedulerConfig> = {}, strength = 1): number {
  return createScheduler(name, config).maxInferenceSteps(strength);
}
