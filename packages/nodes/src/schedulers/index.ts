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
  return factories[name](Object.freeze(resolveConfig(name, config)));
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
