/**
 * The queue transport against the local worker process, side by side in one run: 24 jobs of the test
 * plugin's Slow node (6 steps × 25 ms of waiting, then a saved file) through a real server, with node
 * code in (a) the server's local worker process, (b) BullMQ on a real redis-server with 1, 2 and 4
 * `priorgraph worker` processes. Reports wall time and throughput as a ratio to (a), and per-job
 * added latency: POST → first progress event, and last progress event → output visible at /view.
 * Needs /usr/bin/redis-server (or PRIORGRAPH_REDIS_SERVER). Run: node --import tsx bench/queue.bench.ts
 *
 * Per-step events coalesced in the worker before PUBLISH (issue 11; src/throttle.ts: ≤ 1 progress and
 * ≤ 1 preview per job per 100 ms, the last value and every state message always). Recorded 2026-12-03,
 * AMD EPYC, 2 cores shared with other engineers' builds, Node 20.20.2, one run each, back to back:
 *   before (main, 06:40 UTC, load 3.7):  PUBLISH 18.0 per job; commands per job 84.2 / 81.2 / 80.7 with
 *     1 / 2 / 4 workers; throughput ÷ local 0.87 / 1.47 / 2.01.
 *   after (06:41 UTC, load 6.7):  PUBLISH 12.0 / 12.0 / 11.8 per job; commands per job 77.9 / 75.1 /
 *     73.1; throughput ÷ local 1.03 / 1.16 / 2.37.
 * The command counts do not depend on the load; the latencies and throughputs here do (the load
 * doubled between the two runs), so only the ratios within a run compare. The rest of a job's ≈ 62
 * commands are BullMQ's own (add/take/lock/complete scripts and their stream events).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as netServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { SERVE_SCRIPT, TEST_PLUGIN_URL, WebSocket } from '@priorgraph/server/testkit';

const JOBS = 24;
const REDIS = process.env.PRIORGRAPH_REDIS_SERVER ?? '/usr/bin/redis-server';
const serveScript = SERVE_SCRIPT;
const cli = fileURLToPath(new URL('../packages/server/src/cli.ts', import.meta.url));
const testPluginUrl = TEST_PLUGIN_URL;

console.log(
  `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; load average at start ${loadavg()[0].toFixed(2)} (compare ratios; every worker is a process on these same cores)`,
);
if (!existsSync(REDIS)) {
  console.log(`no redis-server at ${REDIS}: nothing to measure`);
  process.exit(0);
}

const procs: ChildProcess[] = [];
function start(cmd: string, args: string[], ready: RegExp): Promise<RegExpMatchArray> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = out.match(ready);
      if (m) resolve(m);
    });
    let err = '';
    child.stderr!.on('data', (d) => {
      err += String(d);
    });
    child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code}): ${err}`)));
  });
}
async function stopAll(): Promise<void> {
  for (const p of procs.splice(0).reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    p.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      p.once('exit', () => r(clearTimeout(t)));
    });
  }
}
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `INFO commandstats` of a redis-server over a plain socket: calls per command. */
function commandStats(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => {
      text += String(d);
      const header = text.match(/^\$(\d+)\r\n/);
      if (header && Buffer.byteLength(text) >= header[0].length + Number(header[1])) {
        sock.end();
        const calls = new Map<string, number>();
        for (const m of text.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) calls.set(m[1], Number(m[2]));
        resolve(calls);
      }
    });
    sock.on('error', reject);
    sock.write('INFO commandstats\r\n');
  });
}
const diff = (a: Map<string, number>, b: Map<string, number>) =>
  new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0));
const total = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);

interface Run {
  wallMs: number;
  /** Redis commands during the run (BullMQ runs only), and during as long a stretch idle before it */
  redis?: { run: Map<string, number>; idle: Map<string, number> };
  firstProgress: number[];
  lastToView: number[];
}

async function measure(url: string, workers: number): Promise<Run> {
  while (((await (await fetch(`${url}/api/workers`)).json()) as unknown[]).length < workers) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=bench`);
  await new Promise((r) => ws.once('open', r));
  const postedAt = new Map<string, number>();
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const done = new Map<string, number>();
  let allDone!: () => void;
  const finished = new Promise<void>((r) => {
    allDone = r;
  });
  ws.on('message', (data, binary) => {
    if (binary) return;
    const f = JSON.parse(String(data)) as { type: string; data: { prompt_id?: string; node?: string | null } };
    const id = f.data?.prompt_id;
    if (!id) return;
    const now = performance.now();
    if (f.type === 'progress') {
      if (!first.has(id)) first.set(id, now);
      last.set(id, now);
    } else if (f.type === 'executing' && f.data.node === null) {
      done.set(id, now);
      if (done.size === JOBS) allDone();
    }
  });
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const prompt = {
      '1': { class_type: 'Number', inputs: { value: i } },
      '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps: 6, ms: 25, seed: workers * 1000 + i } },
      '3': { class_type: 'SaveNumber', inputs: { value: ['2', 0], prefix: `b${workers}_${i}` } },
    };
    const at = performance.now();
    const r = await fetch(`${url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, client_id: 'bench' }),
    });
    const id = ((await r.json()) as { prompt_id: string }).prompt_id;
    postedAt.set(id, at);
    ids.push(id);
  }
  await finished;
  const wallMs = performance.now() - t0;
  // output visible at /view: the history entry's file answers (checked after the run, timed per job from its last step)
  const lastToView: number[] = [];
  for (const id of ids) lastToView.push(done.get(id)! - last.get(id)!);
  for (const id of ids.slice(0, 3)) {
    const j = (await (await fetch(`${url}/api/jobs/${id}`)).json()) as {
      status: string;
      outputs: Record<string, { images: Array<Record<string, string>> }>;
    };
    if (j.status !== 'success') throw new Error(`job ${id} ${j.status}`);
    const v = await fetch(`${url}/view?${new URLSearchParams(j.outputs['3'].images[0])}`);
    if (v.status !== 200) throw new Error(`/view of ${id}: ${v.status}`);
    await v.arrayBuffer();
  }
  // queue → first progress: only the first `workers` jobs start at once, so take each job's wait
  // from when a worker became free: its first progress minus the previous job's end on that slot is
  // not observable; report the first wave only (the jobs that found a free worker on arrival).
  const firstProgress = ids.slice(0, workers).map((id) => first.get(id)! - postedAt.get(id)!);
  ws.close();
  return { wallMs, firstProgress, lastToView };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const rows: Array<{ name: string; r: Run }> = [];
const dir = mkdtempSync(join(tmpdir(), 'pg-bench-queue-'));
mkdirSync(join(dir, 'none')); // an empty model root: the test plugin needs no models
try {
  // (a) the local worker process
  {
    const [, url] = await start(
      process.execPath,
      ['--import', 'tsx', serveScript, join(dir, 'local')],
      /(http:\/\/\S+)\n/,
    );
    rows.push({ name: 'local worker process', r: await measure(url, 1) });
    await stopAll();
  }
  // (b) BullMQ with N workers
  for (const n of [1, 2, 4]) {
    const port = await freePort();
    mkdirSync(join(dir, `redis${n}`));
    await start(
      REDIS,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        join(dir, `redis${n}`),
      ],
      /Ready to accept/,
    );
    const redisUrl = `redis://127.0.0.1:${port}/0`;
    const [, url] = await start(
      process.execPath,
      ['--import', 'tsx', serveScript, join(dir, `srv${n}`), JSON.stringify({ queue: redisUrl })],
      /(http:\/\/\S+)\n/,
    );
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        start(
          process.execPath,
          [
            '--import',
            'tsx',
            cli,
            'worker',
            '--queue',
            redisUrl,
            '--plugin',
            testPluginUrl,
            '--name',
            `w${i}`,
            '--data-dir',
            join(dir, `w${n}_${i}`),
            '--models',
            join(dir, 'none'),
          ],
          /ready\n/,
        ),
      ),
    );
    while (((await (await fetch(`${url}/api/workers`)).json()) as unknown[]).length < n) {
      await new Promise((r) => setTimeout(r, 200));
    }
    // what the queue costs Redis: commands while idle for a stretch, then during the run
    const i0 = await commandStats(port);
    const idleStart = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const i1 = await commandStats(port);
    const idleMs = performance.now() - idleStart;
    const r = await measure(url, n);
    const r1 = await commandStats(port);
    const idle = new Map([...diff(i0, i1)].map(([k, v]) => [k, (v * r.wallMs) / idleMs] as const));
    r.redis = { run: diff(i1, r1), idle };
    rows.push({ name: `BullMQ, ${n} worker${n > 1 ? 's' : ''}`, r });
    await stopAll();
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

const base = rows[0].r.wallMs;
console.log(`\n${JOBS} jobs (Slow: 6 steps × 25 ms, then a saved file), posted back to back\n`);
console.log(
  '| node code runs in | wall (ms) | throughput ÷ local | queue → first progress, median (ms) | last step → done, median (ms) |',
);
console.log('|---|---|---|---|---|');
for (const { name, r } of rows) {
  console.log(
    `| ${name} | ${r.wallMs.toFixed(0)} | ${(base / r.wallMs).toFixed(2)} | ${median(r.firstProgress).toFixed(1)} | ${median(r.lastToView).toFixed(1)} |`,
  );
}

console.log(
  `\nRedis commands per job (the run's commands minus the idle rate over as long a time — heartbeats, stalled-job checks, blocking polls — divided by ${JOBS} jobs of 6 steps):\n`,
);
console.log(
  '| workers | commands per job | of which PUBLISH (events, previews) | EVALSHA (BullMQ scripts) | idle commands per second |',
);
console.log('|---|---|---|---|---|');
for (const { name, r } of rows) {
  if (!r.redis) continue;
  const { run, idle } = r.redis;
  const perJob = (total(run) - total(idle)) / JOBS;
  const idlePerSec = (total(idle) / r.wallMs) * 1000;
  console.log(
    `| ${name} | ${perJob.toFixed(1)} | ${((run.get('publish') ?? 0) / JOBS).toFixed(1)} | ${((run.get('evalsha') ?? 0) / JOBS).toFixed(1)} | ${idlePerSec.toFixed(1)} |`,
  );
}
