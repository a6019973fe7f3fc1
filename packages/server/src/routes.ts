/**
 * HTTP routes. ComfyUI-compatible ones are served bare and under /api (exact shapes in
 * shared/reference/comfyui-api.md); native ones live under /api only. Every body and query is
 * checked with zod (./schemas.ts); control POSTs answer `{}`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { checkImageSize, ImageHeaderError, parseJsonExact, readImageHeader, validateWorkflow } from '@priorgraph/core';
import express, { type Express } from 'express';
import multer from 'multer';
import { openApiDocument } from './openapi.js';
import { confinedPath, mimeOf, realpathInside, safeFileName, UnsafePathError } from './paths.js';
import {
  apiError,
  ClearDeleteBody,
  HistoryQuery,
  InterruptBody,
  JobsQuery,
  MAX_JSON_DEPTH,
  PromptBody,
  parseWith,
  RunQuery,
  redactArgv,
  tooDeep,
  UploadFields,
  ViewQuery,
} from './schemas.js';
import { DEFAULT_HISTORY_PAGE, newPromptId, SERVER_VERSION, type ServerContext } from './server.js';
import { DuplicateJobError, FINISHED_STATUSES, type JobRecord, type JobStatus } from './store.js';
import { installUserdata } from './userdata.js';
import { isPriorgraphDocument, normalizeWorkflow } from './workflow.js';

/** `/x` and `/api/x`. */
const both = (p: string): string[] => [p, `/api${p}`];

type Queued =
  | { ok: true; prompt_id: string; number: number; node_errors: Record<string, unknown> }
  | { ok: false; status: number; body: unknown };

/** ComfyUI queue item `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. */
export function queueItem(j: JobRecord): unknown[] {
  return [j.number, j.id, j.prompt, j.extraData, j.outputs];
}

function historyEntry(j: JobRecord): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const nodeId of Object.keys(j.results)) {
    meta[nodeId] = { node_id: nodeId, display_node: nodeId, parent_node: null, real_node_id: nodeId };
  }
  return {
    prompt: queueItem(j),
    outputs: j.results,
    status: {
      status_str: j.status === 'success' ? 'success' : 'error',
      completed: j.status === 'success',
      messages: j.messages,
    },
    meta,
    priorgraph: {
      status: j.status,
      error: j.error,
      created_at: j.createdAt,
      started_at: j.startedAt,
      finished_at: j.finishedAt,
    },
  };
}

function jobView(j: JobRecord, position: number | null): Record<string, unknown> {
  return {
    id: j.id,
    status: j.status,
    number: j.number,
    queue_position: position,
    client_id: j.clientId,
    created_at: j.createdAt,
    started_at: j.startedAt,
    finished_at: j.finishedAt,
    outputs: j.results,
    error: j.error,
    outputs_to_execute: j.outputs,
  };
}

function asObject(body: unknown): unknown {
  return body === undefined ||
    body === null ||
    (typeof body === 'object' && Object.keys(body).length === 0 && !Array.isArray(body))
    ? {}
    : body;
}

/** Lists directory entries recursively (relative paths), bounded. */
function listFiles(dir: string, max = 5000): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 6 || out.length >= max) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile()) out.push(relative(dir, p).split('\\').join('/'));
      if (out.length >= max) return;
    }
  };
  walk(dir, 0);
  return out;
}

export function installRoutes(app: Express, ctx: ServerContext): void {
  const { store, registry, runner, hub, host, log } = ctx;
  // user files are stored byte for byte: their routes come before the JSON body parser
  installUserdata(app, ctx.options);
  // ComfyUI parses the body as JSON whatever the content type; so do we (except multipart). The text is
  // parsed by core's parseJsonExact, so that a seed above 2^53 − 1 (ComfyUI clients send up to 2^64 − 1)
  // arrives exact instead of rounded by JSON.parse.
  app.use(
    express.text({
      limit: ctx.options.maxBodyBytes,
      type: (req) => !String(req.headers['content-type'] ?? '').startsWith('multipart/'),
    }),
  );
  app.use((req, _res, next) => {
    if (typeof req.body !== 'string') return next();
    if (req.body.trim() === '') {
      req.body = {};
      return next();
    }
    try {
      req.body = parseJsonExact(req.body);
      next();
    } catch (e) {
      next(Object.assign(new Error((e as Error).message), { type: 'entity.parse.failed', status: 400 }));
    }
  });
  // Absurdly deep JSON is refused here, naming where, before anything walks it recursively.
  app.use((req, res, next) => {
    const at = tooDeep(req.body, 'body');
    if (at === null) return next();
    res
      .status(400)
      .json(apiError('invalid_request', `${at}: nested more than ${MAX_JSON_DEPTH} levels deep`, { field: at }));
  });

  /** Validate + enqueue: the shared path of POST /prompt and POST /api/workflows/run. */
  async function queuePrompt(input: {
    prompt: unknown;
    prompt_id?: string;
    client_id?: string;
    number?: number;
    front?: boolean;
    extra_data?: Record<string, unknown>;
    targets?: string[];
  }): Promise<Queued> {
    const norm = normalizeWorkflow(input.prompt, registry);
    if (!norm.ok) {
      return {
        ok: false,
        status: 400,
        body: apiError(norm.type, norm.message, { field: 'prompt' }),
      };
    }
    const v = await validateWorkflow(norm.doc, registry, host, {
      outputs: input.targets,
      memoryBudgetBytes: ctx.options.memoryBudgetBytes,
    });
    if (!v.ok) {
      return {
        ok: false,
        status: 400,
        body: {
          error: v.error ?? {
            type: 'prompt_outputs_failed_validation',
            message: 'Prompt outputs failed validation',
            details: '',
            extra_info: {},
          },
          node_errors: v.node_errors,
        },
      };
    }
    const id = input.prompt_id ?? newPromptId();
    const extraData = { ...(input.extra_data ?? {}), ...(input.client_id ? { client_id: input.client_id } : {}) };
    let number: number;
    try {
      number = await store.enqueue({
        id,
        number: input.number,
        front: input.front,
        prompt: norm.prompt,
        document: norm.doc as unknown as Record<string, unknown>,
        extraData,
        outputs: v.outputs,
        clientId: input.client_id,
      });
    } catch (e) {
      if (e instanceof DuplicateJobError) {
        return {
          ok: false,
          status: 409,
          body: apiError('duplicate_prompt_id', e.message, { field: 'prompt_id', prompt_id: id }),
        };
      }
      throw e;
    }
    hub.noteSubmission(id, input.client_id);
    await ctx.refreshQueue();
    runner.kick();
    return { ok: true, prompt_id: id, number, node_errors: v.node_errors };
  }

  // ---------------------------------------------------------------- ComfyUI: prompt & queue
  app.post(both('/prompt'), async (req, res) => {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('prompt' in body)) {
      res.status(400).json(apiError('no_prompt', 'No prompt provided', { field: 'prompt' }));
      return;
    }
    const p = parseWith(PromptBody, 'body', body);
    if (!p.ok) {
      res.status(400).json(p.error);
      return;
    }
    const b = p.value;
    const r = await queuePrompt({
      prompt: b.prompt,
      prompt_id: b.prompt_id,
      client_id: b.client_id,
      number: b.number,
      front: b.front,
      extra_data: b.extra_data,
      targets: b.partial_execution_targets,
    });
    if (!r.ok) {
      res.status(r.status).json(r.body);
      return;
    }
    res.json({ prompt_id: r.prompt_id, number: r.number, node_errors: r.node_errors });
  });

  app.get(both('/prompt'), (_req, res) => {
    res.json({ exec_info: { queue_remaining: ctx.queueRemaining } });
  });

  // Pollers read /queue far more often than it changes: the answer is serialized once per change.
  let queueCache: { version: number; body: string } | null = null;
  app.get(both('/queue'), async (_req, res) => {
    const version = store.changes;
    if (queueCache?.version !== version) {
      const running = await store.list(['running']);
      const pending = await store.list(['pending']);
      const body = JSON.stringify({ queue_running: running.map(queueItem), queue_pending: pending.map(queueItem) });
      queueCache = { version, body };
    }
    if (!ctx.cluster) {
      res.type('json').send(queueCache.body);
      return;
    }
    // several servers on one queue: this one's prompts, then the other servers' (oldest first)
    const own = JSON.parse(queueCache.body) as { queue_running: unknown[]; queue_pending: unknown[] };
    const peers = await ctx.cluster.peerQueue();
    res.json({
      queue_running: [...own.queue_running, ...peers.running],
      queue_pending: [...own.queue_pending, ...peers.pending],
    });
  });

  app.post(both('/queue'), async (req, res) => {
    const p = parseWith(ClearDeleteBody, 'body', asObject(req.body));
    if (!p.ok) {
      res.status(400).json(p.error);
      return;
    }
    if (p.value.clear) await store.clear(['pending']);
    if (p.value.delete) await store.delete(p.value.delete, ['pending']);
    await ctx.refreshQueue();
    await shareControl(p.value, ['pending']);
    res.json({});
  });

  app.post(both('/interrupt'), (req, res) => {
    const p = parseWith(InterruptBody, 'body', asObject(req.body));
    if (!p.ok) {
      res.status(400).json(p.error);
      return;
    }
    const here = runner.interrupt(p.value.prompt_id);
    // a prompt another server runs: that server interrupts it
    if (!here && p.value.prompt_id !== undefined && ctx.cluster) {
      ctx.cluster.control({ op: 'interrupt', id: p.value.prompt_id }).catch((e) => ctx.log.warn('interrupt', e));
    }
    res.json({});
  });

  /** With several servers: a delete or clear of the queue or history applies on every one. */
  async function shareControl(body: { clear?: boolean; delete?: string[] }, statuses: JobStatus[]): Promise<void> {
    if (!ctx.cluster) return;
    try {
      if (body.clear) await ctx.cluster.control({ op: 'clear', statuses });
      if (body.delete) await ctx.cluster.control({ op: 'delete', ids: body.delete, statuses });
    } catch (e) {
      ctx.log.warn('could not pass the change on to the other servers', e);
    }
  }

  // ---------------------------------------------------------------- ComfyUI: history
  app.get(both('/history'), async (req, res) => {
    const q = parseWith(HistoryQuery, 'query', req.query);
    if (!q.ok) {
      res.status(400).json(q.error);
      return;
    }
    // Newest first from the store; `offset` counts from the newest. Keys come out oldest first,
    // like ComfyUI's dict.
    // Paginated by default: without max_items, the newest DEFAULT_HISTORY_PAGE; the total and the
    // next offset travel in headers so that ComfyUI's body shape stays as it is.
    const offset = q.value.offset ?? 0;
    const limit = q.value.max_items ?? DEFAULT_HISTORY_PAGE;
    const page = await store.page({ offset, limit });
    const total = await store.count(FINISHED_STATUSES);
    res.set('X-Priorgraph-History-Total', String(total));
    if (offset + page.length < total) res.set('X-Priorgraph-History-Next-Offset', String(offset + page.length));
    const out: Record<string, unknown> = {};
    for (const j of page.reverse()) out[j.id] = historyEntry(j);
    res.json(out);
  });

  app.get(both('/history/:id'), async (req, res) => {
    const id = String(req.params.id);
    const j = await store.get(id);
    const status = j?.status ?? 'unknown';
    res.set('X-Priorgraph-Job-Status', status);
    if (j && !FINISHED_STATUSES.includes(j.status) && ['1', 'true'].includes(String(req.query.include_pending))) {
      // Opt-in: a queued or running job with status_str "pending" / "running" (completed: false).
      res.json({
        [j.id]: {
          prompt: queueItem(j),
          outputs: {},
          status: { status_str: j.status, completed: false, messages: [] },
          meta: {},
          priorgraph: {
            status: j.status,
            error: null,
            created_at: j.createdAt,
            started_at: j.startedAt,
            finished_at: null,
          },
        },
      });
      return;
    }
    if (!j || !FINISHED_STATUSES.includes(j.status)) {
      // ComfyUI's shape: {} until the prompt is finished (clients test `id in history`). Queued,
      // running and unknown are told apart by the X-Priorgraph-Job-Status header,
      // ?include_pending=1, and GET /api/jobs/{id}.
      res.json({});
      return;
    }
    res.json({ [j.id]: historyEntry(j) });
  });

  app.post(both('/history'), async (req, res) => {
    const p = parseWith(ClearDeleteBody, 'body', asObject(req.body));
    if (!p.ok) {
      res.status(400).json(p.error);
      return;
    }
    if (p.value.clear) await store.clear(FINISHED_STATUSES);
    if (p.value.delete) await store.delete(p.value.delete, FINISHED_STATUSES);
    await shareControl(p.value, [...FINISHED_STATUSES]);
    res.json({});
  });

  // Native listing, newest first: ?status=success,error&offset=&limit= (limit ≤ 1000, default 50).
  app.get('/api/jobs', async (req, res) => {
    const q = parseWith(JobsQuery, 'query', req.query);
    if (!q.ok) {
      res.status(400).json(q.error);
      return;
    }
    const offset = q.value.offset ?? 0;
    const limit = q.value.limit ?? 50;
    const statuses = q.value.status ?? [...FINISHED_STATUSES];
    const finishedOnly = statuses.every((st) => FINISHED_STATUSES.includes(st));
    let jobs: JobRecord[];
    let total: number;
    if (finishedOnly && statuses.length === FINISHED_STATUSES.length) {
      jobs = await store.page({ offset, limit });
      total = await store.count(FINISHED_STATUSES);
    } else {
      const all = (await store.list(statuses)).reverse();
      jobs = all.slice(offset, offset + limit);
      total = all.length;
    }
    res.json({
      jobs: jobs.map((j) => jobView(j, null)),
      total,
      offset,
      limit,
      next_offset: offset + jobs.length < total ? offset + jobs.length : null,
    });
  });

  app.get('/api/jobs/:id', async (req, res) => {
    const id = String(req.params.id);
    const j = await store.get(id);
    if (!j) {
      res.status(404).json({ id, status: 'unknown', ...apiError('unknown_prompt', `no job with prompt_id ${id}`) });
      return;
    }
    let position: number | null = null;
    if (j.status === 'pending') {
      const pending = await store.list(['pending']);
      position = pending.findIndex((p) => p.id === id);
    }
    res.json(jobView(j, position));
  });

  // ---------------------------------------------------------------- ComfyUI: files
  const dirOf = (type: 'input' | 'output' | 'temp') =>
    type === 'input' ? host.inputDir : type === 'temp' ? host.tempDir : host.outputDir;

  app.get(both('/view'), async (req, res) => {
    const q = parseWith(ViewQuery, 'query', req.query);
    if (!q.ok) {
      res.status(400).json(q.error);
      return;
    }
    const base = dirOf(q.value.type);
    let full: string;
    try {
      full = confinedPath(base, q.value.subfolder, q.value.filename);
    } catch (e) {
      if (e instanceof UnsafePathError) {
        res.status(400).json(apiError('invalid_path', e.message, { field: e.field }));
        return;
      }
      throw e;
    }
    const st = await stat(full).catch(() => null);
    if (!st?.isFile()) {
      res
        .status(404)
        .json(apiError('not_found', `no file ${q.value.filename} in ${q.value.type}`, { field: 'filename' }));
      return;
    }
    if (!realpathInside(base, full)) {
      res.status(400).json(apiError('invalid_path', 'path leaves its directory', { field: 'filename' }));
      return;
    }
    res.set('Content-Type', mimeOf(full));
    res.set('Content-Disposition', `inline; filename="${safeFileName(q.value.filename)}"`);
    res.sendFile(full, { dotfiles: 'allow' });
  });

  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: ctx.options.maxUploadBytes, files: 1, fields: 16, fieldSize: 64 * 1024, parts: 20 },
  });
  const single = upload.single('image');
  /** Multipart parsing errors are the client's: 413 over the limit, 400 otherwise (never 500). */
  const parseUpload: express.RequestHandler = (req, res, next) => {
    single(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { code?: string; message?: string; field?: string };
      if (e.code === 'LIMIT_FILE_SIZE') {
        res
          .status(413)
          .json(apiError('body_too_large', `upload too large: ${e.message}`, { field: e.field ?? 'image' }));
      } else {
        res
          .status(400)
          .json(
            apiError('invalid_upload', `upload rejected: ${e.message ?? String(err)}`, { field: e.field ?? 'body' }),
          );
      }
    });
  };
  app.post(both('/upload/image'), parseUpload, async (req, res) => {
    const f = parseWith(UploadFields, 'body', req.body ?? {});
    if (!f.ok) {
      res.status(400).json(f.error);
      return;
    }
    const file = req.file;
    if (!file) {
      res
        .status(400)
        .json(apiError('invalid_request', 'image: a multipart file field "image" is required', { field: 'image' }));
      return;
    }
    try {
      checkImageSize(readImageHeader(file.buffer), ctx.options.maxImagePixels);
    } catch (e) {
      if (!(e instanceof ImageHeaderError)) throw e;
      res.status(400).json(apiError('invalid_image', `image: ${e.message}`, { field: 'image' }));
      return;
    }
    const overwrite = ['true', '1', 'on'].includes(f.value.overwrite ?? '');
    const base = dirOf(f.value.type);
    let name = safeFileName(file.originalname || 'upload.png');
    let full: string;
    try {
      full = confinedPath(base, f.value.subfolder, name);
    } catch (e) {
      if (e instanceof UnsafePathError) {
        res
          .status(400)
          .json(apiError('invalid_path', e.message, { field: e.field === 'filename' ? 'image' : e.field }));
        return;
      }
      throw e;
    }
    if (overwrite && f.value.type === 'output' && existsSync(full)) {
      const holder = await store.referencing({ filename: name, subfolder: f.value.subfolder, type: 'output' });
      if (holder) {
        res
          .status(409)
          .json(
            apiError(
              'output_in_history',
              `image: output ${name} is referenced by the history of prompt ${holder}; upload it under another name or delete that history entry first`,
              { field: 'image', prompt_id: holder },
            ),
          );
        return;
      }
    }
    if (!overwrite) {
      const dot = name.lastIndexOf('.');
      const stem = dot > 0 ? name.slice(0, dot) : name;
      const ext = dot > 0 ? name.slice(dot) : '';
      for (let i = 1; existsSync(full); i++) {
        name = `${stem} (${i})${ext}`;
        full = confinedPath(base, f.value.subfolder, name);
      }
    }
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, file.buffer);
    res.json({ name, subfolder: f.value.subfolder, type: f.value.type });
  });

  // ---------------------------------------------------------------- ComfyUI: info
  app.get(both('/object_info'), async (_req, res) => {
    res.json(await registry.objectInfo(host, log));
  });
  app.get(both('/object_info/:type'), async (req, res) => {
    const type = String(req.params.type);
    const r = registry.resolve(type);
    if (!r.ok) {
      res.json({});
      return;
    }
    const all = await registry.objectInfo(host, log);
    const entry = all[r.node.qualifiedName];
    res.json(entry ? { [type]: entry } : {});
  });

  app.get(both('/system_stats'), (_req, res) => {
    let runtime: unknown = null;
    try {
      runtime = ctx.options.runtimeStats?.() ?? null;
    } catch (e) {
      runtime = { error: e instanceof Error ? e.message : String(e) };
    }
    res.json({
      system: {
        os: platform(),
        ram_total: totalmem(),
        ram_free: freemem(),
        comfyui_version: `priorgraph ${SERVER_VERSION}`,
        python_version: `none (Node.js ${process.version})`,
        pytorch_version: 'none (onnxruntime-node)',
        embedded_python: false,
        argv: redactArgv(process.argv),
        kernel: release(),
        cpu: cpus()[0]?.model ?? 'unknown',
        cpu_count: cpus().length,
      },
      devices: [
        {
          name: 'cpu',
          type: 'cpu',
          index: 0,
          vram_total: totalmem(),
          vram_free: freemem(),
          torch_vram_total: 0,
          torch_vram_free: 0,
        },
      ],
      priorgraph: {
        version: SERVER_VERSION,
        uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
        cache: ctx.executor.cacheInfo(),
        ws_clients: hub.size,
        runtime,
      },
    });
  });

  app.get(both('/features'), (_req, res) => {
    res.json({ supports_preview_metadata: true, max_upload_size: ctx.options.maxUploadBytes });
  });
  app.get(both('/embeddings'), (_req, res) => {
    res.json([]);
  });
  app.get(both('/extensions'), (_req, res) => {
    res.json([]);
  });

  /** Model folders: the sub-directories of every model root. */
  const modelFolders = (): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (const root of host.modelRoots) {
      let entries: import('node:fs').Dirent[] = [];
      try {
        entries = readdirSync(root, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('.')) continue;
        m.set(e.name, [...(m.get(e.name) ?? []), join(root, e.name)]);
      }
    }
    return m;
  };
  app.get(both('/models'), (_req, res) => {
    res.json([...modelFolders().keys()].sort());
  });
  app.get(both('/models/:folder'), (req, res) => {
    const dirs = modelFolders().get(String(req.params.folder));
    if (!dirs) {
      res.status(404).json(apiError('not_found', `no model folder ${req.params.folder}`, { field: 'folder' }));
      return;
    }
    const files = new Set<string>();
    for (const d of dirs) for (const f of listFiles(d)) if (statSync(join(d, f)).isFile()) files.add(f);
    res.json([...files].sort());
  });

  // ---------------------------------------------------------------- native API
  app.post('/api/workflows/run', async (req, res) => {
    const q = parseWith(RunQuery, 'query', req.query);
    if (!q.ok) {
      res.status(400).json(q.error);
      return;
    }
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      res.status(400).json(
        apiError('invalid_request', 'body: expected a priorgraph document or a ComfyUI API prompt', {
          field: 'body',
        }),
      );
      return;
    }
    const wait = q.value.wait === '1' || q.value.wait === 'true';
    // Register the waiter before queueing, so that a fast job cannot finish unseen.
    let resolveDone: ((v: unknown) => void) | undefined;
    const done = new Promise((r) => {
      resolveDone = r;
    });
    let wanted: string | undefined;
    const onFinished = (ev: { id: string }) => {
      if (ev.id === wanted) resolveDone?.(ev);
    };
    if (wait) runner.on('finished', onFinished);
    try {
      wanted = q.value.prompt_id ?? newPromptId();
      const r = await queuePrompt({ prompt: body, prompt_id: wanted, client_id: q.value.client_id });
      if (!r.ok) {
        res.status(r.status).json(r.body);
        return;
      }
      if (!wait) {
        res
          .status(202)
          .json({ prompt_id: r.prompt_id, number: r.number, status: 'pending', node_errors: r.node_errors });
        return;
      }
      const timeoutMs = (q.value.timeout_s ?? 600) * 1000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise((r2) => {
        timer = setTimeout(() => r2(null), timeoutMs);
      });
      const ev = await Promise.race([done, timedOut]);
      clearTimeout(timer);
      const j = await store.get(r.prompt_id);
      if (!ev || !j) {
        res
          .status(202)
          .json({ prompt_id: r.prompt_id, number: r.number, status: j?.status ?? 'unknown', timed_out: true });
        return;
      }
      res.json({ prompt_id: j.id, number: j.number, status: j.status, outputs: j.results, error: j.error });
    } finally {
      if (wait) runner.off('finished', onFinished);
    }
  });

  app.get('/api/node-types', (_req, res) => {
    const schemas = registry.jsonSchemas();
    const out: Record<string, unknown> = {};
    for (const t of registry.list()) {
      out[t.qualifiedName] = {
        type: t.qualifiedName,
        plugin: t.plugin,
        name: t.type,
        version: t.def.version,
        category: t.def.category,
        display_name: t.def.displayName ?? t.type,
        description: t.def.description ?? '',
        output_node: t.def.outputNode === true,
        outputs: (t.def.outputs as Array<{ name: string; type: string; description?: string }>).map((o) => ({
          name: o.name,
          type: o.type,
          description: o.description,
        })),
        inputs_schema: schemas[t.qualifiedName],
      };
    }
    res.json(out);
  });

  app.get('/api/plugins', (_req, res) => {
    res.json(ctx.plugins);
  });

  app.get('/api/openapi.json', (_req, res) => {
    res.json(openApiDocument(SERVER_VERSION));
  });

  app.get('/api/default-workflow', (_req, res) => {
    const wf = ctx.options.defaultWorkflow;
    if (!wf) {
      res
        .status(404)
        .json(apiError('not_found', 'no default workflow was given (priorgraph serve --open <workflow.json>)'));
      return;
    }
    // The editor loads priorgraph documents: an API-format prompt given with --open is converted.
    if (isPriorgraphDocument(wf)) {
      res.json(wf);
      return;
    }
    const norm = normalizeWorkflow(wf, registry);
    if (!norm.ok) {
      res.status(500).json(apiError('invalid_default_workflow', `the --open workflow is not usable: ${norm.message}`));
      return;
    }
    res.json(norm.doc);
  });
}
