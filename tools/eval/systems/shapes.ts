/**
 * The first two systems of the paper on the shapes family: text-to-image (CFG vs prior swap from the
 * base UNet or the DiT) with unconditional samples of each prior, and InstructPix2Pix editing with and
 * without the base as prior. Seeds are fixed per prompt and shared by every method and scale (common
 * random numbers), fixed before any result was seen.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  borderBrightness,
  curvePoints,
  doc,
  type EvalContext,
  type EvalSystem,
  fdTo,
  grid,
  guidance,
  type ImageBatch,
  type Inputs,
  link,
  MODELS,
  meanCi,
  meanOf,
  num,
  pct,
  sampleDecodeCollect,
  scheduler,
  wilson,
} from '../harness.ts';

export const SCALES = [1, 2, 3, 5, 7.5];
export const METHODS = [
  { id: 'cfg', label: 'CFG', prior: null },
  { id: 'swap-base', label: 'prior swap (base UNet)', prior: 'shapes-base' },
  { id: 'swap-dit', label: 'prior swap (DiT)', prior: 'shapes-dit' },
] as const;

export interface ShapesSettings {
  perPrompt: number;
  prompts: number;
  steps: number;
  uncondSamples: number;
  scales: number[];
  /** use only the first n held-out edit pairs (default: all) */
  editPairs?: number;
}
export const FULL: ShapesSettings = { perPrompt: 64, prompts: 24, steps: 30, uncondSamples: 512, scales: SCALES };
export const QUICK: ShapesSettings = {
  perPrompt: 4,
  prompts: 2,
  steps: 6,
  uncondSamples: 8,
  scales: [1, 3],
  editPairs: 6,
};

/** Settings for this process (run.ts sets them from its command line). */
export const settings: { current: ShapesSettings | null } = { current: null };

function editPairs(limit?: number) {
  const editSet = JSON.parse(readFileSync(join(MODELS, 'eval', 'edit_samples.json'), 'utf8')) as unknown;
  const pairs = (Array.isArray(editSet) ? editSet : ((editSet as { samples?: unknown[] }).samples ?? [])) as Array<
    Record<string, unknown>
  >;
  return pairs.slice(0, limit ?? pairs.length);
}
function byInstruction(pairs: Array<Record<string, unknown>>) {
  const m = new Map<string, Array<Record<string, unknown>>>();
  for (const p of pairs) {
    const k = String(p.instruction);
    m.set(k, [...(m.get(k) ?? []), p]);
  }
  return m;
}
const chosen = (quick: boolean) => settings.current ?? (quick ? QUICK : FULL);

/** Text-to-image with the fine-tuned model: CFG, or prior swap with `prior`. */
function t2iDoc(caption: string, w: number, prior: string | null, seed: number, n: number, steps: number, key: string) {
  const nodes: Record<string, { type: string; inputs: Inputs }> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: caption } },
    cond: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'CONDITIONING') } },
    sched: scheduler('load'),
    ...sampleDecodeCollect(seed, n, steps, key),
  };
  if (prior) {
    nodes.prior = { type: 'UNetLoader', inputs: { unet_path: prior } };
    nodes.prior_den = { type: 'Denoiser', inputs: { model: link('prior', 'MODEL') } };
    nodes.guider = {
      type: 'PriorSwapCFGGuider',
      inputs: { model: link('cond', 'DENOISER'), prior: link('prior_den', 'DENOISER'), cfg: w, ...guidance },
    };
  } else {
    nodes.uncond = { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'EMPTY') } };
    nodes.guider = {
      type: 'CFGGuider',
      inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), cfg: w, ...guidance },
    };
  }
  return doc(nodes);
}

/** Unconditional samples of one model's prior: base UNet, DiT, or the fine-tune's own ∅ branch. */
function uncondDoc(which: 'base' | 'dit' | 't2i', seed: number, n: number, steps: number, key: string) {
  const nodes: Record<string, { type: string; inputs: Inputs }> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    ...sampleDecodeCollect(seed, n, steps, key),
  };
  if (which === 't2i') {
    nodes.enc = { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: '' } };
    nodes.den = { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'EMPTY') } };
    nodes.sched = scheduler('load');
  } else {
    nodes.m = { type: 'UNetLoader', inputs: { unet_path: which === 'base' ? 'shapes-base' : 'shapes-dit' } };
    nodes.den = { type: 'Denoiser', inputs: { model: link('m', 'MODEL') } };
    nodes.sched = scheduler('m');
  }
  nodes.guider = { type: 'BasicGuider', inputs: { denoiser: link('den', 'DENOISER') } };
  return doc(nodes);
}

/** InstructPix2Pix editing of registered source images, with or without the base as prior. */
function editDoc(
  instruction: string,
  sourceKey: string,
  n: number,
  prior: boolean,
  seed: number,
  steps: number,
  key: string,
) {
  const nodes: Record<string, { type: string; inputs: Inputs }> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    editor: { type: 'UNetLoader', inputs: { unet_path: 'shapes-edit' } },
    enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: instruction } },
    src: { type: 'eval.Source', inputs: { key: sourceKey } },
    src_latent: { type: 'VAEEncode', inputs: { pixels: link('src', 'IMAGE'), vae: link('load', 'VAE') } },
    guider: {
      type: 'InstructPix2PixGuider',
      inputs: {
        model: link('editor', 'MODEL'),
        text: link('enc', 'CONDITIONING'),
        empty: link('enc', 'EMPTY'),
        image: link('src_latent', 'LATENT'),
        text_scale: 7.5,
        image_scale: 1.5,
        guidance_rescale: 0,
        ...(prior ? { prior: link('base_den', 'DENOISER') } : {}),
      },
    },
    sched: scheduler('editor'),
    ...sampleDecodeCollect(seed, n, steps, key),
  };
  if (prior) {
    nodes.base = { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' } };
    nodes.base_den = { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } };
  }
  return doc(nodes);
}

const shapes: EvalSystem = {
  id: 'shapes',
  title: 'Text-to-image and InstructPix2Pix (shapes family)',
  plannedRuns(quick) {
    const s = chosen(quick);
    const uncondRuns = 3 * Math.ceil(s.uncondSamples / 64);
    return METHODS.length * s.scales.length * s.prompts + uncondRuns + 2 * byInstruction(editPairs(s.editPairs)).size;
  },
  async evaluate(ctx: EvalContext) {
    const { perPrompt, steps, scales, uncondSamples: nUncond } = chosen(ctx.opts.quick);
    const out = ctx.opts.out;
    const ref = ctx.ref;
    const ftPrompts = ref.prompts.filter((p) => p.domain === 'ft').slice(0, chosen(ctx.opts.quick).prompts);

    // 0. The noise floor: the same measurements with fresh REAL images of each prompt in place of the
    // generated ones, at the same sample size. A difference between methods smaller than the spread of
    // the floor is not evidence of anything.
    const floorFd: number[] = [];
    const floorKid: number[] = [];
    for (const p of ftPrompts) {
      const fresh = ctx.real.rows('prompt', p.caption, 0, 1, perPrompt);
      floorFd.push(fdTo(fresh, p));
      floorKid.push(ctx.kid(fresh, ctx.real.rows('prompt', p.caption, 1, 3)));
    }
    const floor = {
      real_per_prompt: Math.min(perPrompt, ctx.real.rows('prompt', ftPrompts[0].caption, 0).length),
      kid_feature_scale: ctx.real.scale,
      fd_per_prompt: meanCi(floorFd),
      kid_per_prompt: meanCi(floorKid),
    };
    ctx.log(`noise floor (real vs real): FD ${meanOf(floorFd).toFixed(2)} KID ${meanOf(floorKid).toExponential(2)}`);

    // 1. Text-to-image: every method × scale × prompt, same seeds for all.
    const t2i: Record<string, Record<string, unknown>> = {};
    const gridRows: Array<{ label: string; images: ImageBatch[] }> = [];
    const gridPrompt = 0;
    for (const m of METHODS) {
      const row: ImageBatch[] = [];
      for (const w of scales) {
        const fds: number[] = [];
        const kids: number[] = [];
        const borders: number[] = [];
        let correct = 0;
        let shapeOk = 0;
        let colorOk = 0;
        let total = 0;
        for (const [pi, p] of ftPrompts.entries()) {
          const key = `${m.id}-${w}-${pi}`;
          ctx.tick(key);
          const img = await ctx.run(t2iDoc(p.caption, w, m.prior, 1000 + pi, perPrompt, steps, key), key);
          if (pi === gridPrompt) row.push(img);
          const cls = await ctx.classifier.classify(img);
          for (const c of cls) {
            total++;
            shapeOk += Number(c.shape === p.shape);
            colorOk += Number(c.color === p.color);
            correct += Number(c.shape === p.shape && c.color === p.color);
          }
          const feats = cls.map((c) => c.features);
          fds.push(fdTo(feats, p));
          kids.push(ctx.kid(feats, ctx.real.rows('prompt', p.caption, 1, 3)));
          borders.push(...borderBrightness(img));
        }
        const acc = wilson(correct, total);
        t2i[`${m.id}@${w}`] = {
          method: m.id,
          scale: w,
          samples: total,
          prompt_accuracy: acc,
          shape_accuracy: wilson(shapeOk, total),
          color_accuracy: wilson(colorOk, total),
          fd_per_prompt: meanCi(fds),
          kid_per_prompt: meanCi(kids),
          border_brightness: meanCi(borders),
        };
        ctx.log(
          `${m.id} w=${w}: acc ${(acc.p * 100).toFixed(1)}% FD ${meanOf(fds).toFixed(2)} border ${meanOf(borders).toFixed(3)}`,
        );
      }
      gridRows.push({ label: m.label, images: row });
    }
    writeFileSync(
      join(out, 'grid-t2i.png'),
      await grid(
        gridRows,
        scales.map((w) => `W=${w}`),
        6,
      ),
    );

    // 2. Unconditional quality of each prior, against both domains.
    const uncond: Record<string, unknown> = {};
    const uncondRows: Array<{ label: string; images: ImageBatch[] }> = [];
    for (const which of ['base', 'dit', 't2i'] as const) {
      const feats: number[][] = [];
      const borders: number[] = [];
      const imgs: ImageBatch[] = [];
      for (let k = 0; k * 64 < nUncond; k++) {
        const n = Math.min(64, nUncond - k * 64);
        const key = `uncond-${which}-${k}`;
        ctx.tick(key);
        const img = await ctx.run(uncondDoc(which, 5000 + k, n, steps, key), key);
        if (k === 0) imgs.push(img);
        feats.push(...(await ctx.classifier.classify(img)).map((c) => c.features));
        borders.push(...borderBrightness(img));
      }
      uncond[which] = {
        samples: feats.length,
        fd_to_base_data: fdTo(feats, ref.domains.base),
        fd_to_finetune_data: fdTo(feats, ref.domains.ft),
        kid_to_base_data: ctx.kid(feats, ctx.real.rows('domain', 'base', 1)),
        kid_to_finetune_data: ctx.kid(feats, ctx.real.rows('domain', 'ft', 1)),
        border_brightness: meanCi(borders),
      };
      uncondRows.push({ label: { base: 'BASE UNET', dit: 'DIT', t2i: 'FINE-TUNE (EMPTY)' }[which], images: imgs });
      ctx.log(`uncond ${which}: ${JSON.stringify(uncond[which])}`);
    }
    // the floor of this table: fresh real images of each domain, as many as the samples above
    for (const dom of ['base', 'ft'] as const) {
      const fresh = ctx.real.rows('domain', dom, 0, 1, nUncond);
      uncond[`real ${dom} data (floor)`] = {
        samples: fresh.length,
        fd_to_base_data: fdTo(fresh, ref.domains.base),
        fd_to_finetune_data: fdTo(fresh, ref.domains.ft),
        kid_to_base_data: ctx.kid(fresh, ctx.real.rows('domain', 'base', 1)),
        kid_to_finetune_data: ctx.kid(fresh, ctx.real.rows('domain', 'ft', 1)),
      };
    }
    writeFileSync(join(out, 'grid-uncond.png'), await grid(uncondRows, ['UNCONDITIONAL SAMPLES'], 12));

    // 3. Editing, with and without the base as prior.
    const pairs = editPairs(chosen(ctx.opts.quick).editPairs);
    const edit: Record<string, unknown> = {};
    const editRows: Array<{ label: string; images: ImageBatch[] }> = [];
    const toImage = (b64: string): ImageBatch => {
      const bytes = Buffer.from(b64, 'base64');
      const data = new Float32Array(32 * 32 * 3);
      for (let ch = 0; ch < 3; ch++) for (let i = 0; i < 32 * 32; i++) data[i * 3 + ch] = bytes[ch * 1024 + i] / 255;
      return { data, shape: [1, 32, 32, 3] };
    };
    for (const prior of [false, true]) {
      let instrOk = 0;
      let keepOk = 0;
      let total = 0;
      const borders: number[] = [];
      const shown: ImageBatch[] = [];
      for (const [ii, [instruction, group]] of [...byInstruction(pairs).entries()].entries()) {
        const srcs = group.map((g) => toImage(String(g.source)));
        const batch: ImageBatch = {
          data: new Float32Array(srcs.length * 32 * 32 * 3),
          shape: [srcs.length, 32, 32, 3],
        };
        srcs.forEach((s, i) => {
          batch.data.set(s.data, i * s.data.length);
        });
        const srcKey = `edit-src-${ii}`;
        ctx.setSource(srcKey, batch);
        const key = `edit-${prior}-${ii}`;
        ctx.tick(key);
        const img = await ctx.run(editDoc(instruction, srcKey, srcs.length, prior, 9000 + ii, steps, key), key);
        if (ii === 0) shown.push(batch, img);
        const cls = await ctx.classifier.classify(img);
        group.forEach((g, i) => {
          total++;
          const changesColor = g.target_color !== g.source_color;
          const c = cls[i];
          instrOk += Number(changesColor ? c.color === g.target_color : c.shape === g.target_shape);
          keepOk += Number(changesColor ? c.shape === g.source_shape : c.color === g.source_color);
        });
        borders.push(...borderBrightness(img));
      }
      edit[prior ? 'ip2p+base-prior' : 'ip2p'] = {
        pairs: total,
        instruction_accuracy: wilson(instrOk, total),
        preservation_accuracy: wilson(keepOk, total),
        border_brightness: meanCi(borders),
      };
      editRows.push({ label: prior ? 'IP2P + BASE PRIOR' : 'IP2P', images: shown });
      ctx.log(`edit prior=${prior}: ${JSON.stringify(edit[prior ? 'ip2p+base-prior' : 'ip2p'])}`);
    }
    writeFileSync(join(out, 'grid-edit.png'), await grid(editRows, ['SOURCE', 'EDITED'], 6));

    // 4. The results (run.ts draws the plot from them: curves() below).
    const results = {
      settings: {
        steps,
        scheduler: 'ddim',
        per_prompt: perPrompt,
        prompts: ftPrompts.length,
        scales,
        seeds: 'prompt i → 1000+i',
      },
      reference_domains: {
        base: ref.domains.base.border_brightness,
        finetune: ref.domains.ft.border_brightness,
      },
      noise_floor: floor,
      t2i,
      unconditional: uncond,
      edit,
    };

    return { results, markdown: markdown(results, scales) };
  },
  curves(r) {
    const t2i = r.t2i as Record<string, Record<string, unknown>>;
    const { scales } = r.settings as { scales: number[] };
    const points = METHODS.flatMap((m) =>
      scales.flatMap((w) => {
        const x = t2i[`${m.id}@${w}`];
        if (!x) return [];
        return curvePoints(m.label, w, {
          'FD to the prompt’s real images (lower is better)': x.fd_per_prompt,
          'prompt accuracy (%)': x.prompt_accuracy,
          'border brightness (fine-tune data ≈ 0.83)': x.border_brightness,
        });
      }),
    );
    return { scale: 'guidance scale w', methods: METHODS.map((m) => m.label), points };
  },
};
export default shapes;

function markdown(r: Record<string, unknown>, scales: number[]): string {
  const t2i = r.t2i as Record<string, Record<string, unknown>>;
  const floor = r.noise_floor as Record<string, unknown>;
  const lines = [
    `Settings: ${JSON.stringify(r.settings)}.`,
    '',
    '| method | w | prompt accuracy [95% CI] | FD to the prompt’s real images (mean over prompts ± 95% CI) | KID (mean over prompts ± 95% CI) | border brightness (ft data ≈ 0.83, base ≈ 0.21) |',
    '|---|---|---|---|---|---|',
    `| real images (noise floor) | – | – | ${num(floor.fd_per_prompt)} | ${num(floor.kid_per_prompt)} | – |`,
  ];
  for (const m of METHODS)
    for (const w of scales) {
      const x = t2i[`${m.id}@${w}`];
      if (!x) continue;
      lines.push(
        `| ${m.id} | ${w} | ${pct(x.prompt_accuracy)} | ${num(x.fd_per_prompt)} | ${num(x.kid_per_prompt)} | ${num(x.border_brightness, 3)} |`,
      );
    }
  lines.push(
    '',
    `The noise floor row scores ${floor.real_per_prompt} fresh REAL images per prompt exactly as the generated ones are scored: the FD a perfect generator would get at this sample size. KID is unbiased, so its floor is near 0.`,
    '',
    '| prior (unconditional samples) | FD to base data | FD to fine-tune data | KID to base data | KID to fine-tune data | border brightness |',
    '|---|---|---|---|---|---|',
  );
  for (const [k, v] of Object.entries(r.unconditional as Record<string, Record<string, unknown>>))
    lines.push(
      `| ${k} | ${(v.fd_to_base_data as number).toFixed(2)} | ${(v.fd_to_finetune_data as number).toFixed(2)} | ${(v.kid_to_base_data as number).toFixed(2)} | ${(v.kid_to_finetune_data as number).toFixed(2)} | ${v.border_brightness ? num(v.border_brightness, 3) : '–'} |`,
    );
  lines.push(
    '',
    '| editor | instruction accuracy | preservation of the other attribute | border brightness |',
    '|---|---|---|---|',
  );
  for (const [k, v] of Object.entries(r.edit as Record<string, Record<string, unknown>>))
    lines.push(
      `| ${k} | ${pct(v.instruction_accuracy)} | ${pct(v.preservation_accuracy)} | ${num(v.border_brightness, 3)} |`,
    );
  return `${lines.join('\n')}\n`;
}
