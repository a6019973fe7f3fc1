/**
 * Server benchmarks, measured side by side in one run:
 *  1. POST /prompt validation throughput (req/s) against a server in a child process: rejected
 *     (400, validation only) and accepted (validated + durably queued) prompts, next to GET /prompt.
 *  2. Latency of websocket events (progress, from the node's report to the client's receipt) with
 *     1 and with 100 connected clients during a run; p50/p99.
 *  3. Event-loop lag of the server process during inference: idle, CPU work in a worker thread (as
 *     the node plugin runs onnxruntime), and the same work on the main thread (what a server without
 *     workers would suffer). With the demo models under models/, also during a real sampling run.
 * Run: node --import tsx bench/server.bench.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createServer, silentLogger } from '@priorgraph/server';
import {
  demoWorkflow,
  FIXTURES_DIR,
  hasDemoModels,
  MODELS_DIR,
  spawnServer,
  WebSocket,
} from '@priorgraph/server/testkit';
import { defineNode, definePlugin } from '../packages/core/src/index.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..');
const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `machine: ${cpu}, ${cpus().length} cores, Node ${process.version}; load average at start ${loadavg()[0].toFixed(2)} (other work shares these cores: compare ratios, not absolute numbers)`,
);

// ------------------------------------------------------------------ a CPU-work plugin
const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (ms) => {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  parentPort.postMessage(x);
});`;

function busy(ms: number): number {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
}

let worker: Worker | null = null;
const progressSentAt = new Map<string, number>();

const benchPlugin = definePlugin({
  name: 'bench',
  version: '1.0.0',
  setup() {
    worker = new Worker(WORKER_SRC, { eval: true });
  },
  async dispose() {
    await worker?.terminate();
  },
  nodes: [
    defineNode({
      type: 'CpuWork',
      version: 1,
      category: 'bench',
      outputNode: true,
      notIdempotent: true,
      inputs: {
        steps: { kind: 'int', default: 50, min: 1, max: 10_000 },
        ms: { kind: 'int', default: 20, min: 0, max: 10_000 },
        inWorker: { kind: 'boolean', default: true },
      },
      outputs: [],
      execute: async ({ steps, ms, inWorker }, ctx) => {
        for (let i = 0; i < steps; i++) {
          if (ctx.signal.aborted) throw new Error('aborted');
          if (inWorker) {
            await new Promise((r) => {
              worker!.once('message', r);
              worker!.postMessage(ms);
            });
          } else {
            busy(ms);
            await new Promise((r) => setImmediate(r));
          }
          progressSentAt.set(`${ctx.promptId}:${i + 1}`, performance.now());
          ctx.progress(i + 1, steps);
        }
        ctx.ui({ steps: [steps] });
        return {};
      },
    }),
  ],
});

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const f2 = (x: number) => x.toFixed(2);

// ------------------------------------------------------------------ 1. /prompt throughput
async function load(url: string, seconds: number, concurrency: number, make: () => RequestInit & { path: string }) {
  let n = 0;
  let bad = 0;
  const statuses = new Map<number, number>();
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const { path, ...init } = make();
        const r = await fetch(url + path, init);
        await r.arrayBuffer();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status >= 500) bad++;
        n++;
      }
    }),
  );
  return { rps: n / seconds, n, bad, statuses: Object.fromEntries(statuses) };
}

async function benchThroughput(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-bench-'));
  const { child, url } = await spawnServer(dataDir, { stderr: 'inherit' });
  const json = { 'content-type': 'application/json' };
  const invalid = JSON.stringify({
    prompt: {
      '1': { class_type: 'Number', inputs: { value: 5000 } },
      '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps: 1, ms: 0, seed: 0 } },
      '3': { class_type: 'SaveNumber', inputs: { value: ['2', 0], prefix: 'b' } },
    },
  });
  let k = 0;
  const valid = () =>
    JSON.stringify({
      prompt: {
        '1': { class_type: 'Number', inputs: { value: k++ % 1000 } },
        '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps: 1, ms: 0, seed: k } },
        '3': { class_type: 'Fail', inputs: { x: ['2', 0], message: 'bench' } },
      },
    });
  const secs = 3;
  const conc = 8;
  await load(url, 1, conc, () => ({ path: '/prompt', method: 'GET' })); // warm-up
  const ping = await load(url, secs, conc, () => ({ path: '/prompt', method: 'GET' }));
  const rejected = await load(url, secs, conc, () => ({
    path: '/prompt',
    method: 'POST',
    headers: json,
    body: invalid,
  }));
  const accepted = await load(url, secs, conc, () => ({
    path: '/prompt',
    method: 'POST',
    headers: json,
    body: valid(),
  }));
  await fetch(`${url}/queue`, { method: 'POST', headers: json, body: '{"clear":true}' });
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  console.log(
    `\n1. /prompt throughput (server in a child process, ${conc} concurrent keep-alive clients, ${secs} s each)`,
  );
  console.log(`   GET /prompt (ping)                      ${ping.rps.toFixed(0).padStart(6)} req/s`);
  console.log(
    `   POST /prompt rejected by validation     ${rejected.rps.toFixed(0).padStart(6)} req/s  (${f2(rejected.rps / ping.rps)}× ping) statuses ${JSON.stringify(rejected.statuses)}`,
  );
  console.log(
    `   POST /prompt validated + queued (SQLite) ${accepted.rps.toFixed(0).padStart(5)} req/s  (${f2(accepted.rps / ping.rps)}× ping) statuses ${JSON.stringify(accepted.statuses)}`,
  );
  if (ping.bad + rejected.bad + accepted.bad > 0) console.log('   WARNING: some requests answered 5xx');
}

// ------------------------------------------------------------------ 2 + 3. ws latency, event-loop lag
async function withServer<T>(
  fn: (url: string) => Promise<T>,
  extra: Partial<Parameters<typeof createServer>[0]> = {},
): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-bench-'));
  const server = createServer({
    port: 0,
    dataDir,
    modelRoots: [join(repo, 'models')],
    plugins: [benchPlugin],
    log: silentLogger,
    ...extra,
  });
  const { url } = await server.listen();
  try {
    return await fn(url);
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function openClients(url: string, n: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=bench-${i}`);
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
}

async function runAndWait(url: string, prompt: unknown): Promise<string> {
  const r = await fetch(`${url}/api/workflows/run?wait=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(prompt),
  });
  const j = (await r.json()) as { status: string; prompt_id: string; error?: unknown };
  if (j.status !== 'success') throw new Error(`bench run failed: ${JSON.stringify(j)}`);
  return j.prompt_id;
}

const cpuPrompt = (steps: number, ms: number, inWorker: boolean) => ({
  '1': { class_type: 'CpuWork', inputs: { steps, ms, inWorker } },
});

async function wsLatency(nClients: number, steps: number, ms: number): Promise<number[]> {
  return withServer(async (url) => {
    const clients = await openClients(url, nClients);
    const lat: number[] = [];
    for (const ws of clients) {
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const now = performance.now();
        const m = JSON.parse(String(data));
        if (m.type !== 'progress') return;
        const t0 = progressSentAt.get(`${m.data.prompt_id}:${m.data.value}`);
        if (t0 !== undefined) lat.push(now - t0);
      });
    }
    await runAndWait(url, cpuPrompt(steps, ms, true));
    await new Promise((r) => setTimeout(r, 200));
    for (const ws of clients) ws.close();
    return lat.sort((a, b) => a - b);
  });
}

async function lagDuring(fn: () => Promise<unknown>): Promise<{ p50: number; p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await fn();
  h.disable();
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

async function benchWsAndLag(): Promise<void> {
  const steps = 100;
  const ms = 20;
  const one = await wsLatency(1, steps, ms);
  const hundred = await wsLatency(100, steps, ms);
  console.log(
    `\n2. websocket progress-event latency (node's report → client receipt; clients in the server's process; ${steps} steps × ${ms} ms of worker CPU)`,
  );
  console.log(
    `   1 client:    p50 ${f2(quantile(one, 0.5))} ms  p99 ${f2(quantile(one, 0.99))} ms  (${one.length} events)`,
  );
  console.log(
    `   100 clients: p50 ${f2(quantile(hundred, 0.5))} ms  p99 ${f2(quantile(hundred, 0.99))} ms  (${hundred.length} events)  p99 ratio 100/1: ${f2(quantile(hundred, 0.99) / quantile(one, 0.99))}×`,
  );

  const lag = await withServer(async (url) => {
    const idle = await lagDuring(() => new Promise((r) => setTimeout(r, 2000)));
    const inWorker = await lagDuring(() => runAndWait(url, cpuPrompt(100, 20, true)));
    const inMain = await lagDuring(() => runAndWait(url, cpuPrompt(100, 20, false)));
    return { idle, inWorker, inMain };
  });
  console.log('\n3. event-loop lag of the server process (monitorEventLoopDelay, 5 ms resolution)');
  const row = (name: string, l: { p50: number; p99: number; max: number }) =>
    console.log(`   ${name.padEnd(44)} p50 ${f2(l.p50)} ms  p99 ${f2(l.p99)} ms  max ${f2(l.max)} ms`);
  row('idle (2 s)', lag.idle);
  row('2 s of CPU work in a worker thread', lag.inWorker);
  row('the same work on the main thread', lag.inMain);
  console.log(
    `   p99 lag, main thread / worker: ${f2(lag.inMain.p99 / lag.inWorker.p99)}×; worker / idle: ${f2(lag.inWorker.p99 / lag.idle.p99)}×`,
  );
}

// ------------------------------------------------------------------ real inference (onnxruntime workers)
async function benchRealModels(): Promise<void> {
  // The shipped demo models when present, else the node library's tiny committed ONNX fixtures.
  const demo = hasDemoModels();
  const root = demo ? MODELS_DIR : FIXTURES_DIR;
  const steps = demo ? 30 : 300;
  const make = (o: Parameters<typeof demoWorkflow>[1]) =>
    demoWorkflow(root, { guider: 'priorswap', ...o }) ?? demoWorkflow(root, { ...o, guider: 'cfg' });
  if (!make({ steps })) {
    console.log('\n4. real inference: skipped (no text-to-image model found)');
    return;
  }
  const nodes = await import('../packages/nodes/src/index.ts');
  const result = await withServer(
    async (url) => {
      const clients = await openClients(url, Number(process.env.PG_BENCH_CLIENTS ?? 100));
      let progress = 0;
      clients[0]?.on('message', (d, bin) => {
        if (!bin && JSON.parse(String(d)).type === 'progress') progress++;
      });
      // warm-up run (model loading), then the measured ones
      await runAndWait(url, make({ steps: 2, seed: 1 })!);
      const idle = await lagDuring(() => new Promise((r) => setTimeout(r, 1500)));
      const rows: Array<{ name: string; seconds: number; l: { p50: number; p99: number; max: number } }> = [];
      for (const [name, previewEvery, seed] of [
        ['previews every 2 steps', 2, 11],
        ['no previews', 0, 12],
      ] as const) {
        const start = performance.now();
        const l = await lagDuring(() => runAndWait(url, make({ steps, previewEvery, seed })!));
        rows.push({ name, seconds: (performance.now() - start) / 1000, l });
      }
      for (const ws of clients) ws.close();
      return { idle, rows, progress };
    },
    { plugins: [nodes.default], modelRoots: [root] },
  );
  console.log(
    `\n4. real inference through the built-in plugin (${demo ? 'demo models' : 'node-library ONNX fixtures; demo models absent'}, ${steps} sampler steps, 100 websocket clients; ${result.progress} progress events reached each client)`,
  );
  const row = (name: string, l: { p50: number; p99: number; max: number }, extra = '') =>
    console.log(`   ${name.padEnd(34)} lag p50 ${f2(l.p50)} ms  p99 ${f2(l.p99)} ms  max ${f2(l.max)} ms${extra}`);
  row('idle', result.idle);
  for (const r of result.rows)
    row(r.name, r.l, `  (run ${f2(r.seconds)} s; max ${f2(r.l.max / result.idle.max)}× idle)`);
}

// `--only=real` (or throughput, ws) runs one part.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
if (!only || only === 'throughput') await benchThroughput();
if (!only || only === 'ws') await benchWsAndLag();
if (!only || only === 'real') await benchRealModels();
