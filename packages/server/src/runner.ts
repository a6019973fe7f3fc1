/**
 * The job runner: takes pending jobs from the JobStore one at a time, runs each through a JobEngine
 * (by default ./worker/supervisor.ts's ProcessEngine: a supervised worker process, so the server
 * never runs node code), maps the engine's events to ComfyUI websocket messages, and writes history
 * BEFORE the terminal event (execution_success / execution_error / execution_interrupted, then
 * `executing {node: null}`).
 */
import { EventEmitter } from 'node:events';
import type { ExecutionEvent, Executor, Logger, RunResult, UiOutput, WorkflowDocument } from '@priorgraph/core';

export interface EngineRunOptions {
  promptId: string;
  outputs?: string[];
  signal?: AbortSignal;
  onEvent?: (e: ExecutionEvent) => void;
}

/** One worker as GET /api/workers lists it. */
export interface WorkerInfo {
  name: string;
  /** 'local': this server's own worker process (single-machine mode, nothing to watch); 'queue': a
   *  queue worker heart-beating on Redis (`priorgraph worker`). Clients tell them apart by this, never
   *  by the name. */
  kind: 'local' | 'queue';
  host: string;
  pid: number | null;
  models: string[];
  plugins: string[];
  /** The prompt id it is running, or null. */
  current_job: string | null;
  /** ISO time of its last heartbeat. */
  last_heartbeat: string;
}

/** What runs a job's node code: a worker process (default) or, for embedding, core's Executor in this thread. */
export interface JobEngine {
  /** Gets ready to run (loads plugins); failures are logged and reported by the jobs. */
  start(): Promise<void>;
  /** Runs one job; never throws for a failing node (the result says so). */
  run(document: WorkflowDocument, options: EngineRunOptions): Promise<RunResult>;
  cacheInfo(): { entries: number; bytes: number; maxBytes: number };
  /** How many jobs it takes at once (default 1). */
  capacity?(): number;
  /** The workers it runs jobs on, for GET /api/workers. */
  workers?(): Promise<WorkerInfo[]>;
  /** Its per-step progress and previews arrive already coalesced (see throttle.ts; the queue's workers
   *  coalesce before they publish): the runner passes them on as they come instead of holding them a
   *  second time. */
  readonly coalescesEvents?: boolean;
  /** Set by the runner: called when capacity() grows (a worker joined). */
  onCapacity?: () => void;
  /** Loaded models and the like, for /system_stats (null when unknown). */
  runtimeStats(): unknown;
  /** Of the jobs a stopped server left running, those this engine still holds (e.g. in Redis, run by a
   *  worker that outlived the server): running them again re-attaches instead of re-running. */
  resumable?(ids: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}

/** Core's Executor in the server's own thread: node code can block or end the server. Embedding only. */
export function inlineEngine(executor: Executor, runtimeStats?: () => unknown): JobEngine {
  return {
    start: async () => {},
    run: (document, options) => executor.run(document, options),
    cacheInfo: () => executor.cacheInfo(),
    runtimeStats: () => runtimeStats?.() ?? null,
    close: async () => {},
  };
}

import type { JobError, JobMessage, JobRecord, JobStore } from './store.js';
import { DEFAULT_PROGRESS_INTERVAL_MS, EventThrottle } from './throttle.js';
import type { WsHub } from './ws.js';

export interface JobFinishedEvent {
  id: string;
  status: 'success' | 'error' | 'interrupted';
  outputs: Record<string, UiOutput>;
  error: JobError | null;
}

/** Delay before an idle runner picks up a newly queued job (see kick()). */
const START_DELAY_MS = 5;

interface Current {
  id: string;
  controller: AbortController;
}

export class JobRunner extends EventEmitter {
  /** Running jobs, in start order (one at a time unless the engine has more capacity). */
  private readonly current = new Map<string, Current>();
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  /** A kick() arrived while the loop ran: look again when it ends. */
  private again = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: JobStore,
    private readonly engine: JobEngine,
    private readonly hub: WsHub,
    private readonly log: Logger,
    private readonly onQueueChange: () => Promise<void>,
    /** At most one progress and one preview event per job per this many ms (see throttle.ts). */
    private readonly progressIntervalMs = DEFAULT_PROGRESS_INTERVAL_MS,
  ) {
    super();
    this.setMaxListeners(0); // one listener per waiting POST /api/workflows/run?wait=1
  }

  get currentId(): string | null {
    return this.current.keys().next().value ?? null;
  }

  /** Start working through the queue if idle. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.again = false;
    // Start on a later turn of the event loop, so that the answer to POST /prompt leaves before the
    // job's first events (clients such as @saintno/comfyui-sdk attach their listeners after it).
    this.idle = new Promise<void>((r) => setTimeout(r, START_DELAY_MS))
      .then(() => this.loop())
      .catch((e) => this.log.error('job runner loop failed', e))
      .finally(() => {
        this.running = false;
        if (this.again) this.kick();
      });
  }

  /** Starts pending jobs while the engine has room; each finished job looks again. */
  private async loop(): Promise<void> {
    while (!this.stopped && this.current.size < Math.max(1, this.engine.capacity?.() ?? 1)) {
      const job = await this.store.next();
      if (!job) return;
      if (!(await this.store.markRunning(job.id))) continue;
      const controller = new AbortController();
      this.current.set(job.id, { id: job.id, controller });
      const p: Promise<void> = this.runOne(job, controller)
        .catch((e) => this.log.error(`job ${job.id} failed in the runner`, e))
        .finally(() => {
          this.inFlight.delete(p);
          this.kick();
        });
      this.inFlight.add(p);
    }
  }

  /** Interrupt the running job(s) (all, or the one `promptId` names). Returns whether one was. */
  interrupt(promptId?: string): boolean {
    let any = false;
    for (const c of this.current.values()) {
      if (promptId !== undefined && promptId !== c.id) continue;
      c.controller.abort(new Error('interrupted'));
      any = true;
    }
    return any;
  }

  /** Stop taking jobs, interrupt the running ones and wait for them to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.interrupt();
    await this.idle;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async runOne(job: JobRecord, controller: AbortController): Promise<void> {
    const id = job.id;
    await this.onQueueChange();
    const mapped = comfyEvents(id, this.hub);
    const { messages, outputs, onEvent } = mapped;

    // Per-step progress and previews coalesced; state changes pass at once, after what is held. An
    // engine that coalesced them already is not throttled again (a second throttle would hold a value
    // up to another interval); interval 0 passes every event through, in order.
    const throttle = new EventThrottle(this.engine.coalescesEvents ? 0 : this.progressIntervalMs, onEvent);
    let result: RunResult;
    try {
      result = await this.engine.run(job.document as unknown as WorkflowDocument, {
        promptId: id,
        outputs: job.outputs.length > 0 ? job.outputs : undefined,
        signal: controller.signal,
        onEvent: (e) => throttle.push(e),
      });
    } catch (e) {
      // The executor promises not to throw; if it does anyway, record it as an error.
      const err = e instanceof Error ? e : new Error(String(e));
      result = {
        status: 'error',
        executed: [],
        cached: [],
        outputs: {},
        error: { nodeId: null, nodeType: null, message: err.message, errorType: err.name, stack: err.stack },
      };
    }
    throttle.flush();
    const allOutputs = { ...outputs, ...result.outputs };
    const ts = Date.now();
    const t = mapped.terminal;
    const last = mapped.lastNode;
    let finished: JobFinishedEvent;
    let terminalMsg: JobMessage;
    if (result.status === 'success') {
      terminalMsg = ['execution_success', { prompt_id: id, timestamp: ts }];
      messages.push(terminalMsg);
      await this.safely(() => this.store.complete(id, { results: allOutputs, messages }), id);
      finished = { id, status: 'success', outputs: allOutputs, error: null };
    } else if (result.status === 'interrupted') {
      const ev = t?.type === 'interrupted' ? t : null;
      terminalMsg = [
        'execution_interrupted',
        {
          prompt_id: id,
          node_id: ev?.nodeId ?? last?.id ?? null,
          node_type: ev?.nodeType ?? last?.type ?? null,
          executed: result.executed,
          timestamp: ts,
        },
      ];
      messages.push(terminalMsg);
      const error: JobError = this.stopped
        ? { type: 'server_shutdown', message: 'the server shut down while this job was running' }
        : { type: 'interrupted', message: 'interrupted by request' };
      await this.safely(() => this.store.interrupt(id, { results: allOutputs, messages, error }), id);
      finished = { id, status: 'interrupted', outputs: allOutputs, error };
    } else {
      const ev = t?.type === 'error' ? t : null;
      const re = result.error;
      const message = re?.message ?? ev?.message ?? 'unknown error';
      const stack = re?.stack ?? ev?.stack;
      terminalMsg = [
        'execution_error',
        {
          prompt_id: id,
          node_id: re?.nodeId ?? ev?.nodeId ?? null,
          node_type: re?.nodeType ?? ev?.nodeType ?? null,
          executed: result.executed,
          exception_message: message,
          exception_type: re?.errorType ?? ev?.errorType ?? 'Error',
          traceback: stack ? stack.split('\n') : [],
          current_inputs: ev?.inputs ?? {},
          current_outputs: {},
          timestamp: ts,
          ...(re?.validation ? { node_errors: re.validation.node_errors } : {}),
        },
      ];
      messages.push(terminalMsg);
      const error: JobError = {
        type: re?.errorType ?? 'Error',
        message,
        nodeId: re?.nodeId ?? undefined,
        nodeType: re?.nodeType ?? undefined,
        ...(re?.validation ? { details: re.validation } : {}),
      };
      await this.safely(() => this.store.fail(id, { results: allOutputs, messages, error }), id);
      finished = { id, status: 'error', outputs: allOutputs, error };
    }
    this.current.delete(id);
    // History is durable now: announce the end.
    this.hub.emit(id, terminalMsg[0], terminalMsg[1]);
    this.hub.emit(id, 'executing', { node: null, display_node: null, prompt_id: id });
    this.hub.forget(id);
    this.emit('finished', finished);
    await this.onQueueChange();
  }

  /** Records a finished job: the write is retried, then the job is settled as failed with the
   *  reason (see JobStore.settle), so that it never stays `running`. */
  private async safely(fn: () => Promise<void>, id: string): Promise<void> {
    let last: unknown;
    for (const delay of RECORD_RETRY_MS) {
      try {
        await fn();
        return;
      } catch (e) {
        last = e;
        this.log.error(`could not record the finished job ${id}${delay >= 0 ? `; retrying in ${delay} ms` : ''}`, e);
      }
      if (delay >= 0) await new Promise((r) => setTimeout(r, delay));
    }
    await this.store.settle(id, {
      type: 'record_failed',
      message: `the job ended but its result could not be recorded: ${last instanceof Error ? last.message : String(last)}`,
    });
  }
}

/** The engine's events of one job as ComfyUI websocket messages (the ones kept for history go to
 *  `messages`); the terminal event is held back, to be sent after history is written. */
function comfyEvents(id: string, hub: WsHub) {
  const m = {
    messages: [] as JobMessage[],
    outputs: {} as Record<string, UiOutput>,
    terminal: null as ExecutionEvent | null,
    lastNode: null as { id: string; type: string } | null,
    onEvent: (e: ExecutionEvent) => {
      const ts = Date.now();
      // ComfyUI always sends execution_cached (possibly empty) right after execution_start.
      if (!cachedSent && e.type !== 'execution_start' && e.type !== 'execution_cached') {
        cachedSent = true;
        emit('execution_cached', { nodes: [], prompt_id: id, timestamp: ts }, true);
      }
      switch (e.type) {
        case 'execution_start':
          emit('execution_start', { prompt_id: id, timestamp: ts }, true);
          break;
        case 'execution_cached':
          cachedSent = true;
          emit('execution_cached', { nodes: e.nodes, prompt_id: id, timestamp: ts }, true);
          break;
        case 'node_start':
          m.lastNode = { id: e.nodeId, type: e.nodeType };
          emit('executing', { node: e.nodeId, display_node: e.nodeId, prompt_id: id });
          break;
        case 'progress':
          emit('progress', { value: e.value, max: e.max, prompt_id: id, node: e.nodeId });
          break;
        case 'preview':
          hub.preview(id, e.nodeId, e.image);
          break;
        case 'node_output':
          m.outputs[e.nodeId] = e.ui;
          emit('executed', { node: e.nodeId, display_node: e.nodeId, output: e.ui, prompt_id: id });
          break;
        default:
          m.terminal = e; // error / interrupted / success: sent after history is written
      }
    },
  };
  let cachedSent = false;
  const emit = (type: string, data: Record<string, unknown>, keep = false) => {
    if (keep) m.messages.push([type, data]);
    hub.emit(id, type, data);
  };
  return m;
}

/** Pauses between attempts to record a finished job (-1: the last attempt). */
const RECORD_RETRY_MS = [100, 400, 1600, -1];
