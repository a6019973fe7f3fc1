/**
 * The HTTP and websocket flows against a real server on an ephemeral port, with core's real
 * Executor and a small test plugin (tests/helpers.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/index.js';
import {
  coalescedProgressProblem,
  get,
  post,
  type Started,
  slowPrompt,
  startServer,
  testPlugin,
  WsRecorder,
} from '../testkit/index.js';

let s: Started;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

async function runToEnd(ws: WsRecorder, prompt: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const r = await post(s.url, '/prompt', { prompt, client_id: 'c-main', ...extra });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const id = r.json.prompt_id as string;
  await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
  return id;
}

describe('ComfyUI info routes', () => {
  it('answers the ping and info routes bare and under /api', async () => {
    for (const prefix of ['', '/api']) {
      const p = await get(s.url, `${prefix}/prompt`);
      expect(p.json).toEqual({ exec_info: { queue_remaining: expect.any(Number) } });
      expect((await get(s.url, `${prefix}/features`)).json).toEqual({
        supports_preview_metadata: true,
        max_upload_size: 32 * 1024 * 1024,
      });
      expect((await get(s.url, `${prefix}/embeddings`)).json).toEqual([]);
      expect((await get(s.url, `${prefix}/extensions`)).json).toEqual([]);
      const stats = (await get(s.url, `${prefix}/system_stats`)).json;
      expect(stats.system).toMatchObject({ os: expect.any(String), ram_total: expect.any(Number) });
      expect(stats.devices[0]).toMatchObject({ name: 'cpu', type: 'cpu', index: 0 });
      expect(Array.isArray((await get(s.url, `${prefix}/models`)).json)).toBe(true);
    }
  });

  it('serves /object_info from the registry (qualified names; bare lookups resolve)', async () => {
    const all = (await get(s.url, '/object_info')).json;
    expect(Object.keys(all).sort()).toEqual(['test.Add', 'test.Fail', 'test.Number', 'test.SaveNumber', 'test.Slow']);
    expect(all['test.Number'].input.required.value[0]).toBe('INT');
    expect(all['test.SaveNumber'].output_node).toBe(true);
    const one = (await get(s.url, '/api/object_info/Slow')).json;
    expect(Object.keys(one)).toEqual(['Slow']);
    expect(one.Slow.input.required.seed[1].control_after_generate).toBe(true);
    expect((await get(s.url, '/object_info/Nope')).json).toEqual({});
  });

  it('native routes: node types with JSON schema, plugins, openapi listing every route', async () => {
    const types = (await get(s.url, '/api/node-types')).json;
    expect(types['test.Slow'].inputs_schema.type).toBe('object');
    expect(types['test.Slow'].outputs).toEqual([{ name: 'INT', type: 'INT' }]);
    const plugins = (await get(s.url, '/api/plugins')).json;
    expect(plugins.loaded.map((p: { name: string }) => p.name)).toEqual(['test']);
    expect(plugins.failed).toEqual([]);
    const api = (await get(s.url, '/api/openapi.json')).json;
    for (const p of ['/prompt', '/api/prompt', '/history/{id}', '/api/history/{id}', '/view', '/upload/image', '/ws']) {
      expect(api.paths[p], p).toBeDefined();
    }
    for (const p of ['/api/workflows/run', '/api/jobs/{id}', '/api/node-types', '/api/plugins', '/api/openapi.json']) {
      expect(api.paths[p], p).toBeDefined();
    }
    expect((await get(s.url, '/api/default-workflow')).status).toBe(404);
  });

  it('/api/plugins lists plugins that failed to load, with the reason; the rest still load', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'pg-plugins-'));
    mkdirSync(join(pdir, 'broken'));
    writeFileSync(join(pdir, 'broken', 'index.mjs'), "throw new Error('this plugin is broken on purpose');\n");
    mkdirSync(join(pdir, 'clash'));
    writeFileSync(
      join(pdir, 'clash', 'index.mjs'),
      "export default { name: 'test', version: '9.9.9', nodes: [] };\n", // the name 'test' is taken
    );
    const t = await startServer({ pluginsDir: pdir });
    try {
      const r = (await get(t.url, '/api/plugins')).json;
      expect(r.loaded.map((p: { name: string }) => p.name)).toEqual(['test']);
      const reasons = r.failed.map((f: { reason: string }) => f.reason).join('\n');
      expect(r.failed).toHaveLength(2);
      expect(reasons).toMatch(/broken on purpose/);
      expect(reasons).toMatch(/already registered/);
      expect((await get(t.url, '/object_info/Slow')).json.Slow).toBeDefined();
    } finally {
      await t.close();
      rmSync(pdir, { recursive: true, force: true });
    }
  });

  it('/api/openapi.json describes every route the app serves (and nothing it does not)', async () => {
    const api = (await get(s.url, '/api/openapi.json')).json;
    const served = new Set<string>();
    // express 5 router internals; the resource routers (src/routes/) are mounted at / on the app
    // biome-ignore lint/suspicious/noExplicitAny: express 5 router internals
    const walk = (stack: any[]) => {
      for (const layer of stack) {
        if (!layer.route) {
          if (Array.isArray(layer.handle?.stack)) walk(layer.handle.stack);
          continue;
        }
        const paths: string[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const p of paths) {
          for (const m of Object.keys(layer.route.methods)) served.add(`${m} ${p.replace(/:(\w+)/g, '{$1}')}`);
        }
      }
    };
    // biome-ignore lint/suspicious/noExplicitAny: express 5 router internals
    walk((s.server.app as any).router.stack);
    const documented = new Set<string>();
    for (const [p, ops] of Object.entries(api.paths as Record<string, object>)) {
      for (const m of Object.keys(ops)) if (!(p === '/ws' || p === '/api/ws')) documented.add(`${m} ${p}`);
    }
    served.delete('get /'); // the "build the editor" page
    expect(served.size).toBeGreaterThan(40);
    expect([...served].sort()).toEqual([...documented].sort());
  });

  it('serves the editor build at / when it exists, else a page saying how to build it', async () => {
    const ui = mkdtempSync(join(tmpdir(), 'pg-ui-'));
    writeFileSync(join(ui, 'index.html'), '<!doctype html><title>editor</title>');
    mkdirSync(join(ui, 'assets'));
    writeFileSync(join(ui, 'assets', 'app.js'), 'console.log(1)');
    const built = await startServer({ uiDir: ui, token: 'token-for-ui-test' });
    const missing = await startServer({ uiDir: join(ui, 'nope') });
    try {
      // static files need no token (they hold no data); the API does
      expect(await (await fetch(`${built.url}/`)).text()).toContain('<title>editor</title>');
      expect((await fetch(`${built.url}/assets/app.js`)).status).toBe(200);
      expect((await fetch(`${built.url}/prompt`)).status).toBe(401);
      const page = await (await fetch(`${missing.url}/`)).text();
      expect(page).toMatch(/editor is not built/);
      expect(page).toMatch(/vite build/);
    } finally {
      await built.close();
      await missing.close();
      rmSync(ui, { recursive: true, force: true });
    }
  });
});

describe('a run, end to end', () => {
  it('streams ComfyUI events in order, writes history before the terminal event, serves the image', async () => {
    const ws = await WsRecorder.open(s.url, 'c-main');
    const status = await ws.waitFor((f) => f.type === 'status');
    expect(status.data.sid).toBe('c-main');
    const r = await post(s.url, '/prompt', { prompt: slowPrompt(4, 10, 5), client_id: 'c-main' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ prompt_id: expect.any(String), number: expect.any(Number), node_errors: {} });
    const id = r.json.prompt_id;
    // The moment execution_success arrives, history must already hold the result.
    const success = await ws.waitFor((f) => f.type === 'execution_success' && f.data.prompt_id === id);
    const hist = (await get(s.url, `/history/${id}`)).json;
    expect(hist[id].status).toMatchObject({ status_str: 'success', completed: true });
    expect(success.data.timestamp).toEqual(expect.any(Number));
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);

    const types = ws.of(id).map((f) => (f.type === 'executing' ? `executing:${f.data.node}` : f.type));
    expect(types[0]).toBe('execution_start');
    expect(types[1]).toBe('execution_cached');
    expect(types.indexOf('executing:2')).toBeLessThan(types.indexOf('progress'));
    expect(types.lastIndexOf('progress')).toBeLessThan(types.indexOf('executed'));
    expect(types.indexOf('executed')).toBeLessThan(types.indexOf('execution_success'));
    expect(types.slice(-2)).toEqual(['execution_success', 'executing:null']);
    // Per-step progress is coalesced (at most 10/s by default): increasing values, the last always.
    const progress = ws.of(id).filter((f) => f.type === 'progress');
    expect(
      coalescedProgressProblem(
        progress.map((p) => p.data.value as number),
        4,
      ),
    ).toBeNull();
    expect(progress[0].data).toMatchObject({ max: 4, node: '2', prompt_id: id });

    // Binary previews (coalesced like progress): type 1, format 2 (PNG), then the image bytes.
    expect(ws.binary.length).toBeGreaterThanOrEqual(1);
    expect(ws.binary.length).toBeLessThanOrEqual(4);
    expect(ws.binary[0].readUInt32BE(0)).toBe(1);
    expect(ws.binary[0].readUInt32BE(4)).toBe(2);
    expect([...ws.binary[0].subarray(8, 12)]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    const executed = ws.of(id).find((f) => f.type === 'executed')!;
    const img = (executed.data.output as { images: Array<{ filename: string; subfolder: string; type: string }> })
      .images[0];
    expect(hist[id].outputs['3'].images[0]).toEqual(img);
    expect(hist[id].prompt[1]).toBe(id);
    const view = await fetch(`${s.url}/view?${new URLSearchParams({ ...img })}`);
    expect(view.status).toBe(200);
    expect(view.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await view.arrayBuffer());
    expect(bytes.subarray(8).toString()).toBe('10'); // 5 * 2
    expect(bytes.equals(readFileSync(join(s.dataDir, 'output', img.filename)))).toBe(true);

    // The same prompt again: everything but the output node comes from the executor's cache.
    const id2 = await runToEnd(ws, slowPrompt(4, 10, 5));
    const cached = ws.of(id2).find((f) => f.type === 'execution_cached')!;
    expect((cached.data.nodes as string[]).length).toBeGreaterThan(0);
    expect(ws.of(id2).filter((f) => f.type === 'progress')).toHaveLength(0);
    ws.close();
  });

  it('type-4 previews with metadata for clients that announce supports_preview_metadata', async () => {
    const ws = await WsRecorder.open(s.url, 'c-meta');
    ws.send({ type: 'feature_flags', data: { supports_preview_metadata: true } });
    await ws.waitFor((f) => f.type === 'feature_flags');
    const r = await post(s.url, '/prompt', { prompt: slowPrompt(2, 5, 11), client_id: 'c-meta' });
    const id = r.json.prompt_id;
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
    expect(ws.binary.length).toBe(2);
    const b = ws.binary[0];
    expect(b.readUInt32BE(0)).toBe(4);
    const len = b.readUInt32BE(4);
    const meta = JSON.parse(b.subarray(8, 8 + len).toString());
    expect(meta).toMatchObject({ node_id: '2', prompt_id: id, image_type: 'image/png' });
    expect([...b.subarray(8 + len, 12 + len)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    ws.close();
  });

  it('reports a failing node as execution_error, with the error in history', async () => {
    const ws = await WsRecorder.open(s.url, 'c-main');
    const prompt = {
      '1': { class_type: 'Number', inputs: { value: 1 } },
      '2': { class_type: 'Fail', inputs: { x: ['1', 0], message: 'kaput' } },
    };
    const id = await runToEnd(ws, prompt);
    const err = ws.of(id).find((f) => f.type === 'execution_error')!;
    expect(err.data).toMatchObject({
      prompt_id: id,
      node_id: '2',
      exception_message: expect.stringContaining('kaput'),
    });
    expect(Array.isArray(err.data.traceback)).toBe(true);
    const h = (await get(s.url, `/history/${id}`)).json[id];
    expect(h.status).toMatchObject({ status_str: 'error', completed: false });
    expect(h.status.messages.map((m: [string]) => m[0])).toContain('execution_error');
    const job = (await get(s.url, `/api/jobs/${id}`)).json;
    expect(job).toMatchObject({
      id,
      status: 'error',
      error: { message: expect.stringContaining('kaput'), nodeId: '2' },
    });
    ws.close();
  });

  it('accepts a priorgraph document in /prompt and in /api/workflows/run?wait=1', async () => {
    const doc = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        a: { type: 'test.Number', version: 1, inputs: { value: 20 } },
        b: { type: 'test.Number', version: 1, inputs: { value: 22 } },
        sum: {
          type: 'test.Add',
          version: 1,
          inputs: { a: { node: 'a', output: 'INT' }, b: { node: 'b', output: 'INT' } },
        },
        out: { type: 'test.SaveNumber', version: 1, inputs: { value: { node: 'sum', output: 'INT' }, prefix: 'doc' } },
      },
    };
    const r = await post(s.url, '/api/workflows/run?wait=1', doc);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.status).toBe('success');
    expect(r.json.outputs.out.value).toEqual([42]);
    const q = await post(s.url, '/api/prompt', { prompt: doc });
    expect(q.status).toBe(200);
    // the queue shows it as an API-format prompt
    const item = (await get(s.url, `/api/jobs/${q.json.prompt_id}`)).json;
    expect(item.id).toBe(q.json.prompt_id);
    const nowait = await post(s.url, '/api/workflows/run', doc);
    expect(nowait.status).toBe(202);
    expect(nowait.json).toMatchObject({ prompt_id: expect.any(String), status: 'pending' });
  });
});

describe('validation and conflicts', () => {
  it('answers 400 with ComfyUI error + node_errors for an invalid prompt', async () => {
    const bad = {
      '1': { class_type: 'Number', inputs: { value: 5000 } },
      '2': { class_type: 'SaveNumber', inputs: { value: ['1', 0] } },
    };
    const r = await post(s.url, '/prompt', { prompt: bad });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ type: expect.any(String), message: expect.any(String) });
    expect(r.json.node_errors['1'].errors[0]).toMatchObject({
      type: 'value_bigger_than_max',
      extra_info: { input_name: 'value' },
    });
    expect(r.json.node_errors['1'].class_type).toBeDefined();
    const unknown = await post(s.url, '/prompt', { prompt: { '1': { class_type: 'Nope', inputs: {} } } });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json)).toContain('Nope');
    const none = await post(s.url, '/prompt', { client_id: 'x' });
    expect(none.status).toBe(400);
    expect(none.json.error.type).toBe('no_prompt');
  });

  it('keeps seeds above 2^53 − 1 exact (ComfyUI clients send up to 2^64 − 1) and refuses 2^64', async () => {
    const raw = (seed: string) =>
      fetch(`${s.url}/prompt`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // a literal in the JSON text, as a client serialising a 64-bit integer writes it
        body: JSON.stringify({ prompt: slowPrompt(1, 1) }).replace('"seed":3', `"seed":${seed}`),
      });
    const max = '18446744073709551615';
    const ok = await raw(max);
    expect(ok.status).toBe(200);
    const id = ((await ok.json()) as { prompt_id: string }).prompt_id;
    let entry = '';
    for (let i = 0; i < 100 && !entry.includes(id); i++) {
      entry = JSON.stringify((await get(s.url, `/history/${id}`)).json);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(entry).toContain(max); // JSON.parse would have made it 18446744073709552000
    const over = await raw('18446744073709551616');
    expect(over.status).toBe(400);
    const body = (await over.json()) as { node_errors: Record<string, { errors: Array<{ type: string }> }> };
    expect(body.node_errors['2'].errors[0].type).toBe('value_bigger_than_max');
  });

  it('answers 409 for a duplicate prompt_id', async () => {
    const id = 'dup-prompt-1';
    expect((await post(s.url, '/prompt', { prompt: slowPrompt(1, 1), prompt_id: id })).status).toBe(200);
    const again = await post(s.url, '/prompt', { prompt: slowPrompt(1, 1), prompt_id: id });
    expect(again.status).toBe(409);
    expect(again.json.error.type).toBe('duplicate_prompt_id');
  });
});

describe('queue, interrupt, history, jobs', () => {
  it('a racing duplicate prompt_id is accepted exactly once; jobs run one at a time, in order', async () => {
    const ws = await WsRecorder.open(s.url, 'c-race');
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        post(s.url, '/prompt', { prompt: slowPrompt(1, 1, 61, 'race'), prompt_id: 'race-1', client_id: 'c-race' }),
      ),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(11);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(
        (await post(s.url, '/prompt', { prompt: slowPrompt(3, 10, 70 + i, `seq${i}`), client_id: 'c-race' })).json
          .prompt_id,
      );
    }
    const end = await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === ids[2]);
    const mine = new Set(['race-1', ...ids]);
    const order = ws.frames
      .filter((f) => mine.has(f.data.prompt_id as string))
      .filter((f) => f.type === 'execution_start' || (f.type === 'executing' && f.data.node === null))
      .map((f) => `${f.type === 'execution_start' ? 'start' : 'end'}:${f.data.prompt_id}`);
    expect(order).toEqual(['race-1', ...ids].flatMap((id) => [`start:${id}`, `end:${id}`]));
    // queue changes are announced to all sockets, coalesced in time (ws.ts statusChanged): after the
    // greeting, counts while the jobs ran, and the final count once the last one has finished
    const remaining = (f: (typeof ws.frames)[number]) =>
      f.type === 'status'
        ? (f.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining
        : -1;
    await ws.waitFor((f) => ws.frames.indexOf(f) > ws.frames.indexOf(end) && remaining(f) === 0);
    expect(ws.frames.filter((f) => remaining(f) > 0).length).toBeGreaterThanOrEqual(1);
    ws.close();
  });

  it('lists running and pending, deletes pending, interrupts by prompt id, tells statuses apart', async () => {
    const ws = await WsRecorder.open(s.url, 'c-q');
    const a = (await post(s.url, '/prompt', { prompt: slowPrompt(200, 20, 1, 'qa'), client_id: 'c-q' })).json.prompt_id;
    const b = (await post(s.url, '/prompt', { prompt: slowPrompt(2, 5, 2, 'qb'), client_id: 'c-q' })).json.prompt_id;
    const c = (await post(s.url, '/prompt', { prompt: slowPrompt(2, 5, 3, 'qc'), client_id: 'c-q' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'progress' && f.data.prompt_id === a);
    const q = (await get(s.url, '/queue')).json;
    expect(q.queue_running.map((i: unknown[]) => i[1])).toEqual([a]);
    expect(q.queue_pending.map((i: unknown[]) => i[1])).toEqual([b, c]);
    expect(q.queue_running[0]).toHaveLength(5);
    expect((await get(s.url, `/api/jobs/${a}`)).json.status).toBe('running');
    expect((await get(s.url, `/api/jobs/${c}`)).json).toMatchObject({ status: 'pending', queue_position: 1 });
    const unknown = await get(s.url, '/api/jobs/does-not-exist');
    expect(unknown.status).toBe(404);
    expect(unknown.json.status).toBe('unknown');
    const hRunning = await get(s.url, `/history/${a}`);
    expect(hRunning.json).toEqual({});
    expect(hRunning.headers.get('x-priorgraph-job-status')).toBe('running');
    expect((await get(s.url, `/history/${c}`)).headers.get('x-priorgraph-job-status')).toBe('pending');
    const withPending = (await get(s.url, `/history/${c}?include_pending=1`)).json;
    expect(withPending[c].status).toEqual({ status_str: 'pending', completed: false, messages: [] });
    expect((await get(s.url, `/api/history/${a}?include_pending=1`)).json[a].status.status_str).toBe('running');
    expect((await get(s.url, '/history/nope?include_pending=1')).json).toEqual({});
    expect((await get(s.url, '/history/nope')).headers.get('x-priorgraph-job-status')).toBe('unknown');

    expect((await post(s.url, '/queue', { delete: [b] })).json).toEqual({});
    expect((await post(s.url, '/interrupt', { prompt_id: 'someone-else' })).json).toEqual({});
    expect((await post(s.url, '/interrupt', { prompt_id: a })).json).toEqual({});
    const intr = await ws.waitFor((f) => f.type === 'execution_interrupted' && f.data.prompt_id === a);
    expect(intr.data).toMatchObject({ node_id: expect.any(String), executed: expect.any(Array) });
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === c);
    expect((await get(s.url, `/api/jobs/${a}`)).json.status).toBe('interrupted');
    expect((await get(s.url, `/api/jobs/${b}`)).status).toBe(404);
    expect((await get(s.url, `/api/jobs/${c}`)).json.status).toBe('success');
    expect((await get(s.url, `/history/${a}`)).json[a].status.status_str).toBe('error');
    // progress of `a` stopped well before 200 steps
    expect(ws.of(a).filter((f) => f.type === 'progress').length).toBeLessThan(200);
    ws.close();
  });

  it('a global interrupt (no body) stops the running job; POST /queue {clear} empties pending', async () => {
    const ws = await WsRecorder.open(s.url, 'c-g');
    const a = (await post(s.url, '/prompt', { prompt: slowPrompt(300, 20, 7, 'ga'), client_id: 'c-g' })).json.prompt_id;
    const b = (await post(s.url, '/prompt', { prompt: slowPrompt(2, 5, 8, 'gb'), client_id: 'c-g' })).json.prompt_id;
    await ws.waitFor((f) => f.type === 'progress' && f.data.prompt_id === a);
    expect((await post(s.url, '/queue', { clear: true })).json).toEqual({});
    const r = await fetch(`${s.url}/interrupt`, { method: 'POST' });
    expect(await r.json()).toEqual({});
    await ws.waitFor((f) => f.type === 'execution_interrupted' && f.data.prompt_id === a);
    expect((await get(s.url, `/api/jobs/${b}`)).status).toBe(404);
    ws.close();
  });

  it('pages and deletes history', async () => {
    const all = (await get(s.url, '/history')).json;
    const ids = Object.keys(all);
    expect(ids.length).toBeGreaterThanOrEqual(5);
    const two = (await get(s.url, '/history?max_items=2')).json;
    expect(Object.keys(two)).toEqual(ids.slice(-2));
    const skip = (await get(s.url, '/history?max_items=2&offset=2')).json;
    expect(Object.keys(skip)).toEqual(ids.slice(-4, -2));
    expect((await post(s.url, '/history', { delete: [ids[0]] })).json).toEqual({});
    expect((await get(s.url, `/history/${ids[0]}`)).json).toEqual({});
    expect(Object.keys((await get(s.url, '/history')).json)).toEqual(ids.slice(1));
    expect((await get(s.url, '/history?max_items=abc')).status).toBe(400);
  });
});

describe('websocket subscriptions', () => {
  it('a socket that submitted nothing sees everything; a submitter sees its own plus its subscriptions', async () => {
    const watcher = await WsRecorder.open(s.url, 'c-watch');
    const owner = await WsRecorder.open(s.url, 'c-owner');
    const other = await WsRecorder.open(s.url, 'c-other');
    // c-other becomes a submitter, so it leaves watch mode
    const o = await post(s.url, '/prompt', { prompt: slowPrompt(1, 1, 30, 'oth'), client_id: 'c-other' });
    await other.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === o.json.prompt_id);
    const r = await post(s.url, '/prompt', { prompt: slowPrompt(2, 5, 31, 'own'), client_id: 'c-owner' });
    const id = r.json.prompt_id;
    await owner.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
    await watcher.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
    expect(other.of(id)).toEqual([]);
    // now c-other subscribes explicitly to the next one
    const r2 = await post(s.url, '/prompt', { prompt: slowPrompt(20, 20, 32, 'own2'), client_id: 'c-owner' });
    other.send({ type: 'subscribe', data: { prompt_id: r2.json.prompt_id } });
    await other.waitFor((f) => f.type === 'subscribed');
    await other.waitFor(
      (f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === r2.json.prompt_id,
    );
    expect(other.of(r2.json.prompt_id).some((f) => f.type === 'execution_success')).toBe(true);
    for (const w of [watcher, owner, other]) w.close();
  });

  it('a malformed message gets an error frame and the socket stays open', async () => {
    const ws = await WsRecorder.open(s.url, 'c-bad');
    for (const m of ['not json', '{"type":"subscribe"}', '{"type":"nope","data":{}}', '[]', 'null', '{"type":42}']) {
      ws.send(m);
    }
    ws.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    for (let i = 0; i < 7; i++) {
      await ws.waitFor(() => ws.frames.filter((f) => f.type === 'error').length > i);
    }
    const errors = ws.frames.filter((f) => f.type === 'error');
    expect(errors[0].data.message).toMatch(/JSON/);
    expect(errors[1].data.message).toMatch(/message\.data/);
    ws.send({ type: 'subscribe', data: { all: true } });
    await ws.waitFor((f) => f.type === 'subscribed');
    expect(ws.ws.readyState).toBe(ws.ws.OPEN);
    ws.close();
  });
});

describe('uploads and /view confinement', () => {
  it('uploads into input (renaming unless overwrite), views it back, refuses traversal', async () => {
    // Uploads must be images: the PNG signature and a 1×1 IHDR header (the header is what is checked).
    const png = Buffer.from(
      '89504e470d0a1a0a0000000d49484452000000010000000108020000009077 53de'.replace(/\s/g, ''),
      'hex',
    );
    const form = () => {
      const f = new FormData();
      f.append('image', new Blob([png]), 'pic.png');
      return f;
    };
    const a = await (await fetch(`${s.url}/upload/image`, { method: 'POST', body: form() })).json();
    expect(a).toEqual({ name: 'pic.png', subfolder: '', type: 'input' });
    const b = await (await fetch(`${s.url}/upload/image`, { method: 'POST', body: form() })).json();
    expect(b.name).toBe('pic (1).png');
    const f3 = form();
    f3.append('overwrite', 'true');
    f3.append('subfolder', 'sub/dir');
    const c = await (await fetch(`${s.url}/api/upload/image`, { method: 'POST', body: f3 })).json();
    expect(c).toEqual({ name: 'pic.png', subfolder: 'sub/dir', type: 'input' });
    const v = await fetch(`${s.url}/view?filename=pic.png&subfolder=sub/dir&type=input`);
    expect(Buffer.from(await v.arrayBuffer())).toEqual(png);
    for (const q of [
      'filename=../../etc/passwd',
      'filename=passwd&subfolder=../..',
      'filename=%2Fetc%2Fpasswd',
      'filename=..',
      'filename=a%00b',
      'filename=x&subfolder=/etc',
      'filename=..%5C..%5Cwin.ini',
      'filename=x&type=secret',
    ]) {
      const r = await get(s.url, `/view?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.extra_info.field, q).toBeDefined();
    }
    const f4 = form();
    f4.append('subfolder', '../escape');
    const bad = await fetch(`${s.url}/upload/image`, { method: 'POST', body: f4 });
    expect(bad.status).toBe(400);
    const noFile = await fetch(`${s.url}/upload/image`, { method: 'POST', body: new FormData() });
    expect(noFile.status).toBe(400);
    expect((await get(s.url, '/view?filename=missing.png')).status).toBe(404);
  });
});

describe('safety: loopback, tokens, origins', () => {
  it('refuses to bind a non-loopback address without a token', () => {
    expect(() =>
      createServer({ host: '0.0.0.0', port: 0, dataDir: s.dataDir, modelRoots: [], plugins: [testPlugin] }),
    ).toThrow(/token/);
  });

  it('refuses a second server on the same data directory', () => {
    expect(() => createServer({ port: 0, dataDir: s.dataDir, modelRoots: [], plugins: [testPlugin] })).toThrow(
      /in use by another priorgraph server \(pid \d+\)/,
    );
  });

  it('with a token, requires it on HTTP (Bearer or ?token=) and on the websocket', async () => {
    const t = await startServer({ token: 'sekrit-token-123' });
    try {
      expect((await get(t.url, '/prompt')).status).toBe(401);
      expect((await get(t.url, '/prompt', { authorization: 'Bearer wrong-token-000' })).status).toBe(401);
      expect((await get(t.url, '/prompt', { authorization: 'Bearer sekrit-token-123' })).status).toBe(200);
      expect((await get(t.url, '/prompt?token=sekrit-token-123')).status).toBe(200);
      await expect(WsRecorder.open(t.url, 'x')).rejects.toThrow(/401/);
      const ws = await WsRecorder.open(t.url, 'x', 'sekrit-token-123');
      await ws.waitFor((f) => f.type === 'status');
      ws.close();
    } finally {
      await t.close();
    }
  });

  it('without a token, refuses requests from foreign origins and hosts (CSRF, DNS rebinding)', async () => {
    expect((await get(s.url, '/prompt', { origin: 'https://evil.example' })).status).toBe(403);
    expect((await get(s.url, '/prompt', { origin: 'http://localhost:5173' })).status).toBe(200);
    const r = await post(s.url, '/prompt', { prompt: slowPrompt(1, 1) }, { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
  });
});
