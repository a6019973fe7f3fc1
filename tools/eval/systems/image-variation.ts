/**
 * Versatile-Diffusion style image variation (paper Table 2) on shapes-image-variation: 64 held-out
 * fine-tune-domain images (models/eval/image_variation_samples.json `inputs`) are each varied once.
 * Methods: CFG (the model's own zero-embedding branch) and prior swap (ε(x,∅) from shapes-t2i — the
 * model it was fine-tuned from — with its null text ""). Metrics:
 *  - FD of the eval classifier's features, generated vs the real fine-tune domain (4,000 images,
 *    models/eval/reference_stats.json), next to its floor: the FD of an independent set of 64 REAL
 *    images (the file's `reals`) against the same statistics;
 *  - KID against fresh real fine-tune features (tools/eval/real_features), with the range over half-size
 *    subsets without replacement (conservative), and its floor (the 64 reals);
 *  - CLIP-I-like: cosine of shapes-image-encoder embeddings of each variation and its input (95% t-interval),
 *    next to the same for unrelated real pairs (input i vs real i) as the chance level;
 *  - the share of variations that keep the input's shape and colour (classifier), Wilson intervals.
 * Settings fixed before any result was seen: DDIM 50, γ ∈ {1, 2, 3, 5} (paper γ = 2), seed 7300.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cfgGuider,
  doc,
  type EvalContext,
  type EvalSystem,
  fdTo,
  grid,
  type ImageBatch,
  type Inputs,
  link,
  MODELS,
  meanCi,
  nullTextPrior,
  priorSwapGuider,
  rowCurves,
  sampleDecodeCollect,
  scheduler,
  wilson,
} from '../harness.ts';
import { cosine, decodeSamples, slice } from '../image-metrics.ts';
import { mulberry32 } from '../stats.ts';

interface Settings {
  n: number;
  steps: number;
  scales: number[];
}
const FULL: Settings = { n: 64, steps: 50, scales: [1, 2, 3, 5] };
const QUICK: Settings = { n: 6, steps: 6, scales: [2] };
const PAPER_SCALE = 2;
/** Table 2 of the paper: FID 8.38 (CFG) → 6.29 (prior swap, PixArt-α prior) */
const PAPER = { fid_cfg: 8.38, fid_swap: 6.29 };
const SEED = 7300;
const METHODS = [
  { id: 'cfg', label: 'CFG' },
  { id: 'swap', label: 'prior swap (t2i ∅)' },
] as const;
const runsOf = (s: Settings) => s.scales.reduce((a, w) => a + (w === 1 ? 1 : 2), 0);

function variationDoc(w: number, method: 'cfg' | 'swap', n: number, steps: number, key: string) {
  const nodes: Record<string, { type: string; inputs: Inputs }> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    iv: { type: 'UNetLoader', inputs: { unet_path: 'shapes-image-variation' } },
    cv: { type: 'CLIPVisionLoader', inputs: { clip_name: 'shapes-image-encoder' } },
    img: { type: 'eval.Source', inputs: { key: 'image-variation-input' } },
    enc: { type: 'CLIPVisionEncode', inputs: { clip_vision: link('cv', 'CLIP_VISION'), image: link('img', 'IMAGE') } },
    cond: {
      type: 'ImageEmbedConditioning',
      inputs: { model: link('iv', 'MODEL'), clip_vision_output: link('enc', 'CLIP_VISION_OUTPUT') },
    },
    pos: { type: 'Denoiser', inputs: { model: link('iv', 'MODEL'), conditioning: link('cond', 'positive') } },
    sched: scheduler('iv'),
    ...sampleDecodeCollect(SEED, n, steps, key),
  };
  if (method === 'cfg') {
    nodes.neg = { type: 'Denoiser', inputs: { model: link('iv', 'MODEL'), conditioning: link('cond', 'negative') } };
    nodes.guider = cfgGuider(w);
  } else {
    Object.assign(nodes, nullTextPrior());
    nodes.guider = priorSwapGuider(w);
  }
  return doc(nodes);
}

/** The plain sentence on what holds, from the numbers (written before they were seen). */
function verdict(rows: Record<string, Record<string, unknown>>, w: number, floorFd: number): string {
  const c = rows[`cfg γ=${w}`];
  const p = rows[`swap γ=${w}`];
  if (!c || !p) return '';
  const fc = c.fd as number;
  const fp = p.fd as number;
  const ic = c.clip_i as { mean: number; lo: number; hi: number };
  const ip = p.clip_i as { mean: number; lo: number; hi: number };
  const clear = Math.abs(fc - fp) > floorFd;
  const sep =
    ip.lo > ic.hi ? 'higher, intervals apart' : ip.hi < ic.lo ? 'lower, intervals apart' : 'intervals overlap';
  return (
    `**What holds (γ=${w}, the paper's scale):** prior swap ${fp < fc ? 'lowers' : 'raises'} FD ${fc.toFixed(0)} → ${fp.toFixed(0)} ` +
    `(paper FID ${PAPER.fid_cfg} → ${PAPER.fid_swap}); the difference is ${clear ? 'larger' : 'smaller'} than the ` +
    `${floorFd.toFixed(0)} floor of two real sets, so it ${clear ? 'clears' : 'does not clear'} the noise; CLIP-I-like ` +
    `${ic.mean.toFixed(3)} → ${ip.mean.toFixed(3)} (${sep}).`
  );
}

const system: EvalSystem = {
  id: 'image-variation',
  title: 'Versatile-Diffusion style image variation (paper Table 2)',
  plannedRuns: (quick) => runsOf(quick ? QUICK : FULL),
  async evaluate(ctx: EvalContext) {
    const s = ctx.opts.quick ? QUICK : FULL;
    const file = JSON.parse(readFileSync(join(MODELS, 'eval', 'image_variation_samples.json'), 'utf8')) as {
      inputs: Array<{ caption: string; image: string }>;
      reals: string[];
    };
    const inputs = decodeSamples(file.inputs.slice(0, s.n).map((x) => x.image));
    const reals = decodeSamples(file.reals.slice(0, s.n));
    ctx.setSource('image-variation-input', inputs);
    const encoder = await ctx.runtime.load(join(MODELS, 'shapes-image-encoder', 'image_encoder', 'model.onnx'));
    const embed = async (img: ImageBatch) => {
      const [b, h, w] = img.shape;
      const x = new Float32Array(b * 3 * h * w);
      for (let i = 0; i < b; i++)
        for (let p = 0; p < h * w; p++)
          for (let k = 0; k < 3; k++) x[(i * 3 + k) * h * w + p] = img.data[(i * h * w + p) * 3 + k] * 2 - 1;
      const outs = await encoder.run([{ name: 'pixel_values', data: x, dims: [b, 3, h, w] }]);
      const e = outs.find((o) => o.name === 'image_embeds')!;
      const d = e.dims[1];
      return Array.from({ length: b }, (_, i) => Array.from((e.data as Float32Array).subarray(i * d, (i + 1) * d)));
    };
    const inEmb = await embed(inputs);
    const inCls = await ctx.classifier.classify(inputs);
    const realCls = await ctx.classifier.classify(reals);
    const ftRef = ctx.ref.domains.ft;
    const kidRef = ctx.real.rows('domain', 'ft', 1);
    // KID's interval: a bootstrap with replacement would put duplicates into KID's within-set sum and
    // bias it up, so: 40 random half-size subsets WITHOUT replacement, their 2.5–97.5% range (wider than
    // a full-size interval: conservative)
    const kidCi = (rows: number[][], seed: number) => {
      const rnd = mulberry32(seed);
      const vals: number[] = [];
      for (let r = 0; r < 40; r++) {
        const idx = rows.map((_, i) => i);
        for (let i = idx.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [idx[i], idx[j]] = [idx[j], idx[i]];
        }
        vals.push(
          ctx.kid(
            idx.slice(0, Math.floor(rows.length / 2)).map((i) => rows[i]),
            kidRef,
          ),
        );
      }
      vals.sort((a, b) => a - b);
      return { value: ctx.kid(rows, kidRef), lo: vals[1], hi: vals[38] };
    };
    const realFeats = realCls.map((r) => r.features);
    const floor = { fd: fdTo(realFeats, ftRef), kid: kidCi(realFeats, 1) };
    const chance = meanCi(inEmb.map((e, i) => cosine(e, inEmb[(i + 1) % inEmb.length])));

    const rows: Record<string, Record<string, unknown>> = {};
    const images: Record<string, ImageBatch> = {};
    for (const w of s.scales) {
      for (const method of w === 1 ? (['cfg'] as const) : METHODS.map((m) => m.id)) {
        const key = `iv-${method}-${w}`;
        const img = await ctx.run(variationDoc(w, method, inputs.shape[0], s.steps, key), key);
        ctx.tick(`image-variation ${method} γ=${w}`);
        const cls = await ctx.classifier.classify(img);
        const emb = await embed(img);
        const feats = cls.map((r) => r.features);
        const name = w === 1 ? 'cond-only γ=1' : `${method} γ=${w}`;
        images[name] = img;
        rows[name] = {
          fd: fdTo(feats, ftRef),
          kid: kidCi(feats, 2),
          clip_i: meanCi(emb.map((e, i) => cosine(e, inEmb[i]))),
          same_shape: wilson(cls.filter((c, i) => c.shape === inCls[i].shape).length, cls.length),
          same_color: wilson(cls.filter((c, i) => c.color === inCls[i].color).length, cls.length),
        };
      }
    }
    const results = {
      settings: { ...s, seed: SEED, domain: 'ft' },
      prior: 'shapes-t2i UNet with its null text ""',
      paper: PAPER,
      floor,
      clip_i_unrelated_pairs: chance,
      rows,
    };

    const wg = s.scales.includes(PAPER_SCALE) ? PAPER_SCALE : s.scales[s.scales.length - 1];
    const show = (img: ImageBatch) => slice(img, 0, Math.min(8, img.shape[0]));
    writeFileSync(
      join(ctx.opts.out, 'grid-image-variation.png'),
      await grid(
        [
          { label: 'INPUT', images: [show(inputs)] },
          { label: `CFG ${wg}`, images: [show(images[`cfg γ=${wg}`] ?? images['cond-only γ=1'])] },
          { label: `PRIOR SWAP ${wg}`, images: [show(images[`swap γ=${wg}`] ?? images['cond-only γ=1'])] },
        ],
        ['VARIATIONS (SAME SEED)'],
        8,
      ),
    );
    type Ci = { mean: number; lo: number; hi: number };
    type P = { p: number; lo: number; hi: number };
    const ci = (c: Ci, d = 3) => `${c.mean.toFixed(d)} [${c.lo.toFixed(d)}, ${c.hi.toFixed(d)}]`;
    const pc = (c: P) => `${(c.p * 100).toFixed(0)}% [${(c.lo * 100).toFixed(0)}, ${(c.hi * 100).toFixed(0)}]`;
    const kd = (k: { value: number; lo: number; hi: number }) =>
      `${k.value.toFixed(3)} [${k.lo.toFixed(3)}, ${k.hi.toFixed(3)}]`;
    const lines = [
      `${inputs.shape[0]} held-out fine-tune-domain images, one variation each, DDIM ${s.steps}, seed ${SEED} for every row. ` +
        'Prior swap takes ε(x,∅) from shapes-t2i (the model the variation UNet was fine-tuned from) with its null text. ' +
        `FD/KID: eval-classifier features vs the real fine-tune domain; floor = ${inputs.shape[0]} independent REAL images: ` +
        `FD ${floor.fd.toFixed(1)}, KID ${kd(floor.kid)}. CLIP-I-like = cosine of image-encoder embeddings to the input ` +
        `(unrelated real pairs: ${ci(chance)}).`,
      '',
      '| guidance | FD ↓ (floor ' +
        floor.fd.toFixed(1) +
        ') | KID ↓ | CLIP-I-like ↑ | same shape | same colour | paper FID |',
      '|---|---|---|---|---|---|---|',
      ...Object.entries(rows).map(([k, r]) => {
        const paper =
          k === `cfg γ=${PAPER_SCALE}` ? PAPER.fid_cfg : k === `swap γ=${PAPER_SCALE}` ? PAPER.fid_swap : '';
        return `| ${k} | ${(r.fd as number).toFixed(1)} | ${kd(r.kid as { value: number; lo: number; hi: number })} | ${ci(r.clip_i as Ci)} | ${pc(r.same_shape as P)} | ${pc(r.same_color as P)} | ${paper} |`;
      }),
      '',
      verdict(rows, wg, floor.fd),
      '',
      'KID intervals: 2.5–97.5% over 40 half-size subsets drawn without replacement (conservative).',
      'Grid: `grid-image-variation.png` (inputs, CFG and prior swap at the paper’s γ, same seed).',
    ];
    return { results, markdown: lines.join('\n') };
  },
  curves(r) {
    const points = rowCurves(r.rows as Record<string, Record<string, unknown>>, METHODS, {
      'FD to real fine-tune data (lower is better)': 'fd',
      'KID (lower is better)': 'kid',
      'CLIP-I-like similarity to the input': 'clip_i',
      'same shape as the input (%)': 'same_shape',
    });
    return { scale: 'guidance scale γ', methods: METHODS.map((m) => m.label), points };
  },
};

export default system;
