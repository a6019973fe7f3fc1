/**
 * Prior-swap CFG ÷ standard CFG wall time, same models, steps and latent size (goal ≤ 1.00), on
 * sessions with all intra-op threads and on 1-thread sessions (what runtime/pool.ts gives models under
 * 64 MB by default). Standard CFG: one model, cond+uncond in ONE batch-2 call. Prior swap: fine-tuned
 * (cond) and base (uncond) models called concurrently (the loop in the fine-tuned model's worker, the
 * base through a shared channel), each session in its own worker (one session per model file;
 * bench/realscale.bench.ts measures the thread alternatives at full size). For reference, the paper's
 * way (the two models one after the other, all threads each) is timed with bare in-process calls.
 *
 *   node --import tsx bench/priorswap.bench.ts [steps=30] [rounds=5]
 */
import { availableParallelism, loadavg } from 'node:os';
import {
  bareFeeds,
  bareSession,
  benchSets,
  conditioning,
  ddimRun,
  loadModel,
  machine,
  median,
  timeCalls,
} from '../packages/nodes/bench/common.ts';
import { cfgGuider } from '../packages/nodes/src/guiders/cfg.ts';
import { noGuidanceOptions } from '../packages/nodes/src/guiders/common.ts';
import { stopRuntime } from '../packages/nodes/src/runtime/index.ts';
import { RuntimePool } from '../packages/nodes/src/runtime/pool.ts';
import type { DenoiserValue, GuiderValue, LatentValue } from '../packages/nodes/src/types.ts';

const steps = Number(process.argv[2] ?? 30);
const rounds = Number(process.argv[3] ?? 5);
const threads = availableParallelism();
const rows: string[] = [];

for (const set of benchSets()) {
  const pool = new RuntimePool({ defaultThreads: threads });
  const ft = await loadModel(pool, set.ft);
  const base = await loadModel(pool, set.base);
  const cond = await conditioning(pool, set, ft);
  const empty = cond; // same shapes; the content does not change the cost
  const h = ft.sig.height ?? set.latent[0];
  const w = ft.sig.width ?? set.latent[1];
  const latent: LatentValue = {
    samples: new Float32Array(ft.sig.latentChannels * h * w),
    shape: [1, ft.sig.latentChannels, h, w],
  };
  const D = (m: typeof ft, c: typeof cond): DenoiserValue => ({
    kind: 'DENOISER',
    model: m,
    cond: m.sig.encoderHiddenStatesName ? c : null,
    concat: null,
  });
  const params = { cfg: 5, ...noGuidanceOptions };
  const cfg: GuiderValue = cfgGuider('cfg', D(ft, cond), D(ft, empty), params);
  const swap: GuiderValue = cfgGuider('ps', D(ft, cond), D(base, empty), params);
  // the same on 1-thread sessions (pool1): the default for models under 64 MB (runtime/pool.ts threadsFor)
  const pool1 = new RuntimePool({ defaultThreads: 1 });
  const ft1 = await loadModel(pool1, set.ft);
  const base1 = await loadModel(pool1, set.base);
  const cfg1: GuiderValue = cfgGuider('cfg', D(ft1, cond), D(ft1, empty), params);
  const swap1: GuiderValue = cfgGuider('ps', D(ft1, cond), D(base1, empty), params);
  const run = (g: GuiderValue, p: RuntimePool = pool) => ddimRun(p, g, steps, latent);

  const bareFt = await bareSession(ft.path, threads);
  const bareBase = await bareSession(base.path, threads);
  const fFt1 = bareFeeds(ft, 1, h, w, cond);
  const fBase1 = bareFeeds(base, 1, h, w, cond);
  const fFt2 = bareFeeds(ft, 2, h, w, cond);

  for (let i = 0; i < 3; i++) {
    await run(cfg); // warm-up: sessions, JIT of the loops in the workers
    await run(swap);
    await run(cfg1, pool1);
    await run(swap1, pool1);
  }
  const tc: number[] = [];
  const tc1: number[] = [];
  const ts1: number[] = [];
  const ts: number[] = [];
  const seqRatio: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    await run(cfg);
    tc.push(performance.now() - t0);
    t0 = performance.now();
    await run(swap);
    ts.push(performance.now() - t0);
    t0 = performance.now();
    await run(cfg1, pool1);
    tc1.push(performance.now() - t0);
    t0 = performance.now();
    await run(swap1, pool1);
    ts1.push(performance.now() - t0);
    const b2 = await timeCalls(bareFt, fFt2, steps);
    const seq = (await timeCalls(bareFt, fFt1, steps)) + (await timeCalls(bareBase, fBase1, steps));
    seqRatio.push(seq / b2);
  }
  rows.push(
    `| ${set.name} | ${steps} | ${median(tc).toFixed(1)} ms | ${median(ts).toFixed(1)} ms | **${(median(ts) / median(tc)).toFixed(3)}** | ${median(tc1).toFixed(1)} ms | ${(median(ts) / median(tc1)).toFixed(3)} | ${median(ts1).toFixed(1)} ms | ${(median(ts1) / median(tc1)).toFixed(3)} | ${median(seqRatio).toFixed(3)} |`,
  );
  await bareFt.release();
  await bareBase.release();
  await pool.dispose();
  await pool1.dispose();
}
await stopRuntime();

console.log(`\n### Prior-swap CFG vs standard CFG (DDIM, batch 1, median of ${rounds} rounds, interleaved)\n`);
console.log(`Machine: ${machine()}\n`);
console.log(
  `| models | steps | standard CFG (1 model, batch-2 call, ${threads} threads) | prior swap (2 models concurrent, ${threads} threads each) | prior swap ÷ CFG (goal ≤ 1.00) | CFG on a 1-thread session | prior swap ÷ 1-thread CFG | prior swap, 1-thread sessions | ÷ 1-thread CFG (the default policy for models < 64 MB) | sequential two-model calls ÷ batch-2 call (bare, the paper's way) |`,
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(
  `\n(load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')} — other jobs share these cores)`,
);
