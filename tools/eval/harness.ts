/**
 * What every evaluated system shares: the eval plugin (Source / Collect nodes), workflow builders,
 * the evaluation classifier, real-image features, statistics, grids, the plot's data, and the context
 * (engine, progress bar) each system's `evaluate` receives. One system per file in systems/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  defineNode,
  definePlugin,
  Executor,
  type HostInfo,
  Registry,
  type WorkflowDocument,
} from '../../packages/core/src/index.ts';
import { encodePng } from '../../packages/nodes/src/image-utils.ts';
import nodesPlugin, { getRuntime, type ModelHandle } from '../../packages/nodes/src/index.ts';
import { drawLabels, type Label, textWidth } from '../../packages/nodes/src/text.ts';
import { frechetDistance, kid, meanCov, wilson } from './stats.ts';

export { frechetDistance, kid, meanCov, wilson };
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MODELS = join(ROOT, 'models');

export interface ImageBatch {
  data: Float32Array; // [b, h, w, c] in [0, 1]
  shape: [number, number, number, number];
  /** video: frames per clip (the batch holds clips × frames) and their rate */
  frames?: number;
  fps?: number;
}
// ---------------------------------------------------------------- an evaluation plugin (the public API)
export const collected = new Map<string, ImageBatch>();
export const sources = new Map<string, ImageBatch>();

export const evalPlugin = definePlugin({
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
export type Inputs = Record<string, unknown>;
export const link = (node: string, output: string) => ({ node, output });
export function doc(nodes: Record<string, { type: string; inputs: Inputs }>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes)) {
    out[id] = { type: n.type.includes('.') ? n.type : `priorgraph.${n.type}`, version: 1, inputs: n.inputs };
  }
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}
export const guidance = { guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
export const scheduler = (model: string) => ({
  type: 'Scheduler',
  inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link(model, 'MODEL') },
});

/** The two guiders every comparison here uses, over Denoiser nodes `pos` (conditional), `neg` (the
 *  model's own unconditional branch) and `prior` (the prior's): standard CFG, or prior-swap CFG. */
export const cfgGuider = (w: number) => ({
  type: 'CFGGuider',
  inputs: { positive: link('pos', 'DENOISER'), negative: link('neg', 'DENOISER'), cfg: w, ...guidance },
});
export const priorSwapGuider = (w: number) => ({
  type: 'PriorSwapCFGGuider',
  inputs: { model: link('pos', 'DENOISER'), prior: link('prior', 'DENOISER'), cfg: w, ...guidance },
});
/** The prior node `prior`: the text-to-image model loaded as `load` with the empty prompt. */
export const nullTextPrior = () => ({
  empty: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: '' } },
  prior: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('empty', 'CONDITIONING') } },
});

/** The tail every evaluation graph shares: sample with node `guider` and `sched`, decode with `load`'s
 *  VAE, and hand the images back under `key`. */
export function sampleDecodeCollect(seed: number, n: number, steps: number, key: string) {
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

// ---------------------------------------------------------------- scoring
export interface RefStats {
  mean: number[];
  cov: number[][];
}
export interface RefPrompt extends RefStats {
  caption: string;
  shape: string;
  color: string;
  domain: 'ft' | 'base';
  border_brightness: { mean: number; std: number };
}
export interface Reference {
  prompts: RefPrompt[];
  domains: Record<string, RefStats & { border_brightness: { mean: number; std: number } }>;
  shapes: string[];
  colors: string[];
}

export class Classifier {
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

export const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Mean with a 95% t-interval (normal approximation beyond 30). */
export function meanCi(xs: number[]) {
  const m = meanOf(xs);
  if (xs.length < 2) return { mean: m, lo: m, hi: m };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  const t =
    xs.length > 30 ? 1.96 : ([12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23][xs.length - 2] ?? 2.1);
  const half = (t * sd) / Math.sqrt(xs.length);
  return { mean: m, lo: m - half, hi: m + half };
}
export function fdTo(rows: number[][], ref: RefStats) {
  const d = ref.mean.length;
  return frechetDistance(meanCov(rows, d), { mean: ref.mean, cov: ref.cov.flat() }, d);
}

/** Fresh real images' features (tools/eval/make_real_features.py): per fine-tune prompt and per domain,
 *  several independent sets. Set 0 measures the noise floor; the other sets are the KID reference. */
export interface RealBlock {
  kind: 'prompt' | 'domain';
  key: string;
  sets: number;
  per_set: number;
  dim: number;
  offset: number;
}
export class RealFeatures {
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

// ---------------------------------------------------------------- grids
/** Rows of image cells under column labels, row labels on the left, labels in the bundled font. */
export async function grid(rows: Array<{ label: string; images: ImageBatch[] }>, colLabels: string[], perCell: number) {
  const cell = 32;
  const size = 13;
  const widest = (ls: string[]) => Math.max(0, ...ls.map((l) => Math.ceil(textWidth(l, size))));
  const labelW = widest(rows.map((r) => r.label)) + 16;
  const headH = 24;
  // a column is as wide as its cells or its label, whichever is wider
  const cellW = Math.max(perCell * (cell + 2), widest(colLabels)) + 10;
  const W = labelW + colLabels.length * cellW;
  const H = headH + rows.length * (cell + 10);
  const rgb = new Uint8Array(W * H * 3).fill(255);
  const labels: Label[] = colLabels.map((text, j) => ({ text, x: labelW + j * cellW, y: 6, size }));
  rows.forEach((row, i) => {
    const y0 = headH + i * (cell + 10);
    labels.push({ text: row.label, x: 6, y: y0 + 11, size });
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
  return encodePng(await drawLabels(rgb, W, H, labels), W, H, 3);
}

// ---------------------------------------------------------------- curves (the plot's data)
/** One point of a metric against the guidance scale, with its 95% interval (lo = hi = mean without one). */
export interface CurvePoint {
  metric: string;
  method: string;
  scale: number;
  mean: number;
  lo: number;
  hi: number;
}
/** What a system plots: its points, its methods in legend order, and what its x axis is. */
export interface Curves {
  scale: string;
  methods: string[];
  points: CurvePoint[];
}

/** A value as results.json stores it as {mean, lo, hi}: a t-interval {mean, lo, hi}, a Wilson proportion
 *  {p, lo, hi} (as a percentage), a KID {value, lo, hi}, or a bare number; null when absent. */
export function asInterval(v: unknown): { mean: number; lo: number; hi: number } | null {
  if (typeof v === 'number') return { mean: v, lo: v, hi: v };
  if (!v || typeof v !== 'object') return null;
  const c = v as { mean?: number; p?: number; value?: number; lo: number; hi: number };
  if (typeof c.p === 'number') return { mean: c.p * 100, lo: c.lo * 100, hi: c.hi * 100 };
  const mean = c.mean ?? c.value;
  return typeof mean === 'number' ? { mean, lo: c.lo, hi: c.hi } : null;
}

/** The points one method at one scale contributes: metric title → its value in results.json. */
export function curvePoints(method: string, scale: number, metrics: Record<string, unknown>): CurvePoint[] {
  return Object.entries(metrics).flatMap(([metric, v]) => {
    const c = asInterval(v);
    return c ? [{ metric, method, scale, ...c }] : [];
  });
}

/** Curves from results rows keyed "<method id> γ=<scale>", where "cond-only γ=1" (the conditional
 *  prediction alone, which every guidance form reduces to at γ = 1) starts every method's curve.
 *  `metrics`: plot title → the row's field. */
export function rowCurves(
  rows: Record<string, Record<string, unknown>>,
  methods: ReadonlyArray<{ id: string; label: string }>,
  metrics: Record<string, string>,
): CurvePoint[] {
  return Object.entries(rows).flatMap(([key, row]) => {
    const m = /^(\S+) γ=(\S+)$/.exec(key);
    if (!m) return [];
    const scale = Number(m[2]);
    const shown = m[1] === 'cond-only' ? methods : methods.filter((x) => x.id === m[1]);
    const values = Object.fromEntries(Object.entries(metrics).map(([title, field]) => [title, row[field]]));
    return shown.flatMap((x) => curvePoints(x.label, scale, values));
  });
}

// ---------------------------------------------------------------- systems and their context
export interface EvalOptions {
  /** where results, grids and the plot go */
  out: string;
  /** DDIM steps (the shapes system's default; other systems state their own) */
  steps: number;
  /** a fast smoke configuration of every system (tests) */
  quick: boolean;
  quiet?: boolean;
}

export interface EvalContext {
  opts: EvalOptions;
  /** runs a graph through the real engine; returns what eval.Collect received under `key` */
  run(d: WorkflowDocument, key: string): Promise<ImageBatch>;
  /** what node eval.Source {key} outputs */
  setSource(key: string, img: ImageBatch): void;
  classifier: Classifier;
  ref: Reference;
  real: RealFeatures;
  /** the node library's ONNX worker pool, for models the graphs do not load */
  runtime: { load(path: string): Promise<ModelHandle> };
  /** KID at the shared feature scale (the real fine-tune features' typical standard deviation) */
  kid(x: number[][], y: number[][]): number;
  /** one call per planned workflow run: drives the progress bar */
  tick(label: string): void;
  log(msg: string): void;
}

export interface EvalSystem {
  /** the key in results.json and the name for --only */
  id: string;
  title: string;
  /** how many tick() calls evaluate() will make */
  plannedRuns(quick: boolean): number;
  evaluate(ctx: EvalContext): Promise<{ results: Record<string, unknown>; markdown: string }>;
  /** its metrics against the guidance scale, read back from what evaluate() returned as results (the
   *  plot: plot.ts draws it from results.json alone) */
  curves(results: Record<string, unknown>): Curves;
}

/** A one-line progress bar on stderr: done/total runs, elapsed and remaining time. */
export class Progress {
  done = 0;
  private readonly t0 = performance.now();
  constructor(
    readonly total: number,
    private readonly quiet = false,
  ) {}
  tick(label: string) {
    this.done++;
    if (this.quiet) return;
    const s = (performance.now() - this.t0) / 1000;
    const frac = Math.min(1, this.done / Math.max(1, this.total));
    const eta = frac > 0 ? (s / frac) * (1 - frac) : 0;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    const clock = (x: number) => `${Math.floor(x / 60)}m${String(Math.round(x % 60)).padStart(2, '0')}s`;
    const line = `[${bar}] ${this.done}/${this.total} ${clock(s)} elapsed, ~${clock(eta)} left  ${label}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line.slice(0, 150).padEnd(150)}` : `${line}\n`);
  }
  finish() {
    if (!this.quiet && process.stderr.isTTY) process.stderr.write('\n');
  }
}

/** The engine, models and scorers every system uses, set up once per evaluation. */
export async function createContext(opts: EvalOptions, progress: Progress): Promise<EvalContext> {
  const host: HostInfo = {
    modelRoots: [MODELS],
    outputDir: join(opts.out, '.scratch', 'output'),
    inputDir: join(opts.out, '.scratch', 'input'),
    tempDir: join(opts.out, '.scratch', 'temp'),
    config: { executionProviders: ['cpu'] },
  };
  const registry = new Registry();
  registry.register(nodesPlugin, '@priorgraph/nodes');
  registry.register(evalPlugin, 'tools/eval');
  await nodesPlugin.setup?.(host, console as never);
  const executor = new Executor(registry, { host, cacheBytes: 256 << 20 });
  const ref = JSON.parse(readFileSync(join(MODELS, 'eval', 'reference_stats.json'), 'utf8')) as Reference;
  const classifier = await Classifier.load(ref, host);
  const real = RealFeatures.load();
  const dim = ref.prompts[0].mean.length;
  const kidScale = real.scale;
  const t0 = performance.now();
  let runs = 0;
  return {
    opts,
    classifier,
    ref,
    real,
    runtime: getRuntime(host),
    kid: (x, y) => kid(x, y, dim, kidScale),
    setSource: (key, img) => {
      sources.set(key, img);
    },
    async run(d, key) {
      const r = await executor.run(d, { promptId: `eval-${runs++}` });
      if (r.status !== 'success') throw new Error(`evaluation run ${key} failed: ${JSON.stringify(r.error)}`);
      const img = collected.get(key);
      if (!img) throw new Error(`evaluation run ${key} produced no images`);
      collected.delete(key);
      return img;
    },
    tick: (label) => progress.tick(label),
    log: (m) => {
      if (!opts.quiet && !process.stderr.isTTY)
        process.stderr.write(`[eval ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);
    },
  };
}

// ---------------------------------------------------------------- formatting
export function pct(v: unknown) {
  const c = v as { p: number; lo: number; hi: number };
  return `${(c.p * 100).toFixed(1)}% [${(c.lo * 100).toFixed(1)}, ${(c.hi * 100).toFixed(1)}]`;
}
/** mean ± the half-width of its 95% interval */
export function num(v: unknown, digits = 2) {
  const c = v as { mean: number; lo: number; hi: number };
  return `${c.mean.toFixed(digits)} ± ${((c.hi - c.lo) / 2).toFixed(digits)}`;
}
