/**
 * The queue transport with real parts: a redis-server on a free port, the server in a child process
 * with `queue: redis://…`, and `priorgraph worker` processes (the real CLI). Two workers share the
 * queue, progress/previews/outputs reach the server's clients and `/view`, GET /api/workers lists
 * them, a worker SIGKILLed mid-job has its job finished by the other one, once; a server SIGKILLed
 * mid-job re-attaches to it on restart; a worker lacking a job's node types hands it on; a job queued
 * across a Redis restart (persistence on) survives.
 * Skipped, saying so, without redis-server (`npm test` installs it when root) or with PRIORGRAPH_SKIP_REDIS=1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  coalescedProgressProblem,
  get,
  HOSTILE_PLUGINS_DIR,
  post,
  SERVE_SCRIPT,
  TEST_PLUGIN_URL,
  WsRecorder,
} from '../testkit/index.js';

const REDIS = process.env.PRIORGRAPH_REDIS_SERVER ?? '/usr/bin/redis-server';
const skip = process.env.PRIORGRAPH_SKIP_REDIS === '1' || !existsSync(REDIS);
if (skip) {
  process.stderr.write(
    `queue tests skipped: ${process.env.PRIORGRAPH_SKIP_REDIS === '1' ? 'PRIORGRAPH_SKIP_REDIS=1' : `no redis-server at ${REDIS}`}\n`,
  );
}

const serveScript = SERVE_SCRIPT;
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const testPluginUrl = TEST_PLUGIN_URL;
const pluginsDir = HOSTILE_PLUGINS_DIR;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const procs: ChildProcess[] = [];
let dir: string;
let redisUrl: string;
let url: string;
const workers = new Map<string, ChildProcess>();
/** The 50 prompts of the burst test, for the two-server test. */
let burstIds: string[] = [];
/** The second server of the two-server test. */
let serverB: { child: ChildProcess; url: string } | undefined;

/** Polls `f` until it gives a value (at most 60 s). */
async function until<T>(what: string, f: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
/** A job's entry in `base`'s /history once it is there. */
const finished = (base: string, id: string) =>
  until(`${id} in the history of ${base}`, async () => {
    const h = (await get(base, `/history/${id}`)).json;
    return h[id] as {
      status: { status_str: string };
      outputs: Record<string, { images: Record<string, string>[] }>;
    };
  });
/** Stops every worker process still running. */
async function stopWorkers(): Promise<void> {
  for (const w of workers.values()) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  await untilWorkers(0);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Spawns and resolves once stdout matches `ready` (rejects if it exits first). */
/** Everything each child wrote, by child. */
const output = new Map<ChildProcess, string>();
function start(
  cmd: string,
  args: string[],
  ready: RegExp,
  env?: Record<string, string>,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ? { ...process.env, ...env } : undefined,
  });
  procs.push(child);
  output.set(child, '');
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      output.set(child, output.get(child) + String(d));
      const m = out.match(ready);
      if (m) resolve({ child, match: m });
    });
    child.stderr!.on('data', (d) => {
      err += String(d);
      output.set(child, output.get(child) + String(d));
    });
    child.once('exit', (code, sig) => reject(new Error(`${args.join(' ')} exited (${code ?? sig}): ${out}${err}`)));
  });
}

/** A worker process; `withTestPlugin: false` makes one that lacks the test plugin's node types. */
async function startWorker(name: string, withTestPlugin = true, env?: Record<string, string>): Promise<void> {
  const { child } = await start(
    process.execPath,
    [
      '--import',
      'tsx',
      cli,
      'worker',
      '--queue',
      redisUrl,
      ...(withTestPlugin ? ['--plugin', testPluginUrl] : []),
      '--plugins-dir',
      pluginsDir,
      '--name',
      name,
      '--data-dir',
      join(dir, name),
      '--models',
      join(dir, 'no-models'),
      '--stall-timeout',
      '3',
    ],
    /ready\n/,
    env,
  );
  workers.set(name, child);
}

async function untilWorkers(n: number): Promise<Array<{ name: string; current_job: string | null }>> {
  for (;;) {
    const list = (await get(url, '/api/workers')).json;
    if (list.length === n) return list;
    await new Promise((r) => setTimeout(r, 200));
  }
}

let server: ChildProcess;
let redis: ChildProcess;
let redisArgs: string[];
/** A server process on the queue, its data in `<dir>/<name>` (which survives restarts). */
async function launchServer(
  name: string,
  options: Record<string, unknown> = {},
): Promise<{ child: ChildProcess; url: string }> {
  const r = await start(
    process.execPath,
    ['--import', 'tsx', serveScript, join(dir, name), JSON.stringify({ queue: redisUrl, pluginsDir, ...options })],
    /(http:\/\/\S+)\n/,
  );
  return { child: r.child, url: r.match[1] };
}
/** The server the tests talk to. */
async function startServer(): Promise<void> {
  ({ child: server, url } = await launchServer('server'));
}

beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'pg-queue-'));
  mkdirSync(join(dir, 'no-models')); // an empty model root: the test plugin needs no models
  mkdirSync(join(dir, 'redis'));
  const port = await freePort();
  // persistence on (append-only file, synced per write), as a deployment that must not lose queued jobs runs it
  redisArgs = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--dir',
    join(dir, 'redis'),
  ];
  redis = (await start(REDIS, redisArgs, /Ready to accept connections/)).child;
  redisUrl = `redis://127.0.0.1:${port}/0`;
  await startServer();
  await Promise.all([startWorker('wA'), startWorker('wB')]);
}, 180_000);

afterAll(async () => {
  for (const p of procs.reverse()) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          p.kill('SIGKILL');
          r(null);
        }, 10_000);
        p.once('exit', () => {
          clearTimeout(t);
          r(null);
        });
      });
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Number(v) → Slow → SaveNumber, and Pid (which process ran it). */
function prompt(v: number, steps: number, ms: number): Record<string, unknown> {
  return {
    '1': { class_type: 'Number', inputs: { value: v } },
    '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps, ms, seed: v } },
    '3': { class_type: 'SaveNumber', inputs: { value: ['2', 0], prefix: `q${v}` } },
    '4': { class_type: 'Pid', inputs: { x: ['2', 0] } },
  };
}

describe.skipIf(skip)('BullMQ queue with worker processes on a real redis-server', () => {
  it('two workers share the queue; progress, previews and outputs reach the server', async () => {
    const listed = await untilWorkers(2);
    expect(listed.map((w) => w.name)).toEqual(['wA', 'wB']);
    const ws = await WsRecorder.open(url, 'q1');
    const values = [1, 2, 3, 4];
    const ids: string[] = [];
    for (const v of values)
      ids.push((await post(url, '/prompt', { prompt: prompt(v, 4, 150), client_id: 'q1' })).json.prompt_id);
    const pids = new Set<number>();
    for (const [i, id] of ids.entries()) {
      await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 90_000);
      const job = (await get(url, `/api/jobs/${id}`)).json;
      expect(job.status, JSON.stringify(job.error)).toBe('success');
      expect(job.outputs['3'].value).toEqual([values[i] * 2]);
      pids.add(job.outputs['4'].pid[0]);
      const progress = ws.of(id).filter((f) => f.type === 'progress' && f.data.node === '2');
      // coalesced by the worker before Redis and by the server (≤ 10/s): the last value always arrives
      expect(
        coalescedProgressProblem(
          progress.map((f) => f.data.value as number),
          4,
        ),
      ).toBeNull();
      // the output file came back to the server's own folder
      const img = job.outputs['3'].images[0];
      const view = await fetch(`${url}/view?${new URLSearchParams(img)}`);
      expect(view.status).toBe(200);
      const bytes = Buffer.from(await view.arrayBuffer());
      expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(bytes.subarray(8).toString()).toBe(String(values[i] * 2));
    }
    expect(pids.size).toBe(2); // both workers ran jobs
    expect(ws.binary.length).toBeGreaterThanOrEqual(values.length); // previews (coalesced, ≤ 1 per step)
    ws.close();
  }, 180_000);

  it('/interrupt reaches a job running on a worker process', async () => {
    await untilWorkers(2);
    const ws = await WsRecorder.open(url, 'q3');
    const id = (await post(url, '/prompt', { prompt: prompt(5, 200, 100), client_id: 'q3' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'progress' && f.data.prompt_id === id);
    expect((await post(url, '/interrupt', { prompt_id: id })).status).toBe(200);
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 60_000);
    const job = (await get(url, `/api/jobs/${id}`)).json;
    expect(job.status).toBe('interrupted');
    const last = ws
      .of(id)
      .filter((f) => f.type === 'progress')
      .pop();
    expect(last!.data.value as number).toBeLessThan(200);
    expect(ws.of(id).some((f) => f.type === 'execution_interrupted')).toBe(true);
    ws.close();
  }, 120_000);

  it('a worker SIGKILLed mid-job: the other worker finishes the job, once', async () => {
    await untilWorkers(2);
    const ws = await WsRecorder.open(url, 'q2');
    const id = (await post(url, '/prompt', { prompt: prompt(7, 20, 200), client_id: 'q2' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'progress' && f.data.prompt_id === id && (f.data.value as number) >= 2, 90_000);
    const running = (await untilWorkers(2)).find((w) => w.current_job === id);
    expect(running, 'a worker reports the job as its current one').toBeDefined();
    const victim = workers.get(running!.name)!;
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 120_000);
    const job = (await get(url, `/api/jobs/${id}`)).json;
    expect(job.status, JSON.stringify(job.error)).toBe('success');
    expect(job.outputs['3'].value).toEqual([14]);
    // run to the end once: one terminal message for the job
    expect(ws.of(id).filter((f) => f.type === 'execution_success')).toHaveLength(1);
    const history = (await get(url, '/history')).json;
    expect(Object.keys(history).filter((k) => k === id)).toHaveLength(1);
    // the dead worker drops off the list once its heartbeat expires
    const left = await untilWorkers(1);
    expect(left[0].name).not.toBe(running!.name);
    ws.close();
  }, 240_000);

  it('the server SIGKILLed mid-job: the worker finishes it, and the restarted server records it with its outputs', async () => {
    await untilWorkers(1);
    const ws = await WsRecorder.open(url, 'q5');
    const id = (await post(url, '/prompt', { prompt: prompt(9, 12, 250), client_id: 'q5' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'progress' && f.data.prompt_id === id, 90_000);
    ws.close();
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    await startServer();
    let job: { status: string; outputs: Record<string, { value: number[]; images: Record<string, string>[] }> };
    for (;;) {
      job = (await get(url, `/api/jobs/${id}`)).json;
      if (job.status !== 'pending' && job.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(job.status, JSON.stringify(job)).toBe('success');
    expect(job.outputs['3'].value).toEqual([18]);
    const view = await fetch(`${url}/view?${new URLSearchParams(job.outputs['3'].images[0])}`);
    expect(view.status).toBe(200);
    expect(
      Buffer.from(await view.arrayBuffer())
        .subarray(8)
        .toString(),
    ).toBe('18');
    // re-attached, not re-run: the job ran once on the worker
    const history = (await get(url, '/history')).json;
    expect(Object.keys(history).filter((k) => k === id)).toHaveLength(1);
  }, 240_000);

  it("a worker without a job's node types refuses it and another worker runs it; with no capable worker the job fails saying why", async () => {
    const [capable] = await untilWorkers(1); // the survivor of the test above
    await startWorker('wLacking', false);
    await untilWorkers(2);
    const ws = await WsRecorder.open(url, 'q4');
    const ids: string[] = [];
    for (const v of [11, 12, 13, 14, 15, 16])
      ids.push((await post(url, '/prompt', { prompt: prompt(v, 2, 50), client_id: 'q4' })).json.prompt_id);
    for (const id of ids) {
      await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 90_000);
      const job = (await get(url, `/api/jobs/${id}`)).json;
      expect(job.status, JSON.stringify(job.error)).toBe('success');
      // a refused attempt is invisible to the client: one start, no error
      expect(ws.of(id).filter((f) => f.type === 'execution_start')).toHaveLength(1);
      expect(ws.of(id).some((f) => f.type === 'execution_error')).toBe(false);
    }
    const lacking = workers.get('wLacking')!;
    expect(output.get(lacking)).toMatch(/refused here, left for another worker: Node type not found: /);

    // the capable worker leaves: the next job has nowhere to go and fails with each worker's reason
    const leaving = workers.get(capable.name)!;
    leaving.kill('SIGTERM');
    await new Promise((r) => leaving.once('exit', r));
    await untilWorkers(1);
    const id = (await post(url, '/prompt', { prompt: prompt(17, 2, 50), client_id: 'q4' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 90_000);
    const job = (await get(url, `/api/jobs/${id}`)).json;
    expect(job.status).toBe('error');
    expect(job.error.message).toMatch(/^no worker can run this job: wLacking: Node type not found: .*(Number|Slow)/);
    const err = ws.of(id).find((f) => f.type === 'execution_error');
    expect(err?.data.exception_message).toMatch(/no worker can run this job/);
    ws.close();
  }, 240_000);

  it('Redis restarted with a job queued: the job survives and runs when a worker comes', async () => {
    await stopWorkers();
    const id = (await post(url, '/prompt', { prompt: prompt(21, 2, 50), client_id: 'q6' })).json.prompt_id;
    // the server hands it to the queue (no worker is there to take it)
    for (;;) {
      if ((await get(url, `/api/jobs/${id}`)).json.status === 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    redis.kill('SIGTERM');
    await new Promise((r) => redis.once('exit', r));
    redis = (await start(REDIS, redisArgs, /Ready to accept connections/)).child;
    await startWorker('wAfterRestart');
    for (;;) {
      const job = (await get(url, `/api/jobs/${id}`)).json;
      if (job.status !== 'pending' && job.status !== 'running') {
        expect(job.status, JSON.stringify(job.error)).toBe('success');
        expect(job.outputs['3'].value).toEqual([42]);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 240_000);

  it('50 prompts from 5 clients with 3 workers: none lost, none run twice', async () => {
    await Promise.all([startWorker('wBurst1'), startWorker('wBurst2')]);
    await untilWorkers(3);
    const clients = await Promise.all([0, 1, 2, 3, 4].map((c) => WsRecorder.open(url, `burst${c}`)));
    const posted = await Promise.all(
      clients.map(async (_, c) => {
        const ids: Array<{ id: string; v: number }> = [];
        for (let k = 0; k < 10; k++) {
          const v = 100 + c * 10 + k;
          const r = await post(url, '/prompt', { prompt: prompt(v, 2, 20), client_id: `burst${c}` });
          expect(r.status).toBe(200);
          ids.push({ id: r.json.prompt_id, v });
        }
        return ids;
      }),
    );
    const pids = new Set<number>();
    for (const [c, ids] of posted.entries())
      for (const { id, v } of ids) {
        const ws = clients[c];
        await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 120_000);
        const job = (await get(url, `/api/jobs/${id}`)).json;
        expect(job.status, JSON.stringify(job.error)).toBe('success');
        expect(job.outputs['3'].value).toEqual([v * 2]);
        pids.add(job.outputs['4'].pid[0]);
        // ran once: one start and one success reached its client
        expect(ws.of(id).filter((f) => f.type === 'execution_start')).toHaveLength(1);
        expect(ws.of(id).filter((f) => f.type === 'execution_success')).toHaveLength(1);
      }
    expect(new Set(posted.flat().map((p) => p.id)).size).toBe(50);
    expect(pids.size).toBeGreaterThan(1); // the work was shared
    for (const ws of clients) ws.close();
    burstIds = posted.flat().map((p) => p.id);
  }, 300_000);

  it('two servers on one Redis see one queue and one history; delete, interrupt and /view work across them', async () => {
    await untilWorkers(3);
    // A second server joins late: it catches up with the history written before it came
    const b = await launchServer('server-b');
    serverB = b;
    const viewed = async (base: string, img: Record<string, string>) =>
      Buffer.from(await (await fetch(`${base}/view?${new URLSearchParams(img)}`)).arrayBuffer())
        .subarray(8)
        .toString();
    const old = await finished(b.url, burstIds[0]);
    expect(old.status.status_str).toBe('success');
    expect(await viewed(b.url, old.outputs['3'].images[0])).toBe('200'); // 2 × 100, written by a worker for A

    // Four long prompts on A (three workers): B's /queue lists A's running and pending ones
    const ids: string[] = [];
    for (const v of [31, 32, 33, 34])
      ids.push((await post(url, '/prompt', { prompt: prompt(v, 60, 100), client_id: 'cl' })).json.prompt_id);
    const seen = await until("A's prompts in B's queue", async () => {
      const q = (await get(b.url, '/queue')).json as { queue_running: unknown[][]; queue_pending: unknown[][] };
      const running = q.queue_running.map((i) => i[1]);
      const pending = q.queue_pending.map((i) => i[1]);
      return running.length === 3 && pending.length === 1 ? { running, pending } : undefined;
    });
    expect([...seen.running, ...seen.pending].sort()).toEqual([...ids].sort());
    // Deleting A's pending prompt through B
    const [queued] = seen.pending as string[];
    expect((await post(b.url, '/queue', { delete: [queued] })).status).toBe(200);
    await until('the delete on A', async () =>
      (await get(url, `/api/jobs/${queued}`)).status === 404 ? true : undefined,
    );
    // Interrupting one of A's running prompts through B
    const [victim, ...rest] = seen.running as string[];
    expect((await post(b.url, '/interrupt', { prompt_id: victim })).status).toBe(200);
    expect((await finished(url, victim)).status.status_str).toBe('error');
    expect((await get(url, `/api/jobs/${victim}`)).json.status).toBe('interrupted');
    // The others finish on A and show up in B's history, their outputs viewable on B
    for (const id of rest) {
      const entry = await finished(b.url, id);
      expect(entry.status.status_str).toBe('success');
      const v = [31, 32, 33, 34][ids.indexOf(id)];
      expect(await viewed(b.url, entry.outputs['3'].images[0])).toBe(String(v * 2));
    }
    // And the other way round: a prompt given to B is in A's history
    const fromB = (await post(b.url, '/prompt', { prompt: prompt(35, 2, 20), client_id: 'cl' })).json.prompt_id;
    const there = await finished(url, fromB);
    expect(there.status.status_str).toBe('success');
    expect(await viewed(url, there.outputs['3'].images[0])).toBe('70');
    // One history: every job once on each server
    const ha = Object.keys((await get(url, '/history?max_items=1000')).json);
    const hb = Object.keys((await get(b.url, '/history?max_items=1000')).json);
    expect(new Set(hb)).toEqual(new Set(ha));
    expect(ha).toHaveLength(new Set(ha).size);
  }, 300_000);

  it('a history delete made while another server is down reaches it when it comes back, before it listens', async () => {
    await untilWorkers(3);
    const b = serverB!;
    const [gone, kept] = [burstIds[1], burstIds[2]];
    for (const id of [gone, kept]) await finished(b.url, id); // B has both
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
    expect((await post(url, '/history', { delete: [gone] })).status).toBe(200);
    expect((await get(url, `/history/${gone}`)).json).toEqual({});
    // a job finished after the delete: once B has it, B has read past the delete in the shared history
    const after = (await post(url, '/prompt', { prompt: prompt(36, 2, 20), client_id: 'cl' })).json.prompt_id;
    await finished(url, after);
    serverB = await launchServer('server-b'); // the same data dir: it catches up from where it stopped
    // before it listens (and before its runner starts anything): the delete is applied already
    expect((await get(serverB.url, `/history/${gone}`)).json).toEqual({});
    await finished(serverB.url, after);
    expect((await get(serverB.url, `/history/${gone}`)).json).toEqual({});
    expect((await get(serverB.url, `/api/jobs/${gone}`)).status).toBe(404);
    expect(Object.keys((await get(serverB.url, `/history/${kept}`)).json)).toEqual([kept]);
  }, 240_000);

  it('a history clear made while another server is down empties what came before it there too', async () => {
    const b = serverB!;
    const before = Object.keys((await get(b.url, '/history')).json);
    expect(before.length).toBeGreaterThan(0); // B holds the earlier jobs, its own and A's
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
    expect((await post(url, '/history', { clear: true })).status).toBe(200);
    expect((await get(url, '/history')).json).toEqual({});
    serverB = await launchServer('server-b');
    // applied during its catch-up, before it listens
    expect((await get(serverB.url, '/history')).json).toEqual({});
    const after = (await post(serverB.url, '/prompt', { prompt: prompt(37, 2, 20), client_id: 'cl' })).json.prompt_id;
    await finished(serverB.url, after); // a job after the clear stays, on both
    await finished(url, after);
    expect(Object.keys((await get(serverB.url, '/history')).json)).toEqual([after]);
  }, 240_000);

  it("queue_remaining (GET /prompt and the status message) counts every live server's prompts", async () => {
    await stopWorkers(); // nothing runs: what is posted stays queued
    const b = serverB!;
    const remaining = async (base: string) => (await get(base, '/prompt')).json.exec_info.queue_remaining as number;
    const ws = await WsRecorder.open(b.url, 'qr');
    const statusOf = (n: number) => (f: { type: string; data: Record<string, unknown> }) =>
      f.type === 'status' &&
      (f.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining === n;
    expect(await remaining(b.url)).toBe(0);
    for (const v of [51, 52, 53]) await post(url, '/prompt', { prompt: prompt(v, 2, 20), client_id: 'qr' });
    expect(await remaining(url)).toBe(3);
    await ws.waitFor(statusOf(3), 30_000); // B's clients hear of A's prompts
    expect(await remaining(b.url)).toBe(3);
    await post(b.url, '/prompt', { prompt: prompt(54, 2, 20), client_id: 'qr' });
    await until('4 on A', async () => ((await remaining(url)) === 4 ? true : undefined));
    expect(await remaining(b.url)).toBe(4);
    // emptied: the pending ones cleared through A, the running ones (waiting in Redis) interrupted
    const seen = ws.frames.length;
    expect((await post(url, '/queue', { clear: true })).status).toBe(200);
    for (const base of [url, b.url]) await post(base, '/interrupt', {});
    await ws.waitFor((f) => ws.frames.indexOf(f) >= seen && statusOf(0)(f), 30_000);
    await until('0 on A', async () => ((await remaining(url)) === 0 ? true : undefined));
    ws.close();
  }, 240_000);

  it("the server passes on the workers' coalesced progress without holding it a second time", async () => {
    await untilWorkers(0);
    // a server whose own interval would hold everything between a node's first and last step, and a
    // worker that publishes every step: the client sees every step, in order
    const c = await launchServer('server-c', { progressIntervalMs: 60_000 });
    await startWorker('wEvery', true, { PRIORGRAPH_PROGRESS_INTERVAL_MS: '0' });
    const ws = await WsRecorder.open(c.url, 'ev');
    const id = (await post(c.url, '/prompt', { prompt: prompt(61, 8, 30), client_id: 'ev' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 90_000);
    const values = ws
      .of(id)
      .filter((f) => f.type === 'progress' && f.data.node === '2')
      .map((f) => f.data.value);
    expect(values).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ws.binary).toHaveLength(8); // every step's preview
    ws.close();
  }, 240_000);
});
