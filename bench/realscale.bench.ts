/**
 * Real scale: full-size Stable Diffusion 1.5 parts (random weights, published configs) at 512×512
 * (64×64×4 latents), a few DDIM steps, every configuration in its own fresh process, one after the
 * other in one run (side by side), so that each has a clean peak RSS and the ratios share the
 * machine's load of the moment:
 *
 *   - sampling wall ÷ Σ session.run inside it (CFG, one UNet, batch-2 calls)        goal ≤ 1.02
 *   - prior swap (two UNets) ÷ CFG (one UNet, batch 2) wall                          goal ≤ 1.00
 *   - peak RSS ÷ Σ model file sizes (text encoder + UNets), CFG and prior swap, 4 GB budget  goal ≤ 1.3 + baseline
 *   - priorgraph ÷ diffusers' OnnxStableDiffusionPipeline (Python onnxruntime) and ÷ PyTorch eager, s/step
 *   - intra-op thread policy: threads per session when one or two models run at once
 *
 * The models are made by tools/bench/make_realscale.py (not committed; ~10 GB) into
 * PRIORGRAPH_REALSCALE_DIR (default ~/.cache/priorgraph/realscale) the first time, with the Python of
 * PRIORGRAPH_TOOLS_PYTHON (default python3; it needs torch, diffusers, transformers, onnx, onnxruntime).
 * `npm run bench` without names skips this benchmark; `npm run bench realscale` runs it.
 *
 *   - where one UNet's peak RSS goes (bare session: baseline, load, first call, later calls) under each
 *     session-option knob, with its s per call (`mem`: every variant of MEM_VARIANTS in realscale-mem.ts;
 *     `mem:<knob>[+<knob>…]` one; knobs: KNOBS there). These are not run without names.
 *
 *   - fused attention (com.microsoft MultiHeadAttention, made by tools/bench/fuse_attention.py into
 *     sd15-a-fused / sd15-b-fused): `fusedCheck` (its output vs the original's on one batch-2 input, and their
 *     batch-2 calls alternating in one process: s per call at the same load),
 *     `cfgFused`, `psFused` (CFG and prior swap on it), `memFused` (its bare-session breakdown).
 *
 *   node --import tsx bench/realscale.bench.ts [steps=3] [configuration names: cfg ps onnx torch psHalf seq cfgHalf fp16 cfgSpin fusedCheck cfgFused psFused floor floorFused pair pairFused mem mem:<knobs> memFused | report]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { ddimRun, machine, median, ort, ROOT } from '../packages/nodes/bench/common.ts';
import { cfgGuider } from '../packages/nodes/src/guiders/cfg.ts';
import { noGuidanceOptions } from '../packages/nodes/src/guiders/common.ts';
import { loadClip, loadDenoiserModel } from '../packages/nodes/src/models/load.ts';
import { encodeTexts } from '../packages/nodes/src/nodes/conditioning.ts';
import { createRng } from '../packages/nodes/src/rng.ts';
import { sessionOptions } from '../packages/nodes/src/runtime/options.ts';
import { modelBytes, RuntimePool } from '../packages/nodes/src/runtime/pool.ts';
import type { DenoiserValue, GuiderValue, LatentValue, ModelValue } from '../packages/nodes/src/types.ts';
import { MEM_VARIANTS, memBreakdown, memTable, type StoredMem } from './realscale-mem.ts';

const DIR = process.env.PRIORGRAPH_REALSCALE_DIR ?? join(homedir(), '.cache', 'priorgraph', 'realscale');
const PY = process.env.PRIORGRAPH_TOOLS_PYTHON ?? 'python3';
const PROMPT = 'a photograph of an astronaut riding a horse';
const GUIDANCE = 7.5;
const CORES = availableParallelism();
const A = join(DIR, 'sd15-a');
const B = join(DIR, 'sd15-b');
const A16 = join(DIR, 'sd15-a-fp16');
// the same UNets with fused attention (com.microsoft MultiHeadAttention): tools/bench/fuse_attention.py
const AF = join(DIR, 'sd15-a-fused');
const BF = join(DIR, 'sd15-b-fused');

/** What one measurement process reports (one JSON line on stdout). */
interface Result {
  mode: string;
  threads: number;
  /** s per denoising step (median over steps) */
  stepS: number;
  wallMs?: number;
  runMs?: number;
  loadS?: number;
  peakRssBytes?: number;
  baselineRssBytes?: number;
  /** VmRSS with the models loaded, and after the prompt was encoded (before sampling) */
  loadedRssBytes?: number;
  encodedRssBytes?: number;
  modelBytes?: number;
  error?: string;
  note?: string;
  /** fusedCheck: the fused UNet's output against the original's on the same batch-2 input */
  relL2?: number;
  maxAbs?: number;
  refMaxAbs?: number;
}

const rss = (field: 'VmHWM' | 'VmRSS') => {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`));
  return m ? Number(m[1]) * 1024 : 0;
};
const gb = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
const uptime = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(', ');

// --- one configuration, in a child process ------------------------------------------------------------
async function child(modeArg: string, threads: number, steps: number): Promise<Result> {
  // "<mode>-spin": the same run with onnxruntime's intra-op spinning on (off by default, runtime/options.ts)
  const allowSpinning = modeArg.endsWith('-spin');
  // "<mode>-fused": the same run on the fused-attention UNet(s)
  const fused = modeArg.includes('-fused');
  const mode = modeArg.replace(/-spin$/, '').replace(/-fused$/, '');
  // the runtime's own baseline: onnxruntime and one model worker on a tiny model
  {
    const p = new RuntimePool({ defaultThreads: threads });
    await p.load(join(ROOT, 'packages/nodes/test/fixtures/models/single/bench_unet.onnx'));
    await p.dispose();
  }
  const baselineRssBytes = rss('VmRSS');
  if (mode === 'seq') return sequentialCalls(threads, steps, baselineRssBytes);
  if (mode === 'check') return fusedCheck(threads, steps + 2);
  if (mode === 'floor') return swapFloor(threads, steps + 1, fused);

  const warnings: string[] = [];
  const log = {
    debug() {},
    info: (m: string) => process.stderr.write(`${m}\n`),
    warn: (m: string) => {
      warnings.push(m);
      process.stderr.write(`warning: ${m}\n`);
    },
    error() {},
  };
  // the default model memory budget (4096 MB): two 3.4 GB UNets exceed it
  const pool = new RuntimePool({ defaultThreads: threads, log, allowSpinning });
  const t0 = performance.now();
  // text encoder and UNet(s); the VAE decode (a fixed cost after the loop) is left out to save time
  const clip = await loadClip(pool, A, { owner: 'bench' });
  const model = await loadDenoiserModel(pool, mode === 'cfg-fp16' ? A16 : fused ? AF : A, { owner: 'bench' });
  const both = mode === 'priorswap' || mode === 'pair';
  const base = both ? await loadDenoiserModel(pool, fused ? BF : B, { owner: 'bench' }) : null;
  const loadS = (performance.now() - t0) / 1000;
  const files = [...new Set(pool.stats().loaded.map((l) => l.path))];
  const total = files.reduce((s, f) => s + modelBytes(f), 0);
  const loadedRssBytes = rss('VmRSS');

  const [cond, empty] = await encodeTexts(clip, [PROMPT, ''], pool);
  const encodedRssBytes = rss('VmRSS');
  const D = (m: ModelValue, c: typeof cond): DenoiserValue => ({ kind: 'DENOISER', model: m, cond: c, concat: null });
  const guide = (uncond: ModelValue) =>
    cfgGuider(mode, D(model, cond), D(uncond, empty), { cfg: GUIDANCE, ...noGuidanceOptions });
  const sample = async (guider: GuiderValue) => {
    const latent: LatentValue = { samples: new Float32Array(4 * 64 * 64), shape: [1, 4, 64, 64] };
    const stamps: number[] = [];
    const w0 = performance.now();
    const r = await ddimRun(pool, guider, steps, latent, {
      owner: 'bench',
      hooks: { onProgress: () => stamps.push(performance.now()) },
    });
    return { per: stamps.map((t, i) => t - (i ? stamps[i - 1] : w0)), wallMs: performance.now() - w0, runMs: r.runMs };
  };
  let pairNote: string | undefined;
  let run: Awaited<ReturnType<typeof sample>>;
  if (mode === 'pair') {
    // CFG and prior swap alternately in this one process (the order swapped every round), so that both
    // see the same machine; stepS = prior swap's median ÷ CFG's (a ratio, not seconds)
    const kinds = { cfg: guide(model), ps: guide(base as ModelValue) };
    const per: Record<'cfg' | 'ps', number[]> = { cfg: [], ps: [] };
    for (let i = 0; i < 3; i++) {
      for (const k of i % 2 ? (['ps', 'cfg'] as const) : (['cfg', 'ps'] as const)) {
        const r = await sample(kinds[k]);
        per[k].push(...(i === 0 ? r.per.slice(1) : r.per));
      }
    }
    const m = { cfg: median(per.cfg), ps: median(per.ps) };
    pairNote = `alternating, s/step medians: CFG ${(m.cfg / 1000).toFixed(2)} (${per.cfg.map((x) => (x / 1000).toFixed(1)).join(', ')}), prior swap ${(m.ps / 1000).toFixed(2)} (${per.ps.map((x) => (x / 1000).toFixed(1)).join(', ')}); prior swap ÷ CFG ${(m.ps / m.cfg).toFixed(3)}`;
    run = { per: [m.ps / m.cfg], wallMs: Number.NaN, runMs: Number.NaN };
  } else run = await sample(guide(base ?? model));
  const { per, wallMs } = run;
  const peakRssBytes = rss('VmHWM');
  await pool.dispose();
  return {
    mode: modeArg,
    threads,
    stepS: mode === 'pair' ? per[0] : median(per) / 1000,
    wallMs,
    runMs: run.runMs,
    loadS,
    peakRssBytes,
    baselineRssBytes,
    loadedRssBytes,
    encodedRssBytes,
    modelBytes: total,
    note:
      [pairNote, warnings.length ? `${warnings.length} budget warning(s)` : ''].filter(Boolean).join('; ') || undefined,
  };
}

/** The two UNets called one after the other (all threads each), bare sessions in one thread: the
 *  alternative to calling them concurrently. */
async function sequentialCalls(threads: number, steps: number, baselineRssBytes: number): Promise<Result> {
  const opts = sessionOptions(['cpu'], threads);
  const fa = join(A, 'unet', 'model.onnx');
  const fb = join(B, 'unet', 'model.onnx');
  const t0 = performance.now();
  const a = await ort.InferenceSession.create(fa, opts);
  const b = await ort.InferenceSession.create(fb, opts);
  const loadS = (performance.now() - t0) / 1000;
  const feeds = (seed: number) => ({
    sample: new ort.Tensor('float32', createRng(seed).randn(4 * 64 * 64), [1, 4, 64, 64]),
    timestep: new ort.Tensor('float32', Float32Array.from([500]), [1]),
    encoder_hidden_states: new ort.Tensor('float32', createRng(seed + 1).randn(77 * 768), [1, 77, 768]),
  });
  const per: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s0 = performance.now();
    await a.run(feeds(1));
    await b.run(feeds(3));
    per.push(performance.now() - s0);
  }
  const peakRssBytes = rss('VmHWM');
  await a.release();
  await b.release();
  return {
    mode: 'seq',
    threads,
    stepS: median(per) / 1000,
    loadS,
    peakRssBytes,
    baselineRssBytes,
    modelBytes: modelBytes(fa) + modelBytes(fb),
  };
}

/**
 * The floor under prior swap ÷ CFG with no engine around the calls: two bare sessions (UNets A and B, all
 * threads each) in one process, and per round, in an order that rotates, (1) one batch-2 call on A (what
 * CFG does per step), (2) a batch-1 call on A then one on B (prior swap, one after the other), (3) the
 * same two issued together (prior swap as the sampling loop issues it), (4) two batch-1 calls on A (the
 * same calls on one weight set: separates the cost of batching from that of streaming a second set of
 * weights). stepS = (3)'s median; `note`: every median (the first round, the warm-up, left out) and the
 * ratios to (1).
 */
async function swapFloor(threads: number, rounds: number, fused: boolean): Promise<Result> {
  const opts = sessionOptions(['cpu'], threads);
  const fa = join(fused ? AF : A, 'unet', 'model.onnx');
  const fb = join(fused ? BF : B, 'unet', 'model.onnx');
  const t0 = performance.now();
  const a = await ort.InferenceSession.create(fa, opts);
  const b = await ort.InferenceSession.create(fb, opts);
  const loadS = (performance.now() - t0) / 1000;
  const rng = createRng(11);
  const feeds = (n: number) => ({
    sample: new ort.Tensor('float32', rng.randn(n * 4 * 64 * 64), [n, 4, 64, 64]),
    timestep: new ort.Tensor('float32', Float32Array.from(n === 2 ? [500, 500] : [500]), [n]),
    encoder_hidden_states: new ort.Tensor('float32', rng.randn(n * 77 * 768), [n, 77, 768]),
  });
  const one = feeds(1);
  const two = feeds(2);
  const ways: Array<[string, () => Promise<unknown>]> = [
    ['batch-2 on A', () => a.run(two)],
    [
      'A then B, batch 1',
      async () => {
        await a.run(one);
        await b.run(one);
      },
    ],
    ['A and B together, batch 1', () => Promise.all([a.run(one), b.run(one)])],
    [
      'A then A, batch 1',
      async () => {
        await a.run(one);
        await a.run(one);
      },
    ],
  ];
  const secs: number[][] = ways.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < ways.length; j++) {
      const k = (j + r) % ways.length;
      const s0 = performance.now();
      await ways[k][1]();
      secs[k].push((performance.now() - s0) / 1000);
    }
  }
  const peakRssBytes = rss('VmHWM');
  await a.release();
  await b.release();
  const med = secs.map((s) => median(s.length > 1 ? s.slice(1) : s));
  return {
    mode: 'floor',
    threads,
    stepS: med[2],
    loadS,
    peakRssBytes,
    modelBytes: modelBytes(fa) + modelBytes(fb),
    note: ways
      .map(([name], k) => `${name} ${med[k].toFixed(2)} s (÷ batch-2 ${(med[k] / med[0]).toFixed(3)})`)
      .join('; '),
  };
}

/** The fused-attention UNet against the original, both sessions loaded in this process: the outputs of
 *  one batch-2 input (timesteps 999 and 21), then `calls` batch-2 calls of each, alternating (which goes
 *  first alternates too), so that both see the same machine load; stepS = the fused median ÷ 1,
 *  `note` both medians (the first call of each, its warm-up, left out). */
async function fusedCheck(threads: number, calls: number): Promise<Result> {
  const opts = sessionOptions(['cpu'], threads);
  const rng = createRng(5);
  const feeds = {
    sample: new ort.Tensor('float32', rng.randn(2 * 4 * 64 * 64), [2, 4, 64, 64]),
    timestep: new ort.Tensor('float32', Float32Array.from([999, 21]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', rng.randn(2 * 77 * 768), [2, 77, 768]),
  };
  const sessions = [
    await ort.InferenceSession.create(join(A, 'unet', 'model.onnx'), opts),
    await ort.InferenceSession.create(join(AF, 'unet', 'model.onnx'), opts),
  ];
  const outs: Float32Array[] = [];
  const secs: number[][] = [[], []];
  for (let i = 0; i < calls; i++) {
    for (const k of i % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      const r = await sessions[k].run(feeds);
      secs[k].push((performance.now() - t0) / 1000);
      if (i === 0) outs[k] = Float32Array.from(r[sessions[k].outputNames[0]].data as Float32Array);
    }
  }
  for (const s of sessions) await s.release();
  const [ref, got] = outs;
  if (ref.length !== got.length) throw new Error(`output sizes differ: ${ref.length} vs ${got.length}`);
  let d2 = 0;
  let r2 = 0;
  let maxAbs = 0;
  let refMaxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    d2 += d * d;
    r2 += ref[i] * ref[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    refMaxAbs = Math.max(refMaxAbs, Math.abs(ref[i]));
  }
  const later = (k: number) => median(secs[k].length > 1 ? secs[k].slice(1) : secs[k]);
  const list = (k: number) => secs[k].map((x) => x.toFixed(1)).join(', ');
  return {
    mode: 'check',
    threads,
    stepS: later(1),
    relL2: Math.sqrt(d2 / r2),
    maxAbs,
    refMaxAbs,
    note: `batch-2 calls alternating, s: original ${list(0)}; fused ${list(1)}; later calls' medians ${later(0).toFixed(1)} vs ${later(1).toFixed(1)} (fused ÷ original ${(later(1) / later(0)).toFixed(2)})`,
  };
}

// --- the driver -------------------------------------------------------------------------------------------
function runChild(cmd: string, args: string[], label: string): Result & { load: string } {
  const load = uptime();
  process.stderr.write(`[realscale] ${label} (load average ${load})...\n`);
  const r = spawnSync('nice', ['-n', '0', cmd, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    return { mode: label, threads: 0, stepS: Number.NaN, load, error: `exit ${r.status ?? r.signal}` };
  }
  return { ...(JSON.parse(line) as Result), load };
}

/** Runs a Python tool at nice 10 with the tools' Python; exits when it fails. */
function python(args: string[], what: string) {
  process.stderr.write(`[realscale] ${what} (${args[0]})...\n`);
  const r = spawnSync('nice', ['-n', '10', PY, join(ROOT, args[0]), ...args.slice(1)], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`[realscale] ${what} failed (exit ${r.status}); set PRIORGRAPH_TOOLS_PYTHON`);
    process.exit(1);
  }
}

/** Makes the models the named configurations need, when they are missing. */
function makeModels(names: string[]) {
  const all = !names.length;
  const need = [join(A, 'unet/model.onnx'), join(A, 'vae_decoder/model.onnx'), join(A, 'text_encoder/model.onnx')];
  if (all || names.some((n) => n.startsWith('ps') || n === 'seq' || n.startsWith('floor') || n.startsWith('pair')))
    need.push(join(B, 'unet/model.onnx'));
  if (all || names.includes('fp16')) need.push(join(A16, 'unet/model.onnx'));
  if (!need.every(existsSync))
    python(['tools/bench/make_realscale.py', '--out', DIR], `making the full-size models in ${DIR}`);
  // [source, fused copy]; sd15-b's UNet is sd15-a's file, so its fused copy is hard links to sd15-a-fused's
  const fuse: [string, string][] = [];
  if (all || names.some((n) => /fused/i.test(n))) fuse.push([A, AF]);
  if (all || names.includes('psFused') || names.includes('floorFused') || names.includes('pairFused'))
    fuse.push([B, BF]);
  const todo = fuse.filter(([, dst]) => !existsSync(join(dst, 'unet/model.onnx')));
  if (todo.length) python(['tools/bench/fuse_attention.py', ...todo.flat()], "fusing the UNets' attention");
}

async function main() {
  const steps = Number(process.argv[2] ?? 3);
  const names = process.argv.slice(3);
  const reportOnly = names.includes('report'); // print the table of the stored results
  if (!reportOnly) makeModels(names);
  const half = Math.max(1, Math.floor(CORES / 2));
  const self = (mode: string, t: number) => () =>
    runChild(
      process.execPath,
      ['--import', 'tsx', 'bench/realscale.bench.ts', '--child', mode, String(t), String(steps)],
      `${mode}, ${t} threads`,
    );
  const py = (mode: string) => () =>
    runChild(
      PY,
      [join(ROOT, 'tools/bench/realscale_reference.py'), '--mode', mode, '--dir', DIR, '--steps', String(steps)],
      `${mode} (Python)`,
    );
  // interleaved so that the ratios that matter come from neighbouring runs
  const configs: Record<string, () => Result & { load: string }> = {
    cfg: self('cfg', CORES),
    ps: self('priorswap', CORES),
    onnx: py('diffusers-onnx'),
    torch: py('torch'),
    psHalf: self('priorswap', half),
    seq: self('seq', CORES),
    cfgHalf: self('cfg', half),
    fp16: self('cfg-fp16', CORES),
    cfgSpin: self('cfg-spin', CORES),
    fusedCheck: self('check', CORES),
    cfgFused: self('cfg-fused', CORES),
    psFused: self('priorswap-fused', CORES),
    floor: self('floor', CORES),
    pair: self('pair', CORES),
    pairFused: self('pair-fused', CORES),
    floorFused: self('floor-fused', CORES),
  };
  // results are kept in DIR/results.json, so a run can be done in parts: `... 3 cfg ps` then `... 3 onnx`
  const store = join(DIR, 'results.json');
  const res: Record<string, Result & { load: string; at?: string }> = existsSync(store)
    ? JSON.parse(readFileSync(store, 'utf8'))
    : {};
  const wanted = names.filter((n) => n in configs);
  // `mem` (every variant of MEM_VARIANTS), `mem:<knob>[+<knob>…]`: the bare-session breakdown;
  // `memFused`: the same for the fused-attention UNet under the default options
  const memWanted = names.flatMap((n) =>
    n === 'mem'
      ? MEM_VARIANTS.map((v) => `mem:${v}`)
      : n.startsWith('mem:')
        ? [n]
        : n === 'memFused'
          ? ['memFused:default']
          : [],
  );
  const todo = reportOnly ? [] : wanted.length || memWanted.length ? [...wanted, ...memWanted] : Object.keys(configs);
  for (const name of todo) {
    const [kind, variant] = name.split(':');
    const run = variant
      ? () =>
          runChild(
            process.execPath,
            [
              '--import',
              'tsx',
              'bench/realscale.bench.ts',
              '--mem',
              variant,
              String(CORES),
              String(steps + 1),
              '2',
            ].concat(kind === 'memFused' ? ['fused'] : []),
            `bare ${kind === 'memFused' ? 'fused-attention ' : ''}UNet session, ${variant}`,
          )
      : configs[name];
    res[name] = { ...run(), at: new Date().toISOString() };
    writeFileSync(store, JSON.stringify(res, null, 1));
  }
  const missing = { mode: 'not measured', threads: 0, stepS: Number.NaN, load: 'n/a', error: 'not measured' };
  for (const name of Object.keys(configs)) res[name] ??= missing;
  console.log(report(res, steps, half).join('\n'));
}

const f = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const memRow = (r: Result) =>
  r.peakRssBytes && r.modelBytes
    ? `${gb(r.peakRssBytes)} for ${gb(r.modelBytes)} of models: **${f(r.peakRssBytes / r.modelBytes)}** (baseline ${gb(r.baselineRssBytes ?? 0)}; without it ${f((r.peakRssBytes - (r.baselineRssBytes ?? 0)) / r.modelBytes)}${r.loadedRssBytes ? `; ${gb(r.loadedRssBytes)} with the models loaded, before sampling` : ''})`
    : (r.error ?? 'n/a');

/** The markdown tables of the stored results. */
function report(res: Record<string, Result & { load: string; at?: string }>, steps: number, half: number): string[] {
  const out: string[] = [];
  out.push(
    `\n### Real scale: SD 1.5 UNet (859 M params, random weights), 512×512, DDIM ${steps} steps, CFG w=${GUIDANCE}`,
  );
  out.push(`\nMachine: ${machine()}, ${gb(totalmem())} RAM, shared with other jobs. Each row is a fresh process.\n`);
  out.push('| configuration | threads per session | s/step (median) | load s | load average at start | note |');
  out.push('|---|---|---|---|---|---|');
  const row = (name: string, r: Result & { load: string; at?: string }) =>
    out.push(
      `| ${name} | ${r.threads || 'n/a'} | ${f(r.stepS)} | ${f(r.loadS, 0)} | ${r.load}${r.at ? ` (${r.at.slice(11, 16)} UTC)` : ''} | ${r.error ?? r.note ?? ''} |`,
    );
  row('priorgraph CFG (one UNet, batch-2 calls)', res.cfg);
  row('priorgraph prior swap (two UNets concurrent)', res.ps);
  row('diffusers OnnxStableDiffusionPipeline (Python onnxruntime, its default session options)', res.onnx);
  row('PyTorch eager (diffusers UNet2DConditionModel, batch 2)', res.torch);
  row('priorgraph prior swap, half the threads each', res.psHalf);
  row('two UNets one after the other (bare sessions), all threads each', res.seq);
  row('priorgraph CFG, half the threads', res.cfgHalf);
  row('priorgraph CFG, intra-op spinning on', res.cfgSpin);
  row('priorgraph CFG, fp16 UNet', res.fp16);
  row('priorgraph CFG, fused-attention UNet (com.microsoft MultiHeadAttention)', res.cfgFused);
  row('priorgraph prior swap, fused-attention UNets', res.psFused);
  row('bare sessions A and B, the prior-swap floor (s/step: both batch-1 calls issued together)', res.floor);
  row('the same, fused-attention UNets', res.floorFused);
  row('priorgraph CFG and prior swap alternating in one process (s/step column: prior swap ÷ CFG)', res.pair);
  row('the same, fused-attention UNets', res.pairFused);
  row(
    'bare sessions, original and fused UNet loaded together, batch-2 calls alternating (s/step: the fused one)',
    res.fusedCheck,
  );
  const wall = (r: Result) => r.wallMs ?? Number.NaN;
  const fc = res.fusedCheck;
  out.push('\n| ratio | value | goal |');
  out.push('|---|---|---|');
  out.push(
    `| CFG sampling wall ÷ Σ session.run | **${f(wall(res.cfg) / (res.cfg.runMs ?? Number.NaN), 3)}** | ≤ 1.02 |`,
    `| prior swap ÷ CFG, sampling wall | **${f(wall(res.ps) / wall(res.cfg), 3)}** (s/step ${f(res.ps.stepS / res.cfg.stepS, 3)}) | ≤ 1.00 |`,
    `| peak RSS ÷ Σ model files, CFG | ${memRow(res.cfg)} | ≤ 1.3 + baseline |`,
    `| peak RSS ÷ Σ model files, prior swap | ${memRow(res.ps)} | ≤ 1.3 + baseline |`,
    `| priorgraph CFG ÷ diffusers ONNX pipeline, s/step | **${f(res.cfg.stepS / res.onnx.stepS, 3)}** | < 1 |`,
    `| priorgraph CFG ÷ PyTorch eager, s/step | **${f(res.cfg.stepS / res.torch.stepS, 3)}** | < 1 |`,
    `| thread policy, two models at once: concurrent ${half} thread(s) each ÷ concurrent ${CORES} each | ${f(res.psHalf.stepS / res.ps.stepS, 3)} | > 1 keeps the policy |`,
    `| thread policy, two models at once: one after the other, ${CORES} each ÷ concurrent ${CORES} each | ${f(res.seq.stepS / res.ps.stepS, 3)} | > 1 keeps the policy |`,
    `| thread policy, one model: ${half} thread(s) ÷ ${CORES} | ${f(res.cfgHalf.stepS / res.cfg.stepS, 3)} | > 1 keeps the policy |`,
    `| fp16 UNet ÷ fp32 UNet, CFG s/step | ${f(res.fp16.stepS / res.cfg.stepS, 3)} | |`,
    `| fused-attention UNet vs the original, one batch-2 call: relative L2 error (max abs difference; max abs output) | ${fc.relL2 === undefined ? (fc.error ?? 'n/a') : `${fc.relL2.toExponential(2)} (${fc.maxAbs?.toExponential(2)}; ${f(fc.refMaxAbs)})`} | |`,
    `| fused ÷ original UNet, CFG s/step | ${f(res.cfgFused.stepS / res.cfg.stepS, 3)} | |`,
    `| fused prior swap ÷ fused CFG, sampling wall | ${f(wall(res.psFused) / wall(res.cfgFused), 3)} (s/step ${f(res.psFused.stepS / res.cfgFused.stepS, 3)}) | ≤ 1.00 |`,
    `| peak RSS ÷ Σ model files, CFG, fused | ${memRow(res.cfgFused)} | ≤ 1.3 + baseline |`,
    `| peak RSS ÷ Σ model files, prior swap, fused | ${memRow(res.psFused)} | ≤ 1.3 + baseline |`,
  );
  out.push(...memTable(res as unknown as Record<string, StoredMem>));
  out.push(`\n(load average at the end: ${uptime()})`);
  return out;
}

if (process.argv[2] === '--mem') {
  const [variant, t, calls, batch, which] = process.argv.slice(3);
  try {
    const unet = join(which === 'fused' ? AF : A, 'unet', 'model.onnx');
    const r = await memBreakdown(unet, variant, Number(t), Number(calls), Number(batch ?? 2));
    console.log(JSON.stringify(r));
  } catch (e) {
    console.error((e as Error).stack);
    process.exit(1);
  }
  process.exit(0);
} else if (process.argv[2] === '--child') {
  const [mode, t, steps] = process.argv.slice(3);
  try {
    console.log(JSON.stringify(await child(mode, Number(t), Number(steps))));
  } catch (e) {
    console.error((e as Error).stack);
    process.exit(1);
  }
  process.exit(0);
} else {
  await main();
}
