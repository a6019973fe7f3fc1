/**
 * Several servers on one Redis (behind a load balancer, say): one queue and one history.
 *
 * Where things live in queue mode, and why:
 * - Work in flight is in BullMQ (./bullmq.ts), shared by construction.
 * - A server's own waiting and running prompts stay in its SQLite store (its runner hands them to
 *   BullMQ as workers free up, so the single-machine queue semantics — order, `front`, delete — are
 *   the same code). Each server publishes a snapshot of them under `priorgraph:servers:<id>`,
 *   refreshed on every change and every 2 s and expiring after 10 s (a dead server's queue drops
 *   off); GET /queue on any server lists its own and every live peer's.
 * - History lives in every server's SQLite store, whole. A server appends each job it finishes, with
 *   its output files, to the Redis stream `priorgraph:history` (capped at HISTORY_STREAM_MAX jobs);
 *   every server reads the stream from where it last stopped (the position is kept in its store),
 *   records the other servers' jobs and writes their files into its own output folders. So
 *   /history, /history/{id} and /view answer alike on every server, and a server that was down
 *   catches up when it comes back — as long as the stream still holds what it missed. History is
 *   not kept in Redis itself: the store already is the durable, paginated, pruned and
 *   integrity-checked history of the single-machine default, and Redis holds only what must be
 *   shared, bounded.
 *   GET /queue, and `queue_remaining` in the status message, count its own and every live peer's
 *   prompts; a server whose count changes says so on `priorgraph:queues`, so the others re-read.
 * - Deleting or clearing queued prompts or history are entries on the same history stream, so that
 *   they are durable and ordered with the jobs they concern: every server applies them as it reads
 *   them, and one that was down applies those it missed when it catches up. A history clear removes
 *   what came before it in the stream, on every server alike (the clearing one included), never a
 *   job of the reading server's own whose entry comes after it. Interrupting a prompt another server
 *   runs goes out on `priorgraph:control` (pub/sub: it means nothing later).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@priorgraph/core';
import type { Redis } from 'ioredis';
import { FINISHED_STATUSES, type JobRecord, type JobStatus, type JobStore } from '../store.js';
import { carriedFiles, type OutputDirs, writeCarriedFiles } from './carried.js';

const HISTORY = 'priorgraph:history';
const CONTROL = 'priorgraph:control';
const QUEUES = 'priorgraph:queues';
const SERVER_KEY = (id: string) => `priorgraph:servers:${id}`;
/** Finished jobs the shared stream keeps for servers that were away (older ones are trimmed). */
export const HISTORY_STREAM_MAX = 10_000;
const SNAPSHOT_REFRESH_MS = 2000;
const SNAPSHOT_TTL_MS = 5 * SNAPSHOT_REFRESH_MS;
/** GET /queue reads the peers' snapshots at most this often. */
const PEERS_CACHE_MS = 200;
const POSITION = 'history_stream_position';
/** Longest start-up wait for the catch-up read of the history stream (see catchUp). */
const CATCH_UP_MS = 10_000;

export type QueueItem = unknown[];
interface Snapshot {
  server: string;
  running: Array<[created: number, item: QueueItem]>;
  pending: Array<[created: number, item: QueueItem]>;
}

/** What one server asks of the others ... */
export type ControlRequest =
  | { op: 'delete'; ids: string[]; statuses: JobStatus[] }
  | { op: 'clear'; statuses: JobStatus[] }
  | { op: 'interrupt'; id: string };
/** ... as it travels, with the asking server's id. */
export type ControlMessage = ControlRequest & { from: string };

export interface ClusterOptions {
  /** Connections to Redis: one for commands, one for pub/sub, one for blocking stream reads. */
  connect: () => Redis;
  store: JobStore;
  dirs: OutputDirs;
  log: Logger;
  queueItem: (j: JobRecord) => QueueItem;
  /** Applies another server's interrupt to what this one holds. */
  onControl: (m: ControlMessage) => Promise<void>;
  /** This server's queue changed by a delete or clear another server asked for. */
  onQueueChanged: () => Promise<void>;
  /** The count of the other servers' prompts (peerRemaining()) changed. */
  onPeersChanged: () => void;
}

export class ClusterSync {
  id = '';
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly reader: Redis;
  private position = '0';
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  private reading: Promise<void> = Promise.resolve();
  private peersCache: { at: number; value: Promise<Snapshot[]> } | null = null;
  /** The other live servers' running + pending prompts, as last read. */
  private peerTotal = 0;
  /** This server's count as last published on QUEUES. */
  private publishedCount = -1;
  /** Jobs this server finished whose own stream entry the reader has not passed yet: a clear read
   *  before that entry must leave them (they finished after it). */
  private readonly ownAhead = new Set<string>();

  constructor(private readonly opts: ClusterOptions) {
    this.cmd = opts.connect();
    this.sub = opts.connect();
    this.reader = opts.connect();
  }

  async start(): Promise<void> {
    const { store } = this.opts;
    this.id = (await store.getMeta('server_id')) ?? randomUUID();
    await store.setMeta('server_id', this.id);
    this.position = (await store.getMeta(POSITION)) ?? '0';
    this.sub.on('message', (channel: string, text: string) => {
      if (channel === QUEUES) {
        if (text !== this.id) void this.refreshPeers();
      } else void this.receive(text);
    });
    await this.sub.subscribe(CONTROL, QUEUES);
    await this.publishSnapshot();
    await this.refreshPeers();
    this.timer = setInterval(() => {
      void this.publishSnapshot();
      void this.refreshPeers(); // a peer that died drops off when its snapshot expires
    }, SNAPSHOT_REFRESH_MS);
    await this.catchUp();
    this.reading = this.readLoop();
  }

  /** This server's queue changed: publish its snapshot soon (changes come in bursts). */
  queueChanged(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.publishSnapshot();
    }, 20);
  }

  private async publishSnapshot(): Promise<void> {
    if (this.closed) return;
    try {
      const { store, queueItem } = this.opts;
      const entry = (j: JobRecord): [number, QueueItem] => [j.createdAt, queueItem(j)];
      const snap: Snapshot = {
        server: this.id,
        running: (await store.list(['running'])).map(entry),
        pending: (await store.list(['pending'])).map(entry),
      };
      await this.cmd.set(SERVER_KEY(this.id), JSON.stringify(snap), 'PX', SNAPSHOT_TTL_MS);
      const count = snap.running.length + snap.pending.length;
      if (count !== this.publishedCount) {
        this.publishedCount = count;
        await this.cmd.publish(QUEUES, this.id);
      }
    } catch (e) {
      this.opts.log.warn(`could not publish this server's queue to Redis: ${(e as Error).message}`);
    }
  }

  /** How many prompts the other live servers hold (running and pending), as last read. */
  peerRemaining(): number {
    return this.peerTotal;
  }

  /** Re-reads the peers' snapshots (a peer said its queue changed, or the periodic look). */
  private async refreshPeers(): Promise<void> {
    if (this.closed) return;
    const value = this.readPeers();
    this.peersCache = { at: Date.now(), value };
    const total = (await value).reduce((n, s) => n + s.running.length + s.pending.length, 0);
    if (total === this.peerTotal) return;
    this.peerTotal = total;
    this.opts.onPeersChanged();
  }

  /** The other live servers' running and pending prompts, oldest first. */
  async peerQueue(): Promise<{ running: QueueItem[]; pending: QueueItem[] }> {
    const now = Date.now();
    if (!this.peersCache || now - this.peersCache.at > PEERS_CACHE_MS) {
      this.peersCache = { at: now, value: this.readPeers() };
    }
    const peers = await this.peersCache.value;
    const merge = (pick: (s: Snapshot) => Snapshot['running']) =>
      peers
        .flatMap(pick)
        .sort((a, b) => a[0] - b[0])
        .map(([, item]) => item);
    return { running: merge((s) => s.running), pending: merge((s) => s.pending) };
  }

  private async readPeers(): Promise<Snapshot[]> {
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await this.cmd.scan(cursor, 'MATCH', SERVER_KEY('*'), 'COUNT', 100);
        cursor = next;
        keys.push(...found.filter((k) => k !== SERVER_KEY(this.id)));
      } while (cursor !== '0');
      const values = keys.length > 0 ? await this.cmd.mget(...keys) : [];
      return values.filter((v): v is string => typeof v === 'string').map((v) => JSON.parse(v) as Snapshot);
    } catch (e) {
      this.opts.log.warn(`could not read the other servers' queues from Redis: ${(e as Error).message}`);
      return [];
    }
  }

  /** A job this server finished: to the shared history, with its output files. */
  async announce(id: string): Promise<void> {
    this.ownAhead.add(id);
    try {
      const job = await this.opts.store.get(id);
      if (!job || !FINISHED_STATUSES.includes(job.status)) {
        this.ownAhead.delete(id); // no entry will come
        return;
      }
      const files = carriedFiles(this.opts.dirs, job.results as never, this.opts.log);
      await this.cmd.xadd(
        HISTORY,
        'MAXLEN',
        '~',
        String(HISTORY_STREAM_MAX),
        '*',
        'server',
        this.id,
        'job',
        JSON.stringify(job),
        'files',
        JSON.stringify(files),
      );
    } catch (e) {
      this.ownAhead.delete(id);
      this.opts.log.error(`job ${id}: could not share it with the other servers: ${(e as Error).message}`);
    }
  }

  /** Asks every other server to apply `m` (this one has applied it already): an interrupt at once
   *  (pub/sub), a delete or clear through the history stream, so that it is durable. */
  async control(m: ControlRequest): Promise<void> {
    const text = JSON.stringify({ ...m, from: this.id });
    if (m.op === 'interrupt') await this.cmd.publish(CONTROL, text);
    else
      await this.cmd.xadd(HISTORY, 'MAXLEN', '~', String(HISTORY_STREAM_MAX), '*', 'server', this.id, 'control', text);
  }

  private async receive(text: string): Promise<void> {
    let m: ControlMessage;
    try {
      m = JSON.parse(text) as ControlMessage;
    } catch {
      return;
    }
    if (m.from === this.id) return;
    try {
      await this.opts.onControl(m);
    } catch (e) {
      this.opts.log.warn(`could not apply ${m.op} from server ${m.from}: ${(e as Error).message}`);
    }
  }

  /** Follows the shared history stream: other servers' finished jobs into this store. */
  private async readLoop(): Promise<void> {
    let lastError = '';
    while (!this.closed) {
      try {
        await this.readBatch(true);
        lastError = '';
      } catch (e) {
        if (this.closed) return;
        const message = (e as Error).message;
        if (message !== lastError) this.opts.log.warn(`reading the shared history from Redis: ${message}`);
        lastError = message;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Reads and applies the next entries of the stream (waiting up to 1 s for one when `block`);
   *  returns how many there were. */
  private async readBatch(block: boolean): Promise<number> {
    const { reader, position } = this;
    type Read = Array<[string, Array<[string, string[]]>]> | null;
    const got = (
      block
        ? await reader.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', HISTORY, position)
        : await reader.xread('COUNT', 100, 'STREAMS', HISTORY, position)
    ) as Read;
    let n = 0;
    for (const [, entries] of got ?? []) {
      for (const [entryId, fields] of entries) {
        await this.importEntry(fields);
        this.position = entryId;
        n++;
      }
      await this.opts.store.setMeta(POSITION, this.position);
    }
    return n;
  }

  /** Before this server runs anything: apply what the stream holds since it last read (deletes and
   *  clears made while it was down must reach its queue before its runner starts a deleted prompt).
   *  Bounded: it stops reading after CATCH_UP_MS (or at a Redis error) and the read loop goes on. */
  private async catchUp(): Promise<void> {
    const until = performance.now() + CATCH_UP_MS;
    try {
      while (performance.now() < until && (await this.readBatch(false)) > 0) {}
    } catch (e) {
      this.opts.log.warn(`catching up with the shared history: ${(e as Error).message}`);
    }
  }

  private async importEntry(fields: string[]): Promise<void> {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
    const control = f.get('control');
    if (control !== undefined) return this.applyStreamed(JSON.parse(control) as ControlMessage);
    const job = JSON.parse(f.get('job') ?? 'null') as JobRecord | null;
    if (f.get('server') === this.id) {
      if (job?.id) this.ownAhead.delete(job.id);
      return;
    }
    if (!job?.id) return;
    if ((await this.opts.store.get(job.id)) !== null) return;
    writeCarriedFiles(this.opts.dirs, job.id, JSON.parse(f.get('files') ?? '[]'), this.opts.log);
    await this.opts.store.importFinished(job);
  }

  /** A delete or clear read from the stream. This server applied its own already, when asked; a
   *  history clear it applies again at its place in the stream, for the jobs recorded since. */
  private async applyStreamed(m: ControlMessage): Promise<void> {
    if (m.op === 'interrupt') return;
    const { store } = this.opts;
    const own = m.from === this.id;
    const statuses = own ? m.statuses.filter((s) => FINISHED_STATUSES.includes(s)) : m.statuses;
    if (m.op === 'delete' && !own) await store.delete(m.ids, statuses);
    else if (m.op === 'clear' && statuses.length > 0) {
      if (this.ownAhead.size === 0) await store.clear(statuses);
      else {
        const ids = (await store.list(statuses)).map((j) => j.id).filter((id) => !this.ownAhead.has(id));
        await store.delete(ids, statuses);
      }
    } else return;
    await this.opts.onQueueChanged();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.scheduled);
    await this.cmd.del(SERVER_KEY(this.id)).catch(() => {});
    for (const r of [this.cmd, this.sub, this.reader]) r.disconnect();
    await this.reading;
  }
}
