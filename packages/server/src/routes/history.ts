/**
 * The history resource (ComfyUI's shape): GET /history (paged, newest first; the total and the next
 * offset in X-Priorgraph-History-* headers), GET /history/{id}, POST /history (clear or delete).
 */
import { type Router, Router as router } from 'express';
import { DEFAULT_HISTORY_PAGE, type ServerContext } from '../context.js';
import { ClearDeleteBody, HistoryQuery } from '../schemas.js';
import { FINISHED_STATUSES, type JobRecord } from '../store.js';
import { asObject, both, parsedOr400 } from './http.js';
import { queueItem, shareControl } from './queue.js';

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

/** A queued or running job with status_str "pending" / "running" (completed: false). */
function unfinishedEntry(j: JobRecord): Record<string, unknown> {
  return {
    prompt: queueItem(j),
    outputs: {},
    status: { status_str: j.status, completed: false, messages: [] },
    meta: {},
    priorgraph: { status: j.status, error: null, created_at: j.createdAt, started_at: j.startedAt, finished_at: null },
  };
}

export function historyRouter(ctx: ServerContext): Router {
  const { store } = ctx;
  const r = router();
  r.get(both('/history'), async (req, res) => {
    const q = parsedOr400(res, HistoryQuery, 'query', req.query);
    if (!q) return;
    // Newest first from the store; `offset` counts from the newest. Keys come out oldest first,
    // like ComfyUI's dict.
    // Paginated by default: without max_items, the newest DEFAULT_HISTORY_PAGE; the total and the
    // next offset travel in headers so that ComfyUI's body shape stays as it is.
    const offset = q.offset ?? 0;
    const limit = q.max_items ?? DEFAULT_HISTORY_PAGE;
    const page = await store.page({ offset, limit });
    const total = await store.count(FINISHED_STATUSES);
    res.set('X-Priorgraph-History-Total', String(total));
    if (offset + page.length < total) res.set('X-Priorgraph-History-Next-Offset', String(offset + page.length));
    const out: Record<string, unknown> = {};
    for (const j of page.reverse()) out[j.id] = historyEntry(j);
    res.json(out);
  });

  r.get(both('/history/:id'), async (req, res) => {
    const id = String(req.params.id);
    const j = await store.get(id);
    res.set('X-Priorgraph-Job-Status', j?.status ?? 'unknown');
    if (j && !FINISHED_STATUSES.includes(j.status) && ['1', 'true'].includes(String(req.query.include_pending))) {
      // Opt-in: unfinished jobs are listed too.
      res.json({ [j.id]: unfinishedEntry(j) });
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

  r.post(both('/history'), async (req, res) => {
    const b = parsedOr400(res, ClearDeleteBody, 'body', asObject(req.body));
    if (!b) return;
    if (b.clear) await store.clear(FINISHED_STATUSES);
    if (b.delete) await store.delete(b.delete, FINISHED_STATUSES);
    await shareControl(ctx, b, [...FINISHED_STATUSES]);
    res.json({});
  });
  return r;
}
