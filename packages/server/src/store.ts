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
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@priorgraph/core';
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
function acquireLock(dataDir: string): { file: string; stale: boolean } {
  const file = join(dataDir, 'server.lock');
  let stale = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      heldHere.add(file);
      return { file, stale };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      // Our own pid in the file is a live lock only if this process holds it (after a restart in a
      // container the new process may get the dead one's pid).
      const live = pid === process.pid ? heldHere.has(file) : Number.isInteger(pid) && pid > 0 && pidAlive(pid);
      if (live) throw new DataDirInUseError(dataDir, pid);
      stale = true;
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

/** The store refuses to start: its database is damaged, or history would silently be lost. */
export class StoreIntegrityError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly backup: string | null,
  ) {
    super(
      `${problem}. The server refuses to start rather than lose or misreport history. ${
        backup
          ? `The last verified copy is ${backup} (stop the server, copy it to ${file}, delete ${file}-wal and ${file}-shm).`
          : 'No verified backup exists yet.'
      } To start anyway with what can be kept (damaged files are moved aside, never deleted), pass --allow-history-loss or set PRIORGRAPH_ALLOW_HISTORY_LOSS=1.`,
    );
    this.name = 'StoreIntegrityError';
  }
}

/**
 * Checks a SQLite WAL file (format: sqlite.org/walformat.html) the way SQLite reads it, but reports
 * instead of silently ignoring: a bad header, or a frame with the header's salts whose cumulative
 * checksum fails while complete frames follow it, means committed transactions would be dropped.
 * (A torn final frame after a crash is normal: SQLite never acknowledged it.) Null when sound.
 */
export function checkWal(walFile: string): string | null {
  let buf: Buffer;
  const fd = openSync(walFile, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return null;
    buf = Buffer.alloc(size);
    readSync(fd, buf, 0, size, 0);
  } finally {
    closeSync(fd);
  }
  if (buf.length < 32) return `the write-ahead log ${walFile} is truncated (${buf.length} bytes, no header)`;
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return `the write-ahead log ${walFile} has a garbled header`;
  const be = magic === 0x377f0683;
  const pageSize = buf.readUInt32BE(8) || 65536;
  let s0 = 0;
  let s1 = 0;
  const sum = (from: number, to: number) => {
    for (let i = from; i < to; i += 8) {
      const a = be ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
      const b = be ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
      s0 = (s0 + a + s1) >>> 0;
      s1 = (s1 + b + s0) >>> 0;
    }
  };
  sum(0, 24);
  if (s0 !== buf.readUInt32BE(24) || s1 !== buf.readUInt32BE(28))
    return `the write-ahead log ${walFile} has a garbled header (checksum mismatch)`;
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const frameSize = 24 + pageSize;
  const frames = Math.floor((buf.length - 32) / frameSize);
  for (let f = 0; f < frames; f++) {
    const at = 32 + f * frameSize;
    if (buf.readUInt32BE(at + 8) !== salt1 || buf.readUInt32BE(at + 12) !== salt2) return null; // older frames
    sum(at, at + 8);
    sum(at + 24, at + frameSize);
    if (s0 !== buf.readUInt32BE(at + 16) || s1 !== buf.readUInt32BE(at + 20)) {
      if (f === frames - 1) return null; // a torn last frame
      return `the write-ahead log ${walFile} is damaged at frame ${f + 1} of ${frames}: the transactions from there on would be silently dropped`;
    }
  }
  return null;
}

/** True when `dir` holds at least one file that is not hidden (searched a few levels deep). */
function hasFiles(dir: string, depth = 3): boolean {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile()) return true;
    if (e.isDirectory() && depth > 0 && hasFiles(join(dir, e.name), depth - 1)) return true;
  }
  return false;
}

export interface SqliteStoreOptions {
  /** The outputs folder: a missing or empty database next to outputs means lost history. */
  outputDir?: string;
  /** Start even when history would be lost (damaged files are moved aside and logged). */
  allowHistoryLoss?: boolean;
  log?: Logger;
}

export class DuplicateJobError extends Error {
  constructor(readonly id: string) {
    super(`a job with prompt_id ${id} already exists`);
    this.name = 'DuplicateJobError';
  }
}

export interface JobStore {
  /** Bumped by every write that changes a job (keys cached answers such as GET /queue). */
  readonly changes: number;
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
  /**
   * The jobs GET /queue lists, in its order, by their seq: the running ones, then the pending ones
   * (each by number, then insertion), as list() gives them. A seq names one stored job for good (it is
   * never reused, even after a delete), and a queued job's number, id, prompt, extra data and outputs
   * never change, so what is made of them can be cached by seq. Cheap: read from an index.
   */
  queueOrder(): Promise<{ running: number[]; pending: number[] }>;
  /** The stored jobs with these seqs, in any order (those gone are left out). */
  bySeq(seqs: readonly number[]): Promise<Array<{ seq: number; job: JobRecord }>>;
  /** Finished jobs, newest first. */
  page(options?: PageOptions): Promise<JobRecord[]>;
  /** Delete jobs by id, restricted to the given statuses; returns how many went. */
  delete(ids: readonly string[], statuses: readonly JobStatus[]): Promise<number>;
  /** Delete every job with one of the statuses; returns how many went. */
  clear(statuses: readonly JobStatus[]): Promise<number>;
  count(statuses: readonly JobStatus[]): Promise<number>;
  /** Last resort when recording a finished job failed: put it in `error` with the reason, with
   *  nothing else (no outputs), and if even that cannot be written, hold that state in memory (a
   *  restart marks it interrupted). Never throws: a job never stays `running`. */
  settle(id: string, error: JobError): Promise<void>;
  /** Keep the newest `keep` finished jobs, delete the older ones; returns how many went. */
  prune(keep: number): Promise<number>;
  /** The id of a finished job whose outputs list this file, or null. */
  referencing(file: FileRef): Promise<string | null>;
  /** After a crash: jobs left `running` become `interrupted`, except those in `resume`, which go back
   *  to `pending` (the engine still holds them). Returns the ids marked interrupted. */
  recover(resume?: ReadonlySet<string>): Promise<string[]>;
  /** A finished job recorded by another server sharing the queue (see worker/cluster.ts), kept as it
   *  is; false when a job with its id is already here. */
  importFinished(job: JobRecord): Promise<boolean>;
  /** A small persistent setting of this store (e.g. how far the shared history was read). */
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
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

/** What never changes once a job is queued. */
type Fixed = Pick<JobRecord, 'prompt' | 'document' | 'extraData' | 'outputs'>;
type FixedRow = Pick<Row, 'prompt' | 'document' | 'extra_data' | 'outputs'>;
/** Every column but the fixed ones. */
const STATE_COLUMNS =
  'seq, id, number, status, client_id, created_at, started_at, finished_at, results, messages, error';

function parseFixed(r: FixedRow): Fixed {
  return {
    prompt: JSON.parse(r.prompt),
    document: JSON.parse(r.document),
    extraData: JSON.parse(r.extra_data),
    outputs: JSON.parse(r.outputs),
  };
}

function toRecord(r: Omit<Row, keyof FixedRow>, fixed: Fixed = parseFixed(r as Row)): JobRecord {
  return {
    id: r.id,
    number: r.number,
    status: r.status,
    ...fixed,
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

/** The database header says WAL journal (bytes 18–19 are 2). */
function isWalMode(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(20);
    return readSync(fd, b, 0, 20, 0) === 20 && b[18] === 2 && b[19] === 2;
  } finally {
    closeSync(fd);
  }
}

function placeholders(n: number): string {
  return new Array(n).fill('?').join(',');
}

/**
 * SQLite-backed JobStore: one file `<dataDir>/priorgraph.sqlite`, WAL journal.
 *
 * Durability without fsync on the main thread: the connection runs synchronous=NORMAL, so a commit
 * only write()s its WAL frames (to the OS: a kill -9 of the process loses nothing from then on), and
 * the write's promise settles after `durable()` has fsync'ed the WAL file on libuv's thread pool (so
 * an answered POST /prompt, or a job announced as finished, also survives power loss). One fsync
 * covers every commit made before it started: writes in a burst share them (group commit).
 */
export class SqliteJobStore implements JobStore {
  db: Database.Database;
  readonly file: string;
  /** The last verified copy of the database, written at each start once the checks pass. */
  readonly backupFile: string;
  private readonly lockFile: string;
  private readonly log: Logger | undefined;
  /** Jobs whose final state could not be written (see settle). */
  private readonly unrecorded = new Map<string, { error: JobError; finishedAt: number }>();
  private backupDone: Promise<void> = Promise.resolve();
  changes = 0;
  /** Prepared statements by SQL (preparing one costs more than running it). */
  private readonly statements = new Map<string, Database.Statement>();
  /** WAL journal (then durable() fsyncs the WAL), else synchronous=FULL commits. */
  private wal = false;
  /** The fsync in progress, and the one queued behind it for commits made meanwhile. */
  private syncing: Promise<void> | null = null;
  private syncQueued: Promise<void> | null = null;

  constructor(dataDir: string, options: SqliteStoreOptions = {}) {
    mkdirSync(dataDir, { recursive: true });
    const lock = acquireLock(dataDir);
    this.lockFile = lock.file;
    this.file = join(dataDir, 'priorgraph.sqlite');
    this.backupFile = `${this.file}.bak`;
    this.log = options.log;
    try {
      this.db = this.open(lock.stale, options);
    } catch (e) {
      heldHere.delete(this.lockFile);
      rmSync(this.lockFile, { force: true });
      throw e;
    }
    this.backupDone = this.backup();
  }

  /** Opens the database after the integrity checks (see StoreIntegrityError). */
  private open(crashed: boolean, options: SqliteStoreOptions): Database.Database {
    const file = this.file;
    const wal = `${file}-wal`;
    const shm = `${file}-shm`;
    const size = existsSync(file) ? statSync(file).size : -1;
    const backup = existsSync(this.backupFile) ? this.backupFile : null;
    const problems: string[] = [];
    if (size <= 0 && options.outputDir && hasFiles(options.outputDir)) {
      problems.push(
        `the job database ${file} is ${size < 0 ? 'missing' : 'empty (0 bytes)'} but the outputs folder ${options.outputDir} holds files: the history of those outputs is lost`,
      );
    }
    if (size > 0) {
      if (existsSync(wal)) {
        const w = checkWal(wal);
        if (w) problems.push(w);
      } else if (existsSync(shm) || (crashed && isWalMode(file))) {
        problems.push(
          `the write-ahead log ${wal} of ${file} is missing after ${crashed ? 'a crash' : 'an unclean stop'}: the transactions it held are lost`,
        );
      }
    }
    const aside = (what: string) => {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      for (const f of [file, wal, shm]) {
        if ((what === 'all' || f !== file) && existsSync(f)) renameSync(f, `${f}.damaged-${stamp}`);
      }
      return stamp;
    };
    if (problems.length > 0) {
      const problem = problems.join('; ');
      if (!options.allowHistoryLoss) throw new StoreIntegrityError(file, problem, backup);
      this.log?.error(`HISTORY LOSS ACCEPTED (--allow-history-loss): ${problem}`);
      if (size > 0) {
        const stamp = aside('wal');
        this.log?.error(`the damaged write-ahead log was moved to ${wal}.damaged-${stamp}`);
      }
    }
    let db = new Database(file);
    let damage: string | null = null;
    try {
      const r = db.pragma('quick_check', { simple: true });
      if (r !== 'ok') damage = `the job database ${file} is damaged (quick_check: ${String(r).slice(0, 300)})`;
    } catch (e) {
      damage = `the job database ${file} cannot be read (${(e as Error).message})`;
    }
    if (damage) {
      db.close();
      if (!options.allowHistoryLoss) throw new StoreIntegrityError(file, damage, backup);
      const stamp = aside('all');
      this.log?.error(
        `HISTORY LOSS ACCEPTED (--allow-history-loss): ${damage}; it was moved to ${file}.damaged-${stamp} and an empty history starts`,
      );
      db = new Database(file);
    }
    const d = db;
    this.wal = String(d.pragma('journal_mode = WAL', { simple: true })).toLowerCase() === 'wal';
    // NORMAL in WAL mode: commits do not fsync (durable() does, off the main thread); a journal that
    // is not WAL (a file system without shared memory) keeps FULL.
    d.pragma(this.wal ? 'synchronous = NORMAL' : 'synchronous = FULL');
    d.pragma('busy_timeout = 5000');
    d.exec(SCHEMA);
    d.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')").run();
    return d;
  }

  /** A verified copy (written to a temporary name, then renamed over the previous one). */
  private async backup(): Promise<void> {
    const tmp = `${this.backupFile}.tmp`;
    try {
      await this.db.backup(tmp);
      renameSync(tmp, this.backupFile);
    } catch (e) {
      rmSync(tmp, { force: true });
      this.log?.warn(`could not write the database backup ${this.backupFile}`, e);
    }
  }

  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Settles once every commit made so far is on disk: an fsync of the WAL file on the thread pool
   *  (fsync syncs the file, whichever descriptor asks). Commits during a running fsync share the next. */
  durable(): Promise<void> {
    if (!this.wal) return Promise.resolve();
    if (!this.syncing) {
      const p = this.syncWal().finally(() => {
        if (this.syncing === p) this.syncing = null;
      });
      this.syncing = p;
      return p;
    }
    if (!this.syncQueued) {
      const q = this.syncing
        .catch(() => {})
        .then(() => {
          this.syncQueued = null;
          return this.durable();
        });
      this.syncQueued = q;
    }
    return this.syncQueued;
  }

  /** The WAL, opened once for fsync (SQLite keeps that file while the database is open). */
  private walHandle: Promise<FileHandle> | null = null;

  private async syncWal(): Promise<void> {
    this.walHandle ??= openFile(`${this.file}-wal`, 'r');
    let fh: FileHandle;
    try {
      fh = await this.walHandle;
    } catch (e) {
      this.walHandle = null;
      // Closing the database checkpoints the WAL into the (synced) file and removes it.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !this.db.open) return;
      throw e;
    }
    await fh.sync();
  }

  /**
   * Group commit: the enqueues that arrive in one turn of the event loop (a burst of POST /prompt)
   * are written in one transaction, and the fsync after it (see durable()) runs off the main thread.
   * Each promise settles after that fsync, so an answered POST is durable.
   */
  async enqueue(job: NewJob): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.inserts.push({ job, resolve, reject });
      if (this.inserts.length === 1) setImmediate(() => this.flushInserts());
    });
  }

  private maxNumber: number | null = null;
  private inserts: Array<{ job: NewJob; resolve: (n: number) => void; reject: (e: unknown) => void }> = [];

  private flushInserts(): void {
    const batch = this.inserts.splice(0);
    if (batch.length === 0) return;
    const outcome: Array<{ n?: number; e?: unknown }> = [];
    try {
      this.db.transaction(() => {
        for (const { job } of batch) {
          try {
            outcome.push({ n: this.insertOne(job) });
          } catch (e) {
            if (!(e instanceof DuplicateJobError)) throw e; // a store error fails the whole batch
            outcome.push({ e });
          }
        }
      })();
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    this.changes++;
    const settle = (err?: unknown) => {
      for (let i = 0; i < batch.length; i++) {
        const o = outcome[i];
        if (o.e || err) batch[i].reject(o.e ?? err);
        else batch[i].resolve(o.n!);
      }
    };
    this.durable().then(
      () => settle(),
      (err) => {
        // Not durable, so not accepted: take back the jobs that have not started (a failed POST must
        // not run later). One that a runner already took stays, recorded like any other.
        try {
          const drop = this.stmt("DELETE FROM jobs WHERE id = ? AND status = 'pending'");
          for (let i = 0; i < batch.length; i++) if (!outcome[i].e) drop.run(batch[i].job.id);
          this.changes++;
        } catch (e) {
          this.log?.error('could not take back the jobs whose enqueue failed to sync', e);
        }
        settle(err);
      },
    );
  }

  private insertOne(job: NewJob): number {
    if (this.stmt('SELECT 1 FROM jobs WHERE id = ?').get(job.id)) throw new DuplicateJobError(job.id);
    if (this.maxNumber === null) {
      // Once (a scan); then kept up to date here, the only writer of numbers.
      const row = this.stmt('SELECT MAX(ABS(number)) AS m FROM jobs').get() as { m: number | null };
      this.maxNumber = row.m ?? 0;
    }
    let number = job.number;
    if (number === undefined) {
      const next = Math.floor(this.maxNumber) + 1;
      number = job.front ? -next : next;
    }
    this.maxNumber = Math.max(this.maxNumber, Math.abs(number));
    this.stmt(
      `INSERT INTO jobs(id, number, status, prompt, document, extra_data, outputs, client_id, created_at)
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)`,
    ).run(
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
  }

  async next(): Promise<JobRecord | null> {
    const r = this.stmt("SELECT * FROM jobs WHERE status = 'pending' ORDER BY number, seq LIMIT 1").get() as
      | Row
      | undefined;
    return r ? toRecord(r) : null;
  }

  async markRunning(id: string): Promise<boolean> {
    // Without waiting for an fsync: a crash of the process loses nothing (the WAL is in the OS), a
    // power loss at worst re-runs a job that had just started (the next durable write syncs this one).
    const info = this.stmt(
      "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'pending'",
    ).run(Date.now(), id);
    this.changes++;
    return info.changes === 1;
  }

  private finish(id: string, status: JobStatus, f: JobFinish): void {
    this.changes++;
    this.fixed.delete(id);
    this.stmt(
      "UPDATE jobs SET status = ?, finished_at = ?, results = ?, messages = ?, error = ? WHERE id = ? AND status IN ('running', 'pending')",
    ).run(
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
    await this.durable();
  }
  async fail(id: string, f: JobFinish & { error: JobError }): Promise<void> {
    this.finish(id, 'error', f);
    await this.durable();
  }
  async interrupt(id: string, f: JobFinish): Promise<void> {
    this.finish(id, 'interrupted', f);
    await this.durable();
  }

  async get(id: string): Promise<JobRecord | null> {
    const r = this.stmt('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? this.overlay(toRecord(r)) : null;
  }

  /** The fixed parts of queued and running jobs, parsed once: GET /queue lists every one of them
   *  after each change, and a burst makes hundreds of changes. (Shared: callers only read them.) */
  private readonly fixed = new Map<string, Fixed>();

  async list(statuses: readonly JobStatus[]): Promise<JobRecord[]> {
    if (statuses.length === 0) return [];
    const rows = this.stmt(
      `SELECT ${STATE_COLUMNS} FROM jobs WHERE status IN (${placeholders(statuses.length)}) ORDER BY number, seq`,
    ).all(...statuses) as Row[];
    return rows
      .map((r) => {
        let f = this.fixed.get(r.id);
        if (!f) {
          f = parseFixed(
            this.stmt('SELECT prompt, document, extra_data, outputs FROM jobs WHERE id = ?').get(r.id) as FixedRow,
          );
          if (r.status === 'pending' || r.status === 'running') this.fixed.set(r.id, f);
        }
        return this.overlay(toRecord(r, f));
      })
      .filter((j) => statuses.includes(j.status));
  }

  async queueOrder(): Promise<{ running: number[]; pending: number[] }> {
    // (status, number, seq) is an index: the pending order is read from it alone
    const pending = this.stmt("SELECT seq FROM jobs WHERE status = 'pending' ORDER BY number, seq")
      .pluck()
      .all() as number[];
    const running = this.stmt("SELECT seq, id FROM jobs WHERE status = 'running' ORDER BY number, seq").all() as Array<{
      seq: number;
      id: string;
    }>;
    // one whose final state is only held in memory reads as failed (see overlay)
    return { running: running.filter((r) => !this.unrecorded.has(r.id)).map((r) => r.seq), pending };
  }

  async bySeq(seqs: readonly number[]): Promise<Array<{ seq: number; job: JobRecord }>> {
    if (seqs.length === 0) return [];
    const rows = this.stmt('SELECT * FROM jobs WHERE seq IN (SELECT value FROM json_each(?))').all(
      JSON.stringify(seqs),
    ) as Row[];
    return rows.map((r) => ({ seq: r.seq, job: this.overlay(toRecord(r)) }));
  }

  async page(options: PageOptions = {}): Promise<JobRecord[]> {
    const limit = Math.max(0, Math.min(options.limit ?? 1_000_000, 1_000_000));
    const offset = Math.max(0, options.offset ?? 0);
    const rows = this.stmt(
      `SELECT * FROM jobs WHERE status IN ('success','error','interrupted')
         ORDER BY finished_at DESC, seq DESC LIMIT ? OFFSET ?`,
    ).all(limit, offset) as Row[];
    return rows.map((r) => toRecord(r));
  }

  async delete(ids: readonly string[], statuses: readonly JobStatus[]): Promise<number> {
    if (ids.length === 0 || statuses.length === 0) return 0;
    const stmt = this.stmt(`DELETE FROM jobs WHERE id = ? AND status IN (${placeholders(statuses.length)})`);
    for (const id of ids) this.fixed.delete(id);
    const tx = this.db.transaction(() => {
      let n = 0;
      for (const id of ids) n += stmt.run(id, ...statuses).changes;
      return n;
    });
    this.changes++;
    const n = tx();
    await this.durable();
    return n;
  }

  async clear(statuses: readonly JobStatus[]): Promise<number> {
    if (statuses.length === 0) return 0;
    this.changes++;
    this.fixed.clear();
    const n = this.stmt(`DELETE FROM jobs WHERE status IN (${placeholders(statuses.length)})`).run(...statuses).changes;
    await this.durable();
    return n;
  }

  async count(statuses: readonly JobStatus[]): Promise<number> {
    if (statuses.length === 0) return 0;
    const r = this.stmt(`SELECT COUNT(*) AS n FROM jobs WHERE status IN (${placeholders(statuses.length)})`).get(
      ...statuses,
    ) as { n: number };
    return statuses.includes('running') ? r.n - this.unrecorded.size : r.n;
  }

  async settle(id: string, error: JobError): Promise<void> {
    this.changes++;
    this.fixed.delete(id);
    try {
      this.stmt(
        "UPDATE jobs SET status = 'error', finished_at = ?, results = '{}', messages = '[]', error = ? WHERE id = ? AND status IN ('running', 'pending')",
      ).run(Date.now(), JSON.stringify(error), id);
    } catch (e) {
      this.unrecorded.set(id, { error, finishedAt: Date.now() });
      this.log?.error(
        `job ${id}: its final state cannot be written either (${(e as Error).message}); it is shown as failed until the server restarts, which marks it interrupted`,
      );
    }
  }

  /** A job whose final state is only held in memory (see settle) reads as failed. */
  private overlay(r: JobRecord): JobRecord {
    const u = this.unrecorded.get(r.id);
    return u && r.status === 'running' ? { ...r, status: 'error', error: u.error, finishedAt: u.finishedAt } : r;
  }

  async prune(keep: number): Promise<number> {
    const n = this.stmt(
      `DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE status IN ('success','error','interrupted')
         ORDER BY finished_at DESC, seq DESC LIMIT -1 OFFSET ?)`,
    ).run(Math.max(0, Math.floor(keep))).changes;
    if (n > 0) this.changes++;
    return n;
  }

  async referencing(file: FileRef): Promise<string | null> {
    const rows = this.stmt(
      "SELECT id, results FROM jobs WHERE status IN ('success','error','interrupted') AND instr(results, ?) > 0",
    ).all(`"filename":${JSON.stringify(file.filename)}`) as Array<{ id: string; results: string }>;
    for (const r of rows) if (outputsReference(JSON.parse(r.results), file)) return r.id;
    return null;
  }

  async recover(resume: ReadonlySet<string> = new Set()): Promise<string[]> {
    const tx = this.db.transaction(() => {
      const back = this.stmt("UPDATE jobs SET status = 'pending' WHERE id = ? AND status = 'running'");
      for (const id of resume) back.run(id);
      const rows = this.stmt("SELECT id FROM jobs WHERE status = 'running'").all() as { id: string }[];
      const now = Date.now();
      const msg: JobMessage = [
        'execution_interrupted',
        { reason: 'the server stopped while this job was running (crash or kill); it was not re-run' },
      ];
      const err: JobError = { type: 'server_restart', message: 'the server stopped while this job was running' };
      const upd = this.stmt(
        "UPDATE jobs SET status = 'interrupted', finished_at = ?, error = ?, messages = ?, results = COALESCE(results, '{}') WHERE id = ?",
      );
      for (const r of rows) {
        const prev = this.stmt('SELECT messages FROM jobs WHERE id = ?').get(r.id) as { messages: string | null };
        const messages = prev.messages ? (JSON.parse(prev.messages) as JobMessage[]) : [];
        messages.push([msg[0], { ...msg[1], prompt_id: r.id, timestamp: now }]);
        upd.run(now, JSON.stringify(err), JSON.stringify(messages), r.id);
      }
      return rows.map((r) => r.id);
    });
    this.changes++;
    return tx();
  }

  async importFinished(j: JobRecord): Promise<boolean> {
    if (!FINISHED_STATUSES.includes(j.status)) throw new Error(`job ${j.id}: only finished jobs are imported`);
    const info = this.stmt(
      `INSERT OR IGNORE INTO jobs(id, number, status, prompt, document, extra_data, outputs, client_id,
           created_at, started_at, finished_at, results, messages, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      j.id,
      j.number,
      j.status,
      JSON.stringify(j.prompt),
      JSON.stringify(j.document),
      JSON.stringify(j.extraData),
      JSON.stringify(j.outputs),
      j.clientId,
      j.createdAt,
      j.startedAt,
      j.finishedAt ?? Date.now(),
      JSON.stringify(j.results),
      JSON.stringify(j.messages),
      j.error ? JSON.stringify(j.error) : null,
    );
    if (info.changes > 0) {
      this.changes++;
      await this.durable();
    }
    return info.changes > 0;
  }

  async getMeta(key: string): Promise<string | null> {
    const r = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db
      .prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, value);
  }

  async close(): Promise<void> {
    this.flushInserts();
    await this.durable().catch((e) => this.log?.error('could not sync the job database', e));
    await this.backupDone;
    if (this.db.open) {
      await this.backup(); // the latest verified state (it passed quick_check at start)
      this.db.close();
    }
    const wal = this.walHandle;
    this.walHandle = null;
    await wal?.then((fh) => fh.close()).catch(() => {});
    if (heldHere.delete(this.lockFile)) rmSync(this.lockFile, { force: true });
  }
}
