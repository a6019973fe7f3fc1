/**
 * Branch against base in one process: this checkout's executor and another checkout's (its
 * packages/core/src, loaded side by side), on executor.bench's graphs, in rounds that interleave
 * the two and the two sizes (which goes first alternates). On a shared machine the CPU a run gets
 * per second moves by up to 2× within seconds (other tenants; 3 Dec, helper execlin4: one process
 * timing 40 cold 1k runs per block read 1.7–3.1 µs/node block to block), so two benches run one after
 * the other compare load as much as code; here both sides meet the same load. Prints the medians
 * per side and the median of the per-round ratios branch/base.
 *
 *   node --import tsx bench/executor-ab.bench.ts <base checkout> [rounds, default 15] [body type, default bench.SyncNode]
 *
 * The base checkout needs its dependencies installed; its executor runs with this checkout's
 * registry and node definitions (the Registry and definition shapes must not differ).
 *
 * Run an A/A first (a base checkout of the same commit): on 3 Dec 18:50 (load ≈ 1.3) two A/A runs read
 * branch ÷ base 1.13–1.18 cold at 1k and 0.91–0.96 cached at 10k — the two sides are not alike (which
 * module was loaded first, where each lands in memory), so a difference smaller than that is not shown.
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Executor } from '../packages/core/src/index.js';
import { host, makeDag, registry } from './executor-dag.js';

type ExecutorClass = typeof Executor;
const base = process.argv[2];
if (!base) throw new Error('usage: executor-ab.bench.ts <base checkout> [rounds] [body type]');
const rounds = Number(process.argv[3] ?? 15);
const type = process.argv[4] ?? 'bench.SyncNode';
const baseCore = await import(pathToFileURL(path.resolve(base, 'packages/core/src/index.ts')).href);
const sides: Record<'base' | 'branch', ExecutorClass> = { base: baseCore.Executor, branch: Executor };

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const docs = new Map([1_000, 2_000, 10_000].map((n) => [n, makeDag(n, type)]));
/** samples[`${side} ${n} ${run}`]: per round, the median CPU µs/node of its repetitions */
const samples = new Map<string, number[]>();

/** One side at size n: 10,000 / n fresh executors, each a cold run then a cached re-run. */
async function side(name: 'base' | 'branch', n: number, record: boolean): Promise<void> {
  const cold: number[] = [];
  const cached: number[] = [];
  for (let r = 0; r < Math.max(1, Math.round(10_000 / n)); r++) {
    const ex = new sides[name](registry, { host });
    for (const into of [cold, cached]) {
      const c = cpuMs();
      const res = await ex.run(docs.get(n)!, { promptId: `${name}-${r}` });
      into.push(((cpuMs() - c) * 1000) / n);
      if (res.status !== 'success') throw new Error(`${name}: run failed: ${res.error?.message}`);
    }
  }
  if (!record) return;
  for (const [run, xs] of [
    ['cold', cold],
    ['cached', cached],
  ] as const) {
    const k = `${name} ${n} ${run}`;
    samples.set(k, [...(samples.get(k) ?? []), median(xs)]);
  }
}

console.log(`${os.cpus()[0]?.model}, Node ${process.version}, ${type}; load at start ${os.loadavg()[0].toFixed(1)}`);
for (let i = 0; i < 3; i++) for (const s of ['base', 'branch'] as const) await side(s, 2_000, false);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? (['branch', 'base'] as const) : (['base', 'branch'] as const);
  for (const n of r % 2 === 0 ? [10_000, 1_000] : [1_000, 10_000]) for (const s of order) await side(s, n, true);
}
const get = (k: string) => samples.get(k)!;
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
console.log('| run | side | CPU µs/node @ 1,000 | @ 10,000 | growth 10k/1k (median of rounds) |');
console.log('|---|---|---|---|---|');
for (const run of ['cold', 'cached']) {
  for (const s of ['base', 'branch']) {
    const [a, b] = [get(`${s} 1000 ${run}`), get(`${s} 10000 ${run}`)];
    console.log(`| ${run} | ${s} | ${median(a).toFixed(2)} | ${median(b).toFixed(2)} | ${ratio(b, a).toFixed(2)} |`);
  }
  const at = (n: number) => ratio(get(`branch ${n} ${run}`), get(`base ${n} ${run}`)).toFixed(3);
  console.log(`| ${run} | branch/base, per round | ${at(1000)} | ${at(10000)} | |`);
}
console.log(`${rounds} rounds; load at end ${os.loadavg()[0].toFixed(1)}`);
