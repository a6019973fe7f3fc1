/**
 * Main-thread side of a sampling run: checks that the guider's models fit together and fit the
 * latents, pins the loaders' own sessions in the pool for the run (one session per model file; see
 * runtime/pool.ts), and turns GUIDER/DENOISER values into the sampling plan.
 */
import type { PredictionType } from './guidance/index.ts';
import { checkGuider } from './guiders/common.ts';
import { type SampleHooks, type SampleResult, sample } from './runtime/index.ts';
import type { DenoiserSpec, GuiderSpec } from './runtime/plan.ts';
import type { ModelHandle, RuntimePool } from './runtime/pool.ts';
import { createScheduler, type SchedulerConfig, trainingAlphasCumprod } from './schedulers/index.ts';
import type { DenoiserValue, GuiderValue, LatentShape, LatentValue, ModelValue, SchedulerValue } from './types.ts';
import { broadcastLatent, framesRefusal, latentDims, withBatch } from './video.ts';

/** The model whose schedule is the reference (the fine-tuned / conditional one): the first denoiser's. */
export function referenceModel(g: GuiderValue): ModelValue {
  return g.denoisers[0].model;
}

export function resolveSchedulerConfig(s: SchedulerValue, ref: ModelValue): Partial<SchedulerConfig> {
  return { ...ref.schedulerConfig, ...(s.base ?? {}), ...s.overrides };
}

/** ᾱ tables by what they are computed from: a run needs the reference scheduler's and each denoiser's
 *  training table, the same ones run after run (≈0.2 ms each to build, mostly reading the config). Read
 *  only here (the plan carries copies to the worker). */
const alphaTables = new Map<string, Float64Array>();
function cachedAlphas(key: string, make: () => Float64Array): Float64Array {
  let t = alphaTables.get(key);
  if (!t) {
    t = make();
    if (alphaTables.size >= 64) alphaTables.clear();
    alphaTables.set(key, t);
  }
  return t;
}

function sameArray(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 1e-7) return false;
  return true;
}

export interface RunSamplingArgs {
  pool: RuntimePool;
  guider: GuiderValue;
  scheduler: SchedulerValue;
  steps: number;
  /** [0, 2^64 − 1]: a bigint above 2^53 − 1 */
  seed: number | bigint;
  denoise: number;
  batchSize: number;
  latent: LatentValue | null;
  previewEvery: number;
  hooks?: SampleHooks;
  /** the job running it (its models are not evicted to reload one of them) */
  owner?: string;
}

/** The one batch rule of the Sampler, at validation and when it runs: the latent's batch wins;
 *  batch_size repeats a latent of batch 1; a batch_size above 1 that differs is a conflict. */
export function batchConflict(batchSize: number, latentBatch: number): string | null {
  if (latentBatch > 1 && batchSize > 1 && batchSize !== latentBatch) {
    return `batch_size ${batchSize} conflicts with latent_image, which holds a batch of ${latentBatch}: set batch_size to 1 (the latent's batch is used) or to ${latentBatch}`;
  }
  return null;
}

/** The run's latent shape [B, C, H, W] (or [B, C, T, H, W] for a video model) from the latent input
 *  (or the model's fixed size), and the initial latents for img2img (denoise < 1), each batch item
 *  taken from the input. */
function latentShapeAndInit(a: RunSamplingArgs, ref: ModelValue): { shape: LatentShape; init: Float32Array | null } {
  const C = ref.sig.latentChannels;
  let shape: LatentShape;
  let init: Float32Array | null = null;
  if (a.latent) {
    const l = latentDims(a.latent.shape);
    const lb = l.batch;
    if (l.channels !== C)
      throw new Error(`input "latent_image": latents have ${l.channels} channels, the model ${ref.path} takes ${C}`);
    const refused = framesRefusal(ref.sig, l.frames);
    if (refused) throw new Error(`input "latent_image": ${refused}`);
    if (ref.sig.height && (l.height !== ref.sig.height || l.width !== ref.sig.width)) {
      throw new Error(
        `input "latent_image": latents are ${l.height}×${l.width}, the model ${ref.path} takes ${ref.sig.height}×${ref.sig.width} (an Empty Latent Image of ${(ref.sig.width ?? 0) * 8}×${ref.sig.height * 8} makes latents of that size)`,
      );
    }
    const conflict = batchConflict(a.batchSize, lb);
    if (conflict) throw new Error(`input "batch_size": ${conflict}`);
    const B = lb === 1 ? Math.max(1, a.batchSize) : lb;
    shape = withBatch(a.latent.shape, B);
    if (a.denoise < 1)
      init = broadcastLatent(a.latent.samples, a.latent.shape, { batch: B, channels: C, inner: l.inner });
  } else {
    const s = ref.sig;
    if (!s.height || !s.width || (s.video && !s.frames)) {
      throw new Error(
        `input "latent_image": the model ${ref.path} takes any latent size${s.video ? ' and number of frames' : ''}: connect a latent (e.g. ${s.video ? 'EmptyVideoLatent' : 'EmptyLatentImage'})`,
      );
    }
    const B = Math.max(1, a.batchSize);
    shape = s.video ? [B, C, s.frames!, s.height, s.width] : [B, C, s.height, s.width];
  }
  return { shape, init };
}

export async function runSampling(a: RunSamplingArgs): Promise<SampleResult & { shape: LatentShape }> {
  const g = a.guider;
  checkGuider(g);
  const ref = referenceModel(g);
  const config = resolveSchedulerConfig(a.scheduler, ref);
  const refAlphas = cachedAlphas(
    `${a.scheduler.name}:${JSON.stringify(config)}`,
    () => createScheduler(a.scheduler.name, config).alphasCumprod,
  );

  const { shape, init } = latentShapeAndInit(a, ref);
  const dims = latentDims(shape);
  for (const d of g.denoisers) {
    const s = d.model.sig;
    if (s.height && (s.height !== dims.height || s.width !== dims.width)) {
      throw new Error(
        `model ${d.model.path} takes ${s.height}×${s.width} latents, the run uses ${dims.height}×${dims.width}`,
      );
    }
    const refused = framesRefusal(s, dims.frames, `model ${d.model.path}`);
    if (refused) throw new Error(refused);
  }

  // one session per distinct model: the loaders' own (pinned for the run below)
  const distinct = [...new Set(g.denoisers.map((d) => d.model.path))];
  const handles: ModelHandle[] = distinct.map((p) => g.denoisers.find((d) => d.model.path === p)!.model.handle);

  const spec = (d: DenoiserValue): DenoiserSpec => {
    const m = d.model;
    const own = cachedAlphas(`training:${JSON.stringify(m.schedulerConfig)}`, () =>
      trainingAlphasCumprod(m.schedulerConfig),
    );
    const s = m.sig;
    if (s.encoderHiddenStatesName && !d.cond?.ehs) {
      throw new Error(
        `model ${m.path} needs a text conditioning (encoder_hidden_states); its denoiser has ${d.cond ? `the conditioning "${d.cond.text}" without hidden states` : 'none'}`,
      );
    }
    if (s.classLabelsName && d.cond?.classLabel == null)
      throw new Error(`model ${m.path} is class-conditional: give its denoiser a class-label conditioning`);
    const extra = s.extraInputs.map(({ name, shape: want }) => {
      const e = d.cond?.extra?.[name];
      if (!e) {
        throw new Error(
          `model ${m.path} takes the input "${name}", which its conditioning ${d.cond ? `"${d.cond.text}" ` : ''}does not supply (${name === 'encoder_attention_mask' ? 'encode with a T5 text encoder node' : "SDXL's added conditioning: encode with CLIPTextEncodeSDXL"})`,
        );
      }
      if (e.dims.length !== want.length || want.some((w, j) => j > 0 && w !== null && w !== e.dims[j])) {
        throw new Error(
          `model ${m.path} takes "${name}" of shape [${want.map((w) => w ?? '?')}], the conditioning "${d.cond!.text}" gives [${e.dims}]`,
        );
      }
      if (e.dims[0] !== 1 && e.dims[0] !== shape[0])
        throw new Error(`conditioning "${d.cond!.text}": "${name}" has batch ${e.dims[0]}, the run has ${shape[0]}`);
      return { name, data: e.data, dims: e.dims };
    });
    if (s.encoderHiddenStatesName && d.cond?.ehsDims && s.encoderHiddenStatesShape) {
      const [seq, dim] = s.encoderHiddenStatesShape;
      if ((seq && seq !== d.cond.ehsDims[1]) || (dim && dim !== d.cond.ehsDims[2])) {
        throw new Error(
          `model ${m.path} takes encoder_hidden_states [b,${seq},${dim}], the conditioning "${d.cond.text}" is [${d.cond.ehsDims}]`,
        );
      }
    }
    let concat: Float32Array | null = null;
    if (s.concatChannels > 0 && d.concat) {
      // a still image latent conditions every frame of a video model (repeated over T)
      const l = d.concat;
      const k = l.scalingFactor ? 1 / l.scalingFactor : 1; // IP2P takes the unscaled latent
      const target = { batch: dims.batch, channels: s.concatChannels, inner: dims.inner };
      try {
        concat = broadcastLatent(l.samples, l.shape, target, k);
      } catch (e) {
        throw new Error(
          `model ${m.path} concatenates a [${s.concatChannels},${dims.inner}] image latent (a still [${s.concatChannels},${dims.height},${dims.width}] is repeated over the frames), got [${l.shape.slice(1)}]: ${(e as Error).message}`,
        );
      }
    }
    return {
      channel: distinct.indexOf(m.path),
      label: m.path,
      sampleName: s.sampleName,
      timestepName: s.timestepName,
      encoderHiddenStatesName: s.encoderHiddenStatesName,
      classLabelsName: s.classLabelsName,
      inChannels: s.inChannels,
      predictionType: m.predictionType as PredictionType,
      alphasCumprod: own,
      sameSchedule: sameArray(own, refAlphas),
      ehs: s.encoderHiddenStatesName ? (d.cond?.ehs ?? null) : null,
      ehsDims: s.encoderHiddenStatesName ? (d.cond?.ehsDims ?? null) : null,
      classLabel: s.classLabelsName ? (d.cond?.classLabel ?? null) : null,
      extra,
      concat,
    };
  };
  const gs: GuiderSpec = { ...g, denoisers: g.denoisers.map(spec) };
  const lease = await a.pool.acquire(handles, { owner: a.owner });
  let r: SampleResult;
  try {
    r = await sample(
      {
        guider: gs,
        scheduler: { name: a.scheduler.name, config },
        steps: a.steps,
        strength: init ? a.denoise : 1,
        seed: a.seed,
        shape,
        init,
        previewEvery: a.previewEvery,
      },
      lease.handles,
      a.hooks,
    );
  } finally {
    lease.release();
  }
  return { ...r, shape };
}
