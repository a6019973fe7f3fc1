/**
 * The sampling plan: ONE message from the sampler node to the worker hosting the loop, describing the whole
 * run (guider, scheduler, steps, seed, latents). Everything here is structured-clonable.
 */
import type { PredictionType } from '../guidance/index.ts';
import type { SchedulerConfig, SchedulerName } from '../schedulers/index.ts';
import type { Guider, LatentShape } from '../types.ts';

/** How to call one model for one branch, and how to read its answer. */
export interface DenoiserSpec {
  /** index into SamplePlan.channels: branches on the same channel are batched into one call */
  channel: number;
  /** for error messages: the model file */
  label: string;
  sampleName: string;
  timestepName: string;
  encoderHiddenStatesName: string | null;
  classLabelsName: string | null;
  /** input channels of the network (8 for InstructPix2Pix-style: x_t ‖ image latent) */
  inChannels: number;
  predictionType: PredictionType;
  /** the model's own training schedule ᾱ (closest-variance rule when it differs from the reference) */
  alphasCumprod: Float64Array;
  /** true when the model shares the reference schedule: called at the reference timestep itself */
  sameSchedule: boolean;
  /** conditioning: encoder hidden states [1|B, seq, D], or a class label */
  ehs: Float32Array | null;
  ehsDims: number[] | null;
  classLabel: number | null;
  /** further named inputs from the conditioning ([1|B, …] each), batched like the hidden states */
  extra?: Array<{ name: string; data: Float32Array; dims: number[] }>;
  /** 8-channel models: the image latent [B, inC − C, …] (laid out like x_t: a still image latent is
   *  repeated over a video's frames) concatenated to x_t; null = zeros */
  concat: Float32Array | null;
}

/** The GUIDER with each denoiser turned into the spec of its calls. */
export type GuiderSpec = Guider<DenoiserSpec>;

export interface SamplePlan {
  guider: GuiderSpec;
  scheduler: { name: SchedulerName; config: Partial<SchedulerConfig> };
  steps: number;
  /** denoise strength ∈ (0, 1]; < 1 needs `init` */
  strength: number;
  /** [0, 2^64 − 1]: a bigint above 2^53 − 1 (structured-clonable) */
  seed: number | bigint;
  /** [B, C, H, W], or [B, C, T, H, W] for a video */
  shape: LatentShape;
  init: Float32Array | null;
  /** a preview every this many steps; 0: none (no one listens) */
  previewEvery: number;
  /** at most one preview per this many ms (the final step's always; see loop-events.ts) */
  previewIntervalMs: number;
  /** report each finished step (false: no one listens) */
  progress: boolean;
  /** one entry per distinct model session: a shared channel to that model's worker, or null for the
   *  session of the worker that hosts the loop (called directly) */
  channels: Array<SharedArrayBuffer | null>;
  /** call the models of a step one after the other, not concurrently (pool.ts callsOneAtATime) */
  oneAtATime: boolean;
  /** Int32Array over it: [0] = 1 when cancelled */
  control: SharedArrayBuffer;
  /** tags the run's messages (several runs may share a worker) */
  runId: number;
}

/** A step finished (its number, 1-based); with `latents`, a copy of the latents after it to preview
 *  (the coordinator draws and encodes it, off the step loop's thread). */
export interface LoopEvent {
  step: number;
  latents?: Float32Array;
}

/** What happened since the loop's last message, in order (see loop-events.ts): every step when
 *  progress is listened to, at most one of them with a preview. */
export interface LoopEvents {
  total: number;
  events: LoopEvent[];
}

/** The loop's messages to the coordinator. A message that ends the run carries the events not yet
 *  posted (the final step's among them), to be handled before its outcome. */
export type CoordinatorMessage = { runId: number } & (
  | ({ op: 'events' } & LoopEvents)
  | {
      op: 'done';
      latents: Float32Array;
      modelMs: number;
      runMs: number;
      loopMs: number;
      calls: number;
      /** when the worker took the plan and when it posted this, on monotonicMs */
      loopStart: number;
      loopEnd: number;
      pending: LoopEvents | null;
    }
  | { op: 'cancelled'; pending: LoopEvents | null }
  | { op: 'error'; message: string; pending: LoopEvents | null }
);

/** Omit over each member of a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** ms on the process's monotonic clock, the same in every thread (each thread's performance.now() counts
 *  from its own start): the loop's and the coordinator's timestamps of a run (SampleResult.handoff). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
