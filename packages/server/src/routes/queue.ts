/**
 * The queue resource: GET /queue (running and pending jobs as ComfyUI queue items), POST /queue
 * (clear or delete pending jobs), POST /interrupt. With several servers on one Redis queue, the
 * listing includes the other servers' jobs and a change is passed on to them.
 */
import { type Router, Router as router } from 'express';
import type { ServerContext } from '../context.js';
import { ClearDeleteBody, InterruptBody } from '../schemas.js';
import type { JobRecord, JobStatus, JobStore } from '../store.js';
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

/** A queued job's item as JSON text, kept while its parsed prompt is (the store parses a queued
 *  job's fixed parts once and hands out the same objects until it leaves the queue). */
const itemText = new WeakMap<object, { j: Pick<JobRecord, 'number' | 'id' | 'extraData' | 'outputs'>; text: string }>();

function queueItemText(j: JobRecord): string {
  const hit = itemText.get(j.prompt);
  if (
    hit &&
    hit.j.id === j.id &&
    hit.j.number === j.number &&
    hit.j.extraData === j.extraData &&
    hit.j.outputs === j.outputs
  )
    return hit.text;
  const text = JSON.stringify(queueItem(j));
  itemText.set(j.prompt, { j, text });
  return text;
}

/** GET /queue's body, byte for byte what JSON.stringify gives for the whole answer. */
async function queueBody(store: JobStore): Promise<string> {
  const running = (await store.list(['running'])).map(queueItemText).join(',');
  const pending = (await store.list(['pending'])).map(queueItemText).join(',');
  return `{"queue_running":[${running}],"queue_pending":[${pending}]}`;
}

export function queueRouter(ctx: ServerContext): Router {
  const { store, runner } = ctx;
  const r = router();
  // Pollers read /queue far more often than it changes: the answer (bytes and ETag) is made once per
  // change, and each queued job's item is serialized once.
  let queueCache: { version: number; body: string; bytes: Buffer; etag: string | undefined } | null = null;
  r.get(both('/queue'), async (req, res) => {
    const version = store.changes;
    if (queueCache?.version !== version) {
      const body = await queueBody(store);
      const bytes = Buffer.from(body);
      // the ETag express would compute for this body (its `etag fn` setting), computed once
      const etagFn = req.app.get('etag fn') as ((b: Buffer) => string) | undefined;
      queueCache = { version, body, bytes, etag: typeof etagFn === 'function' ? etagFn(bytes) : undefined };
    }
    if (!ctx.cluster) {
      if (queueCache.etag) res.set('ETag', queueCache.etag);
      res.type('json').send(queueCache.bytes);
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
