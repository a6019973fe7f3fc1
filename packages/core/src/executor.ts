/**
 * The executor: plans what the requested outputs need, computes each node's ancestry signature,
 * serves unchanged nodes from the cache, runs the rest in dependency order (independent async
 * branches concurrently) and reports typed events. A run never throws for a node failure.
 */
import { createHash } from 'node:crypto';
import type { HostInfo, InputSpec, Logger, NodeContext, OutputSpec, PreviewImage, UiOutput } from './api.js';
import { OutputCache } from './cache.js';
import { widgetTypeName, widgetValue } from './inputs.js';
import type { RegisteredNodeType, Registry } from './registry.js';
import { isLink, safeParseDocument, type WorkflowDocument } from './schema.js';
import { type ValidationResult, validateParsedDocument } from './validate.js';

export type ExecutionEvent =
  | { type: 'execution_start'; promptId: string }
  | { type: 'execution_cached'; promptId: string; nodes: string[] }
  | { type: 'node_start'; promptId: string; nodeId: string; nodeType: string }
  | { type: 'progress'; promptId: string; nodeId: string; value: number; max: number }
  | { type: 'preview'; promptId: string; nodeId: string; image: PreviewImage }
  | { type: 'node_output'; promptId: string; nodeId: string; nodeType: string; ui: UiOutput }
  | {
      type: 'error';
      promptId: string;
      /** null for a prompt-level error (e.g. failed validation). */
      nodeId: string | null;
      nodeType: string | null;
      message: string;
      errorType: string;
      stack?: string;
      executed: string[];
      inputs?: Record<string, unknown>;
    }
  | { type: 'interrupted'; promptId: string; nodeId?: string; nodeType?: string; executed: string[] }
  | { type: 'success'; promptId: string; executed: string[]; outputs: Record<string, UiOutput> };

export type ExecutionEventType = ExecutionEvent['type'];

export interface RunError {
  nodeId: string | null;
  nodeType: string | null;
  message: string;
  /** The thrown error's name ('Error', 'TypeError', ...), or 'validation_failed', 'invalid_document'. */
  errorType: string;
  stack?: string;
  /** Present when the run was refused by validation. */
  validation?: ValidationResult;
}

export interface RunResult {
  status: 'success' | 'error' | 'interrupted';
  /** Nodes that ran, in completion order. */
  executed: string[];
  /** Nodes served from the cache. */
  cached: string[];
  /** UI output of every node that produced one (executed or cached). */
  outputs: Record<string, UiOutput>;
  error?: RunError;
}

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

const sortedInputNames = new WeakMap<object, string[]>();

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Canonical JSON: object keys sorted, so equal values hash equally. */
export function stableStringify(v: unknown): string {
  if (v === undefined) return 'u';
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'u';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + stableStringify(v[i]);
    return s + ']';
  }
  const keys = Object.keys(v as object).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    s += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + stableStringify((v as Record<string, unknown>)[keys[i]]);
  }
  return s + '}';
}

function typesMatchStrict(a: string, b: string): boolean {
  if (a === b) return true;
  if (a === '*' || b === '*') return false;
  const as = a.split(',').map((s) => s.trim());
  const bs = new Set(b.split(',').map((s) => s.trim()));
  return as.some((t) => bs.has(t));
}

function errorInfo(e: unknown): { message: string; errorType: string; stack?: string } {
  if (e instanceof Error) return { message: e.message || e.name, errorType: e.name || 'Error', stack: e.stack };
  let message: string;
  try {
    message = typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
  } catch {
    message = Object.prototype.toString.call(e);
  }
  return { message: `non-Error thrown: ${message}`, errorType: 'NonErrorThrown' };
}

interface PlanNode {
  id: string;
  t: RegisteredNodeType;
  mode: 'normal' | 'bypass';
  inputs: Record<string, unknown>;
  sig: string;
  /** Active sources (ids) this node links to. */
  deps: string[];
}

class RunContext implements NodeContext {
  uiOut: UiOutput | undefined;
  constructor(
    readonly nodeId: string,
    readonly promptId: string,
    readonly host: HostInfo,
    readonly document: WorkflowDocument,
    readonly signal: AbortSignal,
    readonly log: Logger,
    private readonly emit: (e: ExecutionEvent) => void,
    private readonly alive: () => boolean,
  ) {}
  progress(value: number, max: number): void {
    if (this.alive()) this.emit({ type: 'progress', promptId: this.promptId, nodeId: this.nodeId, value, max });
  }
  preview(image: PreviewImage): void {
    if (this.alive()) this.emit({ type: 'preview', promptId: this.promptId, nodeId: this.nodeId, image });
  }
  ui(output: UiOutput): void {
    this.uiOut = { ...(this.uiOut ?? {}), ...output };
  }
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
    const promptId = options.promptId;
    const onEvent = options.onEvent;
    const emit = (e: ExecutionEvent) => {
      if (!onEvent) return;
      try {
        onEvent(e);
      } catch (err) {
        this.log.warn(`onEvent listener threw for ${e.type}`, err);
      }
    };
    const fail = (error: RunError, executed: string[] = [], cached: string[] = []): RunResult => {
      emit({
        type: 'error',
        promptId,
        nodeId: error.nodeId,
        nodeType: error.nodeType,
        message: error.message,
        errorType: error.errorType,
        ...(error.stack ? { stack: error.stack } : {}),
        executed,
      });
      return { status: 'error', executed, cached, outputs: {}, error };
    };

    emit({ type: 'execution_start', promptId });
    const parsed = safeParseDocument(document);
    if (!parsed.ok) {
      return fail({
        nodeId: null,
        nodeType: null,
        message: `invalid workflow document: ${parsed.issues
          .slice(0, 5)
          .map((i) => `${i.path}: ${i.message}`)
          .join('; ')}`,
        errorType: 'invalid_document',
      });
    }
    const doc = parsed.doc;

    let targets: string[];
    if (options.validate !== false) {
      const v = await validateParsedDocument(doc, this.registry, this.host, { outputs: options.outputs });
      if (!v.ok) {
        const firstId = Object.keys(v.node_errors)[0];
        const first = firstId ? v.node_errors[firstId] : undefined;
        return fail({
          nodeId: firstId ?? null,
          nodeType: first?.class_type ?? null,
          message: first
            ? `${v.error?.message ?? 'validation failed'}: node ${firstId} (${first.class_type}): ${first.errors[0].message}${first.errors[0].details ? ` — ${first.errors[0].details}` : ''}`
            : `${v.error?.message ?? 'validation failed'}${v.error?.details ? `: ${v.error.details}` : ''}`,
          errorType: 'validation_failed',
          validation: v,
        });
      }
      targets = v.outputs;
    } else {
      targets = (options.outputs ?? Object.keys(doc.nodes)).filter((id) => {
        const n = doc.nodes[id];
        if (!n || n.mode === 'muted') return false;
        if (options.outputs) return true;
        return this.registry.resolve(n.type).ok && this.registry.get(n.type)?.def.outputNode === true;
      });
    }

    // --- Plan: the nodes the targets need, in dependency order, with signatures.
    const plan = new Map<string, PlanNode>();
    const order: string[] = [];
    const runId = `${promptId}#${++this.runCounter}`;
    try {
      const state = new Map<string, 1 | 2>(); // 1: visiting, 2: done
      for (const root of targets) {
        if (state.has(root)) continue;
        const stack: Array<{ id: string; deps: string[]; i: number }> = [];
        const enter = (id: string) => {
          const n = doc.nodes[id];
          const r = this.registry.resolve(n.type);
          if (!r.ok) throw Object.assign(new Error(r.message), { nodeId: id, nodeType: n.type });
          let inputs: Record<string, unknown> = n.inputs;
          if (n.version !== r.node.def.version) {
            const mig = this.registry.migrateNode(n);
            if (!mig.ok) throw Object.assign(new Error(mig.message), { nodeId: id, nodeType: n.type });
            inputs = mig.inputs;
          }
          const deps: string[] = [];
          for (const k in inputs) {
            const v = inputs[k];
            if (isLink(v)) {
              const src = doc.nodes[v.node];
              if (src && src.mode !== 'muted') deps.push(v.node);
            }
          }
          plan.set(id, {
            id,
            t: r.node,
            mode: n.mode === 'bypass' ? 'bypass' : 'normal',
            inputs,
            sig: '',
            deps,
          });
          state.set(id, 1);
          stack.push({ id, deps, i: 0 });
        };
        enter(root);
        while (stack.length > 0) {
          const f = stack[stack.length - 1];
          if (f.i < f.deps.length) {
            const d = f.deps[f.i++];
            const s = state.get(d);
            if (s === 1) {
              throw Object.assign(new Error(`dependency cycle through node ${d}`), {
                nodeId: d,
                nodeType: doc.nodes[d].type,
              });
            }
            if (s === undefined) enter(d);
          } else {
            stack.pop();
            state.set(f.id, 2);
            order.push(f.id);
          }
        }
      }
      for (const id of order) {
        const p = plan.get(id)!;
        p.sig = this.signature(p, plan, doc, runId);
      }
    } catch (e) {
      const info = errorInfo(e);
      const ctx = e as { nodeId?: string; nodeType?: string };
      return fail({
        nodeId: ctx.nodeId ?? null,
        nodeType: ctx.nodeType ?? null,
        ...info,
        errorType: 'planning_failed',
      });
    }

    // --- Which nodes run, which come from the cache (a cached node's ancestors are not needed).
    const values = new Map<string, Record<string, unknown>>();
    const uiOutputs: Record<string, UiOutput> = {};
    const cached: string[] = [];
    const toRun = new Set<string>();
    {
      const seen = new Set<string>();
      const stack = [...targets];
      while (stack.length > 0) {
        const id = stack.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        const p = plan.get(id)!;
        const hit = p.mode === 'normal' && !p.t.def.notIdempotent ? this.cache.get(p.sig) : undefined;
        if (hit) {
          values.set(id, hit.outputs);
          cached.push(id);
          if (hit.ui) uiOutputs[id] = hit.ui;
          continue;
        }
        toRun.add(id);
        for (const d of p.deps) stack.push(d);
      }
    }
    if (cached.length > 0) {
      const pos = new Map(order.map((id, i) => [id, i]));
      cached.sort((a, b) => pos.get(a)! - pos.get(b)!);
      emit({ type: 'execution_cached', promptId, nodes: cached });
      for (const id of cached) {
        const ui = uiOutputs[id];
        if (ui) emit({ type: 'node_output', promptId, nodeId: id, nodeType: plan.get(id)!.t.qualifiedName, ui });
      }
    }

    // --- Run.
    const internal = new AbortController();
    const userSignal = options.signal;
    const onAbort = () => internal.abort(userSignal?.reason);
    if (userSignal) {
      if (userSignal.aborted) internal.abort(userSignal.reason);
      else userSignal.addEventListener('abort', onAbort, { once: true });
    }
    const executed: string[] = [];
    const pending = new Map<string, number>();
    const dependents = new Map<string, string[]>();
    for (const id of toRun) {
      let n = 0;
      for (const d of plan.get(id)!.deps) {
        if (!toRun.has(d)) continue;
        n++;
        let l = dependents.get(d);
        if (!l) {
          l = [];
          dependents.set(d, l);
        }
        l.push(id);
      }
      pending.set(id, n);
    }
    const ready: string[] = [];
    for (const id of order) if (toRun.has(id) && pending.get(id) === 0) ready.push(id);

    let failure: RunError | undefined;
    let running = 0;
    const inFlight = new Set<string>();
    let runningAtAbort: string | undefined;
    internal.signal.addEventListener('abort', () => {
      runningAtAbort = inFlight.values().next().value;
    });
    let head = 0;
    let draining = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    const stopped = () => failure !== undefined || internal.signal.aborted;

    const finish = (id: string, result: unknown, threw: boolean, ctx: RunContext | undefined) => {
      running--;
      inFlight.delete(id);
      const p = plan.get(id)!;
      if (threw) {
        if (!failure && !userSignal?.aborted) {
          const info = errorInfo(result);
          failure = { nodeId: id, nodeType: p.t.qualifiedName, ...info };
          emit({
            type: 'error',
            promptId,
            nodeId: id,
            nodeType: p.t.qualifiedName,
            message: info.message,
            errorType: info.errorType,
            ...(info.stack ? { stack: info.stack } : {}),
            executed: [...executed],
            inputs: literalInputs(p),
          });
          internal.abort(new Error(`run stopped: node ${id} failed`));
        }
      } else {
        let outs: Record<string, unknown>;
        try {
          outs = p.mode === 'bypass' ? (result as Record<string, unknown>) : checkOutputs(p, result);
        } catch (e) {
          finish_error(id, e);
          return;
        }
        values.set(id, outs);
        if (p.mode === 'normal') {
          executed.push(id);
          const ui = ctx?.uiOut;
          if (ui) {
            uiOutputs[id] = ui;
            emit({ type: 'node_output', promptId, nodeId: id, nodeType: p.t.qualifiedName, ui });
          }
          if (!p.t.def.notIdempotent) this.cache.set(p.sig, outs, ui);
        }
        for (const d of dependents.get(id) ?? []) {
          const n = pending.get(d)! - 1;
          pending.set(d, n);
          if (n === 0) ready.push(d);
        }
      }
      drain();
    };
    const finish_error = (id: string, e: unknown) => {
      running++;
      inFlight.add(id);
      finish(id, e, true, undefined);
    };

    const start = (id: string) => {
      const p = plan.get(id)!;
      const inputs = this.resolveInputs(p, values, doc);
      running++;
      inFlight.add(id);
      if (p.mode === 'bypass') {
        finish(id, bypassOutputs(p, inputs), false, undefined);
        return;
      }
      if (onEvent) emit({ type: 'node_start', promptId, nodeId: id, nodeType: p.t.qualifiedName });
      const ctx = new RunContext(id, promptId, this.host, doc, internal.signal, this.log, emit, () => !stopped());
      let ret: unknown;
      try {
        ret = p.t.def.execute(inputs as never, ctx);
      } catch (e) {
        finish(id, e, true, ctx);
        return;
      }
      if (ret !== null && typeof ret === 'object' && typeof (ret as Promise<unknown>).then === 'function') {
        (ret as Promise<unknown>).then(
          (v) => finish(id, v, false, ctx),
          (e) => finish(id, e, true, ctx),
        );
      } else {
        finish(id, ret, false, ctx);
      }
    };

    const drain = () => {
      if (draining) return;
      draining = true;
      try {
        while (head < ready.length && !stopped()) start(ready[head++]);
      } finally {
        draining = false;
      }
      if (running === 0 && (stopped() || head >= ready.length)) resolveDone();
    };
    drain();
    await done;
    userSignal?.removeEventListener('abort', onAbort);

    if (failure) return { status: 'error', executed, cached, outputs: uiOutputs, error: failure };
    if (internal.signal.aborted && executed.length < countNormal(toRun, plan)) {
      const last = runningAtAbort;
      emit({
        type: 'interrupted',
        promptId,
        ...(last ? { nodeId: last, nodeType: plan.get(last)!.t.qualifiedName } : {}),
        executed,
      });
      return { status: 'interrupted', executed, cached, outputs: uiOutputs };
    }
    emit({ type: 'success', promptId, executed, outputs: uiOutputs });
    return { status: 'success', executed, cached, outputs: uiOutputs };
  }

  /** The ancestry signature: hash of (qualified type, version, mode, input literals, upstream signatures). */
  private signature(p: PlanNode, plan: Map<string, PlanNode>, doc: WorkflowDocument, runId: string): string {
    let s = `${p.t.qualifiedName}\u0000${p.t.def.version}\u0000${p.mode}`;
    if (p.t.def.notIdempotent && p.mode === 'normal') s += `\u0000run:${runId}`;
    const specs = p.t.def.inputs as Record<string, InputSpec>;
    let names = sortedInputNames.get(specs);
    if (!names) {
      names = Object.keys(specs).sort();
      sortedInputNames.set(specs, names);
    }
    for (const name of names) {
      const v = p.inputs[name];
      s += `\u0000${name}=`;
      if (isLink(v)) {
        const src = doc.nodes[v.node];
        if (!src || src.mode === 'muted') s += 'muted';
        else s += `@${plan.get(v.node)!.sig}:${v.output}`;
      } else {
        const spec = specs[name];
        s += stableStringify(v === undefined && spec.kind !== 'socket' ? spec.default : v);
      }
    }
    return createHash('sha1').update(s).digest('base64');
  }

  private resolveInputs(
    p: PlanNode,
    values: Map<string, Record<string, unknown>>,
    doc: WorkflowDocument,
  ): Record<string, unknown> {
    const specs = p.t.def.inputs as Record<string, InputSpec>;
    const out: Record<string, unknown> = {};
    for (const name in specs) {
      const v = p.inputs[name];
      if (isLink(v)) {
        const src = doc.nodes[v.node];
        out[name] = src && src.mode !== 'muted' ? values.get(v.node)?.[v.output] : undefined;
      } else if (v === undefined || v === null) {
        const spec = specs[name];
        out[name] = spec.kind === 'socket' ? undefined : widgetValue(spec, spec.default);
      } else {
        out[name] = widgetValue(specs[name], v);
      }
    }
    return out;
  }
}

function countNormal(toRun: Set<string>, plan: Map<string, PlanNode>): number {
  let n = 0;
  for (const id of toRun) if (plan.get(id)!.mode === 'normal') n++;
  return n;
}

function literalInputs(p: PlanNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.inputs)) {
    if (isLink(v)) out[k] = v;
    else if (typeof v === 'string' && v.length > 200) out[k] = `${v.slice(0, 200)}...`;
    else if (Array.isArray(v) && v.length > 50) out[k] = `[array of ${v.length}]`;
    else out[k] = v;
  }
  return out;
}

function checkOutputs(p: PlanNode, result: unknown): Record<string, unknown> {
  const outs = p.t.def.outputs as readonly OutputSpec[];
  if (result === undefined || result === null) {
    if (outs.length === 0) return {};
    throw new Error(`${p.t.qualifiedName} returned nothing; expected outputs ${outs.map((o) => o.name).join(', ')}`);
  }
  if (typeof result !== 'object' || Array.isArray(result)) {
    throw new Error(
      `${p.t.qualifiedName} returned ${Array.isArray(result) ? 'an array' : typeof result}; expected an object of named outputs`,
    );
  }
  const r = result as Record<string, unknown>;
  for (const o of outs) {
    if (!(o.name in r)) throw new Error(`${p.t.qualifiedName} did not return its output "${o.name}"`);
  }
  return r;
}

/** Bypass: each output receives the first input whose type matches it (undefined if none). */
function bypassOutputs(p: PlanNode, inputs: Record<string, unknown>): Record<string, unknown> {
  const specs = p.t.def.inputs as Record<string, InputSpec>;
  const out: Record<string, unknown> = {};
  for (const o of p.t.def.outputs as readonly OutputSpec[]) {
    out[o.name] = undefined;
    for (const name in specs) {
      if (inputs[name] !== undefined && typesMatchStrict(widgetTypeName(specs[name]), o.type)) {
        out[o.name] = inputs[name];
        break;
      }
    }
  }
  return out;
}
