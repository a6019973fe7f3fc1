import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKER_NODE_FLAGS } from '../src/index.js';
import {
  get,
  HOSTILE_PLUGINS_DIR,
  post,
  type SpawnedServer,
  slowPrompt,
  spawnServer,
  WsRecorder,
} from '../testkit/index.js';

const pluginsDir = HOSTILE_PLUGINS_DIR;
const NODE_TIMEOUT_MS = 8000;

type Proc = SpawnedServer;

function startServerProcess(dataDir: string, options: Record<string, unknown>): Promise<Proc> {
  return spawnServer(dataDir, { options });
}

let dataDir: string;
let srv: Proc;
let ws: WsRecorder;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'pg-workerproc-'));
  srv = await startServerProcess(dataDir, { pluginsDir, interruptGraceMs: 500, nodeTimeoutMs: NODE_TIMEOUT_MS });
  ws = await WsRecorder.open(srv.url, 'wp');
});

afterAll(() => {
  ws?.close();
  if (srv && srv.child.exitCode === null && srv.child.signalCode === null) srv.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Number → <type> (an output node); API format. */
function hostile(type: string, inputs: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '1': { class_type: 'Number', inputs: { value: 1 } },
    '2': { class_type: type, inputs: { x: ['1', 0], ...inputs } },
  };
}

async function queue(prompt: Record<string, unknown>): Promise<string> {
  const r = await post(srv.url, '/prompt', { prompt, client_id: 'wp' });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.prompt_id;
}

// biome-ignore lint/suspicious/noExplicitAny: the job view is plain JSON
async function finished(id: string): Promise<any> {
  await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 45_000);
  return (await get(srv.url, `/api/jobs/${id}`)).json;
}

async function pidOfWorker(): Promise<{ pid: number; runs: number }> {
  const job = await finished(await queue(hostile('Pid')));
  expect(job.status).toBe('success');
  return { pid: job.outputs['2'].pid[0], runs: job.outputs['2'].runs[0] };
}

async function normalJobSucceeds(value: number): Promise<void> {
  const job = await finished(await queue(slowPrompt(2, 5, value, `after${value}`)));
  expect(job.status).toBe('success');
  expect(job.outputs['3'].value).toEqual([value * 2]);
}

async function untilExists(file: string): Promise<void> {
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 20));
}

describe('node code runs in a supervised worker process', () => {
  let firstPid = 0;

  it('runs nodes in another process, which stays the same (models warm) between jobs', async () => {
    const a = await pidOfWorker();
    const b = await pidOfWorker();
    expect(a.pid).not.toBe(srv.child.pid);
    expect(b.pid).toBe(a.pid);
    expect(b.runs).toBe(a.runs + 1);
    firstPid = a.pid;
    // started with the worker's node flags (its young generation: see WORKER_NODE_FLAGS)
    const argv = readFileSync(`/proc/${a.pid}/cmdline`, 'utf8').split('\0');
    for (const f of WORKER_NODE_FLAGS) expect(argv).toContain(f);
    const workers = (await get(srv.url, '/api/workers')).json;
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({ name: 'local', kind: 'local', pid: a.pid, current_job: null });
    expect(workers[0].plugins).toEqual(['test', 'hostile']);
  });

  it('a node that ignores interrupt: the worker is restarted, the job fails naming the node, the next job runs', async () => {
    const hang = await queue(hostile('Hang'));
    const next = queue(slowPrompt(2, 5, 11, 'behind-hang'));
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === '2' && f.data.prompt_id === hang);
    expect((await post(srv.url, '/interrupt', {})).status).toBe(200);
    const job = await finished(hang);
    expect(job.status).toBe('error');
    expect(job.error.message).toMatch(/node 2 \(hostile\.Hang\)/);
    expect(job.error.message).toMatch(/did not stop within 0\.5 s of the interrupt/);
    const behind = await finished(await next);
    expect(behind.status).toBe('success');
    const after = await pidOfWorker();
    expect(after.pid).not.toBe(firstPid);
  });

  it('HTTP answers while a node busy-loops, and the job then finishes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-busy-'));
    const started = join(dir, 'started');
    const stop = join(dir, 'stop');
    const id = await queue(hostile('BusyLoop', { started, stop }));
    await untilExists(started);
    // the node is spinning now (it only stops once `stop` exists): the API still answers
    const q = await get(srv.url, '/queue');
    expect(q.status).toBe(200);
    expect(q.json.queue_running.map((i: unknown[]) => i[1])).toEqual([id]);
    expect((await get(srv.url, '/system_stats')).status).toBe(200);
    expect((await get(srv.url, `/api/jobs/${id}`)).json.status).toBe('running');
    writeFileSync(stop, '');
    expect((await finished(id)).status).toBe('success');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a node that spins past the per-node time limit fails its job naming the node; the queue goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-busy-'));
    const id = await queue(hostile('BusyLoop', { started: join(dir, 'started'), stop: join(dir, 'never') }));
    const job = await finished(id);
    expect(job.status).toBe('error');
    expect(job.error.message).toMatch(/node 2 \(hostile\.BusyLoop\)/);
    expect(job.error.message).toContain(`time limit of ${NODE_TIMEOUT_MS / 1000} s`);
    expect(job.error.nodeId).toBe('2');
    await normalJobSucceeds(21);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [type, cause] of [
    ['StrayRejection', /unhandled rejection.*stray rejection from a plugin/],
    ['TimerThrow', /uncaught exception.*thrown from a timer in a plugin/],
    ['Exit', /exited with code 3/],
  ] as const) {
    it(`${type}: the job fails naming the node and the cause, the server lives on`, async () => {
      const job = await finished(await queue(hostile(type, type === 'Exit' ? { code: 3 } : {})));
      expect(job.status).toBe('error');
      expect(job.error.message).toMatch(new RegExp(`node 2 \\(hostile\\.${type}\\)`));
      expect(job.error.message).toMatch(cause);
      await normalJobSucceeds(31);
    });
  }

  it('SIGTERM exits while a node hangs', async () => {
    const id = await queue(hostile('Hang'));
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === '2' && f.data.prompt_id === id);
    srv.child.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
  });
});

/** The nice value of every thread of a process (Linux /proc: field 19 of stat, the 17th after "comm) "). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) =>
    Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]),
  );
}

describe.skipIf(!existsSync('/proc/self/task'))('workerNice', () => {
  it("every thread of the worker process runs that many nice levels below the server's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-workernice-'));
    const s = await spawnServer(dir, { options: { pluginsDir, workerNice: 3 } });
    try {
      const [server] = threadNices(s.child.pid!);
      expect(server).toBeLessThanOrEqual(16); // room below it, or this test could not tell
      const r = await post(s.url, '/prompt', { prompt: hostile('Pid') });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      let job = (await get(s.url, `/api/jobs/${r.json.prompt_id}`)).json;
      while (job.status === 'pending' || job.status === 'running') {
        await new Promise((res) => setTimeout(res, 50));
        job = (await get(s.url, `/api/jobs/${r.json.prompt_id}`)).json;
      }
      expect(job.status).toBe('success');
      const nices = threadNices(job.outputs['2'].pid[0]);
      expect(nices.length).toBeGreaterThan(1);
      expect(new Set(nices)).toEqual(new Set([server! + 3]));
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
