/**
 * What the server's parts share: its options, the context handed to the routes (./routes/), and a
 * few constants. A module of its own so that the routes need not import ./server.ts.
 */
import { randomUUID } from 'node:crypto';
import type { HostInfo, Logger, PluginDefinition, Registry, WorkflowDocument } from '@priorgraph/core';
import type { JobEngine, JobRunner } from './runner.js';
import type { JobStore } from './store.js';
import type { TurnShare } from './turns.js';
import type { ClusterSync } from './worker/cluster.js';
import type { WsHub } from './ws.js';

export const SERVER_VERSION = '0.1.0';
/** Finished jobs kept in history by default. */
export const DEFAULT_HISTORY_MAX = 10_000;
/** GET /history without max_items answers this many of the newest (ComfyUI answered everything). */
export const DEFAULT_HISTORY_PAGE = 200;

export interface ServerOptions {
  /** Default 127.0.0.1. Any non-loopback address requires `token`. */
  host?: string;
  /** Default 8188; 0 picks a free port. */
  port?: number;
  /** Where the SQLite queue/history lives (and default input/output/temp dirs). */
  dataDir: string;
  modelRoots: string[];
  outputDir?: string;
  inputDir?: string;
  tempDir?: string;
  /** When set, every API request needs `Authorization: Bearer <token>` (or `?token=`). */
  token?: string;
  /**
   * Plugins to load (e.g. the built-in `priorgraph` plugin), optionally with a source label. With
   * `module` (a specifier or file URL the worker process can import) for every one of them, jobs
   * run in a supervised worker process; a definition given without its module makes the server run
   * node code in its own thread (embedding and tests only: a node can then block or end the server).
   */
  plugins: Array<PluginDefinition | { plugin: PluginDefinition; source: string; module?: string }>;
  /** Plugin package directories (package.json with a "priorgraph" field). */
  pluginPackages?: string[];
  /** A directory whose sub-directories are plugin packages. */
  pluginsDir?: string;
  /** JSON request body limit in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Upload limit in bytes (default 32 MiB). */
  maxUploadBytes?: number;
  /** Size limit of one user file, e.g. a saved workflow (default 4 MiB; see ./routes/userdata.ts). */
  maxUserdataBytes?: number;
  /** Largest image (width × height) an upload may declare (default 64 megapixels). */
  maxImagePixels?: number;
  /** Start even when the job database is missing next to existing outputs, or damaged (damaged
   *  files are moved aside; the loss is logged). Default: PRIORGRAPH_ALLOW_HISTORY_LOSS=1. */
  allowHistoryLoss?: boolean;
  /** How long a plugin's import or setup may take (default 30 s; PRIORGRAPH_PLUGIN_TIMEOUT_MS). */
  pluginSettleTimeoutMs?: number;
  /** Retention: finished jobs kept in history, the oldest deleted beyond it (default 10000;
   *  PRIORGRAPH_HISTORY_MAX). Their output files stay. */
  historyMaxItems?: number;
  /** Per-job memory budget in bytes: validation refuses a node whose inferred tensors exceed it,
   *  naming it. Default: PRIORGRAPH_MEMORY_BUDGET (e.g. "6GiB") or min(8 GiB, half the RAM). */
  memoryBudgetBytes?: number;
  /** Executor cache bound in bytes (default 1 GiB). */
  cacheBytes?: number;
  /** Free-form host config given to plugins (e.g. executionProviders). */
  config?: Record<string, unknown>;
  /** The editor's static build (default packages/ui/dist). */
  uiDir?: string;
  /** A workflow to open first in the editor (GET /api/default-workflow). */
  defaultWorkflow?: WorkflowDocument | Record<string, unknown>;
  /** Extra runtime stats for /system_stats (e.g. the nodes plugin's runtimeStats). */
  runtimeStats?: () => unknown;
  /** How long a node may take to stop after /interrupt before its worker process is killed (default 10 s). */
  interruptGraceMs?: number;
  /** How long one node may run before its worker process is killed (default 1 h; 0 = no limit). */
  nodeTimeoutMs?: number;
  /** Extra node flags for the worker process (e.g. `--max-old-space-size=4096`). */
  workerExecArgv?: string[];
  /** The worker process runs this many nice levels below the server, so the HTTP/ws loop gets a core
   *  first while nodes compute (default 0, or PRIORGRAPH_WORKER_NICE). On a machine shared with other
   *  work it also yields to that work: jobs then run slower (bench/burst.bench.ts header). */
  workerNice?: number;
  /** Per-step events coalesced: at most one `progress` and one preview per job per this many ms to
   *  every listener; state changes and the last progress value always go (default 100, i.e. ≤ 10/s;
   *  PRIORGRAPH_PROGRESS_INTERVAL_MS; 0 sends every step). */
  progressIntervalMs?: number;
  /** What runs jobs, instead of the local worker process (e.g. a queue transport). */
  engine?: JobEngine;
  /** A Redis URL (redis:// or rediss://): jobs go to a BullMQ queue that `priorgraph worker`s take from. */
  queue?: string;
  /** A JobStore other than the SQLite one (a distributed backend later). */
  store?: JobStore;
  log?: Logger;
}

export interface ServerContext {
  options: Required<Pick<ServerOptions, 'host' | 'port' | 'maxBodyBytes' | 'maxUploadBytes' | 'memoryBudgetBytes'>> &
    ServerOptions;
  host: HostInfo;
  registry: Registry;
  /** What runs the jobs (the worker process, or core's Executor in this thread). */
  executor: JobEngine;
  store: JobStore;
  hub: WsHub;
  runner: JobRunner;
  log: Logger;
  plugins: {
    loaded: Array<{ name: string; version: string; source: string; nodeTypes: string[] }>;
    failed: Array<{ name: string; source: string; reason: string }>;
  };
  queueRemaining: number;
  refreshQueue(): Promise<void>;
  /** Shares the event loop's turns between queued prompts and the requests behind them (./turns.ts). */
  turns: TurnShare;
  startedAt: number;
  /** With a queue: the other servers on the same Redis (one queue, one history). */
  cluster?: ClusterSync;
}

/** Time a turn of the event loop may spend on queuing prompts before the next ones wait for a later
 *  turn (./turns.ts): a few prompts of the test plugin's size on the 2-core development machine. */
export const PROMPT_TURN_BUDGET_MS = 5;

export function newPromptId(): string {
  return randomUUID();
}
