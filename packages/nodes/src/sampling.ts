/**
 * Main-thread side of a sampling run: checks that the guider's models fit together and fit the
 * latents, pins the loaders' own sessions in the pool for the run (one session per model file; see
 * runtime/pool.ts), and turns GUIDER/DENOISER values into the sampling plan.
 */
import type { PredictionType } from './guidance/index.ts';
import { describeSignature } from './models/signature.ts';
import { type SampleHooks, type SampleResult, sample } from './runtime/index.ts';
import type { DenoiserSpec, GuiderSpec } from './runtime/plan.ts';
import type { ModelHandle, RuntimePool } from './runtime/pool.ts';
import { createScheduler, type SchedulerConfig } from './schedulers/index.ts';
import type { DenoiserValue, GuiderValue, LatentValue, ModelValue, SchedulerValue } from './types.ts';

export function guiderDenoisers(g: GuiderValue): DenoiserValue[] {
  if (g.mode === 'single') return [g.d];
  if (g.mode === 'cfg') return [g.cond, g.uncond];
  return [g.full, g.imageOnly, g.uncond];
}

/** The model whose schedule is the reference (the fine-tuned / conditional one). */
export function referenceModel(g: GuiderValue): ModelValue {
  return g.mode === 'single' ? g.d.model : g.mode === 'cfg' ? g.cond.model : g.full.model;
}

/** Refuse two models that do not share the latent space (channels, fixed size, declared latent_space). */
export function checkSameLatentSpace(a: ModelValue, b: ModelValue): void {
  const sa = a.sig;
  const sb = b.sig;
  const reasons: string[] = [];
  if (sa.latentChannels !== sb.latentChannels)
    reasons.push(`${sa.latentChannels} vs ${sb.latentChannels} latent channels`);
  if (sa.height && sb.height && (sa.height !== sb.height || sa.width !== sb.width)) {
    reasons.push(`latent size ${sa.height}×${sa.width} vs ${sb.height}×${sb.width}`);
  }
  if (a.latentSpace && b.latentSpace && a.latentSpace !== b.latentSpace) {
    reasons.push(`model_index.json latent_space "${a.latentSpace}" vs "${b.latentSpace}"`);
  }
  if (reasons.length) {
    throw new Error(
      `models do not share a latent space and cannot be combined: ${a.name} (${a.path}: ${describeSignature(sa)}) and ${b.name} (${b.path}: ${describeSignature(sb)}): ${reasons.join('; ')}`,
    );
  }
}

export function checkGuider(g: GuiderValue): void {
  const ds = guiderDenoisers(g);
  for (const d of ds.slice(1)) if (d.model.path !== ds[0].model.path) checkSameLatentSpace(ds[0].model, d.model);
}

export function resolveSchedulerConfig(s: SchedulerValue, ref: ModelValue): Partial<SchedulerConfig> {
  return { ...ref.schedulerConfig, ...(s.base ?? {}), ...s.overrides };
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
  seed: number;
  denoise: number;
  batchSize: number;
  latent: LatentValue | null;
  previewEvery: number;
  hooks?: SampleHooks;
  /** the job running it (its models are not evicted to reload one of them) */
  owner?: string;
}

export async function runSampling(
  a: RunSamplingArgs,
): Promise<SampleResult & { shape: [number, number, number, number] }> {
  const g = a.guider;
  checkGuider(g);
  const ref = referenceModel(g);
  const config = resolveSchedulerConfig(a.scheduler, ref);
  const refAlphas = createScheduler(a.scheduler.name, config).alphasCumprod;

  // latent shape
  const C = ref.sig.latentChannels;
  let shape: [number, number, number, number];
  let init: Float32Array | null = null;
  if (a.latent) {
    const [lb, lc, lh, lw] = a.latent.shape;
    if (lc !== C)
      throw new Error(`input "latent_image": latents have ${lc} channels, the model ${ref.path} takes ${C}`);
    if (ref.sig.height && (lh !== ref.sig.height || lw !== ref.sig.width)) {
      throw new Error(
        `input "latent_image": latents are ${lh}×${lw}, the model ${ref.path} takes ${ref.sig.height}×${ref.sig.width}`,
      );
    }
    const B = lb === 1 ? Math.max(1, a.batchSize) : lb;
    shape = [B, lc, lh, lw];
    if (a.denoise < 1) {
      init = new Float32Array(B * lc * lh * lw);
      const per = lc * lh * lw;
      for (let b = 0; b < B; b++)
        init.set(a.latent.samples.subarray((lb === 1 ? 0 : b) * per, ((lb === 1 ? 0 : b) + 1) * per), b * per);
    }
  } else {
    if (!ref.sig.height || !ref.sig.width) {
      throw new Error(
        `input "latent_image": the model ${ref.path} takes any latent size: connect a latent (e.g. EmptyLatentImage)`,
      );
    }
    shape = [Math.max(1, a.batchSize), C, ref.sig.height, ref.sig.width];
  }
  for (const d of guiderDenoisers(g)) {
    const s = d.model.sig;
    if (s.height && (s.height !== shape[2] || s.width !== shape[3])) {
      throw new Error(
        `model ${d.model.path} takes ${s.height}×${s.width} latents, the run uses ${shape[2]}×${shape[3]}`,
      );
    }
  }

  // one session per distinct model: the loaders' own (pinned for the run below)
  const distinct = [...new Set(guiderDenoisers(g).map((d) => d.model.path))];
  const handles: ModelHandle[] = distinct.map((p) => guiderDenoisers(g).find((d) => d.model.path === p)!.model.handle);

  const spec = (d: DenoiserValue): DenoiserSpec => {
    const m = d.model;
    const own = createScheduler('ddim', { ...m.schedulerConfig }).alphasCumprod;
    const s = m.sig;
    if (s.encoderHiddenStatesName && !d.cond?.ehs) {
      throw new Error(
        `model ${m.path} needs a text conditioning (encoder_hidden_states); its denoiser has ${d.cond ? `the conditioning "${d.cond.text}" without hidden states` : 'none'}`,
      );
    }
    if (s.classLabelsName && d.cond?.classLabel == null)
      throw new Error(`model ${m.path} is class-conditional: give its denoiser a class-label conditioning`);
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
      const l = d.concat;
      if (l.shape[1] !== s.concatChannels || l.shape[2] !== shape[2] || l.shape[3] !== shape[3]) {
        throw new Error(
          `model ${m.path} concatenates a [${s.concatChannels},${shape[2]},${shape[3]}] image latent, got [${l.shape.slice(1)}]`,
        );
      }
      const per = s.concatChannels * shape[2] * shape[3];
      concat = new Float32Array(shape[0] * per);
      const k = l.scalingFactor ? 1 / l.scalingFactor : 1; // IP2P takes the unscaled latent
      for (let b = 0; b < shape[0]; b++) {
        const src = l.shape[0] === 1 ? 0 : b;
        for (let i = 0; i < per; i++) concat[b * per + i] = l.samples[src * per + i] * k;
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
      concat,
    };
  };
  let gs: GuiderSpec;
  if (g.mode === 'single') gs = { kind: 'single', d: spec(g.d) };
  else if (g.mode === 'cfg') {
    gs = {
      kind: 'cfg',
      cond: spec(g.cond),
      uncond: spec(g.uncond),
      scale: g.scale,
      rescale: g.rescale,
      intervalLo: g.intervalLo,
      intervalHi: g.intervalHi,
      combine: g.combine,
      apgEta: g.apgEta,
      apgNormThreshold: g.apgNormThreshold,
    };
  } else {
    gs = {
      kind: 'two',
      full: spec(g.full),
      imageOnly: spec(g.imageOnly),
      uncond: spec(g.uncond),
      textScale: g.textScale,
      imageScale: g.imageScale,
      rescale: g.rescale,
    };
  }
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
