/**
 * The durable job queue and history.
 *
 * `JobStore` is the small interface the rest of the server talks to; `SqliteJobStore` implements it on
 * a local SQLite file (better-sqlite3, WAL journal). Every method is async so that a distributed
 * backend (e.g. BullMQ on Redis with remote workers) can take SQLite's place without touching callers.
 *
 * Lifecycle of a job: pending → running → success | error | interrupted. A pending job may also be
 * deleted (POST /queue {delete}) or cleared. On startup `recover()` marks any job left `running` by a
 * crash as `interrupted` (we do not re-queue: a job that took the process down may do it again).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type JobStatus = 'pending' | 'running' | 'success' | 'error' | 'interrupted';
export const FINISHED_STATUSES: readonly JobStatus[] = ['success', 'error', 'interrupted'];

/** One `[event, data]` pair of ComfyUI's `history[id].status.messages`. */
export type JobMessage = [string, Record<string, unknown>];

export interface JobError {
  type: string;
  message: string;
  nodeId?: string;
  nodeType?: string;
  details?: unknown;
}

export interface NewJob {
  id: string;
  /** ComfyUI queue number; smaller runs first. When omitted the store assigns the next one. */
  number?: number;
  /** Put it at the front of the queue (ComfyUI's `front: true`). Ignored when `number` is given. */
  front?: boolean;
  /** The ComfyUI API-format prompt (shown in /queue and /history). */
  prompt: Record<string, unknown>;
  /** The priorgraph document that is executed. */
  document: Record<string, unknown>;
  extraData: Record<string, unknown>;
  /** Output node ids to execute (ComfyUI's `outputs_to_execute`). */
  outputs: string[];
  clientId?: string;
}

export interface JobRecord {
  id: string;
  number: number;
  status: JobStatus;
  prompt: Record<string, unknown>;
  document: Record<string, unknown>;
  extraData: Record<string, unknown>;
  outputs: string[];
  clientId: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** UI outputs per node (`{ images: [...] }`), set when the job finishes (also partial ones on error). */
  results: Record<string, Record<string, unknown>>;
  messages: JobMessage[];
  error: JobError | null;
}

export interface JobFinish {
  results: Record<string, Record<string, unknown>>;
  messages: JobMessage[];
  error?: JobError;
}

export interface PageOptions {
  /** Newest first (ComfyUI's /history order). */
  offset?: number;
  limit?: number;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the data directory ${dataDir} is in use by another priorgraph server (pid ${pid}); stop it or use --data-dir`,
    );
    this.name = 'DataDirInUseError';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const heldHere = new Set<string>();

/** One server per data dir: `<dataDir>/server.lock` holds the owner's pid; a dead owner's lock
 *  (after kill -9) is taken over. */
function acquireLock(dataDir: string): string {
  const file = join(dataDir, 'server.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      heldHere.add(file);
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      // Our own pid in the file is a live lock only if this process holds it (after a restart in a
      // container the new process may get the dead one's pid).
      const live = pid === process.pid ? heldHere.has(file) : Number.isInteger(pid) && pid > 0 && pidAlive(pid);
      if (live) throw new DataDirInUseError(dataDir, pid);
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not take the lock ${file}`);
}

/** A file as outputs name it (`{filename, subfolder, type}`). */
export interface FileRef {
  filename: string;
  subfolder: string;
  type: 'output' | 'input' | 'temp';
}

/** True when some array in the UI outputs lists `file` (`images`, `gifs`, ... all share the shape). */
export function outputsReference(results: Record<string, Record<string, unknown>>, file: FileRef): boolean {
  for (const ui of Object.values(results ?? {})) {
    for (const list of Object.values(ui ?? {})) {
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        if (typeof item !== 'object' || item === null) continue;
        const f = item as Partial<FileRef>;
        if (
          f.filename === file.filename &&
          (f.subfolder ?? '') === file.subfolder &&
          (f.type ?? 'output') === file.type
        )
          return true;
      }
    }
  }
  return false;
}

/** A storage failure the client should see as such (not as a 500): 507 when the database or disk is
 *  full, 503 when it is busy, read-only, damaged or failing. Null for any other error. */
export function storageFailure(e: unknown): { status: 507 | 503; type: string; message: string } | null {
  const code = String((e as { code?: unknown })?.code ?? '');
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') {
    return {
      status: 507,
      type: 'storage_full',
      message: `the job store is full (disk or database size limit), nothing was recorded: ${msg}`,
    };
  }
  if (
    /^SQLITE_(BUSY|LOCKED|IOERR|CORRUPT|NOTADB|READONLY|CANTOPEN|PROTOCOL)/.test(code) ||
    ['EROFS', 'EIO'].includes(code)
  ) {
    return { status: 503, type: 'storage_unavailable', message: `the job store is unavailable (${code}): ${msg}` };
  }
  return null;
}

export class DuplicateJobError extends Error {
  constructor(readonly id: string) {
    super(`a job with prompt_id ${id} already exists`);
    this.name = 'DuplicateJobError';
  }
}

export interface JobStore {
  /** Add a pending job; returns its queue number. Throws DuplicateJobError when the id exists. */
  enqueue(job: NewJob): Promise<number>;
  /** The pending job that should run next (lowest number), or null. Does not claim it. */
  next(): Promise<JobRecord | null>;
  /** Claim a pending job. Returns false when it is no longer pending (deleted meanwhile). */
  markRunning(id: string): Promise<boolean>;
  complete(id: string, finish: JobFinish): Promise<void>;
  fail(id: string, finish: JobFinish & { error: JobError }): Promise<void>;
  interrupt(id: string, finish: JobFinish): Promise<void>;
  get(id: string): Promise<JobRecord | null>;
  /** Jobs with one of the statuses, in queue order (number, then insertion). */
  list(statuses: readonly JobStatus[]): Promise<JobRecord[]>;
  /** Finished jobs, newest first. */
  page(options?: PageOptions): Promise<JobRecord[]>;
  /** Delete jobs by id, restricted to the given statuses; returns how many went. */
  delete(ids: readonly string[], statuses: readonly JobStatus[]): Promise<number>;
  /** Delete every job with one of the statuses; returns how many went. */
  clear(statuses: readonly JobStatus[]): Promise<number>;
  count(statuses: readonly JobStatus[]): Promise<number>;
  /** The id of a finished job whose outputs list this file, or null. */
  referencing(file: FileRef): Promise<string | null>;
  /** After a crash: jobs left `running` become `interrupted`. Returns their ids. */
  recover(): Promise<string[]>;
  close(): Promise<void>;
}

interface Row {
  id: string;
  number: number;
  seq: number;
  status: JobStatus;
  prompt: string;
  document: string;
  extra_data: string;
  outputs: string;
  client_id: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  results: string | null;
  messages: string | null;
  error: string | null;
}

function toRecord(r: Row): JobRecord {
  return {
    id: r.id,
    number: r.number,
    status: r.status,
    prompt: JSON.parse(r.prompt),
    document: JSON.parse(r.document),
    extraData: JSON.parse(r.extra_data),
    outputs: JSON.parse(r.outputs),
    clientId: r.client_id,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    results: r.results ? JSON.parse(r.results) : {},
    messages: r.messages ? JSON.parse(r.messages) : [],
    error: r.error ? JSON.parse(r.error) : null,
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  number REAL NOT NULL,
  status TEXT NOT NULL,
  prompt TEXT NOT NULL,
  document TEXT NOT NULL,
  extra_data TEXT NOT NULL,
  outputs TEXT NOT NULL,
  client_id TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  results TEXT,
  messages TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status_number ON jobs(status, number, seq);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

function placeholders(n: number): string {
  return new Array(n).fill('?').join(',');
}

/** SQLite-backed JobStore: one file `<dataDir>/priorgraph.sqlite`, WAL journal, synchronous=FULL
 *  so that an accepted job survives kill -9 (and power loss) once its POST has answered. */
export class SqliteJobStore implements JobStore {
  readonly db: Database.Database;
  readonly file: string;
  private readonly lockFile: string;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.lockFile = acquireLock(dataDir);
    this.file = join(dataDir, 'priorgraph.sqlite');
    try {
      this.db = new Database(this.file);
    } catch (e) {
      heldHere.delete(this.lockFile);
      rmSync(this.lockFile, { force: true });
      throw e;
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.db.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')").run();
  }

  async enqueue(job: NewJob): Promise<number> {
    const tx = this.db.transaction((): number => {
      if (this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(job.id)) throw new DuplicateJobError(job.id);
      let number = job.number;
      if (number === undefined) {
        const row = this.db.prepare('SELECT MAX(ABS(number)) AS m FROM jobs').get() as { m: number | null };
        const next = Math.floor(row.m ?? 0) + 1;
        number = job.front ? -next : next;
      }
      this.db
        .prepare(
          `INSERT INTO jobs(id, number, status, prompt, document, extra_data, outputs, client_id, created_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          job.id,
          number,
          JSON.stringify(job.prompt),
          JSON.stringify(job.document),
          JSON.stringify(job.extraData),
          JSON.stringify(job.outputs),
          job.clientId ?? null,
          Date.now(),
        );
      return number;
    });
    return tx();
  }

  async next(): Promise<JobRecord | null> {
    const r = this.db.prepare("SELECT * FROM jobs WHERE status = 'pending' ORDER BY number, seq LIMIT 1").get() as
      | Row
      | undefined;
    return r ? toRecord(r) : null;
  }

  async markRunning(id: string): Promise<boolean> {
    const info = this.db
      .prepare("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'pending'")
      .run(Date.now(), id);
    return info.changes === 1;
  }

  private finish(id: string, status: JobStatus, f: JobFinish): void {
    this.db
      .prepare(
        "UPDATE jobs SET status = ?, finished_at = ?, results = ?, messages = ?, error = ? WHERE id = ? AND status IN ('running', 'pending')",
      )
      .run(
        status,
        Date.now(),
        JSON.stringify(f.results),
        JSON.stringify(f.messages),
        f.error ? JSON.stringify(f.error) : null,
        id,
      );
  }

  async complete(id: string, f: JobFinish): Promise<void> {
    this.finish(id, 'success', f);
  }
  async fail(id: string, f: JobFinish & { error: JobError }): Promise<void> {
    this.finish(id, 'error', f);
  }
  async interrupt(id: string, f: JobFinish): Promise<void> {
    this.finish(id, 'interrupted', f);
  }

  async get(id: string): Promise<JobRecord | null> {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  async list(statuses: readonly JobStatus[]): Promise<JobRecord[]> {
    if (statuses.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT * FROM jobs WHERE status IN (${placeholders(statuses.length)}) ORDER BY number, seq`)
      .all(...statuses) as Row[];
    return rows.map(toRecord);
  }

  async page(options: PageOptions = {}): Promise<JobRecord[]> {
    const limit = Math.max(0, Math.min(options.limit ?? 1_000_000, 1_000_000));
    const offset = Math.max(0, options.offset ?? 0);
    const rows = this.db
      .prepare(
        `SELECT * FROM jobs WHERE status IN ('success','error','interrupted')
         ORDER BY finished_at DESC, seq DESC LIMIT ? OFFSET ?`,
      )
      .all(limit, offset) as Row[];
    return rows.map(toRecord);
  }

  async delete(ids: readonly string[], statuses: readonly JobStatus[]): Promise<number> {
    if (ids.length === 0 || statuses.length === 0) return 0;
    const stmt = this.db.prepare(`DELETE FROM jobs WHERE id = ? AND status IN (${placeholders(statuses.length)})`);
    const tx = this.db.transaction(() => {
      let n = 0;
      for (const id of ids) n += stmt.run(id, ...statuses).changes;
      return n;
    });
    return tx();
  }

  async clear(statuses: readonly JobStatus[]): Promise<number> {
    if (statuses.length === 0) return 0;
    return this.db.prepare(`DELETE FROM jobs WHERE status IN (${placeholders(statuses.length)})`).run(...statuses)
      .changes;
  }

  async count(statuses: readonly JobStatus[]): Promise<number> {
    if (statuses.length === 0) return 0;
    const r = this.db
      .prepare(`SELECT COUNT(*) AS n FROM jobs WHERE status IN (${placeholders(statuses.length)})`)
      .get(...statuses) as { n: number };
    return r.n;
  }

  async referencing(file: FileRef): Promise<string | null> {
    const rows = this.db
      .prepare(
        "SELECT id, results FROM jobs WHERE status IN ('success','error','interrupted') AND instr(results, ?) > 0",
      )
      .all(`"filename":${JSON.stringify(file.filename)}`) as Array<{ id: string; results: string }>;
    for (const r of rows) if (outputsReference(JSON.parse(r.results), file)) return r.id;
    return null;
  }

  async recover(): Promise<string[]> {
    const tx = this.db.transaction(() => {
      const rows = this.db.prepare("SELECT id FROM jobs WHERE status = 'running'").all() as { id: string }[];
      const now = Date.now();
      const msg: JobMessage = [
        'execution_interrupted',
        { reason: 'the server stopped while this job was running (crash or kill); it was not re-run' },
      ];
      const err: JobError = { type: 'server_restart', message: 'the server stopped while this job was running' };
      const upd = this.db.prepare(
        "UPDATE jobs SET status = 'interrupted', finished_at = ?, error = ?, messages = ?, results = COALESCE(results, '{}') WHERE id = ?",
      );
      for (const r of rows) {
        const prev = this.db.prepare('SELECT messages FROM jobs WHERE id = ?').get(r.id) as { messages: string | null };
        const messages = prev.messages ? (JSON.parse(prev.messages) as JobMessage[]) : [];
        messages.push([msg[0], { ...msg[1], prompt_id: r.id, timestamp: now }]);
        upd.run(now, JSON.stringify(err), JSON.stringify(messages), r.id);
      }
      return rows.map((r) => r.id);
    });
    return tx();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
    if (heldHere.delete(this.lockFile)) rmSync(this.lockFile, { force: true });
  }
}
