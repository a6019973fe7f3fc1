/**
 * Executor overhead per node on DAGs of trivial nodes (1,000 and 10,000 nodes): a cold run (empty
 * cache: validate, plan, hash, run every node) and a fully cached re-run (validate, plan, hash, serve
 * from cache), for sync and async node bodies. Prints µs per node and the 10k/1k growth ratio,
 * measured side by side in one process. Goal: ≤ 50 µs per node, linear (ratio ≈ 1).
 *
 *   node --import tsx bench/executor.bench.ts
 *
 * 3 Dec 15:19 UTC, AMD EPYC 2 cores, load 6.1–6.6 (shared), 8 alternating pairs vs main 2462689, CPU
 * µs/node, medians: sync cold 1k 2.60 → 2.35, 10k 10.20 → 5.00 (growth 3.72 → 2.23); sync cached
 * 10k 5.85 → 4.20 (growth 2.87 → 2.05); async cold 10k 8.40 → 5.00 (growth 2.95 → 2.37). (15:15, load
 * 6–9, the same without the sharded output cache: sync cold 10k 8.65 → 4.85, growth 2.80 → 2.12.) The
 * change (helper execlin2): one resolved graph per run, by index (core/src/graph.ts), and no
 * graph-sized Map or plain array per run (executor-gc.bench.ts's header says why those cost more at 10k).
 * 3 Dec 15:40 UTC, load 3.1–3.8, 8 alternating pairs vs main 0d729e5 (helper execlin3: the parsed
 * document's node dictionary built only when read, which a run never does): medians at 10k, sync cold
 * 4.65 → 3.60 (growth 1.94 → 1.34), sync cached 4.00 → 3.05 (2.42 → 1.88), async cold 4.65 → 2.90
 * (2.35 → 1.48), async cached 3.35 → 2.45 (2.23 → 1.74). At 1k sync cold 2.25 → 2.55, higher in 6 of 8
 * pairs (executor-gc's 1k cold rows, 3 pairs: 2.03–2.54 → 2.44–2.67); the other 1k rows within noise.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Executor } from '../packages/core/src/index.js';
import { host, makeDag, registry } from './executor-dag.js';

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

async function measure(
  n: number,
  type: string,
  reps: number,
): Promise<{ cold: number; cached: number; coldWall: number; cachedWall: number }> {
  const doc = makeDag(n, type);
  const cold: number[] = [];
  const cached: number[] = [];
  const coldWall: number[] = [];
  const cachedWall: number[] = [];
  for (let r = 0; r < reps; r++) {
    const ex = new Executor(registry, { host });
    let c = process.cpuUsage();
    let t = performance.now();
    const first = await ex.run(doc, { promptId: `cold-${r}` });
    coldWall.push(performance.now() - t);
    cold.push(cpuMs(c));
    if (first.status !== 'success' || first.executed.length !== n) throw new Error(`cold run failed: ${first.status}`);
    c = process.cpuUsage();
    t = performance.now();
    const again = await ex.run(doc, { promptId: `warm-${r}` });
    cachedWall.push(performance.now() - t);
    cached.push(cpuMs(c));
    if (again.executed.length !== 0) throw new Error('cached re-run executed nodes');
  }
  // CPU time (user + system) of this process is the primary measure: the machine is shared, and
  // wall time then mostly measures the other processes. Median of the repetitions; wall-clock
  // median printed alongside.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    cold: (median(cold) * 1000) / n,
    cached: (median(cached) * 1000) / n,
    coldWall: (median(coldWall) * 1000) / n,
    cachedWall: (median(cachedWall) * 1000) / n,
  };
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `Machine: ${cpu}, ${os.cpus().length} cores, Node ${process.version}; load average at start ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log('');
// Warm up the JIT on a mid-size graph before measuring.
await measure(2000, 'bench.SyncNode', 2);
await measure(2000, 'bench.AsyncNode', 2);

const rows: string[] = [];
for (const [label, type] of [
  ['sync', 'bench.SyncNode'],
  ['async', 'bench.AsyncNode'],
] as const) {
  const small = await measure(1_000, type, 15);
  const large = await measure(10_000, type, 7);
  const fmt = (x: number) => x.toFixed(1);
  rows.push(
    `| ${label} | cold run | ${fmt(small.cold)} (${fmt(small.coldWall)}) | ${fmt(large.cold)} (${fmt(large.coldWall)}) | ${(large.cold / small.cold).toFixed(2)} |`,
    `| ${label} | cached re-run | ${fmt(small.cached)} (${fmt(small.cachedWall)}) | ${fmt(large.cached)} (${fmt(large.cachedWall)}) | ${(large.cached / small.cached).toFixed(2)} |`,
  );
}
console.log('| node body | run | CPU µs/node @ 1,000 (wall) | CPU µs/node @ 10,000 (wall) | growth, CPU 10k/1k |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log('');
console.log(
  `Each run includes validation, planning and ancestry hashing; goal ≤ 50 µs/node, growth ≈ 1.0 (linear). Load average at end ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
