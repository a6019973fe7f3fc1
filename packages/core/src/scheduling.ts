/**
 * Scheduling: runs the nodes of a plan that the cache did not serve, each as soon as its sources are
 * done (independent async branches concurrently), reports progress, previews and outputs as events,
 * and stops at the first failure or on cancellation.
 */
import type { HostInfo, InputSpec, Logger, NodeContext, OutputSpec, PreviewImage, UiOutput } from './api.js';
import { type ExecutionEvent, errorInfo, type RunError } from './events.js';
import { inputNames } from './graph.js';
import { widgetTypeName, widgetValue } from './inputs.js';
import type { Plan, PlanNode } from './planning.js';
import { isLink, type WorkflowDocument } from './schema.js';

/** What a node's context asks of the run it belongs to. */
interface RunState {
  stopped(): boolean;
  emit(e: ExecutionEvent): void;
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
    private readonly run: RunState,
  ) {}
  progress(value: number, max: number): void {
    if (!this.run.stopped())
      this.run.emit({ type: 'progress', promptId: this.promptId, nodeId: this.nodeId, value, max });
  }
  preview(image: PreviewImage): void {
    if (!this.run.stopped()) this.run.emit({ type: 'preview', promptId: this.promptId, nodeId: this.nodeId, image });
  }
  ui(output: UiOutput): void {
    this.uiOut = { ...(this.uiOut ?? {}), ...output };
  }
}

export interface ScheduleInput {
  plan: Plan;
  /** the plan indices of the nodes to run (the rest of the plan was served from the cache) */
  toRun: readonly number[];
  /** outputs by plan index, known so far (the cached ones); filled as nodes finish */
  values: Array<Record<string, unknown> | undefined>;
  /** UI outputs known so far; filled as nodes finish */
  uiOutputs: Record<string, UiOutput>;
  doc: WorkflowDocument;
  promptId: string;
  host: HostInfo;
  log: Logger;
  emit: (e: ExecutionEvent) => void;
  /** whether anyone listens (node_start is only built for a listener) */
  listening: boolean;
  signal?: AbortSignal;
  /** a normal node finished with these outputs (the executor caches them) */
  onDone(p: PlanNode, outputs: Record<string, unknown>, ui: UiOutput | undefined): void;
}

export interface ScheduleResult {
  /** nodes that ran, in completion order */
  executed: string[];
  failure?: RunError;
  /** cancelled before every node ran; with the node that was running then, if any */
  interrupted?: { nodeId?: string };
}

/** Among the nodes to run, by plan index: which they are (in the order toRun lists them), how many
 *  sources each still waits for, who depends on each (`dependents[first[i] .. first[i + 1])`, in
 *  the order toRun lists them), and the first ready nodes in plan order. Typed arrays of small
 *  integers, not maps of lists (this runs per node per run); not plain arrays either, which past 16k
 *  elements live in V8's large-object space (see IntList). (An earlier note measured off-heap
 *  buffers making scavenges 3× longer at 1,000 nodes; with these four per run, executor-gc.bench
 *  shows no such change.) No id is looked up: sources are read from the plan's index lists. */
function readiness(plan: Plan, runs: readonly number[]) {
  const n = plan.planned.length;
  const { sourcesFrom, sources } = plan;
  const marked = new Uint8Array(n);
  for (const i of runs) marked[i] = 1;
  const pending = new Int32Array(n);
  const first = new Int32Array(n + 1);
  for (const i of runs) {
    for (let k = sourcesFrom[i]; k < sourcesFrom[i + 1]; k++) {
      if (!marked[sources[k]]) continue;
      pending[i]++;
      first[sources[k] + 1]++;
    }
  }
  for (let i = 0; i < n; i++) first[i + 1] += first[i];
  const fill = first.slice(0, n);
  const dependents = new Int32Array(first[n]);
  for (const i of runs) {
    for (let k = sourcesFrom[i]; k < sourcesFrom[i + 1]; k++) {
      if (marked[sources[k]]) dependents[fill[sources[k]]++] = i;
    }
  }
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (marked[i] && pending[i] === 0) ready.push(i);
  return { runs, pending, first, dependents, ready };
}

/** Runs the plan's nodes in `toRun`; never throws for a node failure. */
export function schedule(a: ScheduleInput): Promise<ScheduleResult> {
  return new Scheduler(a).run();
}

class Scheduler implements RunState {
  private readonly internal = new AbortController();
  private readonly executed: string[] = [];
  /** By plan index: when each running node started (a count of starts), 0 when not running. The
   *  longest-running node is looked for only on cancellation (a Set of running ids, added to and
   *  deleted from per node, reallocated its table every few nodes). */
  private readonly startedAt: number[];
  private starts = 0;
  /** the plan indices of the nodes to run */
  private readonly runs: readonly number[];
  private readonly pending: Int32Array;
  private readonly first: Int32Array;
  private readonly dependents: Int32Array;
  /** plan indices, in the order they became ready */
  private readonly ready: number[];
  private failure: RunError | undefined;
  private runningAtAbort: string | undefined;
  private running = 0;
  private head = 0;
  private draining = false;
  private resolveDone!: () => void;

  constructor(private readonly a: ScheduleInput) {
    ({
      runs: this.runs,
      pending: this.pending,
      first: this.first,
      dependents: this.dependents,
      ready: this.ready,
    } = readiness(a.plan, a.toRun));
    this.startedAt = new Array(a.plan.planned.length).fill(0);
    this.internal.signal.addEventListener('abort', () => {
      this.runningAtAbort = this.longestRunning();
    });
  }

  async run(): Promise<ScheduleResult> {
    const user = this.a.signal;
    const onAbort = () => this.internal.abort(user?.reason);
    if (user) {
      if (user.aborted) this.internal.abort(user.reason);
      else user.addEventListener('abort', onAbort, { once: true });
    }
    const done = new Promise<void>((r) => {
      this.resolveDone = r;
    });
    this.drain();
    await done;
    user?.removeEventListener('abort', onAbort);
    const executed = this.executed;
    if (this.failure) return { executed, failure: this.failure };
    if (this.internal.signal.aborted && executed.length < countNormal(this.runs, this.a.plan)) {
      return { executed, interrupted: { nodeId: this.runningAtAbort } };
    }
    return { executed };
  }

  emit(e: ExecutionEvent): void {
    this.a.emit(e);
  }

  /** The id of the running node that started first, if any. */
  private longestRunning(): string | undefined {
    let at = -1;
    for (let i = 0; i < this.startedAt.length; i++) {
      const t = this.startedAt[i];
      if (t !== 0 && (at === -1 || t < this.startedAt[at])) at = i;
    }
    return at === -1 ? undefined : this.a.plan.planned[at].id;
  }

  stopped(): boolean {
    return this.failure !== undefined || this.internal.signal.aborted;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.head < this.ready.length && !this.stopped()) this.start(this.ready[this.head++]);
    } finally {
      this.draining = false;
    }
    if (this.running === 0 && (this.stopped() || this.head >= this.ready.length)) this.resolveDone();
  }

  private start(index: number): void {
    const { a } = this;
    const p = a.plan.planned[index];
    const id = p.id;
    this.running++;
    this.startedAt[p.index] = ++this.starts;
    let inputs: Record<string, unknown>;
    try {
      inputs = resolveInputs(p, a.plan, a.values);
    } catch (e) {
      this.finish(p, e, true, undefined); // a literal the input-spec table refuses (unvalidated runs)
      return;
    }
    if (p.mode === 'bypass') {
      this.finish(p, bypassOutputs(p, inputs), false, undefined);
      return;
    }
    if (a.listening) a.emit({ type: 'node_start', promptId: a.promptId, nodeId: id, nodeType: p.t.qualifiedName });
    const ctx = new RunContext(id, a.promptId, a.host, a.doc, this.internal.signal, a.log, this);
    let ret: unknown;
    try {
      ret = p.t.def.execute(inputs as never, ctx);
    } catch (e) {
      this.finish(p, e, true, ctx);
      return;
    }
    if (ret !== null && typeof ret === 'object' && typeof (ret as Promise<unknown>).then === 'function') {
      (ret as Promise<unknown>).then(
        (v) => this.finish(p, v, false, ctx),
        (e) => this.finish(p, e, true, ctx),
      );
    } else {
      this.finish(p, ret, false, ctx);
    }
  }

  private finish(p: PlanNode, result: unknown, threw: boolean, ctx: RunContext | undefined): void {
    this.running--;
    this.startedAt[p.index] = 0;
    if (threw) this.fail(p, result);
    else {
      let outs: Record<string, unknown>;
      try {
        outs = p.mode === 'bypass' ? (result as Record<string, unknown>) : checkOutputs(p, result);
      } catch (e) {
        this.fail(p, e);
        this.drain();
        return;
      }
      this.succeed(p, outs, ctx?.uiOut);
    }
    this.drain();
  }

  private fail(p: PlanNode, e: unknown): void {
    const { a } = this;
    if (this.failure || a.signal?.aborted) return;
    const info = errorInfo(e);
    this.failure = { nodeId: p.id, nodeType: p.t.qualifiedName, ...info };
    a.emit({
      type: 'error',
      promptId: a.promptId,
      nodeId: p.id,
      nodeType: p.t.qualifiedName,
      message: info.message,
      errorType: info.errorType,
      ...(info.stack ? { stack: info.stack } : {}),
      executed: [...this.executed],
      inputs: literalInputs(p),
    });
    this.internal.abort(new Error(`run stopped: node ${p.id} failed`));
  }

  private succeed(p: PlanNode, outs: Record<string, unknown>, ui: UiOutput | undefined): void {
    const { a } = this;
    a.values[p.index] = outs;
    if (p.mode === 'normal') {
      this.executed.push(p.id);
      if (ui) {
        a.uiOutputs[p.id] = ui;
        a.emit({ type: 'node_output', promptId: a.promptId, nodeId: p.id, nodeType: p.t.qualifiedName, ui });
      }
      a.onDone(p, outs, ui);
    }
    const { pending, dependents, first } = this;
    for (let k = first[p.index]; k < first[p.index + 1]; k++) {
      const d = dependents[k];
      if (--pending[d] === 0) this.ready.push(d);
    }
  }
}

function countNormal(runs: readonly number[], plan: Plan): number {
  let n = 0;
  for (const i of runs) if (plan.planned[i].mode === 'normal') n++;
  return n;
}

/** A node's `execute` inputs: linked values from its sources, widget literals (or defaults) as the
 *  input-spec table hands them to nodes. */
export function resolveInputs(
  p: PlanNode,
  plan: Plan,
  values: ReadonlyArray<Record<string, unknown> | undefined>,
): Record<string, unknown> {
  const specs = p.t.def.inputs as Record<string, InputSpec>;
  const out: Record<string, unknown> = {};
  const names = inputNames(specs);
  for (let slot = 0; slot < names.length; slot++) {
    const name = names[slot];
    const v = p.inputs[name];
    if (isLink(v)) {
      const k = plan.sourceOf(p.index, slot);
      out[name] = k === -1 ? undefined : values[k]?.[v.output];
    } else if (v === undefined || v === null) {
      const spec = specs[name];
      out[name] = spec.kind === 'socket' ? undefined : widgetValue(spec, spec.default);
    } else {
      out[name] = widgetValue(specs[name], v);
    }
  }
  return out;
}

/** The literals of a failed node, shortened for the error event. */
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

function typesMatchStrict(a: string, b: string): boolean {
  if (a === b) return true;
  if (a === '*' || b === '*') return false;
  const as = a.split(',').map((s) => s.trim());
  const bs = new Set(b.split(',').map((s) => s.trim()));
  return as.some((t) => bs.has(t));
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
