/**
 * The queue resource: GET /queue (running and pending jobs as ComfyUI queue items), POST /queue
 * (clear or delete pending jobs), POST /interrupt. With several servers on one Redis queue, the
 * listing includes the other servers' jobs and a change is passed on to them.
 */
import { type Router, Router as router } from 'express';
import type { ServerContext } from '../context.js';
import { ClearDeleteBody, InterruptBody } from '../schemas.js';
import type { JobRecord, JobStatus } from '../store.js';
import { asObject, both, parsedOr400 } from './http.js';

/** ComfyUI queue item `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. */
export function queueItem(j: JobRecord): unknown[] {
  return [j.number, j.id, j.prompt, j.extraData, j.outputs];
}

/** With several servers: a delete or clear of the queue or history applies on every one. */
export async function shareControl(
  ctx: ServerContext,
  body: { clear?: boolean; delete?: string[] },
  statuses: JobStatus[],
): Promise<void> {
  if (!ctx.cluster) return;
  try {
    if (body.clear) await ctx.cluster.control({ op: 'clear', statuses });
    if (body.delete) await ctx.cluster.control({ op: 'delete', ids: body.delete, statuses });
  } catch (e) {
    ctx.log.warn('could not pass the change on to the other servers', e);
  }
}

export function queueRouter(ctx: ServerContext): Router {
  const { store, runner } = ctx;
  const r = router();
  // Pollers read /queue far more often than it changes: the answer is serialized once per change.
  let queueCache: { version: number; body: string } | null = null;
  r.get(both('/queue'), async (_req, res) => {
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

  r.post(both('/queue'), async (req, res) => {
    const b = parsedOr400(res, ClearDeleteBody, 'body', asObject(req.body));
    if (!b) return;
    if (b.clear) await store.clear(['pending']);
    if (b.delete) await store.delete(b.delete, ['pending']);
    await ctx.refreshQueue();
    await shareControl(ctx, b, ['pending']);
    res.json({});
  });

  r.post(both('/interrupt'), (req, res) => {
    const b = parsedOr400(res, InterruptBody, 'body', asObject(req.body));
    if (!b) return;
    const here = runner.interrupt(b.prompt_id);
    // a prompt another server runs: that server interrupts it
    if (!here && b.prompt_id !== undefined && ctx.cluster) {
      ctx.cluster.control({ op: 'interrupt', id: b.prompt_id }).catch((e) => ctx.log.warn('interrupt', e));
    }
    res.json({});
  });
  return r;
}
