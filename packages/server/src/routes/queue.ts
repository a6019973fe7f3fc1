/**
 * The queue resource: GET /queue (running and pending jobs as ComfyUI queue items), POST /queue
 * (clear or delete pending jobs), POST /interrupt. With several servers on one Redis queue, the
 * listing includes the other servers' jobs and a change is passed on to them.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
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

/** GET /queue's answer as it was at one store version: the JSON text, its bytes and their ETag. */
export interface QueueAnswer {
  version: number;
  body: string;
  bytes: Buffer;
  etag: string | undefined;
}

/**
 * GET /queue's body, byte for byte what JSON.stringify gives for the whole answer, made once per
 * change of the store. Pollers read /queue far more often than it changes, and a burst of prompts
 * changes it hundreds of times: a change reads only the queue's order (seqs, from an index) and
 * serializes only the jobs it has not seen yet; each queued job's item text is kept by its seq while
 * the job is queued (what the item shows never changes while it is).
 */
export class QueueBody {
  private items = new Map<number, string>();
  private answer: QueueAnswer | null = null;
  constructor(private readonly store: JobStore) {}

  /** The current answer; `etagFn` is express's (its `etag fn` setting), computed once per change. */
  async current(etagFn?: (b: Buffer) => string): Promise<QueueAnswer> {
    const version = this.store.changes;
    if (this.answer?.version === version) return this.answer;
    const known = this.items;
    const { running, pending } = await this.store.queueOrder();
    const missing = [...running, ...pending].filter((s) => !known.has(s));
    const found = new Map<number, string>();
    for (const { seq, job } of await this.store.bySeq(missing)) found.set(seq, JSON.stringify(queueItem(job)));
    const kept = new Map<number, string>();
    const texts = (seqs: number[]) => {
      const out: string[] = [];
      for (const s of seqs) {
        const t = known.get(s) ?? found.get(s); // undefined: gone between the two reads
        if (t === undefined) continue;
        kept.set(s, t);
        out.push(t);
      }
      return out.join(',');
    };
    const body = `{"queue_running":[${texts(running)}],"queue_pending":[${texts(pending)}]}`;
    this.items = kept;
    const bytes = Buffer.from(body);
    this.answer = { version, body, bytes, etag: etagFn?.(bytes) };
    return this.answer;
  }
}

/** One QueueBody per server (the router and the fast path in ../server.ts share it). */
const bodies = new WeakMap<ServerContext, QueueBody>();
export function queueBodyOf(ctx: ServerContext): QueueBody {
  let b = bodies.get(ctx);
  if (!b) {
    b = new QueueBody(ctx.store);
    bodies.set(ctx, b);
  }
  return b;
}

/**
 * GET /queue and /api/queue (no query, no conditional headers, one server) answered straight from
 * the HTTP server, before express: a poll then costs the answer's write and little else. Returns
 * false, having done nothing, for any other request and for one that `allowed` refuses; a failure
 * to make the answer hands the request to `app`, whose route answers it (or its error) as usual.
 */
export function queueFastPath(
  ctx: ServerContext,
  app: (req: IncomingMessage, res: ServerResponse) => void,
  allowed: (req: IncomingMessage) => boolean,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const answers = queueBodyOf(ctx);
  return (req, res) => {
    if (req.method !== 'GET' || (req.url !== '/queue' && req.url !== '/api/queue') || ctx.cluster) return false;
    const h = req.headers;
    if (h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined || !allowed(req)) return false;
    const etagFn = (app as { get?: (k: string) => unknown }).get?.('etag fn');
    answers.current(typeof etagFn === 'function' ? (etagFn as (b: Buffer) => string) : undefined).then(
      (a) => {
        const headers: OutgoingHttpHeaders = {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': a.bytes.length,
        };
        if (a.etag) headers.ETag = a.etag;
        res.writeHead(200, headers);
        res.end(a.bytes);
      },
      () => app(req, res),
    );
    return true;
  };
}

export function queueRouter(ctx: ServerContext): Router {
  const { store, runner } = ctx;
  const r = router();
  const answers = queueBodyOf(ctx);
  r.get(both('/queue'), async (req, res) => {
    const etagFn = req.app.get('etag fn') as ((b: Buffer) => string) | undefined;
    const queueCache = await answers.current(typeof etagFn === 'function' ? etagFn : undefined);
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
