/**
 * Noise schedulers with diffusers' semantics (set_timesteps / scale_model_input / step / add_noise),
 * configured by scheduler_config.json keys. See README.md in this folder.
 */
import { resolveConfig, SCHEDULER_NAMES, type SchedulerConfig, type SchedulerName } from './config.ts';
import { DdimScheduler } from './ddim.ts';
import { DdpmScheduler } from './ddpm.ts';
import { DpmSolverPP2MScheduler } from './dpmpp_2m.ts';
import { EulerScheduler } from './euler.ts';
import { EulerAncestralScheduler } from './euler_ancestral.ts';
import { LcmScheduler } from './lcm.ts';
import type { Scheduler } from './types.ts';

export type {
  BetaSchedule,
  PredictionType,
  SchedulerConfig,
  SchedulerName,
  TimestepSpacing,
} from './config.ts';
export { readSchedulerConfig, resolveConfig, SCHEDULER_DEFAULTS, SCHEDULER_NAMES } from './config.ts';
export type { Rng, Scheduler, StepResult } from './types.ts';

const factories: Record<SchedulerName, (cfg: SchedulerConfig) => Scheduler> = {
  ddim: (cfg) => new DdimScheduler(cfg),
  euler: (cfg) => new EulerScheduler(cfg),
  euler_ancestral: (cfg) => new EulerAncestralScheduler(cfg),
  dpmpp_2m: (cfg) => new DpmSolverPP2MScheduler(cfg),
  ddpm: (cfg) => new DdpmScheduler(cfg),
  lcm: (cfg) => new LcmScheduler(cfg),
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

/** The most inference steps `setTimesteps(n, strength)` accepts for this scheduler and config:
 *  num_train_timesteps, and for LCM also ⌊original_inference_steps × strength⌋. */
export function maxInferenceSteps(name: SchedulerName, config: Partial<SchedulerConfig> = {}, strength = 1): number {
  const cfg = resolveConfig(name, config);
  if (name === 'lcm') return Math.min(cfg.num_train_timesteps, Math.trunc(cfg.original_inference_steps * strength));
  return cfg.num_train_timesteps;
}
