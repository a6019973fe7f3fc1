/**
 * Zero-1-to-3 style novel views (paper Table 1) on shapes-novel-views: for each held-out object
 * (models/eval/novel_views_samples.json) one input view and the 5 TRUE renders at azimuth +60°…+300°.
 * Each run samples all objects for one target azimuth (batch = objects; the seed is per azimuth and
 * shared by every method and scale: common random numbers). Methods: CFG (the model's own zero
 * conditioning, zero concat latent) and prior swap (ε(x,∅) from shapes-t2i — the model it was
 * fine-tuned from — with its null text ""). Metrics against the true target: LPIPS-like (1 − cosine of
 * the eval classifier's 64-d features, models/eval/classifier.onnx), PSNR, SSIM; intervals over
 * objects (each object's mean over its 5 views), and the paired difference prior swap − CFG.
 * Settings fixed before any result was seen: DDIM 50 (the paper's), γ ∈ {1, 3, 5, 7.5} (paper γ = 5).
 * Second regime (added after the first run, hypothesis stated before running it): prior swap with
 * shapes-base (unconditional, mostly dark backgrounds) as the prior. Hypothesis: neither prior ever saw a
 * 3D render, and shapes-base is further from the renders' light backgrounds than shapes-t2i's null-text
 * branch, so it should be the worse prior; if it is not, "the model it was fine-tuned from" is not the
 * deciding property here.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cfgGuider,
  doc,
  type EvalContext,
  type EvalSystem,
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
} from '../harness.ts';
import { concat, decodeSamples, featureDistance, psnr, slice, ssim } from '../image-metrics.ts';

interface Settings {
  objects: number;
  targets: number;
  steps: number;
  scales: number[];
}
const FULL: Settings = { objects: 24, targets: 5, steps: 50, scales: [1, 3, 5, 7.5] };
const QUICK: Settings = { objects: 4, targets: 2, steps: 6, scales: [5] };
const PAPER_SCALE = 5;
const AZIMUTHS = [60, 120, 180, 240, 300];
/** Table 1 of the paper, SD2.1 prior: LPIPS 0.182 (CFG) → 0.158 (prior swap) */
const PAPER = { lpips_cfg: 0.182, lpips_swap: 0.158 };

type Method = 'cfg' | 'swap' | 'swap-base';
const METHODS: ReadonlyArray<{ id: Method; label: string }> = [
  { id: 'cfg', label: 'CFG' },
  { id: 'swap', label: 'prior swap (t2i ∅)' },
  { id: 'swap-base', label: 'prior swap (base)' },
];
const runsOf = (s: Settings) => s.targets * s.scales.reduce((a, w) => a + (w === 1 ? 1 : 3), 0);

function novelDoc(azimuth: number, w: number, method: Method, seed: number, n: number, steps: number, key: string) {
  const nodes: Record<string, { type: string; inputs: Inputs }> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    nv: { type: 'UNetLoader', inputs: { unet_path: 'shapes-novel-views' } },
    cv: { type: 'CLIPVisionLoader', inputs: { clip_name: 'shapes-image-encoder' } },
    img: { type: 'eval.Source', inputs: { key: 'novel-views-input' } },
    enc: { type: 'CLIPVisionEncode', inputs: { clip_vision: link('cv', 'CLIP_VISION'), image: link('img', 'IMAGE') } },
    pose: {
      type: 'Zero123Conditioning',
      inputs: {
        model: link('nv', 'MODEL'),
        clip_vision_output: link('enc', 'CLIP_VISION_OUTPUT'),
        init_image: link('img', 'IMAGE'),
        vae: link('load', 'VAE'),
        elevation: 0,
        azimuth,
        radius: 0,
      },
    },
    pos: {
      type: 'Denoiser',
      inputs: {
        model: link('nv', 'MODEL'),
        conditioning: link('pose', 'positive'),
        image_latent: link('pose', 'image_latent'),
      },
    },
    sched: scheduler('nv'),
    ...sampleDecodeCollect(seed, n, steps, key),
  };
  if (method === 'cfg') {
    nodes.neg = { type: 'Denoiser', inputs: { model: link('nv', 'MODEL'), conditioning: link('pose', 'negative') } };
    nodes.guider = cfgGuider(w);
  } else if (method === 'swap-base') {
    nodes.base = { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' } };
    nodes.prior = { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } };
    nodes.guider = priorSwapGuider(w);
  } else {
    Object.assign(nodes, nullTextPrior());
    nodes.guider = priorSwapGuider(w);
  }
  return doc(nodes);
}

interface Scores {
  lpips: number[];
  psnr: number[];
  ssim: number[];
}

/** The plain sentence on what holds, from the paired differences (written before they were seen). */
function verdictOf(d: Record<string, Record<string, { mean: number; lo: number; hi: number }>>, w: number): string {
  const v = d[`γ=${w}`];
  if (!v) return '';
  const say = (name: string, c: { mean: number; lo: number; hi: number }, better: 1 | -1) => {
    const sig = c.lo > 0 || c.hi < 0;
    const good = c.mean * better > 0;
    return `${name} ${sig ? (good ? 'better' : 'worse') : 'no clear difference'} (Δ ${c.mean.toFixed(3)} [${c.lo.toFixed(3)}, ${c.hi.toFixed(3)}])`;
  };
  return (
    `**What holds (γ=${w}, the paper's scale):** prior swap vs CFG, paired over objects — ` +
    `${say('LPIPS-like', v.lpips, -1)}, ${say('PSNR', v.psnr, 1)}, ${say('SSIM', v.ssim, 1)}. ` +
    `The paper: LPIPS ${PAPER.lpips_cfg} → ${PAPER.lpips_swap} (better).`
  );
}

const system: EvalSystem = {
  id: 'novel-views',
  title: 'Zero-1-to-3 style novel views (paper Table 1)',
  plannedRuns: (quick) => runsOf(quick ? QUICK : FULL),
  async evaluate(ctx: EvalContext) {
    const s = ctx.opts.quick ? QUICK : FULL;
    const file = JSON.parse(readFileSync(join(MODELS, 'eval', 'novel_views_samples.json'), 'utf8')) as {
      samples: Array<{ input: string; targets: string[] }>;
    };
    const samples = file.samples.slice(0, s.objects);
    const n = samples.length;
    const input = decodeSamples(samples.map((x) => x.input));
    ctx.setSource('novel-views-input', input);
    const targets = AZIMUTHS.slice(0, s.targets).map((_, k) => decodeSamples(samples.map((x) => x.targets[k])));
    const feats = async (img: ImageBatch) => (await ctx.classifier.classify(img)).map((r) => r.features);
    const targetFeats = await Promise.all(targets.map(feats));

    /** per object: mean over target views */
    const score = async (views: ImageBatch[]): Promise<Scores> => {
      const out: Scores = { lpips: [], psnr: [], ssim: [] };
      const f = await Promise.all(views.map(feats));
      for (let i = 0; i < n; i++) {
        let l = 0;
        let p = 0;
        let q = 0;
        views.forEach((v, k) => {
          l += featureDistance(f[k][i], targetFeats[k][i]);
          p += psnr(v, targets[k], i);
          q += ssim(v, targets[k], i);
        });
        out.lpips.push(l / views.length);
        out.psnr.push(p / views.length);
        out.ssim.push(q / views.length);
      }
      return out;
    };

    const rows: Record<string, Scores & { views: ImageBatch[] }> = {};
    for (const w of s.scales) {
      for (const method of w === 1 ? (['cfg'] as Method[]) : METHODS.map((m) => m.id)) {
        const views: ImageBatch[] = [];
        for (let k = 0; k < s.targets; k++) {
          const key = `nv-${method}-${w}-${k}`;
          views.push(await ctx.run(novelDoc(AZIMUTHS[k], w, method, 7100 + k, n, s.steps, key), key));
          ctx.tick(`novel-views ${method} γ=${w} az+${AZIMUTHS[k]}`);
        }
        rows[w === 1 ? 'cond-only γ=1' : `${method} γ=${w}`] = { ...(await score(views)), views };
      }
    }
    const copyInput = await score(targets.map(() => input));

    const summary = (sc: Scores) => ({ lpips: meanCi(sc.lpips), psnr: meanCi(sc.psnr), ssim: meanCi(sc.ssim) });
    const diff = (a: number[], b: number[]) => meanCi(a.map((v, i) => v - b[i]));
    const results: Record<string, unknown> = {
      settings: { ...s, azimuths: AZIMUTHS.slice(0, s.targets), seeds: '7100 + target index, shared by methods' },
      lpips_network: 'models/eval/classifier.onnx features (64-d penultimate layer), 1 − cosine',
      prior: 'shapes-t2i UNet with its null text ""' + '; second regime: shapes-base (unconditional)',
      paper: PAPER,
      copy_input_baseline: summary(copyInput),
      rows: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, summary(v)])),
      swap_minus_cfg: Object.fromEntries(
        s.scales
          .filter((w) => w !== 1)
          .map((w) => {
            const a = rows[`swap γ=${w}`];
            const b = rows[`cfg γ=${w}`];
            return [
              `γ=${w}`,
              { lpips: diff(a.lpips, b.lpips), psnr: diff(a.psnr, b.psnr), ssim: diff(a.ssim, b.ssim) },
            ];
          }),
      ),
      swap_base_minus_cfg: Object.fromEntries(
        s.scales
          .filter((w) => w !== 1)
          .map((w) => {
            const a = rows[`swap-base γ=${w}`];
            const b = rows[`cfg γ=${w}`];
            return [
              `γ=${w}`,
              { lpips: diff(a.lpips, b.lpips), psnr: diff(a.psnr, b.psnr), ssim: diff(a.ssim, b.ssim) },
            ];
          }),
      ),
    };

    // grid: 4 objects; input, the 5 true views, CFG and prior swap at the paper's γ
    const wg = s.scales.includes(PAPER_SCALE) ? PAPER_SCALE : s.scales[s.scales.length - 1];
    const show = Math.min(4, n);
    const gridRows = [];
    for (let i = 0; i < show; i++) {
      const pick = (vs: ImageBatch[]) => concat(vs.map((v) => slice(v, i)));
      gridRows.push({
        label: `OBJECT ${i + 1}`,
        images: [
          slice(input, i),
          pick(targets),
          pick(rows[`cfg γ=${wg}`]?.views ?? rows['cond-only γ=1'].views),
          pick(rows[`swap γ=${wg}`]?.views ?? rows['cond-only γ=1'].views),
          pick(rows[`swap-base γ=${wg}`]?.views ?? rows['cond-only γ=1'].views),
        ],
      });
    }
    writeFileSync(
      join(ctx.opts.out, 'grid-novel-views.png'),
      await grid(gridRows, ['INPUT', 'TRUE +60..+300', `CFG ${wg}`, `SWAP T2I ${wg}`, `SWAP BASE ${wg}`], s.targets),
    );

    const f = (c: { mean: number; lo: number; hi: number }, d = 3) =>
      `${c.mean.toFixed(d)} [${c.lo.toFixed(d)}, ${c.hi.toFixed(d)}]`;
    const lines = [
      `${n} held-out objects × ${s.targets} target views (azimuth +60° steps, same elevation and radius), DDIM ${s.steps}. ` +
        'Prior swap takes ε(x,∅) from shapes-t2i (the model the novel-view UNet was fine-tuned from) with its null text. ' +
        'LPIPS-like = 1 − cosine of the eval classifier’s features (lower is better); PSNR/SSIM against the true render. ' +
        'Intervals: 95% over objects (each object averaged over its views).',
      '',
      '| guidance | LPIPS-like ↓ | PSNR ↑ | SSIM ↑ | paper LPIPS (SD2.1 prior) |',
      '|---|---|---|---|---|',
      ...Object.entries(rows).map(([k, v]) => {
        const m = summary(v);
        const paper =
          k === `cfg γ=${PAPER_SCALE}`
            ? String(PAPER.lpips_cfg)
            : k === `swap γ=${PAPER_SCALE}`
              ? String(PAPER.lpips_swap)
              : '';
        return `| ${k} | ${f(m.lpips)} | ${f(m.psnr, 2)} | ${f(m.ssim)} | ${paper} |`;
      }),
      `| copy the input view (baseline) | ${f(summary(copyInput).lpips)} | ${f(summary(copyInput).psnr, 2)} | ${f(summary(copyInput).ssim)} | |`,
      '',
      '| prior swap − CFG (paired) | Δ LPIPS-like | Δ PSNR | Δ SSIM |',
      '|---|---|---|---|',
      ...Object.entries(
        results.swap_minus_cfg as Record<string, Record<string, { mean: number; lo: number; hi: number }>>,
      ).map(([k, v]) => `| ${k} | ${f(v.lpips)} | ${f(v.psnr, 2)} | ${f(v.ssim)} |`),
      '',
      'Second regime — prior swap with shapes-base as the prior (hypothesis, stated before running it: the worse prior, further from the renders’ light backgrounds):',
      '',
      '| shapes-base prior − CFG (paired) | Δ LPIPS-like | Δ PSNR | Δ SSIM |',
      '|---|---|---|---|',
      ...Object.entries(
        results.swap_base_minus_cfg as Record<string, Record<string, { mean: number; lo: number; hi: number }>>,
      ).map(([k, v]) => `| ${k} | ${f(v.lpips)} | ${f(v.psnr, 2)} | ${f(v.ssim)} |`),
      '',
      verdictOf(results.swap_minus_cfg as Record<string, Record<string, { mean: number; lo: number; hi: number }>>, wg),
      '',
      'Grid: `grid-novel-views.png` (input, true views, CFG and prior swap at the paper’s γ).',
    ];
    return { results, markdown: lines.join('\n') };
  },
  curves(r) {
    const points = rowCurves(r.rows as Record<string, Record<string, unknown>>, METHODS, {
      'LPIPS-like distance to the true view (lower is better)': 'lpips',
      'PSNR (dB)': 'psnr',
      SSIM: 'ssim',
    });
    return { scale: 'guidance scale γ', methods: METHODS.map((m) => m.label), points };
  },
};

export default system;
