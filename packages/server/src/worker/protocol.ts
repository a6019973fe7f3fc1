/**
 * The messages between a job host (the server's supervisor, or a queue transport) and a worker
 * process that runs node code. Both directions are discriminated unions, checked with zod where they
 * cross the process boundary (`parseToWorker` / `parseFromWorker`): a worker is plugin code and may
 * be broken, so nothing it sends is trusted unchecked. The IPC channel uses Node's "advanced"
 * serialization, so preview images travel as Uint8Array, not base64.
 */
import type { ExecutionEvent, HostInfo, RunResult, WorkflowDocument } from '@priorgraph/core';
import { z } from 'zod';

/** A plugin the worker imports: a module specifier or file URL (default export or `plugin` export). */
export const PluginModuleRef = z.object({ module: z.string().min(1), source: z.string().optional() });
export type PluginModuleRef = z.infer<typeof PluginModuleRef>;

const Host = z.object({
  modelRoots: z.array(z.string()),
  outputDir: z.string(),
  inputDir: z.string(),
  tempDir: z.string(),
  config: z.record(z.string(), z.unknown()),
});

/** What the worker needs to load plugins and build its engine. */
export const WorkerInit = z.object({
  host: Host,
  plugins: z.array(PluginModuleRef),
  pluginPackages: z.array(z.string()),
  pluginsDir: z.string().optional(),
  cacheBytes: z.number().int().positive().optional(),
});
export type WorkerInit = z.infer<typeof WorkerInit> & { host: HostInfo };

// --- host → worker -----------------------------------------------------------------------------------

export const ToWorker = z.discriminatedUnion('type', [
  z.object({ type: z.literal('init'), init: WorkerInit }),
  z.object({
    type: z.literal('run'),
    jobId: z.string(),
    document: z.record(z.string(), z.unknown()),
    outputs: z.array(z.string()).optional(),
  }),
  z.object({ type: z.literal('interrupt'), jobId: z.string() }),
  z.object({ type: z.literal('shutdown') }),
]);
export type ToWorker = z.infer<typeof ToWorker>;

// --- worker → host -----------------------------------------------------------------------------------

const Ui = z.record(z.string(), z.unknown());
const str = z.string();

/** core's ExecutionEvent, as a schema. */
export const ExecutionEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('execution_start'), promptId: str }),
  z.object({ type: z.literal('execution_cached'), promptId: str, nodes: z.array(str) }),
  z.object({ type: z.literal('node_start'), promptId: str, nodeId: str, nodeType: str }),
  z.object({ type: z.literal('progress'), promptId: str, nodeId: str, value: z.number(), max: z.number() }),
  z.object({
    type: z.literal('preview'),
    promptId: str,
    nodeId: str,
    image: z.object({ format: z.enum(['png', 'jpeg']), data: z.instanceof(Uint8Array) }),
  }),
  z.object({ type: z.literal('node_output'), promptId: str, nodeId: str, nodeType: str, ui: Ui }),
  z.object({
    type: z.literal('error'),
    promptId: str,
    nodeId: str.nullable(),
    nodeType: str.nullable(),
    message: str,
    errorType: str,
    stack: str.optional(),
    executed: z.array(str),
    inputs: z.record(z.string(), z.unknown()).optional(),
  }),
  z.object({
    type: z.literal('interrupted'),
    promptId: str,
    nodeId: str.optional(),
    nodeType: str.optional(),
    executed: z.array(str),
  }),
  z.object({ type: z.literal('success'), promptId: str, executed: z.array(str), outputs: z.record(str, Ui) }),
]);

const RunResultSchema = z.object({
  status: z.enum(['success', 'error', 'interrupted']),
  executed: z.array(str),
  cached: z.array(str),
  outputs: z.record(str, Ui),
  error: z
    .object({
      nodeId: str.nullable(),
      nodeType: str.nullable(),
      message: str,
      errorType: str,
      stack: str.optional(),
      validation: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});

const Stats = z.object({
  cache: z.object({ entries: z.number(), bytes: z.number(), maxBytes: z.number() }),
  /** What plugin modules' `runtimeStats()` report (loaded models, ...), by module. */
  runtime: z.unknown(),
});
export type WorkerStats = z.infer<typeof Stats>;

const PluginReport = z.object({
  loaded: z.array(z.object({ name: str, version: str, source: str, nodeTypes: z.array(str) })),
  failed: z.array(z.object({ name: str, source: str, reason: str })),
});

export const FromWorker = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number(), plugins: PluginReport }),
  z.object({ type: z.literal('event'), jobId: str, event: ExecutionEventSchema }),
  z.object({ type: z.literal('result'), jobId: str, result: RunResultSchema, stats: Stats }),
  /** The worker is about to exit because of this (sent from its last-chance handlers). */
  z.object({
    type: z.literal('fatal'),
    kind: z.enum(['uncaught exception', 'unhandled rejection', 'init failed']),
    message: str,
    stack: str.optional(),
  }),
  z.object({ type: z.literal('log'), level: z.enum(['debug', 'info', 'warn', 'error']), message: str }),
]);
export type FromWorker = z.infer<typeof FromWorker>;
/** What a worker sends: the same union, written with core's types. */
export type FromWorkerOut =
  | Exclude<FromWorker, { type: 'event' | 'result' }>
  | { type: 'event'; jobId: string; event: ExecutionEvent }
  | { type: 'result'; jobId: string; result: RunResult; stats: WorkerStats };

function parseWith<T>(schema: z.ZodType<T>, what: string, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const kind = (raw as { type?: unknown } | null)?.type;
  throw new Error(
    `malformed ${what} message${typeof kind === 'string' ? ` "${kind}"` : ''}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
  );
}

export const parseToWorker = (raw: unknown): ToWorker => parseWith(ToWorker, 'host→worker', raw);
export const parseFromWorker = (raw: unknown): FromWorker => parseWith(FromWorker, 'worker→host', raw);

/** The checked shapes are core's types (zod infers structurally equal ones). */
export const asEvent = (e: z.infer<typeof ExecutionEventSchema>): ExecutionEvent => e as ExecutionEvent;
export const asResult = (r: z.infer<typeof RunResultSchema>): RunResult => r as RunResult;
export const asDocument = (d: Record<string, unknown>): WorkflowDocument => d as unknown as WorkflowDocument;
