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
 * - Deleting or clearing queued prompts or history, and interrupting a prompt another server runs,
 *   go out on `priorgraph:control`; every server applies them to what it holds.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@priorgraph/core';
import type { Redis } from 'ioredis';
import { FINISHED_STATUSES, type JobRecord, type JobStatus, type JobStore } from '../store.js';
import { carriedFiles, type OutputDirs, writeCarriedFiles } from './carried.js';

const HISTORY = 'priorgraph:history';
const CONTROL = 'priorgraph:control';
const SERVER_KEY = (id: string) => `priorgraph:servers:${id}`;
/** Finished jobs the shared stream keeps for servers that were away (older ones are trimmed). */
export const HISTORY_STREAM_MAX = 10_000;
const SNAPSHOT_REFRESH_MS = 2000;
const SNAPSHOT_TTL_MS = 5 * SNAPSHOT_REFRESH_MS;
/** GET /queue reads the peers' snapshots at most this often. */
const PEERS_CACHE_MS = 200;
const POSITION = 'history_stream_position';

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
  /** Applies another server's request to what this one holds. */
  onControl: (m: ControlMessage) => Promise<void>;
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
    this.sub.on('message', (_channel: string, text: string) => void this.receive(text));
    await this.sub.subscribe(CONTROL);
    await this.publishSnapshot();
    this.timer = setInterval(() => void this.publishSnapshot(), SNAPSHOT_REFRESH_MS);
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
    } catch (e) {
      this.opts.log.warn(`could not publish this server's queue to Redis: ${(e as Error).message}`);
    }
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
    try {
      const job = await this.opts.store.get(id);
      if (!job || !FINISHED_STATUSES.includes(job.status)) return;
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
      this.opts.log.error(`job ${id}: could not share it with the other servers: ${(e as Error).message}`);
    }
  }

  /** Asks every server (this one included) to apply `m`. */
  async control(m: ControlRequest): Promise<void> {
    await this.cmd.publish(CONTROL, JSON.stringify({ ...m, from: this.id }));
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
        const got = (await this.reader.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', HISTORY, this.position)) as Array<
          [string, Array<[string, string[]]>]
        > | null;
        lastError = '';
        for (const [, entries] of got ?? []) {
          for (const [entryId, fields] of entries) {
            await this.importEntry(fields);
            this.position = entryId;
          }
          await this.opts.store.setMeta(POSITION, this.position);
        }
      } catch (e) {
        if (this.closed) return;
        const message = (e as Error).message;
        if (message !== lastError) this.opts.log.warn(`reading the shared history from Redis: ${message}`);
        lastError = message;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async importEntry(fields: string[]): Promise<void> {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
    if (f.get('server') === this.id) return;
    const job = JSON.parse(f.get('job') ?? 'null') as JobRecord | null;
    if (!job?.id) return;
    if ((await this.opts.store.get(job.id)) !== null) return;
    writeCarriedFiles(this.opts.dirs, job.id, JSON.parse(f.get('files') ?? '[]'), this.opts.log);
    await this.opts.store.importFinished(job);
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
