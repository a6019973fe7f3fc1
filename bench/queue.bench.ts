/**
 * The queue transport against the local worker process, side by side in one run: 24 jobs of the test
 * plugin's Slow node (6 steps × 25 ms of waiting, then a saved file) through a real server, with node
 * code in (a) the server's local worker process, (b) BullMQ on a real redis-server with 1, 2 and 4
 * `priorgraph worker` processes. Reports wall time and throughput as a ratio to (a), and per-job
 * added latency: POST → first progress event, and last progress event → output visible at /view.
 * Before the burst, each setup also runs jobs ONE AT A TIME on an idle queue (Slow: 2 × 25 ms): the
 * first after start is reported apart (cold: fresh processes, BullMQ's Lua scripts not yet loaded in
 * a fresh Redis), then the median of 8 (warm), with BullMQ's own stages read from the job's hash
 * (`timestamp` = added, `processedOn` = taken by a worker).
 * Needs /usr/bin/redis-server (or PRIORGRAPH_REDIS_SERVER). Run: node --import tsx bench/queue.bench.ts
 *
 * Queue → first progress (issue 11, 3 Dec 09:39–09:45 UTC, main vs this branch alternating, load
 * 8–11): idle queue, warm, median of 8 — local 47–68 ms, BullMQ 1 worker 52–88 ms (main 53 / 88,
 * branch 66 / 52); per run the difference swings from −15 to +41 ms with the load, BullMQ's own
 * add → taken is 2–7 ms. Traced over many jobs the queue adds ≈ 5 ms (below). The burst's first wave
 * (1, 2, 4 samples) spreads 85–304 ms on both (local 55–93 ms): with 24 POSTs arriving and 2–8 more
 * processes on 2 cores it measures contention, not the queue. A per-stage trace of 36 sequential jobs
 * (load ≈ 5, temporary timestamps in each process): runner start → added 3.1 ms → taken 2.9 → in the
 * worker's child 3.0 → first step (validation, 25 ms wait) 27.8 → PUBLISH 1.1 → server 0.7 → websocket
 * 0.8; total 51.3 ms vs 46.0 ms local (+5.3); the first job of 8 warm bursts (load ≈ 6.5) 67.7 vs
 * 63.5 ms (+4.2). The earlier "+31–43 ms" was the first job after start (cold), one sample each.
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
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as netServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { SERVE_SCRIPT, TEST_PLUGIN_URL, WebSocket } from '@priorgraph/server/testkit';

const JOBS = 24;
/** Jobs timed one at a time on an idle queue, after a first one (which is timed apart: cold). */
const SEQUENTIAL = 8;
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

/** One command to a redis-server over a plain socket; the reply's text once `complete` says it is whole. */
function redisCall(port: number, args: string[], complete: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => {
      text += String(d);
      if (complete(text)) {
        sock.end();
        resolve(text);
      }
    });
    sock.on('error', reject);
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** `INFO commandstats`: calls per command. */
async function commandStats(port: number): Promise<Map<string, number>> {
  const text = await redisCall(port, ['INFO', 'commandstats'], (t) => {
    const header = t.match(/^\$(\d+)\r\n/);
    return header !== null && Buffer.byteLength(t) >= header[0].length + Number(header[1]);
  });
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) calls.set(m[1], Number(m[2]));
  return calls;
}

/** When BullMQ added a job and when a worker took it (epoch ms, from the job's hash). */
async function jobTimes(port: number, id: string): Promise<{ added: number; taken: number }> {
  const reply = /^\*2\r\n(?:\$-1\r\n|\$\d+\r\n[^\r]*\r\n){2}/;
  const text = await redisCall(port, ['HMGET', `bull:priorgraph:${id}`, 'timestamp', 'processedOn'], (t) =>
    reply.test(t),
  );
  const [added, taken] = [...text.matchAll(/\$\d+\r\n(\d+)\r\n/g)].map((m) => Number(m[1]));
  return { added, taken };
}
const diff = (a: Map<string, number>, b: Map<string, number>) =>
  new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0));
const total = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);

interface Run {
  wallMs: number;
  /** One job at a time on an idle queue: the first after start, then the rest (warm). */
  idle?: Idle;
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

/** Epoch ms with sub-ms resolution (comparable with the servers' and BullMQ's Date.now()). */
const epoch = () => performance.timeOrigin + performance.now();

interface Idle {
  /** POST sent → first progress on the websocket, the first job after start (cold) and the rest. */
  cold: number;
  warm: number[];
  /** Of the warm jobs, ms after POST sent: answered, added to BullMQ, taken by a worker. */
  stages: Array<{ answered: number; added?: number; taken?: number; first: number }>;
}

/** SEQUENTIAL jobs, each posted when the one before has ended, on an otherwise idle queue. */
async function idleLatency(url: string, redisPort?: number): Promise<Idle> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=idle`);
  await new Promise((r) => ws.once('open', r));
  const first = new Map<string, number>();
  let ended: (id: string) => void = () => {};
  ws.on('message', (data, binary) => {
    if (binary) return;
    const f = JSON.parse(String(data)) as { type: string; data: { prompt_id?: string; node?: string | null } };
    const id = f.data?.prompt_id;
    if (!id) return;
    if (f.type === 'progress' && !first.has(id)) first.set(id, epoch());
    if (f.type === 'executing' && f.data.node === null) ended(id);
  });
  const out: Idle = { cold: 0, warm: [], stages: [] };
  for (let i = 0; i <= SEQUENTIAL; i++) {
    const id = randomUUID();
    const prompt = {
      '1': { class_type: 'Number', inputs: { value: i } },
      '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps: 2, ms: 25, seed: 7_000_000 + i } },
      '3': { class_type: 'SaveNumber', inputs: { value: ['2', 0], prefix: `idle${i}` } },
    };
    const done = new Promise<void>((r) => {
      ended = (e) => e === id && r();
    });
    const sent = epoch();
    const r = await fetch(`${url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, client_id: 'idle', prompt_id: id }),
    });
    await r.arrayBuffer();
    const answered = epoch() - sent;
    await done;
    const latency = first.get(id)! - sent;
    if (i === 0) {
      out.cold = latency;
      continue;
    }
    out.warm.push(latency);
    const t = redisPort === undefined ? undefined : await jobTimes(redisPort, id);
    out.stages.push({ answered, added: t && t.added - sent, taken: t && t.taken - sent, first: latency });
    await new Promise((res) => setTimeout(res, 100)); // the queue idle again
  }
  ws.close();
  return out;
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
    const idle = await idleLatency(url);
    rows.push({ name: 'local worker process', r: { ...(await measure(url, 1)), idle } });
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
    const idleRun = await idleLatency(url, port);
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
    r.idle = idleRun;
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

console.log(
  `\nOne job at a time on an idle queue (Slow: 2 steps × 25 ms; POST sent → first progress on the websocket; the first job after start apart, then the median of ${SEQUENTIAL}; BullMQ's stages from the job's hash, ms after POST sent):\n`,
);
console.log(
  '| node code runs in | first job after start | idle queue → first progress, median (min–max) | POST answered | added to BullMQ | taken by a worker |',
);
console.log('|---|---|---|---|---|---|');
for (const { name, r } of rows) {
  const i = r.idle;
  if (!i) continue;
  const stage = (k: 'answered' | 'added' | 'taken') => {
    const xs = i.stages.map((x) => x[k]).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? median(xs).toFixed(1) : '—';
  };
  console.log(
    `| ${name} | ${i.cold.toFixed(1)} | ${median(i.warm).toFixed(1)} (${Math.min(...i.warm).toFixed(1)}–${Math.max(...i.warm).toFixed(1)}) | ${stage('answered')} | ${stage('added')} | ${stage('taken')} |`,
  );
}
