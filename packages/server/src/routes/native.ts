/**
 * priorgraph's own API, under /api only: POST /api/workflows/run (queue, optionally wait for the
 * result), the job records (GET /api/jobs, /api/jobs/{id}), the plugins, the workers, the workflow
 * the editor opens first, and this API's OpenAPI document.
 */
import { type Router, Router as router } from 'express';
import { newPromptId, SERVER_VERSION, type ServerContext } from '../context.js';
import { openApiDocument } from '../openapi.js';
import { apiError, JobsQuery, RunQuery } from '../schemas.js';
import { FINISHED_STATUSES, type JobRecord } from '../store.js';
import { isPriorgraphDocument, normalizeWorkflow } from '../workflow.js';
import { parsedOr400 } from './http.js';
import { queuePrompt } from './prompt.js';

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

/**
 * A waiter for the job `id()` names, registered before the job is queued so that a fast job cannot
 * finish unseen: `wait(ms)` resolves true when it finished, false on timeout; `stop()` unregisters.
 */
function finishWatch(ctx: ServerContext, id: () => string | undefined) {
  let resolveDone: (() => void) | undefined;
  const done = new Promise<boolean>((r) => {
    resolveDone = () => r(true);
  });
  const onFinished = (ev: { id: string }) => {
    if (ev.id === id()) resolveDone?.();
  };
  ctx.runner.on('finished', onFinished);
  return {
    async wait(ms: number): Promise<boolean> {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      });
      const finished = await Promise.race([done, timedOut]);
      clearTimeout(timer);
      return finished;
    },
    stop: () => ctx.runner.off('finished', onFinished),
  };
}

function runRoute(ctx: ServerContext, r: Router): void {
  r.post('/api/workflows/run', async (req, res) => {
    const q = parsedOr400(res, RunQuery, 'query', req.query);
    if (!q) return;
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      const message = 'body: expected a priorgraph document or a ComfyUI API prompt';
      res.status(400).json(apiError('invalid_request', message, { field: 'body' }));
      return;
    }
    const wait = q.wait === '1' || q.wait === 'true';
    const wanted = q.prompt_id ?? newPromptId();
    const watch = wait ? finishWatch(ctx, () => wanted) : undefined;
    try {
      const queued = await queuePrompt(ctx, { prompt: body, prompt_id: wanted, client_id: q.client_id });
      if (!queued.ok) {
        res.status(queued.status).json(queued.body);
        return;
      }
      const { prompt_id, number, node_errors } = queued;
      if (!watch) {
        res.status(202).json({ prompt_id, number, status: 'pending', node_errors });
        return;
      }
      const finished = await watch.wait((q.timeout_s ?? 600) * 1000);
      const j = await ctx.store.get(prompt_id);
      if (!finished || !j) {
        res.status(202).json({ prompt_id, number, status: j?.status ?? 'unknown', timed_out: true });
        return;
      }
      res.json({ prompt_id: j.id, number: j.number, status: j.status, outputs: j.results, error: j.error });
    } finally {
      watch?.stop();
    }
  });
}

function jobRoutes(ctx: ServerContext, r: Router): void {
  const { store } = ctx;
  // Newest first: ?status=success,error&offset=&limit= (limit ≤ 1000, default 50).
  r.get('/api/jobs', async (req, res) => {
    const q = parsedOr400(res, JobsQuery, 'query', req.query);
    if (!q) return;
    const offset = q.offset ?? 0;
    const limit = q.limit ?? 50;
    const statuses = q.status ?? [...FINISHED_STATUSES];
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

  r.get('/api/jobs/:id', async (req, res) => {
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
}

export function nativeRouter(ctx: ServerContext): Router {
  const r = router();
  runRoute(ctx, r);
  jobRoutes(ctx, r);
  r.get('/api/plugins', (_req, res) => {
    res.json(ctx.plugins);
  });
  // The workers that run jobs: the local worker process, or those heart-beating on the queue.
  r.get('/api/workers', async (_req, res) => {
    res.json((await ctx.executor.workers?.()) ?? []);
  });
  r.get('/api/openapi.json', (_req, res) => {
    res.json(openApiDocument(SERVER_VERSION));
  });
  r.get('/api/default-workflow', (_req, res) => {
    const wf = ctx.options.defaultWorkflow;
    if (!wf) {
      const message = 'no default workflow was given (priorgraph serve --open <workflow.json>)';
      res.status(404).json(apiError('not_found', message));
      return;
    }
    // The editor loads priorgraph documents: an API-format prompt given with --open is converted.
    if (isPriorgraphDocument(wf)) {
      res.json(wf);
      return;
    }
    const norm = normalizeWorkflow(wf, ctx.registry);
    if (!norm.ok) {
      res.status(500).json(apiError('invalid_default_workflow', `the --open workflow is not usable: ${norm.message}`));
      return;
    }
    res.json(norm.doc);
  });
  return r;
}
