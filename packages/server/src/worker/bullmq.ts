/**
 * The queue transport: the same worker, run by BullMQ on Redis instead of by the server.
 *
 * - Server side, `BullmqEngine` (a JobEngine): each prompt the runner starts becomes a BullMQ job
 *   (job id = prompt id) on the `priorgraph` queue; its events arrive on the Redis channel
 *   `priorgraph:events:<id>`; the result (with the bytes of the files its outputs name) is the job's
 *   return value, and the server writes those files into its own output/temp folders before history
 *   records them, so `/view` works whichever machine ran the job. `/interrupt` publishes on
 *   `priorgraph:interrupt`; a job still waiting in Redis is removed instead. History stays in the
 *   servers' SQLite stores (./cluster.ts shares it between several servers on one Redis).
 * - Worker side, `runQueueWorker` (`priorgraph worker --queue ...`): a BullMQ Worker whose processor
 *   hands each job to a supervised worker process (./supervisor.ts, one per unit of concurrency, so
 *   models stay warm and a crashing node fails only its job), publishes its events and heartbeats
 *   `priorgraph:workers:<name>` (expiring, so a dead worker drops off GET /api/workers).
 * - A worker killed mid-job stops renewing its BullMQ lock; BullMQ's stalled-job check puts the job
 *   back and another worker runs it. It finishes once: the server waits on the job, not on a worker.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ExecutionEvent, Logger, RunResult, WorkflowDocument } from '@priorgraph/core';
import { DelayedError, type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { EngineRunOptions, JobEngine, WorkerInfo } from '../runner.js';
import { EventThrottle, progressInterval } from '../throttle.js';
import { type CarriedFile, carriedFiles, writeCarriedFiles } from './carried.js';
import { ExecutionEventSchema, type WorkerInit } from './protocol.js';
import { modelNames, ProcessEngine } from './supervisor.js';

export const QUEUE_NAME = 'priorgraph';
const EVENTS = (id: string) => `priorgraph:events:${id}`;
const INTERRUPT = 'priorgraph:interrupt';
const WORKER_KEY = (name: string) => `priorgraph:workers:${name}`;
const HEARTBEAT_MS = 2000;
const CONNECT_TIMEOUT_MS = 15_000;

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
/** A worker whose heartbeat is older than this is gone. */
const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_MS;

interface JobData {
  document: Record<string, unknown>;
  outputs?: string[];
  /** workers that could not run this job, with why (see capabilityGap) */
  refused?: Record<string, string>;
}

/** How long a refused job waits before another worker may take it. */
const REFUSED_DELAY_MS = 250;

interface JobReturn {
  result: RunResult;
  files: CarriedFile[];
  /** The attempt that produced it and how many events it published: the server waits for them all
   *  before it finishes the job (the events and the completion travel on different connections). */
  attempt?: string;
  events?: number;
}

/** How long the server waits for events still in flight after the job's completion arrived. */
const EVENTS_SETTLE_MS = 5000;

interface Heartbeat extends Omit<WorkerInfo, 'kind'> {
  concurrency: number;
}

/** Every connection made, so that close() can drop them even when Redis never answered. */
export function redisConnection(url: string, log?: Logger, opened?: Redis[]): Redis {
  // BullMQ's workers block on Redis: they need maxRetriesPerRequest null.
  const r = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  let last = '';
  r.on('error', (e: Error) => {
    // ioredis retries by itself; say so once per distinct error, not once per retry
    if (e.message !== last) log?.warn(`redis ${redactUrl(url)}: ${e.message}`);
    last = e.message;
  });
  opened?.push(r);
  return r;
}

/** An event as it travels through Redis: JSON `{attempt, event}`, a preview image's bytes in base64. */
function encodeEvent(attempt: string, e: ExecutionEvent): string {
  const event =
    e.type !== 'preview'
      ? e
      : { ...e, image: { format: e.image.format, data: Buffer.from(e.image.data).toString('base64') } };
  return JSON.stringify({ attempt, event });
}

function decodeEvent(text: string): { attempt: string; event: ExecutionEvent } {
  const { attempt, event: raw } = JSON.parse(text) as {
    attempt: string;
    event: { type?: string; image?: { format: string; data: string } };
  };
  if (raw?.type === 'preview' && raw.image) {
    raw.image = { ...raw.image, data: new Uint8Array(Buffer.from(raw.image.data, 'base64')) as never };
  }
  return { attempt: String(attempt), event: ExecutionEventSchema.parse(raw) as ExecutionEvent };
}

/** The heartbeats of every live worker. */
async function liveWorkers(r: Redis): Promise<Heartbeat[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await r.scan(cursor, 'MATCH', WORKER_KEY('*'), 'COUNT', 100);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  const values = keys.length > 0 ? await r.mget(...keys) : [];
  return values
    .filter((v): v is string => typeof v === 'string')
    .map((v) => JSON.parse(v) as Heartbeat)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Validation errors that say "not on this machine" rather than "not a valid job": a node type this
 *  worker's plugins lack, a model (combo value) its model roots lack, a node version it does not
 *  have, a memory budget smaller than another worker's. Such a job is handed to another worker. */
const CAPABILITY_ERRORS = new Set([
  'missing_node_type',
  'value_not_in_list',
  'node_version_unsupported',
  'memory_budget_exceeded',
]);

/** Why this worker cannot run the job (its own validation said so), or null. */
export function capabilityGap(result: RunResult): string | null {
  const v = result.status === 'error' ? result.error?.validation : undefined;
  if (!v) return null;
  const nodeErrors = Object.entries(v.node_errors);
  const missing = v.error?.type === 'missing_node_type';
  if (!missing && nodeErrors.length === 0) return null;
  const all = nodeErrors.flatMap(([, e]) => e.errors);
  if (!all.every((e) => CAPABILITY_ERRORS.has(e.type))) return null;
  const parts = missing && v.error ? [v.error.message] : [];
  for (const [id, e] of nodeErrors)
    for (const err of e.errors)
      parts.push(`node ${id} (${e.class_type}): ${err.message}${err.details ? ` — ${err.details}` : ''}`);
  return parts.join('; ');
}

// ------------------------------------------------------------------------------------------ server

export interface BullmqEngineOptions {
  url: string;
  log: Logger;
  outputDir: string;
  tempDir: string;
}

export class BullmqEngine implements JobEngine {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly listeners = new Map<string, (e: ExecutionEvent) => void>();
  /** Events received per job and attempt, and a wake-up for a job waiting for its last ones. */
  private readonly received = new Map<string, Map<string, number>>();
  private readonly arrived = new Map<string, () => void>();
  /** Ends run() of a job removed from the queue before a worker took it. */
  private readonly removed = new Map<string, () => void>();
  private live: Heartbeat[] = [];
  /** The workers coalesce progress and previews before they publish (runQueueWorker). */
  readonly coalescesEvents = true;
  private timer: NodeJS.Timeout | undefined;
  onCapacity?: () => void;

  private readonly opened: Redis[] = [];

  constructor(private readonly opts: BullmqEngineOptions) {
    const conn = () => redisConnection(opts.url, opts.log, this.opened);
    this.queue = new Queue(QUEUE_NAME, { connection: conn() });
    this.events = new QueueEvents(QUEUE_NAME, { connection: conn() });
    this.pub = conn();
    this.sub = conn();
    let last = '';
    const onError = (e: Error) => {
      if (e.message !== last) opts.log.warn(`queue: ${e.message}`);
      last = e.message;
    };
    this.queue.on('error', onError);
    this.events.on('error', onError);
    this.sub.on('message', (channel: string, text: string) => {
      const id = channel.slice(EVENTS('').length);
      const l = this.listeners.get(id);
      if (!l) return;
      try {
        const { attempt, event } = decodeEvent(text);
        const counts = this.received.get(id);
        counts?.set(attempt, (counts.get(attempt) ?? 0) + 1);
        l(event);
        this.arrived.get(id)?.();
      } catch (e) {
        this.opts.log.error(`job ${id}: malformed event from a worker: ${(e as Error).message}`);
      }
    });
  }

  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `cannot reach Redis at ${redactUrl(this.opts.url)} (no answer in ${CONNECT_TIMEOUT_MS / 1000} s)`,
            ),
          ),
        CONNECT_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]), timeout]);
    } finally {
      clearTimeout(timer);
    }
    await this.refreshWorkers();
    this.timer = setInterval(() => void this.refreshWorkers(), HEARTBEAT_MS);
  }

  capacity(): number {
    return Math.max(
      1,
      this.live.reduce((n, w) => n + w.concurrency, 0),
    );
  }

  async workers(): Promise<WorkerInfo[]> {
    await this.refreshWorkers();
    // the kind is the server's to say (a heartbeat of an older worker carries none)
    return this.live.map(({ concurrency: _c, ...w }) => ({ ...w, kind: 'queue' as const }));
  }

  private async refreshWorkers(): Promise<void> {
    try {
      const before = this.capacity();
      this.live = await liveWorkers(this.pub);
      if (this.capacity() > before) this.onCapacity?.();
    } catch (e) {
      this.opts.log.warn(`could not read the worker list from Redis: ${(e as Error).message}`);
    }
  }

  cacheInfo(): { entries: number; bytes: number; maxBytes: number } {
    return { entries: 0, bytes: 0, maxBytes: 0 };
  }

  runtimeStats(): unknown {
    return { workers: this.live.length };
  }

  async run(document: WorkflowDocument, options: EngineRunOptions): Promise<RunResult> {
    const id = options.promptId;
    const onEvent = options.onEvent ?? (() => {});
    this.listeners.set(id, onEvent);
    this.received.set(id, new Map());
    await this.sub.subscribe(EVENTS(id));
    const onAbort = () => void this.interrupt(id);
    try {
      const data: JobData = { document: document as unknown as Record<string, unknown>, outputs: options.outputs };
      const job = await this.queue.add('prompt', data, {
        jobId: id,
        // the job's own failures are final (a node error fails the same way again); a worker's
        // death is not a failure but a stall, which BullMQ retries on another worker
        attempts: 1,
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      let ret: JobReturn | 'removed';
      try {
        ret = await Promise.race([
          job.waitUntilFinished(this.events) as Promise<JobReturn>,
          new Promise<'removed'>((r) => this.removed.set(id, () => r('removed'))),
        ]);
      } catch (e) {
        const message = (e as Error).message;
        return {
          status: 'error',
          executed: [],
          cached: [],
          outputs: {},
          error: {
            nodeId: null,
            nodeType: null,
            message: `the queue failed the job: ${message}`,
            errorType: 'queue_failed',
          },
        };
      }
      if (ret === 'removed') return { status: 'interrupted', executed: [], cached: [], outputs: {} };
      await this.eventsSettled(id, ret);
      writeCarriedFiles(this.opts, id, ret.files, this.opts.log);
      return ret.result;
    } finally {
      this.removed.delete(id);
      options.signal?.removeEventListener('abort', onAbort);
      this.listeners.delete(id);
      this.received.delete(id);
      this.arrived.delete(id);
      await this.sub.unsubscribe(EVENTS(id)).catch(() => {});
    }
  }

  /** Waits (bounded) until every event the finishing attempt published has arrived: the completion
   *  can overtake the last PUBLISHes, and the client must see the last progress before the end. */
  private async eventsSettled(id: string, ret: JobReturn): Promise<void> {
    if (ret.attempt === undefined || ret.events === undefined) return;
    const want = ret.events;
    const have = () => this.received.get(id)?.get(ret.attempt!) ?? 0;
    const deadline = Date.now() + EVENTS_SETTLE_MS;
    while (have() < want && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.arrived.set(id, () => {
          clearTimeout(t);
          r();
        });
      });
    }
    if (have() < want)
      this.opts.log.warn(`job ${id}: ${want - have()} of its ${want} events did not arrive from Redis in time`);
  }

  async resumable(ids: readonly string[]): Promise<string[]> {
    const held: string[] = [];
    for (const id of ids) {
      const job = await this.queue.getJob(id);
      if (job && (await job.getState()) !== 'unknown') held.push(id);
    }
    return held;
  }

  private async interrupt(id: string): Promise<void> {
    const job = await this.queue.getJob(id);
    const state = await job?.getState();
    if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) {
      // not taken by a worker yet: take it off the queue (remove() refuses a job a worker has locked)
      const gone = await job.remove().then(
        () => true,
        () => false,
      );
      if (gone) {
        this.removed.get(id)?.();
        return;
      }
    }
    await this.pub.publish(INTERRUPT, id);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const closed = Promise.allSettled([this.queue.close(), this.events.close()]);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const r of this.opened) r.disconnect();
  }
}

// ------------------------------------------------------------------------------------------ worker

export interface QueueWorkerOptions {
  url: string;
  name: string;
  concurrency: number;
  init: WorkerInit;
  log: Logger;
  interruptGraceMs?: number;
  nodeTimeoutMs?: number;
  /** BullMQ lock duration: a worker silent this long is taken as dead and its job runs elsewhere. */
  lockDurationMs?: number;
  /** Progress and previews published at most once per this many ms per job (see ../throttle.ts). */
  progressIntervalMs?: number;
}

export interface QueueWorker {
  close(): Promise<void>;
}

/** This worker cannot run the job (its own validation said why): leave it for another worker, or,
 *  when every live worker has refused it, fail it naming what each one lacks. */
async function refuseJob(
  self: { name: string; log: Logger; pub: Redis },
  job: Job<JobData, JobReturn>,
  token: string | undefined,
  result: RunResult,
  gap: string,
  held: ExecutionEvent[],
  publish: (e: ExecutionEvent) => Promise<number>,
): Promise<JobReturn> {
  const id = job.id!;
  const refused = { ...(job.data.refused ?? {}), [self.name]: gap };
  const live = (await liveWorkers(self.pub)).map((w) => w.name);
  if (!live.every((n) => n in refused)) {
    self.log.info(`job ${id}: refused here, left for another worker: ${gap}`);
    await job.updateData({ ...job.data, refused });
    await job.moveToDelayed(Date.now() + REFUSED_DELAY_MS, token);
    throw new DelayedError();
  }
  const message = `no worker can run this job: ${Object.entries(refused)
    .map(([n, why]) => `${n}: ${why}`)
    .join(' | ')}`;
  const error = { ...result.error!, message, errorType: 'no_capable_worker' };
  // the held events of this attempt, its error restated for the whole queue
  for (const e of held)
    await publish(e.type === 'error' ? ({ ...e, message, errorType: 'no_capable_worker' } as ExecutionEvent) : e);
  return { result: { ...result, error }, files: [] };
}

export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const engines = Array.from(
    { length: o.concurrency },
    () =>
      new ProcessEngine({
        init: o.init,
        log: o.log,
        interruptGraceMs: o.interruptGraceMs,
        nodeTimeoutMs: o.nodeTimeoutMs,
      }),
  );
  await Promise.all(engines.map((e) => e.start()));
  const free = [...engines];
  const running = new Map<string, AbortController>();
  const pub = redisConnection(o.url, o.log);
  const sub = redisConnection(o.url, o.log);
  await sub.subscribe(INTERRUPT);
  sub.on('message', (_channel: string, id: string) => running.get(id)?.abort(new Error('interrupted')));

  const models = modelNames(o.init.host.modelRoots);
  const beat = async () => {
    const hb: Heartbeat = {
      name: o.name,
      host: hostname(),
      pid: process.pid,
      models,
      plugins: engines[0].plugins.map((p) => p.name),
      current_job: running.keys().next().value ?? null,
      last_heartbeat: new Date().toISOString(),
      concurrency: o.concurrency,
    };
    await pub.set(WORKER_KEY(o.name), JSON.stringify(hb), 'PX', HEARTBEAT_TTL_MS);
  };
  await beat();
  const heartbeat = setInterval(
    () => void beat().catch((e) => o.log.warn(`heartbeat failed: ${e.message}`)),
    HEARTBEAT_MS,
  );

  const lockDuration = o.lockDurationMs ?? 30_000;
  const worker = new Worker<JobData, JobReturn>(
    QUEUE_NAME,
    async (job: Job<JobData, JobReturn>, token?: string) => {
      const id = job.id!;
      const engine = free.pop();
      if (!engine) throw new Error('no free engine (concurrency exceeded)');
      const controller = new AbortController();
      running.set(id, controller);
      void beat().catch(() => {});
      // Until the run gets past validation, its events are held: if this worker turns out unable to run
      // the job, nobody hears of this attempt.
      const held: ExecutionEvent[] = [];
      let validated = false;
      const attempt = randomUUID();
      let published = 0;
      const publish = (e: ExecutionEvent) => {
        published++;
        return pub.publish(EVENTS(id), encodeEvent(attempt, e));
      };
      // Per-step progress and previews coalesced before they reach Redis (state changes go at once).
      const throttle = new EventThrottle(progressInterval(o.progressIntervalMs), (e) => void publish(e));
      try {
        const result = await engine.run(job.data.document as unknown as WorkflowDocument, {
          promptId: id,
          outputs: job.data.outputs,
          signal: controller.signal,
          onEvent: (e) => {
            if (!validated && (e.type === 'execution_start' || e.type === 'error')) {
              held.push(e);
              return;
            }
            if (!validated) {
              validated = true;
              for (const h of held.splice(0)) void publish(h);
            }
            throttle.push(e);
          },
        });
        throttle.flush();
        const gap = validated ? null : capabilityGap(result);
        if (gap) {
          const refused = await refuseJob({ name: o.name, log: o.log, pub }, job, token, result, gap, held, publish);
          return { ...refused, attempt, events: published };
        }
        await Promise.all(held.splice(0).map(publish));
        return { result, files: carriedFiles(o.init.host, result.outputs, o.log), attempt, events: published };
      } finally {
        throttle.flush();
        running.delete(id);
        free.push(engine);
        void beat().catch(() => {});
      }
    },
    {
      connection: redisConnection(o.url, o.log),
      concurrency: o.concurrency,
      lockDuration,
      stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
      maxStalledCount: 3,
      name: o.name,
    },
  );
  worker.on('error', (e) => o.log.error(`queue worker: ${e.message}`));
  await worker.waitUntilReady();
  o.log.info(`worker ${o.name} takes jobs from ${QUEUE_NAME} (concurrency ${o.concurrency})`);

  return {
    async close() {
      clearInterval(heartbeat);
      await worker.close();
      await pub.del(WORKER_KEY(o.name)).catch(() => {});
      await Promise.all(engines.map((e) => e.close()));
      pub.disconnect();
      sub.disconnect();
    },
  };
}
