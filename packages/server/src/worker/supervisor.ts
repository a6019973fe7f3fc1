/**
 * ProcessEngine: the server's side of the local worker. It forks ./child.ts (child.js once built), hands it one job at a
 * time and relays its events; it never runs node code itself. Supervision:
 * - an interrupt is passed on; a job still running `interruptGraceMs` later has its worker killed;
 * - a node running longer than `nodeTimeoutMs` (reset at every node start) has its worker killed;
 * - a worker that crashes (uncaught exception, unhandled rejection, process.exit, a signal) fails
 *   its job with an error naming the node it was running and the cause;
 * after each kill or crash a fresh worker is started, so the queue goes on. Between jobs the worker
 * stays up, so its loaded models stay warm.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  type ExecutionEvent,
  forkArgs,
  type Logger,
  type RunResult,
  siblingModule,
  type WorkflowDocument,
} from '@priorgraph/core';
import type { EngineRunOptions, JobEngine, WorkerInfo } from '../runner.js';
import {
  asEvent,
  asResult,
  type FromWorker,
  parseFromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerStats,
} from './protocol.js';

export interface ProcessEngineOptions {
  init: WorkerInit;
  log: Logger;
  /** How long a node may take to stop after an interrupt before its worker is killed (default 10 s). */
  interruptGraceMs?: number;
  /** How long one node may run before its worker is killed (default 1 h; 0 = no limit). */
  nodeTimeoutMs?: number;
  /** Extra node flags for the worker, e.g. `--max-old-space-size=4096`. */
  execArgv?: string[];
  /** The worker's threads run this many nice levels below the server (see child.ts lowerPriority);
   *  default: PRIORGRAPH_WORKER_NICE as the server has it, else 0. */
  nice?: number;
}

/**
 * Node flags every worker process starts with (before ProcessEngineOptions.execArgv). A young
 * generation of up to 64 MB a semi-space (V8's default grows to 16): a run's per-node records live
 * until the run ends, and a large graph's no longer fit between two scavenges, so each is copied by
 * the scavenger before it dies. executor.bench.ts, 3 alternating runs each (3 Dec 2026, 2-core AMD
 * EPYC, load ≈ 1): per-node growth from 1,000 to 10,000 nodes (its four rows) 1.79–2.10 with node's
 * defaults, 1.29–1.69 with this flag (32 MB: 1.49–2.07), the 1k figures unchanged; its floor row
 * (no priorgraph code) 1.97–2.50 → 1.35–1.63. The bench runs under both since.
 * The space grows only when a run needs it.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

export const DEFAULT_INTERRUPT_GRACE_MS = 10_000;
export const DEFAULT_NODE_TIMEOUT_MS = 60 * 60_000;
/** How long a worker asked to shut down may take before it is killed. */
const SHUTDOWN_GRACE_MS = 2000;

const CHILD = siblingModule(import.meta.url, 'child');

interface Active {
  id: string;
  onEvent: (e: ExecutionEvent) => void;
  resolve: (r: RunResult) => void;
  node: { id: string; type: string } | null;
  started: string[];
  nodeTimer?: NodeJS.Timeout;
  graceTimer?: NodeJS.Timeout;
  /** Why the supervisor killed the worker (set before the kill). */
  killed?: { message: string; errorType: string };
  fatal?: { kind: string; message: string; stack?: string };
}

interface Worker {
  proc: ChildProcess;
  ready: Promise<void>;
  pid: number | undefined;
}

const secs = (ms: number) => `${ms / 1000} s`;

export class ProcessEngine implements JobEngine {
  private worker: Worker | null = null;
  private job: Active | null = null;
  private stats: WorkerStats | null = null;
  private closing = false;
  private lastReady: string | null = null;
  /** What the worker reported loading (empty until it is ready). */
  plugins: Array<{ name: string; version: string; source: string; nodeTypes: string[] }> = [];
  private readonly graceMs: number;
  private readonly nodeTimeoutMs: number;

  constructor(private readonly opts: ProcessEngineOptions) {
    this.graceMs = opts.interruptGraceMs ?? DEFAULT_INTERRUPT_GRACE_MS;
    this.nodeTimeoutMs = opts.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  }

  /** Starts the worker and waits until its plugins are loaded (failures are logged, not thrown). */
  async start(): Promise<void> {
    try {
      await this.ensure().ready;
    } catch (e) {
      this.opts.log.error(`the worker process did not start: ${(e as Error).message}`);
    }
  }

  /** The worker's process id (for tests and stats). */
  get pid(): number | undefined {
    return this.worker?.pid;
  }

  cacheInfo(): { entries: number; bytes: number; maxBytes: number } {
    return this.stats?.cache ?? { entries: 0, bytes: 0, maxBytes: this.opts.init.cacheBytes ?? 1024 ** 3 };
  }

  runtimeStats(): unknown {
    return this.stats?.runtime ?? null;
  }

  /** The local worker process, in GET /api/workers' shape (its heartbeat: when it last reported). */
  async workers(): Promise<WorkerInfo[]> {
    if (!this.worker || !this.lastReady) return [];
    return [
      {
        name: 'local',
        kind: 'local',
        host: hostname(),
        pid: this.worker.pid ?? null,
        models: modelNames(this.opts.init.host.modelRoots),
        plugins: this.plugins.map((p) => p.name),
        current_job: this.job?.id ?? null,
        last_heartbeat: this.lastReady,
      },
    ];
  }

  async run(document: WorkflowDocument, options: EngineRunOptions): Promise<RunResult> {
    if (this.job) throw new Error('the worker process is already running a job');
    const w = this.ensure();
    try {
      await w.ready;
    } catch (e) {
      return failure(null, `the worker process could not start: ${(e as Error).message}`, 'worker_unavailable', []);
    }
    if (this.worker !== w) {
      return failure(null, 'the worker process exited before the job started', 'worker_unavailable', []);
    }
    const { promptId: id, signal } = options;
    return new Promise<RunResult>((resolve) => {
      const job: Active = {
        id,
        onEvent: options.onEvent ?? (() => {}),
        node: null,
        started: [],
        resolve: (r) => {
          clearTimeout(job.nodeTimer);
          clearTimeout(job.graceTimer);
          signal?.removeEventListener('abort', onAbort);
          if (this.job === job) this.job = null;
          resolve(r);
        },
      };
      const onAbort = () => {
        this.send(w, { type: 'interrupt', jobId: id });
        job.graceTimer ??= setTimeout(
          () =>
            this.kill(w, job, {
              message: `${where(job)} did not stop within ${secs(this.graceMs)} of the interrupt; its worker process was killed and restarted`,
              errorType: 'interrupt_timeout',
            }),
          this.graceMs,
        );
      };
      this.job = job;
      this.armNodeTimer(w, job);
      this.send(w, {
        type: 'run',
        jobId: id,
        document: document as unknown as Record<string, unknown>,
        outputs: options.outputs,
      });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops the worker: asks it to dispose its plugins, kills it if it does not exit in time. */
  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((r) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) r();
      else w.proc.once('exit', () => r());
    });
    this.send(w, { type: 'shutdown' });
    const t = setTimeout(() => w.proc.kill('SIGKILL'), SHUTDOWN_GRACE_MS);
    await exited;
    clearTimeout(t);
  }

  private armNodeTimer(w: Worker, job: Active): void {
    clearTimeout(job.nodeTimer);
    if (this.nodeTimeoutMs <= 0) return;
    job.nodeTimer = setTimeout(
      () =>
        this.kill(w, job, {
          message: `${where(job)} ran past the per-node time limit of ${secs(this.nodeTimeoutMs)}; its worker process was killed and restarted`,
          errorType: 'node_timeout',
        }),
      this.nodeTimeoutMs,
    );
  }

  private kill(w: Worker, job: Active, why: { message: string; errorType: string }): void {
    if (this.job !== job || this.worker !== w) return;
    job.killed ??= why;
    this.opts.log.warn(`job ${job.id}: ${why.message}`);
    w.proc.kill('SIGKILL');
  }

  private send(w: Worker, m: ToWorker): void {
    if (w.proc.connected) w.proc.send(m);
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const execArgv = [...forkArgs(CHILD), ...WORKER_NODE_FLAGS, ...(this.opts.execArgv ?? [])];
    const proc = fork(fileURLToPath(CHILD), [], {
      execArgv,
      env:
        this.opts.nice === undefined ? process.env : { ...process.env, PRIORGRAPH_WORKER_NICE: String(this.opts.nice) },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const log = this.opts.log;
    const forward = (stream: NodeJS.ReadableStream | null, level: 'info' | 'warn') => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (d: string) => {
        buf += d;
        let i = buf.indexOf('\n');
        while (i >= 0) {
          log[level](`worker: ${buf.slice(0, i)}`);
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
        }
      });
    };
    forward(proc.stdout, 'info');
    forward(proc.stderr, 'warn');
    let markReady!: () => void;
    let failStart!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      markReady = res;
      failStart = rej;
    });
    ready.catch(() => {}); // observed by whoever awaits it
    const w: Worker = { proc, ready, pid: proc.pid };
    this.worker = w;
    let initFatal: string | null = null;
    proc.on('message', (raw) => {
      let m: FromWorker;
      try {
        m = parseFromWorker(raw);
      } catch (e) {
        log.error(`worker ${proc.pid}: ${(e as Error).message}`);
        return;
      }
      this.onMessage(w, m, markReady, (why) => {
        initFatal = why;
      });
    });
    proc.on('error', (e) => log.error(`worker ${proc.pid}: ${e.message}`));
    proc.once('exit', (code, sig) => {
      if (this.worker === w) this.worker = null;
      const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
      failStart(new Error(initFatal ?? `it ${how} while loading plugins`));
      const job = this.job;
      if (job) {
        const cause = job.killed
          ? job.killed
          : job.fatal
            ? {
                message: `${where(job)} crashed the worker process: ${job.fatal.kind}: ${job.fatal.message}`,
                errorType: 'worker_crashed',
              }
            : { message: `${where(job)} ended the worker process: it ${how}`, errorType: 'worker_crashed' };
        if (!job.killed) log.error(`job ${job.id}: ${cause.message}`);
        job.resolve(
          failure(
            job.node,
            cause.message,
            cause.errorType,
            job.started.filter((n) => n !== job.node?.id),
            job.fatal?.stack,
          ),
        );
        // A fresh worker, so that the next job finds its plugins loaded.
        if (!this.closing) void this.start();
      } else if (!this.closing) {
        log.warn(`the worker process ${how}; a new one starts with the next job`);
      }
    });
    this.send(w, { type: 'init', init: this.opts.init });
    return w;
  }

  private onMessage(w: Worker, m: FromWorker, markReady: () => void, onInitFatal: (why: string) => void): void {
    const job = this.job;
    switch (m.type) {
      case 'ready':
        w.pid = m.pid;
        this.plugins = m.plugins.loaded;
        this.lastReady = new Date().toISOString();
        for (const f of m.plugins.failed)
          this.opts.log.error(`worker: plugin ${f.name} (${f.source}) failed to load: ${f.reason}`);
        markReady();
        return;
      case 'event': {
        if (!job || job.id !== m.jobId || this.worker !== w) return;
        const e = asEvent(m.event);
        if (e.type === 'node_start') {
          job.node = { id: e.nodeId, type: e.nodeType };
          job.started.push(e.nodeId);
          this.armNodeTimer(w, job);
        }
        this.lastReady = new Date().toISOString();
        job.onEvent(e);
        return;
      }
      case 'result':
        this.stats = m.stats;
        if (job && job.id === m.jobId && this.worker === w) job.resolve(asResult(m.result));
        return;
      case 'fatal':
        if (m.kind === 'init failed') onInitFatal(`loading plugins failed: ${m.message}`);
        if (job) job.fatal = { kind: m.kind, message: m.message, stack: m.stack };
        else this.opts.log.error(`worker: ${m.kind}: ${m.stack ?? m.message}`);
        return;
      case 'log':
        this.opts.log[m.level](`worker: ${m.message}`);
        return;
    }
  }
}

function where(job: Active): string {
  return job.node ? `node ${job.node.id} (${job.node.type})` : 'the job';
}

function failure(
  node: { id: string; type: string } | null,
  message: string,
  errorType: string,
  executed: string[],
  stack?: string,
): RunResult {
  return {
    status: 'error',
    executed,
    cached: [],
    outputs: {},
    error: { nodeId: node?.id ?? null, nodeType: node?.type ?? null, message, errorType, ...(stack ? { stack } : {}) },
  };
}

/** The top-level entries of the model roots (what a worker can load). */
export function modelNames(roots: readonly string[]): string[] {
  const out: string[] = [];
  for (const r of roots) {
    try {
      for (const e of readdirSync(r, { withFileTypes: true })) if (!e.name.startsWith('.')) out.push(e.name);
    } catch {
      // a missing root lists nothing
    }
  }
  return out.sort();
}
