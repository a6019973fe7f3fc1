/**
 * API latency while a node busy-loops, with node code in the server's worker process (now) and in
 * the server's own thread (before), side by side in one run. A real server process with the test
 * plugin and the hostile plugin's BusyLoop node (spins synchronously until a file exists); the
 * benchmark asks `GET /queue` one request after another, idle and then for BUSY_MS while the node
 * spins, and reports p50/p99 and the busy ÷ idle ratio of p99.
 * Run: node --import tsx bench/worker.bench.ts
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HOSTILE_PLUGINS_DIR, type SpawnedServer, spawnServer } from '@priorgraph/server/testkit';

const BUSY_MS = 2000;
const IDLE_REQUESTS = 300;
const pluginsDir = HOSTILE_PLUGINS_DIR;

console.log(
  `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; load average at start ${loadavg()[0].toFixed(2)} (other work shares these cores: compare ratios)`,
);

function start(dataDir: string, inline: boolean): Promise<SpawnedServer> {
  return spawnServer(dataDir, { options: { pluginsDir, inline }, stderr: 'inherit' });
}

async function post(url: string, prompt: unknown): Promise<string> {
  const r = await fetch(`${url}/prompt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt }),
  });
  if (r.status !== 200) throw new Error(`POST /prompt: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { prompt_id: string }).prompt_id;
}

async function timedGet(url: string): Promise<number> {
  const t = performance.now();
  const r = await fetch(`${url}/queue`);
  await r.arrayBuffer();
  return performance.now() - t;
}

async function untilDone(url: string, id: string): Promise<string> {
  for (;;) {
    const j = (await (await fetch(`${url}/api/jobs/${id}`)).json()) as { status: string };
    if (j.status !== 'pending' && j.status !== 'running') return j.status;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

async function measure(inline: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'pg-bench-worker-'));
  const { child, url } = await start(dir, inline);
  try {
    const number = (value: number) => ({ '1': { class_type: 'Number', inputs: { value } } });
    // warm up: one job through the engine, and the HTTP path
    await untilDone(url, await post(url, { ...number(1), '2': { class_type: 'Pid', inputs: { x: ['1', 0] } } }));
    for (let i = 0; i < 30; i++) await timedGet(url);
    const idle: number[] = [];
    for (let i = 0; i < IDLE_REQUESTS; i++) idle.push(await timedGet(url));
    const started = join(dir, 'started');
    const stop = join(dir, 'stop');
    const id = await post(url, {
      ...number(2),
      '2': { class_type: 'BusyLoop', inputs: { x: ['1', 0], started, stop } },
    });
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 10));
    const timer = setTimeout(() => writeFileSync(stop, ''), BUSY_MS);
    const busy: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < BUSY_MS) busy.push(await timedGet(url));
    clearTimeout(timer);
    writeFileSync(stop, '');
    const status = await untilDone(url, id);
    if (status !== 'success') throw new Error(`the busy job ended ${status}`);
    return { idle, busy };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const inline of [false, true]) {
  const { idle, busy } = await measure(inline);
  const name = inline ? "server's own thread (before)" : 'worker process (now)';
  rows.push(
    `| ${name} | ${pct(idle, 50).toFixed(2)} / ${pct(idle, 99).toFixed(2)} | ${busy.length} | ${pct(busy, 50).toFixed(2)} / ${pct(busy, 99).toFixed(2)} | ${(pct(busy, 99) / pct(idle, 99)).toFixed(1)}× |`,
  );
}
console.log(`\nGET /queue, one request after another; busy = a node spinning synchronously for ${BUSY_MS} ms\n`);
console.log(
  '| node code runs in | idle p50 / p99 (ms) | requests answered while busy | busy p50 / p99 (ms) | busy ÷ idle p99 |',
);
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
