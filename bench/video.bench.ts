/**
 * The video pair (models/shapes-video-i2v, models/shapes-video-base): two-condition guidance (γ_T 7.5, γ_I 1.5)
 * with prior swap ÷ the same guidance with the fine-tune's own ∅, wall time side by side (interleaved rounds,
 * same latents, steps, seed), and the peak RSS of a process that holds only the fine-tune against one that
 * holds both models (each measured in a fresh child process running the same sampling).
 * Standard: ε(c1,c2), ε(c1,∅), ε(∅,∅) — one batch-3 call of the 8-channel model.
 * Prior swap: ε(c1,c2), ε(c1,∅) in one batch-2 call of the fine-tune, ε(∅) from the base concurrently.
 *
 *   node --import tsx bench/video.bench.ts [steps=25] [rounds=5] [frames=8]
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conditioning, ddimRun, loadModel, machine, median, ROOT } from '../packages/nodes/bench/common.ts';
import { guider, noGuidanceOptions } from '../packages/nodes/src/guiders/common.ts';
import { twoConditionMethod } from '../packages/nodes/src/guiders/ip2p.ts';
import { stopRuntime } from '../packages/nodes/src/runtime/index.ts';
import { RuntimePool } from '../packages/nodes/src/runtime/pool.ts';
import type { DenoiserValue, GuiderValue, LatentValue } from '../packages/nodes/src/types.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const steps = Number(args[0] ?? 25);
const rounds = Number(args[1] ?? 5);
const frames = Number(args[2] ?? 8);
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7) as 'cfg' | 'swap' | undefined;
const threads = availableParallelism();
const M = (p: string) => join(process.env.PRIORGRAPH_DEMO_MODELS ?? join(ROOT, 'models'), p);

const pool = new RuntimePool({ defaultThreads: threads });
const i2v = await loadModel(pool, M('shapes-video-i2v'));
const set = {
  name: 'video',
  ft: M('shapes-video-i2v'),
  base: M('shapes-video-base'),
  clipFolder: M('shapes-t2i'),
  latent: [8, 8] as [number, number],
};
const text = await conditioning(pool, set, i2v);
const empty = text; // same shapes; the content does not change the cost
const [h, w] = [i2v.sig.height ?? 8, i2v.sig.width ?? 8];
const latent: LatentValue = { samples: new Float32Array(4 * frames * h * w), shape: [1, 4, frames, h, w] };
const image: LatentValue = {
  samples: Float32Array.from({ length: 4 * h * w }, (_, i) => Math.sin(i)),
  shape: [1, 4, h, w],
  scalingFactor: 1,
};
const D = (m: typeof i2v, cond: typeof text, concat: LatentValue | null): DenoiserValue => ({
  kind: 'DENOISER',
  model: m,
  cond,
  concat,
});
const params = { text_scale: 7.5, image_scale: 1.5, ...noGuidanceOptions };
const make = async (which: 'cfg' | 'swap'): Promise<GuiderValue> => {
  const uncond = which === 'swap' ? D(await loadModel(pool, M('shapes-video-base')), empty, null) : D(i2v, empty, null);
  return guider(twoConditionMethod, which, [D(i2v, text, image), D(i2v, empty, image), uncond], params);
};
const run = (g: GuiderValue) => ddimRun(pool, g, steps, latent);

if (only) {
  // child: one configuration, then report this process's peak RSS
  const g = await make(only);
  for (let i = 0; i < 3; i++) await run(g);
  await stopRuntime();
  await pool.dispose();
  process.stdout.write(`${JSON.stringify({ maxRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  process.exit(0);
}

const cfg = await make('cfg');
const swap = await make('swap');
for (let i = 0; i < 3; i++) {
  await run(cfg);
  await run(swap);
}
const tc: number[] = [];
const ts: number[] = [];
for (let r = 0; r < rounds; r++) {
  let t0 = performance.now();
  await run(cfg);
  tc.push(performance.now() - t0);
  t0 = performance.now();
  await run(swap);
  ts.push(performance.now() - t0);
}
await pool.dispose();
await stopRuntime();

const rss = (which: 'cfg' | 'swap') => {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), String(steps), '1', String(frames), `--only=${which}`],
    { encoding: 'utf8', cwd: ROOT },
  );
  return (JSON.parse(out.trim().split('\n').pop() ?? '{}') as { maxRssMB: number }).maxRssMB;
};
const rssCfg = rss('cfg');
const rssSwap = rss('swap');

console.log(
  `\n### Video: two-condition guidance, prior swap vs own ∅ (DDIM ${steps}, 1 clip × ${frames} frames of 8×8×4 latents, median of ${rounds} interleaved rounds)\n`,
);
console.log(`Machine: ${machine()}\n`);
console.log(
  '| models | own ∅ (i2v, one batch-3 call) | prior swap (i2v batch-2 + base, concurrent) | prior swap ÷ own ∅ | peak RSS, i2v only | peak RSS, i2v + base resident | RSS ratio |',
);
console.log('|---|---|---|---|---|---|---|');
console.log(
  `| shapes-video-i2v + shapes-video-base | ${median(tc).toFixed(1)} ms | ${median(ts).toFixed(1)} ms | **${(median(ts) / median(tc)).toFixed(3)}** | ${rssCfg.toFixed(0)} MB | ${rssSwap.toFixed(0)} MB | ${(rssSwap / rssCfg).toFixed(2)} |`,
);
console.log(
  `\n(${threads} threads per session; load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')} — other jobs share these cores)`,
);
