/**
 * The evaluation of issue 4: runs the real workflows through the real engine and nodes on the shipped
 * demo models, scores the images with the evaluation classifier and writes
 *   <out>/results.json   the table (every number with its confidence interval)
 *   <out>/results.md     the same as markdown tables
 *   <out>/plot.png       FD, prompt accuracy and the domain statistic against the guidance scale
 *   <out>/grid-*.png     image grids (one row per method, one column per guidance scale)
 *
 *   node --import tsx tools/eval/run.ts [--out docs/eval] [--per-prompt 64] [--prompts 24] [--steps 30]
 *
 * Seeds are fixed per prompt and shared by every method and scale (common random numbers), and they
 * were fixed before any result was seen. Nothing here is tuned to favour a method.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  defineNode,
  definePlugin,
  Executor,
  type HostInfo,
  Registry,
  type WorkflowDocument,
} from '../../packages/core/src/index.ts';
import { drawText, encodePng, textWidth } from '../../packages/nodes/src/image-utils.ts';
import nodesPlugin, { getRuntime, type ModelHandle, stopRuntime } from '../../packages/nodes/src/index.ts';
import { frechetDistance, kid, meanCov, wilson } from './stats.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = join(ROOT, 'models');

export const SCALES = [1, 2, 3, 5, 7.5];
export const METHODS = [
  { id: 'cfg', label: 'CFG', prior: null },
  { id: 'swap-base', label: 'PRIOR SWAP (BASE UNET)', prior: 'shapes-base' },
  { id: 'swap-dit', label: 'PRIOR SWAP (DIT)', prior: 'shapes-dit' },
] as const;

interface ImageBatch {
  data: Float32Array; // [b, h, w, c] in [0, 1]
  shape: [number, number, number, number];
}

// ---------------------------------------------------------------- an evaluation plugin (the public API)
const collected = new Map<string, ImageBatch>();
const sources = new Map<string, ImageBatch>();

const evalPlugin = definePlugin({
  name: 'eval',
  version: '0.1.0',
  nodes: [
    defineNode({
      type: 'Source',
      version: 1,
      category: 'eval',
      description: 'Images registered by the evaluation script under a key.',
      inputs: { key: { kind: 'string', default: '' } },
      outputs: [{ name: 'IMAGE', type: 'IMAGE' }],
      execute({ key }) {
        const img = sources.get(key);
        if (!img) throw new Error(`input "key": no source images registered as "${key}"`);
        return { IMAGE: img };
      },
    }),
    defineNode({
      type: 'Collect',
      version: 1,
      category: 'eval',
      description: 'Hands the images back to the evaluation script under a key.',
      outputNode: true,
      notIdempotent: true,
      inputs: { images: { kind: 'socket', type: 'IMAGE' }, key: { kind: 'string', default: '' } },
      outputs: [],
      execute({ images, key }) {
        collected.set(key, images as ImageBatch);
        return {};
      },
    }),
  ],
});

// ---------------------------------------------------------------- workflows
type Inputs = Record<string, unknown>;
const link = (node: string, output: string) => ({ node, output });
function doc(nodes: Record<string, { type: string; inputs: Inputs }>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes)) {
    out[id] = { type: n.type.includes('.') ? n.type : `priorgraph.${n.type}`, version: 1, inputs: n.inputs };
  }
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}
const guidance = { guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
const scheduler = (model: string) => ({
  type: 'Scheduler',
  inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link(model, 'MODEL') },
});

/** The tail every evaluation graph shares: sample with node `guider` and `sched`, decode with `load`'s
 *  VAE, and hand the images back under `key`. */
function sampleDecodeCollect(seed: number, n: number, steps: number, key: string) {
  return {
    sample: {
      type: 'Sampler',
      inputs: {
        guider: link('guider', 'GUIDER'),
        scheduler: link('sched', 'SCHEDULER'),
        seed,
        steps,
        denoise: 1,
        batch_size: n,
        preview_every: 0,
      },
    },
    decode: { type: 'VAEDecode', inputs: { samples: link('sample', 'LATENT'), vae: link('load', 'VAE') } },
    out: { type: 'eval.Collect', inputs: { images: link('decode', 'IMAGE'), key } },
  };
}

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

// ---------------------------------------------------------------- scoring
interface RefStats {
  mean: number[];
  cov: number[][];
}
interface RefPrompt extends RefStats {
  caption: string;
  shape: string;
  color: string;
  domain: 'ft' | 'base';
  border_brightness: { mean: number; std: number };
}
interface Reference {
  prompts: RefPrompt[];
  domains: Record<string, RefStats & { border_brightness: { mean: number; std: number } }>;
  shapes: string[];
  colors: string[];
}

class Classifier {
  private constructor(
    private readonly model: ModelHandle,
    readonly shapes: string[],
    readonly colors: string[],
  ) {}
  /** The classifier runs in the node library's worker pool, like every other model. */
  static async load(ref: Reference, host: HostInfo) {
    const model = await getRuntime(host).load(join(MODELS, 'eval', 'classifier.onnx'));
    return new Classifier(model, ref.shapes, ref.colors);
  }
  /** IMAGE [b,h,w,c] in [0,1] → per image: predicted shape, colour, 64-d features. */
  async classify(img: ImageBatch) {
    const [b, h, w, c] = img.shape;
    const chw = new Float32Array(b * c * h * w);
    for (let i = 0; i < b; i++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let k = 0; k < c; k++)
            chw[((i * c + k) * h + y) * w + x] = img.data[((i * h + y) * w + x) * c + k] * 2 - 1;
    const outs = await this.model.run([{ name: 'image', data: chw, dims: [b, c, h, w] }]);
    const get = (name: string) => {
      const t = outs.find((o) => o.name === name);
      if (!t) throw new Error(`models/eval/classifier.onnx: no output "${name}"`);
      return t.data as Float32Array;
    };
    const sl = get('shape_logits');
    const cl = get('color_logits');
    const f = get('features');
    const ns = this.shapes.length;
    const nc = this.colors.length;
    const fd = f.length / b;
    const argmax = (a: Float32Array, off: number, n: number) => {
      let best = 0;
      for (let j = 1; j < n; j++) if (a[off + j] > a[off + best]) best = j;
      return best;
    };
    return Array.from({ length: b }, (_, i) => ({
      shape: this.shapes[argmax(sl, i * ns, ns)],
      color: this.colors[argmax(cl, i * nc, nc)],
      features: Array.from(f.subarray(i * fd, (i + 1) * fd)),
    }));
  }
}

/** The domain statistic: mean over RGB of the outer 2-pixel ring, per image, in [0, 1]. */
export function borderBrightness(img: ImageBatch): number[] {
  const [b, h, w, c] = img.shape;
  const out: number[] = [];
  for (let i = 0; i < b; i++) {
    let s = 0;
    let n = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        if (y >= 2 && y < h - 2 && x >= 2 && x < w - 2) continue;
        for (let k = 0; k < c; k++) s += img.data[((i * h + y) * w + x) * c + k];
        n += c;
      }
    out.push(s / n);
  }
  return out;
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Mean with a 95% t-interval (normal approximation beyond 30). */
function meanCi(xs: number[]) {
  const m = meanOf(xs);
  if (xs.length < 2) return { mean: m, lo: m, hi: m };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  const t =
    xs.length > 30 ? 1.96 : ([12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23][xs.length - 2] ?? 2.1);
  const half = (t * sd) / Math.sqrt(xs.length);
  return { mean: m, lo: m - half, hi: m + half };
}
function fdTo(rows: number[][], ref: RefStats) {
  const d = ref.mean.length;
  return frechetDistance(meanCov(rows, d), { mean: ref.mean, cov: ref.cov.flat() }, d);
}

/** Fresh real images' features (tools/eval/make_real_features.py): per fine-tune prompt and per domain,
 *  several independent sets. Set 0 measures the noise floor; the other sets are the KID reference. */
interface RealBlock {
  kind: 'prompt' | 'domain';
  key: string;
  sets: number;
  per_set: number;
  dim: number;
  offset: number;
}
class RealFeatures {
  private constructor(
    private readonly floats: Float32Array,
    private readonly blocks: Map<string, RealBlock>,
  ) {}
  /** the typical per-dimension standard deviation of real fine-tune-domain features: KID's kernel scale */
  get scale(): number {
    const rows = this.rows('domain', 'ft', 1);
    const d = rows[0].length;
    const { cov } = meanCov(rows, d);
    let tr = 0;
    for (let i = 0; i < d; i++) tr += cov[i * d + i];
    return Math.sqrt(tr / d);
  }
  static load(): RealFeatures {
    const dir = join(ROOT, 'tools', 'eval');
    const meta = JSON.parse(readFileSync(join(dir, 'real_features.json'), 'utf8')) as { blocks: RealBlock[] };
    const buf = readFileSync(join(dir, 'real_features.bin'));
    const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    return new RealFeatures(floats, new Map(meta.blocks.map((b) => [`${b.kind}:${b.key}`, b])));
  }
  /** rows of one set (or of sets from..to-1 joined), at most `limit` rows */
  rows(kind: RealBlock['kind'], key: string, from: number, to = from + 1, limit = Number.POSITIVE_INFINITY) {
    const b = this.blocks.get(`${kind}:${key}`);
    if (!b) throw new Error(`tools/eval/real_features.json: no ${kind} block "${key}" (rerun make_real_features.py)`);
    const n = Math.min((to - from) * b.per_set, limit);
    return Array.from({ length: n }, (_, i) => {
      const start = b.offset + (from * b.per_set + i) * b.dim;
      return Array.from(this.floats.subarray(start, start + b.dim));
    });
  }
}

// ---------------------------------------------------------------- grids and plot
function grid(rows: Array<{ label: string; images: ImageBatch[] }>, colLabels: string[], perCell: number) {
  const cell = 32;
  const scale = 2;
  const labelW = 220;
  const headH = 24;
  const cellW = perCell * (cell + 2) + 10;
  const W = labelW + colLabels.length * cellW;
  const H = headH + rows.length * (cell + 10);
  const rgb = new Uint8Array(W * H * 3).fill(255);
  colLabels.forEach((l, j) => {
    drawText(rgb, W, H, l, labelW + j * cellW, 8, scale, [0, 0, 0]);
  });
  rows.forEach((row, i) => {
    const y0 = headH + i * (cell + 10);
    drawText(rgb, W, H, row.label, 6, y0 + 12, scale, [0, 0, 0]);
    row.images.forEach((img, j) => {
      const [b, h, w] = img.shape;
      for (let k = 0; k < Math.min(perCell, b); k++) {
        const x0 = labelW + j * cellW + k * (cell + 2);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let ch = 0; ch < 3; ch++) {
              const v = img.data[((k * h + y) * w + x) * 3 + ch];
              rgb[((y0 + y) * W + x0 + x) * 3 + ch] = Math.round(Math.min(1, Math.max(0, v)) * 255);
            }
      }
    });
  });
  return encodePng(rgb, W, H, 3);
}

type Series = {
  label: string;
  color: [number, number, number];
  points: Array<{ x: number; y: number; lo: number; hi: number }>;
};
function linePanel(
  rgb: Uint8Array,
  W: number,
  H: number,
  box: { x: number; y: number; w: number; h: number },
  title: string,
  series: Series[],
) {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  // The axis spans the means (intervals are clipped to the box), so one wide interval cannot flatten the lines.
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  let yMin = Math.min(...ys);
  let yMax = Math.max(...ys);
  if (yMax - yMin < 1e-9) {
    yMin -= 1;
    yMax += 1;
  }
  const pad = (yMax - yMin) * 0.15;
  yMin -= pad;
  yMax += pad;
  const px = (x: number) => Math.round(box.x + 50 + ((x - xMin) / (xMax - xMin || 1)) * (box.w - 60));
  const py = (y: number) => {
    const clamped = Math.min(yMax, Math.max(yMin, y));
    return Math.round(box.y + box.h - 20 - ((clamped - yMin) / (yMax - yMin)) * (box.h - 40));
  };
  const dot = (x: number, y: number, c: [number, number, number], r = 1) => {
    for (let dy = -r; dy <= r; dy++)
      for (let dx = -r; dx <= r; dx++) {
        const X = Math.round(x + dx);
        const Y = Math.round(y + dy);
        if (X >= 0 && Y >= 0 && X < W && Y < H) rgb.set(c, (Y * W + X) * 3);
      }
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number], r = 1) => {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) dot(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c, r);
  };
  const grey: [number, number, number] = [120, 120, 120];
  line(px(xMin), py(yMin), px(xMax), py(yMin), grey, 0);
  line(px(xMin), py(yMin), px(xMin), py(yMax), grey, 0);
  drawText(rgb, W, H, title, box.x + 50, box.y + 2, 2, [0, 0, 0]);
  for (const x of [...new Set(xs)]) {
    line(px(x), py(yMin), px(x), py(yMin) + 4, grey, 0);
    drawText(rgb, W, H, String(x), px(x) - 4, py(yMin) + 7, 1, [0, 0, 0]);
  }
  for (const t of [yMin + pad, (yMin + yMax) / 2, yMax - pad]) {
    const label = Math.abs(yMax - yMin) >= 30 ? t.toFixed(0) : t.toFixed(2);
    line(px(xMin) - 3, py(t), px(xMin), py(t), grey, 0);
    drawText(rgb, W, H, label, box.x + 46 - textWidth(label, 1), py(t) - 2, 1, [0, 0, 0]);
  }
  series.forEach((s, si) => {
    const off = (si - (series.length - 1) / 2) * 4; // interval bars side by side, not on top of each other
    s.points.forEach((p, i) => {
      line(px(p.x) + off, py(p.lo), px(p.x) + off, py(p.hi), s.color, 0);
      dot(px(p.x), py(p.y), s.color, 2);
      if (i > 0) line(px(s.points[i - 1].x), py(s.points[i - 1].y), px(p.x), py(p.y), s.color, 1);
    });
  });
}

// ---------------------------------------------------------------- main
export interface EvalOptions {
  out: string;
  perPrompt: number;
  prompts: number;
  steps: number;
  uncondSamples: number;
  scales: number[];
  /** Use only the first n held-out edit pairs (default: all). */
  editPairs?: number;
  quiet?: boolean;
}

function optionsFromArgv(): EvalOptions {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(ROOT, 'docs', 'eval') },
      'per-prompt': { type: 'string', default: '64' },
      prompts: { type: 'string', default: '24' },
      steps: { type: 'string', default: '30' },
      'uncond-samples': { type: 'string', default: '512' },
      scales: { type: 'string', default: SCALES.join(',') },
    },
  });
  return {
    out: values.out!,
    perPrompt: Number(values['per-prompt']),
    prompts: Number(values.prompts),
    steps: Number(values.steps),
    uncondSamples: Number(values['uncond-samples']),
    scales: values.scales!.split(',').map(Number),
  };
}

/** Runs the whole evaluation and writes its files; returns the results object. */
export async function evaluate(opts: EvalOptions) {
  const { out, perPrompt, steps, scales } = opts;
  const nUncond = opts.uncondSamples;
  mkdirSync(out, { recursive: true });

  const ref = JSON.parse(readFileSync(join(MODELS, 'eval', 'reference_stats.json'), 'utf8')) as Reference;
  const ftPrompts = ref.prompts.filter((p) => p.domain === 'ft').slice(0, opts.prompts);

  const host: HostInfo = {
    modelRoots: [MODELS],
    outputDir: join(out, '.scratch', 'output'),
    inputDir: join(out, '.scratch', 'input'),
    tempDir: join(out, '.scratch', 'temp'),
    config: { executionProviders: ['cpu'] },
  };
  const registry = new Registry();
  registry.register(nodesPlugin, '@priorgraph/nodes');
  registry.register(evalPlugin, 'tools/eval');
  await nodesPlugin.setup?.(host, console as never);
  const executor = new Executor(registry, { host, cacheBytes: 256 << 20 });
  const classifier = await Classifier.load(ref, host);
  const real = RealFeatures.load();
  const dim = ref.prompts[0].mean.length;
  const kidScale = real.scale;
  const kidTo = (x: number[][], y: number[][]) => kid(x, y, dim, kidScale);
  let runs = 0;
  const run = async (d: WorkflowDocument, key: string): Promise<ImageBatch> => {
    const r = await executor.run(d, { promptId: `eval-${runs++}` });
    if (r.status !== 'success') throw new Error(`evaluation run ${key} failed: ${JSON.stringify(r.error)}`);
    const img = collected.get(key);
    if (!img) throw new Error(`evaluation run ${key} produced no images`);
    collected.delete(key);
    return img;
  };
  const t0 = performance.now();
  const log = (m: string) => {
    if (!opts.quiet) process.stderr.write(`[eval ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);
  };

  // 0. The noise floor: the same measurements with fresh REAL images of each prompt in place of the
  // generated ones, at the same sample size. A difference between methods smaller than the spread of
  // the floor is not evidence of anything.
  const floorFd: number[] = [];
  const floorKid: number[] = [];
  for (const p of ftPrompts) {
    const fresh = real.rows('prompt', p.caption, 0, 1, perPrompt);
    floorFd.push(fdTo(fresh, p));
    floorKid.push(kidTo(fresh, real.rows('prompt', p.caption, 1, 3)));
  }
  const floor = {
    real_per_prompt: Math.min(perPrompt, real.rows('prompt', ftPrompts[0].caption, 0).length),
    kid_feature_scale: kidScale,
    fd_per_prompt: meanCi(floorFd),
    kid_per_prompt: meanCi(floorKid),
  };
  log(`noise floor (real vs real): FD ${meanOf(floorFd).toFixed(2)} KID ${meanOf(floorKid).toExponential(2)}`);

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
        const img = await run(t2iDoc(p.caption, w, m.prior, 1000 + pi, perPrompt, steps, key), key);
        if (pi === gridPrompt) row.push(img);
        const cls = await classifier.classify(img);
        for (const c of cls) {
          total++;
          shapeOk += Number(c.shape === p.shape);
          colorOk += Number(c.color === p.color);
          correct += Number(c.shape === p.shape && c.color === p.color);
        }
        const feats = cls.map((c) => c.features);
        fds.push(fdTo(feats, p));
        kids.push(kidTo(feats, real.rows('prompt', p.caption, 1, 3)));
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
      log(
        `${m.id} w=${w}: acc ${(acc.p * 100).toFixed(1)}% FD ${meanOf(fds).toFixed(2)} border ${meanOf(borders).toFixed(3)}`,
      );
    }
    gridRows.push({ label: m.label, images: row });
  }
  writeFileSync(
    join(out, 'grid-t2i.png'),
    grid(
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
      const img = await run(uncondDoc(which, 5000 + k, n, steps, key), key);
      if (k === 0) imgs.push(img);
      feats.push(...(await classifier.classify(img)).map((c) => c.features));
      borders.push(...borderBrightness(img));
    }
    uncond[which] = {
      samples: feats.length,
      fd_to_base_data: fdTo(feats, ref.domains.base),
      fd_to_finetune_data: fdTo(feats, ref.domains.ft),
      kid_to_base_data: kidTo(feats, real.rows('domain', 'base', 1)),
      kid_to_finetune_data: kidTo(feats, real.rows('domain', 'ft', 1)),
      border_brightness: meanCi(borders),
    };
    uncondRows.push({ label: { base: 'BASE UNET', dit: 'DIT', t2i: 'FINE-TUNE (EMPTY)' }[which], images: imgs });
    log(`uncond ${which}: ${JSON.stringify(uncond[which])}`);
  }
  // the floor of this table: fresh real images of each domain, as many as the samples above
  for (const dom of ['base', 'ft'] as const) {
    const fresh = real.rows('domain', dom, 0, 1, nUncond);
    uncond[`real ${dom} data (floor)`] = {
      samples: fresh.length,
      fd_to_base_data: fdTo(fresh, ref.domains.base),
      fd_to_finetune_data: fdTo(fresh, ref.domains.ft),
      kid_to_base_data: kidTo(fresh, real.rows('domain', 'base', 1)),
      kid_to_finetune_data: kidTo(fresh, real.rows('domain', 'ft', 1)),
    };
  }
  writeFileSync(join(out, 'grid-uncond.png'), grid(uncondRows, ['UNCONDITIONAL SAMPLES'], 12));

  // 3. Editing, with and without the base as prior.
  const editSet = JSON.parse(readFileSync(join(MODELS, 'eval', 'edit_samples.json'), 'utf8')) as unknown;
  const pairs = (Array.isArray(editSet) ? editSet : ((editSet as { samples?: unknown[] }).samples ?? [])) as Array<
    Record<string, unknown>
  >;
  const edit: Record<string, unknown> = {};
  const editRows: Array<{ label: string; images: ImageBatch[] }> = [];
  const toImage = (b64: string): ImageBatch => {
    const bytes = Buffer.from(b64, 'base64');
    const data = new Float32Array(32 * 32 * 3);
    for (let ch = 0; ch < 3; ch++) for (let i = 0; i < 32 * 32; i++) data[i * 3 + ch] = bytes[ch * 1024 + i] / 255;
    return { data, shape: [1, 32, 32, 3] };
  };
  const byInstruction = new Map<string, Array<Record<string, unknown>>>();
  for (const p of pairs) {
    const k = String(p.instruction);
    byInstruction.set(k, [...(byInstruction.get(k) ?? []), p]);
  }
  for (const prior of [false, true]) {
    let instrOk = 0;
    let keepOk = 0;
    let total = 0;
    const borders: number[] = [];
    const shown: ImageBatch[] = [];
    for (const [ii, [instruction, group]] of [...byInstruction.entries()].entries()) {
      const srcs = group.map((g) => toImage(String(g.source)));
      const batch: ImageBatch = {
        data: new Float32Array(srcs.length * 32 * 32 * 3),
        shape: [srcs.length, 32, 32, 3],
      };
      srcs.forEach((s, i) => {
        batch.data.set(s.data, i * s.data.length);
      });
      const srcKey = `edit-src-${ii}`;
      sources.set(srcKey, batch);
      const key = `edit-${prior}-${ii}`;
      const img = await run(editDoc(instruction, srcKey, srcs.length, prior, 9000 + ii, steps, key), key);
      if (ii === 0) shown.push(batch, img);
      const cls = await classifier.classify(img);
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
    log(`edit prior=${prior}: ${JSON.stringify(edit[prior ? 'ip2p+base-prior' : 'ip2p'])}`);
  }
  writeFileSync(join(out, 'grid-edit.png'), grid(editRows, ['SOURCE', 'EDITED'], 6));

  // 4. Write the table and the plot.
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
  const results = {
    machine,
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
    seconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, 'results.md'), markdown(results, scales));

  const W = 1200;
  const H = 420;
  const rgb = new Uint8Array(W * H * 3).fill(255);
  const colors: Array<[number, number, number]> = [
    [200, 40, 40],
    [30, 100, 200],
    [20, 150, 60],
  ];
  const series = (f: (r: Record<string, unknown>) => { y: number; lo: number; hi: number }) =>
    METHODS.map((m, i) => ({
      label: m.label,
      color: colors[i],
      points: scales.map((w) => ({ x: w, ...f(t2i[`${m.id}@${w}`]) })),
    }));
  const ci = (v: unknown) => {
    const c = v as { mean: number; lo: number; hi: number };
    return { y: c.mean, lo: c.lo, hi: c.hi };
  };
  const acc = (v: unknown) => {
    const c = v as { p: number; lo: number; hi: number };
    return { y: c.p * 100, lo: c.lo * 100, hi: c.hi * 100 };
  };
  linePanel(
    rgb,
    W,
    H,
    { x: 0, y: 10, w: 400, h: 360 },
    'FD TO PROMPT (LOWER=BETTER)',
    series((r) => ci(r.fd_per_prompt)),
  );
  linePanel(
    rgb,
    W,
    H,
    { x: 400, y: 10, w: 400, h: 360 },
    'PROMPT ACCURACY %',
    series((r) => acc(r.prompt_accuracy)),
  );
  linePanel(
    rgb,
    W,
    H,
    { x: 800, y: 10, w: 400, h: 360 },
    'BORDER BRIGHTNESS',
    series((r) => ci(r.border_brightness)),
  );
  METHODS.forEach((m, i) => {
    const x = 60 + i * 380;
    for (let dy = 0; dy < 6; dy++) for (let dx = 0; dx < 16; dx++) rgb.set(colors[i], ((392 + dy) * W + x + dx) * 3);
    drawText(rgb, W, H, m.label, x + 22, 390, 2, [0, 0, 0]);
  });
  drawText(rgb, W, H, 'GUIDANCE SCALE W', 520, 376, 1, [80, 80, 80]);
  writeFileSync(join(out, 'plot.png'), encodePng(rgb, W, H, 3));
  log(`wrote ${out}/results.json, results.md, plot.png, grid-*.png`);
  return results;
}

function pct(v: unknown) {
  const c = v as { p: number; lo: number; hi: number };
  return `${(c.p * 100).toFixed(1)}% [${(c.lo * 100).toFixed(1)}, ${(c.hi * 100).toFixed(1)}]`;
}
function num(v: unknown, digits = 2) {
  const c = v as { mean: number; lo: number; hi: number };
  return `${c.mean.toFixed(digits)} ± ${((c.hi - c.lo) / 2).toFixed(digits)}`;
}

/** KID with the half-width of its interval */
function kidNum(v: unknown) {
  const c = v as { mean: number; lo: number; hi: number };
  return `${c.mean.toFixed(2)} ± ${((c.hi - c.lo) / 2).toFixed(2)}`;
}

export function markdown(r: Record<string, unknown>, scales: number[]): string {
  const t2i = r.t2i as Record<string, Record<string, unknown>>;
  const floor = r.noise_floor as Record<string, unknown>;
  const lines = [
    `Machine: ${r.machine}. Settings: ${JSON.stringify(r.settings)}.`,
    '',
    '| method | w | prompt accuracy [95% CI] | FD to the prompt’s real images (mean over prompts ± 95% CI) | KID (mean over prompts ± 95% CI) | border brightness (ft data ≈ 0.83, base ≈ 0.21) |',
    '|---|---|---|---|---|---|',
    `| real images (noise floor) | – | – | ${num(floor.fd_per_prompt)} | ${kidNum(floor.kid_per_prompt)} | – |`,
  ];
  for (const m of METHODS)
    for (const w of scales) {
      const x = t2i[`${m.id}@${w}`];
      if (!x) continue;
      lines.push(
        `| ${m.id} | ${w} | ${pct(x.prompt_accuracy)} | ${num(x.fd_per_prompt)} | ${kidNum(x.kid_per_prompt)} | ${num(x.border_brightness, 3)} |`,
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

if (import.meta.url === `file://${process.argv[1]}`) {
  evaluate(optionsFromArgv()).then(
    async () => {
      await stopRuntime();
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`evaluation failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
