/**
 * Where the peak RSS of one full-size UNet goes (part of realscale.bench.ts): one bare onnxruntime
 * session in this process (no worker, no sampler), measured in phases —
 *
 *   baseline   node + onnxruntime after a trivial session was created, run and released
 *   load       RSS once the UNet's session exists (weights and what loading keeps), and the peak
 *              while creating it (transient copies: graph optimization, pre-packing, read buffers)
 *   run        RSS / peak added by the first batch-2 call (activations, arena), then s per call
 *
 * under one variant of the session options (KNOBS), so that each knob's effect on memory and speed is
 * measured alone, each in a fresh process.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, ort, ROOT } from '../packages/nodes/bench/common.ts';
import { createRng } from '../packages/nodes/src/rng.ts';
import { sessionOptions } from '../packages/nodes/src/runtime/options.ts';
import { modelBytes } from '../packages/nodes/src/runtime/pool.ts';

type Opts = ReturnType<typeof sessionOptions>;
const withConfig = (o: Opts, entries: Record<string, string>): Opts => {
  const extra = structuredClone((o.extra ?? {}) as Record<string, unknown>);
  for (const [k, v] of Object.entries(entries)) {
    const parts = k.split('.');
    let at = extra;
    for (const p of parts.slice(0, -1)) {
      at[p] ??= {};
      at = at[p] as Record<string, unknown>;
    }
    at[parts[parts.length - 1]] = v;
  }
  return { ...o, extra };
};

/** Session-option variants, each applied to the runtime's default options (runtime/options.ts). */
export const KNOBS: Record<string, { describe: string; apply(o: Opts): Opts }> = {
  default: { describe: 'the runtime default (arena on, memory pattern off; runtime/options.ts)', apply: (o) => o },
  noPrepack: {
    describe: 'session.disable_prepacking = 1',
    apply: (o) => withConfig(o, { 'session.disable_prepacking': '1' }),
  },
  noArena: { describe: 'enableCpuMemArena: false', apply: (o) => ({ ...o, enableCpuMemArena: false }) },
  arena: { describe: 'enableCpuMemArena: true', apply: (o) => ({ ...o, enableCpuMemArena: true }) },
  pattern: {
    describe: "enableMemPattern: true (onnxruntime's default; priorgraph's until 3 Dec 2026)",
    apply: (o) => ({ ...o, enableMemPattern: true }),
  },
  noPattern: { describe: 'enableMemPattern: false', apply: (o) => ({ ...o, enableMemPattern: false }) },
  extended: {
    describe: "graphOptimizationLevel 'extended' (no NCHWc layout transform)",
    apply: (o) => ({ ...o, graphOptimizationLevel: 'extended' }),
  },
  all: { describe: "graphOptimizationLevel 'all'", apply: (o) => ({ ...o, graphOptimizationLevel: 'all' }) },
  basic: { describe: "graphOptimizationLevel 'basic'", apply: (o) => ({ ...o, graphOptimizationLevel: 'basic' }) },
  devAlloc: {
    describe: 'session.use_device_allocator_for_initializers = 1 (initializers outside the arena)',
    apply: (o) => withConfig(o, { 'session.use_device_allocator_for_initializers': '1' }),
  },
};

/** "noArena+noPattern": several knobs applied in order. */
export function knobOptions(variant: string, threads: number): Opts {
  let o = sessionOptions(['cpu'], threads);
  for (const k of variant.split('+')) {
    const knob = KNOBS[k];
    if (!knob) throw new Error(`unknown knob "${k}" (known: ${Object.keys(KNOBS).join(', ')})`);
    o = knob.apply(o);
  }
  return o;
}

export interface MemBreakdown {
  variant: string;
  /** batch items per call (2: one CFG step) */
  batch: number;
  /** VmRSS after a trivial session was created, run and released */
  baselineRss: number;
  /** VmRSS with the UNet's session created (and its anonymous / file-backed parts) */
  loadedRss: number;
  loadedAnon: number;
  loadedFile: number;
  /** VmHWM while creating the session */
  loadPeak: number;
  /** VmRSS after the first call, and VmHWM over the first call */
  runRss: number;
  runPeak: number;
  /** VmRSS and VmHWM after the last call (the later calls may allocate the memory pattern's block) */
  lastRss: number;
  peak: number;
  /** s of the first call and median s of the following calls (one batch-2 call = one CFG step) */
  firstS: number;
  callS: number;
  loadS: number;
  modelBytes: number;
}

const status = () => readFileSync('/proc/self/status', 'utf8');
const field = (s: string, f: string) => Number(s.match(new RegExp(`${f}:\\s+(\\d+) kB`))?.[1] ?? 0) * 1024;

/** One variant, in this (fresh) process: `calls` batch-2 calls at 64×64 latents. */
export async function memBreakdown(unet: string, variant: string, threads: number, calls: number, batch = 2) {
  const tiny = await ort.InferenceSession.create(
    join(ROOT, 'packages/nodes/test/fixtures/models/single/bench_unet.onnx'),
    knobOptions(variant, threads),
  );
  await tiny.release();
  const baselineRss = field(status(), 'VmRSS');
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(unet, knobOptions(variant, threads));
  const loadS = (performance.now() - t0) / 1000;
  const afterLoad = status();
  const rng = createRng(1);
  const feeds = {
    sample: new ort.Tensor('float32', rng.randn(batch * 4 * 64 * 64), [batch, 4, 64, 64]),
    timestep: new ort.Tensor('float32', new Float32Array(batch).fill(500), [batch]),
    encoder_hidden_states: new ort.Tensor('float32', rng.randn(batch * 77 * 768), [batch, 77, 768]),
  };
  const times: number[] = [];
  let afterRun = '';
  for (let i = 0; i < calls; i++) {
    const c0 = performance.now();
    await s.run(feeds);
    times.push((performance.now() - c0) / 1000);
    if (i === 0) afterRun = status();
  }
  const end = status();
  await s.release();
  return {
    variant,
    batch,
    baselineRss,
    loadedRss: field(afterLoad, 'VmRSS'),
    loadedAnon: field(afterLoad, 'RssAnon'),
    loadedFile: field(afterLoad, 'RssFile'),
    loadPeak: field(afterLoad, 'VmHWM'),
    runRss: field(afterRun, 'VmRSS'),
    runPeak: field(afterRun, 'VmHWM'),
    lastRss: field(end, 'VmRSS'),
    peak: field(end, 'VmHWM'),
    firstS: times[0],
    callS: times.length > 1 ? median(times.slice(1)) : times[0],
    loadS,
    modelBytes: modelBytes(unet),
  } satisfies MemBreakdown;
}

/** Bytes of one attention score tensor of SD 1.5's first transformer block at these latents (fp32):
 *  batch × heads × tokens², tokens = (latent side)². The unfused export keeps scores and softmax. */
export const attentionScoreBytes = (batch: number, heads: number, latentSide: number, bytesPer = 4) =>
  batch * heads * latentSide ** 4 * bytesPer;

/** The variants `realscale.bench.ts mem` measures, in this order (each a fresh process). */
export const MEM_VARIANTS = ['pattern', 'default', 'noArena', 'noPrepack', 'extended', 'devAlloc'];

export type StoredMem = MemBreakdown & { load: string; at?: string; error?: string };

/** The breakdown table (markdown) of the stored `mem:<variant>` results. */
export function memTable(res: Record<string, StoredMem | undefined>): string[] {
  const g = (b: number) => (b / 1024 ** 3).toFixed(2);
  const out = [
    '\n#### Where the peak RSS of one fp32 UNet goes (bare session, batch-2 calls at 64×64 latents)\n',
    '| session options | baseline GiB | + session (÷ file) | load peak GiB | + first call GiB | peak over all calls GiB (÷ file) | first call s | later calls s | load average at start |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [key, r] of Object.entries(res)) {
    const fused = key.startsWith('memFused:');
    if (!(key.startsWith('mem:') || fused) || !r) continue;
    const label = `${fused ? '**fused-attention UNet** (com.microsoft MultiHeadAttention), ' : ''}${(
      r.variant ?? key.split(':')[1]
    )
      .split('+')
      .map((k) => KNOBS[k]?.describe ?? k)
      .join(' + ')}`;
    if (r.error || !r.modelBytes) {
      out.push(`| ${label} | ${r.error ?? 'n/a'} | | | | | | | ${r.load} |`);
      continue;
    }
    const added = r.loadedRss - r.baselineRss;
    out.push(
      `| ${label}${r.batch !== 2 ? ` (batch ${r.batch})` : ''} | ${g(r.baselineRss)} | ${g(added)} (${(added / r.modelBytes).toFixed(2)}) | ${g(r.loadPeak)} | ${g(r.runPeak - r.loadedRss)} | ${g(r.peak)} (${(r.peak / r.modelBytes).toFixed(2)}) | ${r.firstS.toFixed(1)} | ${r.callS.toFixed(1)} | ${r.load} |`,
    );
  }
  const score = attentionScoreBytes(2, 8, 64);
  out.push(
    `\nSD 1.5's first self-attention at 64×64 latents has 4096 tokens: one fp32 score tensor (batch 2 × 8 heads × 4096²) is ${g(score)} GiB, and the unfused export (MatMul → Softmax → MatMul) holds the scores and the softmax output at once: ${g(2 * score)} GiB of the first call's activations are inherent to the export.`,
  );
  return out;
}
