/**
 * Where the executor's per-node cost goes as graphs grow: the phases of executor.bench.ts's runs
 * (parse, validate, plan, sign, cache lookup, schedule), called one by one, in CPU µs per node, and
 * the garbage collector's main-thread pauses (scavenges and the rest) as µs per node and as a share
 * of the runs' wall time. Sizes are interleaved round by round (so load and JIT state hit them alike);
 * medians of the rounds. Each repetition is a cold run (empty cache) then a cached re-run.
 *
 *   node --import tsx bench/executor-gc.bench.ts [sizes, default 1000,2000,5000,10000,20000] [rounds, default 7]
 *
 * Add --trace-gc to see every scavenge, or V8 flags (--max-semi-space-size=MB) to see how the
 * young generation's size moves the costs.
 *
 * The "floor" rows run no priorgraph code: per node, a lookup in the document's node dictionary, a
 * small record kept in a run-sized Map, then a second pass reading the records back -- the least
 * any executor does per node. How that grows with the graph is what V8 and the memory hierarchy of
 * this machine charge for size alone.
 *
 * Why the floor grows 4–8× from 1k to 10k (3 Dec, helper execlin2; scratch timings on this VM, CPU ns
 * per node or entry, 1k → 10k): not the order the bench creates its objects in (the same document
 * after JSON.parse(JSON.stringify()) grows alike; a walk over the same node objects through an array
 * grows 1.3×), but its two graph-sized hash tables. Enumerating the 10k-key node dictionary costs
 * 27 → 105 ns per key (V8 collects and sorts a dictionary's keys, then filters each); building a Map
 * costs 17 → 300 ns per entry, with a cliff between 4,096 and 5,000 entries, for integer keys too: a
 * table past 128 KB (a Map past 4,096 entries, a dictionary object, a plain array past 16k elements)
 * is allocated in V8's large-object space, on fresh pages each time it grows, and perf puts the
 * difference in page faults. Since then a run keeps such tables out where it can (an Int32Array id
 * table, typed link lists, the dictionary enumerated once, by the parser, the output cache in 16
 * Maps); what remains is the parser's copy of the node dictionary (the parse column; in the cached
 * rows it also pays for scavenging the cold run's survivors), the scavenges of a run's live data, and
 * passes over node objects that no longer fit the caches.
 * 15:13 UTC, load ≈ 5, 2 alternating pairs vs main (sizes 1000,10000, 9 rounds): cold 2.56–2.74 /
 * 4.17–4.30 µs/node (growth 1.6; main 3.78–5.92 / 8.99–12.28, 2.1–2.4), cached 1.72–1.89 / 3.56–3.59
 * (main 2.60–4.91 / 7.76–9.08); scavenges 0.8 / 1.1 µs/node (main 1.4–2.4 / 2.5–3.4). 15:18, load 6,
 * with the sharded cache, one run: cold 2.48 / 3.77 (growth 1.52; schedule 1.04 at 10k, was 1.38).
 * 3 Dec 15:39 (helper execlin3), load ≈ 3, 3 alternating pairs vs main 0d729e5: with the parser's
 * dictionary built only on read, parse 0.31–0.34 / 0.97–1.04 → 0.25–0.26 / 0.60–0.65 µs/node
 * (one run of three 0.51 / 0.92: JIT; a WeakMap holding the unbuilt order gave 0.50 / 0.93 in 3 of
 * 3). Tried and dropped: (a) reusing the run's graph-sized typed arrays across runs (module-level
 * buffers, 14 allocation sites): 4 pairs of executor.bench and 3 of this one at load ≈ 5 showed no
 * change beyond noise (a scratch loop put fresh vs reused Int32Arrays at 13.6 vs 5.7 ns per node for
 * five arrays: ≈ 0.2 % of a run); (b) storing a run's outputs in the cache in one batch after the
 * run: 4 pairs, no change. A CPU profile of 10k vs 1k runs (same node count) puts the rest of the
 * growth in the parser's walk over the caller's nodes (for…in over a 10k-key dictionary alone:
 * 30 → 110 ns per key), OutputCache.set (flat in a loop of its own, 86–91 ns per entry at both
 * sizes; in a run 135 → 620 ns), resolveInputs and the node bodies reading random sources' outputs,
 * and signing: reads spread over more memory than the caches hold.
 */
import os from 'node:os';
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';
import { lookupPlan, OutputCache, signPlan } from '../packages/core/src/cache.js';
import type { WorkflowDocument } from '../packages/core/src/index.js';
import { planRun } from '../packages/core/src/planning.js';
import { schedule } from '../packages/core/src/scheduling.js';
import { parseForRun } from '../packages/core/src/schema.js';
import { validateForRun } from '../packages/core/src/validate.js';
import { host, makeDag, registry } from './executor-dag.js';

const PHASES = ['parse', 'validate', 'plan', 'sign', 'lookup', 'schedule'] as const;
type Phase = (typeof PHASES)[number];

const gcPauses: Array<{ start: number; ms: number; minor: boolean }> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    gcPauses.push({ start: e.startTime, ms: e.duration, minor: kind === constants.NODE_PERFORMANCE_GC_MINOR });
  }
}).observe({ entryTypes: ['gc'] });

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One run, as the executor does it, phase by phase; adds each phase's CPU ms to `into`. */
async function runPhases(doc: WorkflowDocument, cache: OutputCache, into: Record<Phase, number>): Promise<void> {
  let c = cpuMs();
  const lap = (k: Phase) => {
    const now = cpuMs();
    into[k] += now - c;
    c = now;
  };
  const parsed = parseForRun(doc);
  if (!parsed.ok) throw new Error('bench document did not parse');
  lap('parse');
  const v = await validateForRun(parsed.doc, registry, host, {}, parsed.order);
  if (!v.result.ok) throw new Error('bench document did not validate');
  lap('validate');
  const plan = planRun(parsed.doc, registry, v.result.outputs, v.graph);
  lap('plan');
  signPlan(plan, 'bench#1');
  lap('sign');
  const { toRun, values, uiOutputs } = lookupPlan(plan, v.result.outputs, cache);
  lap('lookup');
  const r = await schedule({
    plan,
    toRun,
    values,
    uiOutputs,
    doc: parsed.doc,
    promptId: 'bench',
    host,
    log: { debug() {}, info() {}, warn() {}, error() {} },
    emit: () => {},
    listening: false,
    onDone: (p, outs, ui) => cache.set(p.sig, outs, ui),
  });
  if (r.failure) throw new Error(`bench run failed: ${r.failure.message}`);
  lap('schedule');
}

/** The floor: an executor-shaped walk with no priorgraph code (see the header). */
function floorRun(doc: WorkflowDocument): number {
  const records = new Map<string, { id: string; mode: string; deps: string[] }>();
  for (const id in doc.nodes) {
    const n = doc.nodes[id];
    const deps: string[] = [];
    for (const k in n.inputs) {
      const v = n.inputs[k] as { node?: string };
      if (typeof v === 'object' && v !== null && typeof v.node === 'string' && doc.nodes[v.node]) deps.push(v.node);
    }
    records.set(id, { id, mode: n.mode, deps });
  }
  let links = 0;
  for (const r of records.values()) for (const d of r.deps) if (records.get(d)) links++;
  return links;
}

interface Samples {
  cold: Record<Phase, number[]>;
  cached: Record<Phase, number[]>;
  /** the floor's CPU µs per node, per round */
  floor: number[];
  /** wall-clock windows of the measured runs */
  windows: Array<[number, number]>;
}

const zero = (): Record<Phase, number> => ({ parse: 0, validate: 0, plan: 0, sign: 0, lookup: 0, schedule: 0 });
const lists = (): Record<Phase, number[]> => ({
  parse: [],
  validate: [],
  plan: [],
  sign: [],
  lookup: [],
  schedule: [],
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sum = (r: Record<Phase, number>) => PHASES.reduce((t, k) => t + r[k], 0);

/** One round at size n: enough repetitions for ~10,000 nodes, cold then cached each time. */
async function round(n: number, doc: WorkflowDocument, s: Samples): Promise<void> {
  const reps = Math.max(1, Math.round(10_000 / n));
  const cold = zero();
  const cached = zero();
  for (let r = 0; r < reps; r++) {
    const cache = new OutputCache(1024 ** 3);
    const t0 = performance.now();
    await runPhases(doc, cache, cold);
    await runPhases(doc, cache, cached);
    s.windows.push([t0, performance.now()]);
  }
  for (const k of PHASES) {
    s.cold[k].push((cold[k] * 1000) / (n * reps));
    s.cached[k].push((cached[k] * 1000) / (n * reps));
  }
  const c = cpuMs();
  for (let r = 0; r < reps; r++) floorRun(doc);
  s.floor.push(((cpuMs() - c) * 1000) / (n * reps));
}

function gcLine(n: number, s: Samples): string {
  let wall = 0;
  let minor = 0;
  let other = 0;
  let scavenges = 0;
  for (const [a, b] of s.windows) {
    wall += b - a;
    for (const g of gcPauses) {
      if (g.start < a || g.start >= b) continue;
      if (g.minor) {
        minor += g.ms;
        scavenges++;
      } else other += g.ms;
    }
  }
  const perNode = (ms: number) => ((ms * 1000) / (n * s.windows.length)).toFixed(2);
  return `scavenges ${perNode(minor)} µs/node (${scavenges}, mean ${(minor / Math.max(1, scavenges)).toFixed(1)} ms), other GC ${perNode(other)} µs/node, ${((100 * (minor + other)) / wall).toFixed(0)}% of wall`;
}

const sizes = (process.argv[2] ?? '1000,2000,5000,10000,20000').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 7);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
console.log(
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version} ${process.execArgv.filter((a) => a.startsWith('--') && a !== '--import').join(' ')}; load at start ${load()}`,
);
const docs = new Map(sizes.map((n) => [n, makeDag(n, 'bench.SyncNode')]));
const warm = makeDag(2000, 'bench.SyncNode');
for (let i = 0; i < 3; i++) await round(2000, warm, { cold: lists(), cached: lists(), floor: [], windows: [] });
const samples = new Map<number, Samples>(
  sizes.map((n) => [n, { cold: lists(), cached: lists(), floor: [], windows: [] }]),
);
for (let r = 0; r < rounds; r++) for (const n of sizes) await round(n, docs.get(n)!, samples.get(n)!);
await new Promise((r) => setTimeout(r, 50)); // let the GC observer deliver
console.log('');
console.log(`| nodes | run | CPU µs/node | ${PHASES.join(' | ')} | GC pauses (cold + cached) |`);
console.log(`|---|---|---|${PHASES.map(() => '---|').join('')}---|`);
for (const n of sizes) {
  const s = samples.get(n)!;
  for (const run of ['cold', 'cached'] as const) {
    const m = zero();
    for (const k of PHASES) m[k] = median(s[run][k]);
    const gc = run === 'cold' ? gcLine(n, s) : '';
    console.log(`| ${n} | ${run} | ${sum(m).toFixed(2)} | ${PHASES.map((k) => m[k].toFixed(2)).join(' | ')} | ${gc} |`);
  }
  console.log(`| ${n} | floor | ${median(s.floor).toFixed(2)} | ${PHASES.map(() => '').join(' | ')} |  |`);
}
console.log('');
console.log(`Load at end ${load()}. Phase columns are medians over ${rounds} rounds; the total is their sum.`);
