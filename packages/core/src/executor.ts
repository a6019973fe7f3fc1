/**
 * The executor: a document in, a run out. It parses and validates the document, then hands it to the
 * three parts of a run: planning (planning.ts: what the outputs need, in order), caching (cache.ts:
 * signatures, what the cache serves) and scheduling (scheduling.ts: running, cancelling, progress).
 * A run never throws for a node failure; it reports typed events (events.ts).
 */
import type { HostInfo, Logger } from './api.js';
import { lookupPlan, OutputCache, signPlan } from './cache.js';
import { type ExecutionEvent, errorInfo, type RunError, type RunResult } from './events.js';
import { type ResolvedGraph, resolveGraph } from './graph.js';
import { defaultTargets, type Plan, planRun } from './planning.js';
import type { Registry } from './registry.js';
import { schedule } from './scheduling.js';
import { parseForRun, type WorkflowDocument } from './schema.js';
import { type ValidationResult, validateForRun } from './validate.js';

export { stableStringify } from './cache.js';
export type { ExecutionEvent, ExecutionEventType, RunError, RunResult } from './events.js';

export interface ExecutorOptions {
  host: HostInfo;
  /** Cache bound in bytes (default 1 GiB). */
  cacheBytes?: number;
  log?: Logger;
}

export interface RunOptions {
  promptId: string;
  /** Node ids to execute (default: every non-muted output node). */
  outputs?: string[];
  signal?: AbortSignal;
  onEvent?: (e: ExecutionEvent) => void;
  /** Validate first (default true). Skip only when the caller has just validated. */
  validate?: boolean;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The RunError of a failed validation, naming the first node with an error. */
function validationError(v: ValidationResult): RunError {
  const firstId = Object.keys(v.node_errors)[0];
  const first = firstId ? v.node_errors[firstId] : undefined;
  return {
    nodeId: firstId ?? null,
    nodeType: first?.class_type ?? null,
    message: first
      ? `${v.error?.message ?? 'validation failed'}: node ${firstId} (${first.class_type}): ${first.errors[0].message}${first.errors[0].details ? ` — ${first.errors[0].details}` : ''}`
      : `${v.error?.message ?? 'validation failed'}${v.error?.details ? `: ${v.error.details}` : ''}`,
    errorType: 'validation_failed',
    validation: v,
  };
}

export class Executor {
  readonly cache: OutputCache;
  private readonly host: HostInfo;
  private readonly log: Logger;
  private runCounter = 0;

  constructor(
    private readonly registry: Registry,
    options: ExecutorOptions,
  ) {
    this.host = options.host;
    this.log = options.log ?? silentLogger;
    this.cache = new OutputCache(options.cacheBytes ?? 1024 ** 3);
  }

  /** Drops every cached output. */
  clearCache(): void {
    this.cache.clear();
  }

  cacheInfo(): { entries: number; bytes: number; maxBytes: number } {
    return { entries: this.cache.size, bytes: this.cache.bytes, maxBytes: this.cache.maxBytes };
  }

  async run(document: WorkflowDocument, options: RunOptions): Promise<RunResult> {
    const { promptId, onEvent } = options;
    const emit = (e: ExecutionEvent) => {
      if (!onEvent) return;
      try {
        onEvent(e);
      } catch (err) {
        this.log.warn(`onEvent listener threw for ${e.type}`, err);
      }
    };
    const fail = (error: RunError): RunResult => {
      const { nodeId, nodeType, message, errorType, stack } = error;
      emit({
        type: 'error',
        promptId,
        nodeId,
        nodeType,
        message,
        errorType,
        ...(stack ? { stack } : {}),
        executed: [],
      });
      return { status: 'error', executed: [], cached: [], outputs: {}, error };
    };

    emit({ type: 'execution_start', promptId });
    const parsed = parseForRun(document);
    if (!parsed.ok) {
      const issues = parsed.issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`);
      const message = `invalid workflow document: ${issues.join('; ')}`;
      return fail({ nodeId: null, nodeType: null, message, errorType: 'invalid_document' });
    }
    const doc = parsed.doc;
    let targets: string[];
    let graph: ResolvedGraph | undefined;
    if (options.validate !== false) {
      const v = await validateForRun(doc, this.registry, this.host, { outputs: options.outputs }, parsed.order);
      if (!v.result.ok) return fail(validationError(v.result));
      targets = v.result.outputs;
      graph = v.graph;
    } else {
      targets = defaultTargets(doc, this.registry, options.outputs);
      graph = resolveGraph(doc, this.registry, parsed.order);
    }

    let plan: Plan;
    try {
      plan = planRun(doc, this.registry, targets, graph);
      signPlan(plan, `${promptId}#${++this.runCounter}`);
    } catch (e) {
      const at = e as { nodeId?: string; nodeType?: string };
      return fail({
        nodeId: at.nodeId ?? null,
        nodeType: at.nodeType ?? null,
        ...errorInfo(e),
        errorType: 'planning_failed',
      });
    }
    return this.execute(plan, targets, doc, options, emit);
  }

  /** Serve what the cache holds, schedule the rest, report the outcome. */
  private async execute(
    plan: Plan,
    targets: string[],
    doc: WorkflowDocument,
    options: RunOptions,
    emit: (e: ExecutionEvent) => void,
  ): Promise<RunResult> {
    const { promptId } = options;
    const { values, cached, toRun, uiOutputs } = lookupPlan(plan, targets, this.cache);
    if (cached.length > 0) {
      emit({ type: 'execution_cached', promptId, nodes: cached });
      for (const id of cached) {
        const ui = uiOutputs[id];
        if (ui)
          emit({
            type: 'node_output',
            promptId,
            nodeId: id,
            nodeType: plan.planned[plan.indexOf(id)].t.qualifiedName,
            ui,
          });
      }
    }
    const r = await schedule({
      plan,
      toRun,
      values,
      uiOutputs,
      doc,
      promptId,
      host: this.host,
      log: this.log,
      emit,
      listening: options.onEvent !== undefined,
      signal: options.signal,
      onDone: (p, outs, ui) => {
        if (!p.t.def.notIdempotent) this.cache.set(p.sig, outs, ui);
      },
    });
    const { executed } = r;
    if (r.failure) return { status: 'error', executed, cached, outputs: uiOutputs, error: r.failure };
    if (r.interrupted) {
      const last = r.interrupted.nodeId;
      const at = last ? { nodeId: last, nodeType: plan.planned[plan.indexOf(last)].t.qualifiedName } : {};
      emit({ type: 'interrupted', promptId, ...at, executed });
      return { status: 'interrupted', executed, cached, outputs: uiOutputs };
    }
    emit({ type: 'success', promptId, executed, outputs: uiOutputs });
    return { status: 'success', executed, cached, outputs: uiOutputs };
  }
}
