/**
 * Validation of a workflow against the registry, before anything runs. Reports every problem at
 * once in ComfyUI's shapes (`error` + `node_errors[id] = {errors, dependent_outputs, class_type}`).
 * Never throws, whatever it is given.
 */
import { type HostInfo, type InputSpec, type NodeFacts, type OutputSpec, socketsCompatible } from './api.js';
import { BYPASS, MUTED, type ResolvedGraph, resolveGraph } from './graph.js';
import { WIDGET_KINDS, widgetTypeName } from './inputs.js';
import { comboOptions, type RegisteredNodeType, type Registry } from './registry.js';
import { type DocumentOrder, isLink, safeParseDocument, type WorkflowDocument } from './schema.js';

export type ValidationErrorType =
  | 'required_input_missing'
  | 'bad_linked_input'
  | 'return_type_mismatch'
  | 'invalid_input_type'
  | 'value_smaller_than_min'
  | 'value_bigger_than_max'
  | 'value_not_in_list'
  | 'custom_validation_failed'
  | 'dependency_cycle'
  | 'missing_node_type'
  | 'ambiguous_node_type'
  | 'node_version_unsupported'
  | 'exception_during_validation'
  | 'memory_budget_exceeded';

export interface NodeValidationError {
  type: ValidationErrorType;
  message: string;
  details: string;
  extra_info: { input_name?: string; received_value?: unknown; [k: string]: unknown };
}

export interface NodeErrors {
  errors: NodeValidationError[];
  /** Ids of the requested output nodes that depend on this node (or are it). */
  dependent_outputs: string[];
  class_type: string;
}

export interface PromptError {
  type: 'invalid_prompt' | 'missing_node_type' | 'prompt_no_outputs' | 'prompt_outputs_failed_validation';
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

export interface ValidationResult {
  ok: boolean;
  error?: PromptError;
  node_errors: Record<string, NodeErrors>;
  /** The output node ids the run would execute (requested or every output node). */
  outputs: string[];
}

export interface ValidateOptions {
  /** Node ids to execute (default: every non-muted output node). */
  outputs?: string[];
  /** Per-job memory budget in bytes: a node whose inferred tensors (`NodeFacts.bytes`) exceed it is
   *  refused. Default: no limit. */
  memoryBudgetBytes?: number;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Ids in an order where every link source comes before its consumers (cycle members left out). */
function topoOrder(ids: string[], sourcesOf: SourcesOf, skip: Set<string>): string[] {
  const inScope = new Set(ids.filter((id) => !skip.has(id)));
  const out: string[] = [];
  const state = new Map<string, 1 | 2>();
  for (const root of inScope) {
    if (state.has(root)) continue;
    const work: Array<{ id: string; i: number }> = [{ id: root, i: 0 }];
    state.set(root, 1);
    while (work.length > 0) {
      const f = work[work.length - 1];
      const srcs = sourcesOf.get(f.id) ?? [];
      if (f.i < srcs.length) {
        const s = srcs[f.i++];
        if (inScope.has(s) && !state.has(s)) {
          state.set(s, 1);
          work.push({ id: s, i: 0 });
        }
      } else {
        work.pop();
        state.set(f.id, 2);
        out.push(f.id);
      }
    }
  }
  return out;
}

/**
 * The order topoOrder gives `ids` when nothing is skipped, or null when the links form a cycle (a
 * source still being visited is met again). One depth-first pass over the resolved graph's index
 * lists (its state in one byte per node): the usual, acyclic case needs neither findCycles nor a
 * second walk. Every source of an id in `ids` must be in `ids` (true of the active nodes and of an
 * ancestry).
 */
function acyclicOrder(ids: string[], g: ResolvedGraph): string[] | null {
  const out: string[] = [];
  const state = new Uint8Array(g.ids.length); // 0 not seen, 1 on the stack, 2 done
  const stack: number[] = [];
  const stackPos: number[] = [];
  const { src, srcFrom } = g;
  for (const root of ids) {
    const r = g.indexOf.get(root)!;
    if (state[r] !== 0) continue;
    state[r] = 1;
    stack.push(r);
    stackPos.push(srcFrom[r]);
    while (stack.length > 0) {
      const top = stack.length - 1;
      const at = stack[top];
      const k = stackPos[top];
      if (k < srcFrom[at + 1]) {
        stackPos[top] = k + 1;
        const s = src[k];
        if (state[s] === 1) return null;
        if (state[s] === 0) {
          state[s] = 1;
          stack.push(s);
          stackPos.push(srcFrom[s]);
        }
      } else {
        state[at] = 2;
        out.push(g.ids[at]);
        stack.pop();
        stackPos.pop();
      }
    }
  }
  return out;
}

function describe(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

function isSocketSpec(spec: InputSpec): spec is Extract<InputSpec, { kind: 'socket' }> {
  return spec.kind === 'socket';
}

/** The type of `output` on a node of type `t`: null when the node's type is unknown (nothing can be said),
 *  undefined when the type has no such output. */
function outputTypeOf(t: RegisteredNodeType | null, output: string): string | null | undefined {
  if (!t) return null;
  for (const o of t.def.outputs as readonly OutputSpec[]) if (o.name === output) return o.type;
  return undefined;
}

/** The ids that lie on a cycle: Kahn's algorithm peels off everything acyclic (cheap, the usual
 *  case), then Tarjan's strongly connected components, iteratively, on what remains. */
export function findCycles(ids: string[], edges: Map<string, string[]>): Set<string> {
  const indeg = new Map<string, number>();
  for (const id of ids) indeg.set(id, 0);
  for (const id of ids) {
    for (const w of edges.get(id) ?? []) {
      const d = indeg.get(w);
      if (d !== undefined) indeg.set(w, d + 1);
    }
  }
  const queue: string[] = [];
  for (const id of ids) if (indeg.get(id) === 0) queue.push(id);
  for (let h = 0; h < queue.length; h++) {
    for (const w of edges.get(queue[h]) ?? []) {
      if (!indeg.has(w)) continue;
      const d = indeg.get(w)! - 1;
      indeg.set(w, d);
      if (d === 0) queue.push(w);
    }
  }
  if (queue.length === indeg.size) return new Set();
  // Tarjan on the rest, with edges restricted to it.
  const sorted = new Set(queue);
  const rest = ids.filter((id) => !sorted.has(id));
  const restSet = new Set(rest);
  const restEdges = new Map<string, string[]>();
  for (const id of rest)
    restEdges.set(
      id,
      (edges.get(id) ?? []).filter((w) => restSet.has(w)),
    );
  return tarjan(rest, restEdges);
}

/** The ids that lie on a cycle of `edges` (iterative Tarjan; a self-loop counts). */
export function tarjan(ids: string[], edges: Map<string, string[]>): Set<string> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const inCycle = new Set<string>();
  let counter = 0;
  for (const root of ids) {
    if (index.has(root)) continue;
    const work: Array<{ id: string; i: number }> = [{ id: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const succ = edges.get(frame.id) ?? [];
      if (frame.i < succ.length) {
        const w = succ[frame.i++];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ id: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.id, Math.min(low.get(frame.id)!, index.get(w)!));
        }
      } else {
        work.pop();
        if (work.length > 0) {
          const parent = work[work.length - 1].id;
          low.set(parent, Math.min(low.get(parent)!, low.get(frame.id)!));
        }
        if (low.get(frame.id) === index.get(frame.id)) {
          const comp: string[] = [];
          let w: string;
          do {
            w = stack.pop()!;
            onStack.delete(w);
            comp.push(w);
          } while (w !== frame.id);
          const selfLoop = comp.length === 1 && (edges.get(comp[0]) ?? []).includes(comp[0]);
          if (comp.length > 1 || selfLoop) for (const c of comp) inCycle.add(c);
        }
      }
    }
  }
  return inCycle;
}

/** A prompt-level `invalid_prompt` result (no node to pin it on). */
function promptFailure(message: string, details: string, extra_info: Record<string, unknown> = {}): ValidationResult {
  return { ok: false, error: { type: 'invalid_prompt', message, details, extra_info }, node_errors: {}, outputs: [] };
}

/**
 * Checks a workflow document against the registry: unknown or ambiguous types, unsupported node
 * versions, missing required inputs, links to missing nodes/outputs, socket type mismatches,
 * values of the wrong type, out of range or not in a combo, cycles, and each node's own `validate`
 * hook. Only non-muted nodes are checked. Every problem is reported.
 */
export async function validateWorkflow(
  document: unknown,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions = {},
): Promise<ValidationResult> {
  try {
    return await validateInner(document, registry, host, options);
  } catch (e) {
    return promptFailure('Validation failed unexpectedly', e instanceof Error ? e.message : String(e));
  }
}

async function validateInner(
  document: unknown,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions,
): Promise<ValidationResult> {
  const parsed = safeParseDocument(document);
  if (!parsed.ok) {
    const details = parsed.issues
      .slice(0, 20)
      .map((i) => `${i.path}: ${i.message}`)
      .join('; ');
    return promptFailure('Not a valid workflow document', details, { issues: parsed.issues });
  }
  return (await validateParsed(parsed.doc, registry, host, options)).result;
}

/** socketsCompatible, remembered per (output type, input type) pair without building a key string
 *  (it runs per link per run). */
const compatCache = new Map<string, Map<string, boolean>>();
let compatEntries = 0;
function compatible(outType: string, inType: string): boolean {
  let byIn = compatCache.get(outType);
  let r = byIn?.get(inType);
  if (r === undefined) {
    r = socketsCompatible(outType, inType);
    if (compatEntries > 10_000) {
      compatCache.clear();
      compatEntries = 0;
      byIn = undefined;
    }
    if (!byIn) {
      byIn = new Map();
      compatCache.set(outType, byIn);
    }
    byIn.set(inType, r);
    compatEntries++;
  }
  return r;
}

/** Validation of a document already checked by the schema (used by the executor). Never throws. */
export async function validateParsedDocument(
  doc: WorkflowDocument,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions = {},
): Promise<ValidationResult> {
  return (await validateForRun(doc, registry, host, options)).result;
}

/** validateParsedDocument for the executor: the result and, unless validation failed unexpectedly,
 *  the resolved graph (planning reads it instead of resolving the document again). `order`: the
 *  document's ids and nodes from parseForRun. Never throws. */
export async function validateForRun(
  doc: WorkflowDocument,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions = {},
  order?: DocumentOrder,
): Promise<{ result: ValidationResult; graph?: ResolvedGraph }> {
  try {
    return await validateParsed(doc, registry, host, options, order);
  } catch (e) {
    return { result: promptFailure('Validation failed unexpectedly', e instanceof Error ? e.message : String(e)) };
  }
}

/** Each node's active link sources (what the graph walks below read). */
interface SourcesOf {
  get(id: string): string[] | undefined;
}

/** What one validation pass shares between its phases. */
interface Pass {
  doc: WorkflowDocument;
  registry: Registry;
  host: HostInfo;
  options: ValidateOptions;
  /** each node's type and link sources, by index (handed on to planning) */
  graph: ResolvedGraph;
  nodeErrors: Record<string, NodeErrors>;
  /** a node check that passed and that nothing keeps, for the next node (checkNode) */
  spare?: NodeCheck;
  add(id: string, err: Omit<NodeValidationError, 'details'> & { details?: string }): void;
}

function newPass(
  doc: WorkflowDocument,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions,
  order: DocumentOrder | undefined,
): Pass {
  const nodeErrors: Record<string, NodeErrors> = {};
  return {
    doc,
    registry,
    host,
    options,
    graph: resolveGraph(doc, registry, order),
    nodeErrors,
    add(id, err) {
      let entry = nodeErrors[id];
      if (!entry) {
        entry = { errors: [], dependent_outputs: [], class_type: doc.nodes[id].type };
        nodeErrors[id] = entry;
      }
      entry.errors.push({ details: '', ...err });
    },
  };
}

/** What one pass over the document finds (each node visited once: at 10k nodes every extra pass
 *  over them costs cache misses). */
interface Scan {
  /** the non-muted ids, in document order, and their indices */
  active: string[];
  activeAt: number[];
  /** the unknown type names of active nodes */
  missingTypes: Set<string>;
  /** each active node's active link sources, in input order */
  sourcesOf: SourcesOf;
  /** the active output nodes, in document order */
  outputNodes: string[];
}

/** Reports unknown types on active nodes and lists the active nodes (from the resolved graph). */
function scanNodes(pass: Pass): Scan {
  const { registry, graph: g } = pass;
  const scan: Scan = {
    active: [],
    activeAt: [],
    missingTypes: new Set(),
    sourcesOf: { get: (id) => sourceIds(g, id) },
    outputNodes: [],
  };
  for (let i = 0; i < g.ids.length; i++) {
    if (g.modes[i] === MUTED) continue;
    const id = g.ids[i];
    scan.active.push(id);
    scan.activeAt.push(i);
    const t = g.types[i];
    if (t !== null) {
      if (t.def.outputNode === true) scan.outputNodes.push(id);
      continue;
    }
    const type = g.nodes[i].type;
    const r = registry.resolve(type);
    if (r.ok) continue;
    scan.missingTypes.add(type);
    pass.add(id, {
      type: r.reason === 'ambiguous' ? 'ambiguous_node_type' : 'missing_node_type',
      message: r.reason === 'ambiguous' ? 'Ambiguous node type' : 'Node type not found',
      details: r.message,
      extra_info: { class_type: type, candidates: r.candidates },
    });
  }
  return scan;
}

/** A node's active link sources as ids (for the rarer walks: partial runs, cycles, errors). */
function sourceIds(g: ResolvedGraph, id: string): string[] | undefined {
  const i = g.indexOf.get(id);
  if (i === undefined || g.srcFrom[i] === g.srcFrom[i + 1]) return undefined;
  const out: string[] = [];
  for (let k = g.srcFrom[i]; k < g.srcFrom[i + 1]; k++) out.push(g.ids[g.src[k]]);
  return out;
}

/** The outputs that run: the requested ones (unknown ids are a prompt error), else every output node. */
function selectOutputs(pass: Pass, outputNodes: string[]): { outputs: string[]; promptError?: PromptError } {
  const { graph, options } = pass;
  if (!options.outputs || options.outputs.length === 0) return { outputs: outputNodes };
  const outputs: string[] = [];
  const bad: string[] = [];
  for (const o of options.outputs) {
    const at = graph.indexOf.get(o);
    if (at === undefined) bad.push(String(o));
    else if (graph.modes[at] !== MUTED) outputs.push(o);
  }
  if (bad.length === 0) return { outputs };
  return {
    outputs,
    promptError: {
      type: 'invalid_prompt',
      message: 'Requested outputs are not in the workflow',
      details: `unknown node ids: ${bad.join(', ')}`,
      extra_info: { outputs: bad },
    },
  };
}

/** The reverse of the graph's link sources (source → consumers), each list in the order the links were found. */
function linkConsumers(active: string[], sourcesOf: SourcesOf): Map<string, string[]> {
  const consumersOf = new Map<string, string[]>();
  for (const id of active) {
    for (const src of sourcesOf.get(id) ?? []) {
      const list = consumersOf.get(src);
      if (list) list.push(id);
      else consumersOf.set(src, [id]);
    }
  }
  return consumersOf;
}

/** `roots` and everything they depend on. */
function ancestry(roots: string[], sourcesOf: SourcesOf): Set<string> {
  const seen = new Set<string>(roots);
  const queue = [...roots];
  while (queue.length > 0) {
    for (const src of sourcesOf.get(queue.pop()!) ?? []) {
      if (!seen.has(src)) {
        seen.add(src);
        queue.push(src);
      }
    }
  }
  return seen;
}

/** One node's input checks in progress: the input being checked, whether any failed, its literals.
 *  (A class, not a closure per input: validation runs per node per run. One that passed and that
 *  nothing keeps is reused for the next node: see Pass.spare.) */
class NodeCheck {
  failed = false;
  /** the input being checked (errors are reported on it) */
  name = '';
  /** the literal inputs as written; kept only for a type with a validate or infer hook (what reads
   *  them), else null */
  literals: Record<string, unknown> | null = null;
  id = '';
  /** the node's index in the resolved graph */
  at = -1;
  t!: RegisteredNodeType;
  inputs!: Record<string, unknown>;
  constructor(readonly pass: Pass) {}

  /** Starts the checks of node `at` (of type `t`, these inputs). */
  begin(id: string, at: number, t: RegisteredNodeType, inputs: Record<string, unknown>): this {
    this.failed = false;
    this.name = '';
    this.literals = typeof t.def.validate === 'function' || typeof t.def.infer === 'function' ? {} : null;
    this.id = id;
    this.at = at;
    this.t = t;
    this.inputs = inputs;
    return this;
  }

  fail(type: ValidationErrorType, message: string, details: string, extra: Record<string, unknown> = {}): void {
    this.failed = true;
    this.pass.add(this.id, { type, message, details, extra_info: { input_name: this.name, ...extra } });
  }
}

/** One linked input: the source node and output exist, are not muted, and their type fits. */
function checkLink(
  pass: Pass,
  name: string,
  spec: InputSpec,
  value: { node: string; output: string },
  c: NodeCheck,
): void {
  const { graph } = pass;
  const at = graph.indexOf.get(value.node);
  if (at === undefined) {
    c.fail('bad_linked_input', 'Linked node does not exist', `${name} is linked to missing node "${value.node}"`, {
      linked_node: value.node,
    });
    return;
  }
  if (graph.modes[at] === MUTED) {
    if (!spec.optional) {
      c.fail(
        'required_input_missing',
        'Required input is linked to a muted node',
        `${name} is linked to muted node "${value.node}"`,
        { linked_node: value.node },
      );
    }
    return;
  }
  const outType = outputTypeOf(graph.types[at], value.output);
  if (outType === null) return; // the source's own missing_node_type error covers it
  if (outType === undefined) {
    c.fail(
      'bad_linked_input',
      'Linked output does not exist',
      `${name} is linked to output "${value.output}" of node "${value.node}" (${graph.nodes[at].type}), which has no such output`,
      { linked_node: value.node, linked_output: value.output },
    );
    return;
  }
  const expected = spec.kind === 'combo' ? 'COMBO,STRING' : widgetTypeName(spec);
  if (!compatible(outType, expected)) {
    c.fail(
      'return_type_mismatch',
      'Return type mismatch between linked nodes',
      `${name}, received_type(${outType}) mismatch input_type(${widgetTypeName(spec)})`,
      { received_type: outType, input_type: widgetTypeName(spec), linked_node: value.node },
    );
  }
}

/** One literal (widget) value: its type, range and, for a combo, its options (the only
 *  asynchronous check: a promise then, else nothing). */
function checkLiteral(
  name: string,
  spec: Exclude<InputSpec, { kind: 'socket' }>,
  value: unknown,
  c: NodeCheck,
): Promise<void> | undefined {
  const problem = WIDGET_KINDS[spec.kind].check(spec, value);
  if (problem?.kind === 'type') {
    c.fail('invalid_input_type', 'Invalid input type', `${name}: expected ${problem.error}, got ${describe(value)}`, {
      received_value: value,
    });
  } else if (problem) {
    const type = problem.kind === 'min' ? 'value_smaller_than_min' : 'value_bigger_than_max';
    c.fail(type, `Value ${problem.error}`, `${name}`, { received_value: value });
  } else if (spec.kind === 'combo') return checkCombo(name, spec, value, c);
  return undefined;
}

async function checkCombo(
  name: string,
  spec: Extract<InputSpec, { kind: 'combo' }>,
  value: unknown,
  c: NodeCheck,
): Promise<void> {
  const { options: opts, error } = await comboOptions(spec, c.pass.host);
  if (!opts.includes(value as string)) {
    c.fail(
      'value_not_in_list',
      'Value not in list',
      `${name}: ${describe(value)} not in ${error ? `(${error})` : describe(opts)}`,
      { received_value: value, input_config: opts.slice(0, 50) },
    );
  }
}

/** A node's own `validate` hook, its problems reported on the node; a throw is reported too. */
async function customValidate(pass: Pass, id: string, t: RegisteredNodeType, literals: Record<string, unknown>) {
  try {
    const problems = await t.def.validate!(literals, pass.host);
    if (!Array.isArray(problems)) return;
    for (const p of problems) {
      pass.add(id, {
        type: 'custom_validation_failed',
        message: 'Custom validation failed',
        details: `${p?.input ? `${p.input}: ` : ''}${String(p?.message)}`,
        extra_info: p?.input ? { input_name: String(p.input) } : {},
      });
    }
  } catch (e) {
    pass.add(id, {
      type: 'custom_validation_failed',
      message: 'Custom validation failed',
      details: `validate threw: ${e instanceof Error ? e.message : String(e)}`,
      extra_info: {},
    });
  }
}

/** Each definition's inputs as [name, spec] pairs, computed once (checkNode runs per node per run). */
const specEntries = new WeakMap<object, Array<[string, InputSpec]>>();
function entriesOf(specs: Record<string, InputSpec>): Array<[string, InputSpec]> {
  let e = specEntries.get(specs);
  if (!e) {
    e = Object.entries(specs);
    specEntries.set(specs, e);
  }
  return e;
}

/** One input: missing, linked or literal; a promise only while a combo's options are listed. */
function checkInput(c: NodeCheck, name: string, spec: InputSpec): Promise<void> | undefined {
  c.name = name;
  const value = c.inputs[name];
  if (value === undefined || value === null) {
    if (!spec.optional)
      c.fail('required_input_missing', 'Required input is missing', `${name} (${widgetTypeName(spec)})`);
  } else if (isLink(value)) {
    checkLink(c.pass, name, spec, value, c);
  } else if (isSocketSpec(spec)) {
    c.fail(
      'bad_linked_input',
      'Bad linked input, must be a link {node, output}',
      `${name} expects a link to a ${spec.type} output, got ${describe(value)}`,
      { received_value: value },
    );
  } else {
    if (c.literals) c.literals[name] = value;
    return checkLiteral(name, spec, value, c);
  }
  return undefined;
}

/**
 * Every input of one node, in order, then its own validate hook; null when any input failed.
 * Synchronous unless a check is not (a combo's options, a validate hook): the usual node then
 * costs no promise.
 */
function checkNode(pass: Pass, at: number): NodeCheck | null | Promise<NodeCheck | null> {
  const id = pass.graph.ids[at];
  const node = pass.graph.nodes[at];
  const t = pass.graph.types[at];
  if (!t) return null;
  let inputs: Record<string, unknown> = node.inputs;
  if (node.version !== t.def.version) {
    const mig = pass.registry.migrateNode(node);
    if (!mig.ok) {
      pass.add(id, {
        type: 'node_version_unsupported',
        message: 'Node version not supported',
        details: mig.message,
        extra_info: { saved_version: node.version, installed_version: t.def.version },
      });
      return null;
    }
    inputs = mig.inputs;
  }
  const c = (pass.spare ?? new NodeCheck(pass)).begin(id, at, t, inputs);
  pass.spare = undefined;
  const entries = entriesOf(t.def.inputs as Record<string, InputSpec>);
  for (let i = 0; i < entries.length; i++) {
    const pending = checkInput(c, entries[i][0], entries[i][1]);
    if (pending) return checkRestAsync(c, t, entries, i, pending);
  }
  return concludeNode(c, t);
}

/** checkNode from input `i` on, once its pending check settles. */
async function checkRestAsync(
  c: NodeCheck,
  t: RegisteredNodeType,
  entries: Array<[string, InputSpec]>,
  i: number,
  pending: Promise<void>,
): Promise<NodeCheck | null> {
  await pending;
  for (let j = i + 1; j < entries.length; j++) {
    const next = checkInput(c, entries[j][0], entries[j][1]);
    if (next) await next;
  }
  return concludeNode(c, t);
}

/** After a node's inputs: null when one failed, else the node (after its validate hook, if any). */
function concludeNode(c: NodeCheck, t: RegisteredNodeType): NodeCheck | null | Promise<NodeCheck | null> {
  if (c.failed) return null;
  if (c.pass.graph.modes[c.at] !== BYPASS && typeof t.def.validate === 'function') {
    return customValidate(c.pass, c.id, t, c.literals!).then(() => c);
  }
  return c;
}

/** A node's literal inputs with the spec defaults filled in (what `infer` receives). */
function literalsWithDefaults(c: NodeCheck, t: RegisteredNodeType): Record<string, unknown> {
  const withDefaults: Record<string, unknown> = {};
  for (const [name, spec] of entriesOf(t.def.inputs as Record<string, InputSpec>)) {
    if (c.literals && name in c.literals) withDefaults[name] = c.literals[name];
    else if (spec.kind !== 'socket' && spec.default !== undefined) withDefaults[name] = spec.default;
  }
  return withDefaults;
}

/**
 * Facts from the graph (NodeFacts): shapes flow downstream; problems and the memory budget are
 * checked per node. Only nodes whose own inputs passed are asked; unknown facts stay unknown.
 */
function inferFacts(pass: Pass, order: string[], passed: Map<string, NodeCheck>): void {
  const facts = new Map<string, Record<string, unknown>>();
  for (const id of order) {
    const ok = passed.get(id);
    const infer = ok?.t.def.infer;
    if (!ok || pass.graph.modes[ok.at] === BYPASS || typeof infer !== 'function') continue;
    const t = ok.t;
    const node = pass.graph.nodes[ok.at];
    const linked: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(ok.inputs)) {
      if (isLink(v)) linked[name] = facts.get(v.node)?.[v.output];
    }
    let f: NodeFacts | undefined;
    try {
      f = infer.call(t.def, literalsWithDefaults(ok, t), linked, pass.host) ?? undefined;
    } catch {
      f = undefined;
    }
    if (!f) continue;
    if (f.outputs) facts.set(id, f.outputs);
    for (const p of f.problems ?? []) {
      pass.add(id, {
        type: 'custom_validation_failed',
        message: 'Custom validation failed',
        details: `${p.input ? `${p.input}: ` : ''}${p.message}`,
        extra_info: p.input ? { input_name: p.input } : {},
      });
    }
    const budget = pass.options.memoryBudgetBytes;
    if (budget !== undefined && typeof f.bytes === 'number' && f.bytes > budget) {
      pass.add(id, {
        type: 'memory_budget_exceeded',
        message: 'Memory budget exceeded',
        details: `node ${id} (${node.type}) would hold about ${formatBytes(f.bytes)} of tensors, over the per-job memory budget of ${formatBytes(budget)}; use a smaller size or batch, or raise the budget (--memory-budget / PRIORGRAPH_MEMORY_BUDGET)`,
        extra_info: { estimated_bytes: f.bytes, budget_bytes: budget },
      });
    }
  }
}

/** The prompt-level error, if any: requested outputs unknown, types missing, no outputs, node errors. */
function promptLevelError(
  pass: Pass,
  outputs: string[],
  missingTypes: Set<string>,
  given: PromptError | undefined,
): PromptError | undefined {
  if (given) return given;
  if (missingTypes.size > 0) {
    return {
      type: 'missing_node_type',
      message: `Node type not found: ${[...missingTypes].slice(0, 5).join(', ')}${missingTypes.size > 5 ? ', ...' : ''}`,
      details: 'install the plugin that provides it, or remove the node',
      extra_info: { class_types: [...missingTypes] },
    };
  }
  if (outputs.length === 0) {
    return {
      type: 'prompt_no_outputs',
      message: 'Prompt has no outputs',
      details: 'the workflow has no (unmuted) output node to run',
      extra_info: {},
    };
  }
  if (Object.keys(pass.nodeErrors).length > 0) {
    return {
      type: 'prompt_outputs_failed_validation',
      message: 'Prompt outputs failed validation',
      details: '',
      extra_info: {},
    };
  }
  return undefined;
}

async function validateParsed(
  doc: WorkflowDocument,
  registry: Registry,
  host: HostInfo,
  options: ValidateOptions,
  order?: DocumentOrder,
): Promise<{ result: ValidationResult; graph: ResolvedGraph }> {
  const pass = newPass(doc, registry, host, options, order);
  const { active, activeAt, missingTypes, sourcesOf, outputNodes } = scanNodes(pass);
  const { outputs, promptError } = selectOutputs(pass, outputNodes);
  // With explicitly requested outputs (partial execution), only their ancestry is checked, as in
  // ComfyUI: a half-built node elsewhere must not block running the selected output. Unknown
  // types are reported wherever they are.
  const partial = options.outputs !== undefined && options.outputs.length > 0;
  const scope = partial ? ancestry(outputs, sourcesOf) : null;
  const checked = scope ? active.filter((id) => scope.has(id)) : active;
  const acyclic = acyclicOrder(checked, pass.graph);
  const inCycle = acyclic ? new Set<string>() : findCycles(checked, linkConsumers(active, sourcesOf));
  for (const id of inCycle) {
    pass.add(id, {
      type: 'dependency_cycle',
      message: 'Dependency cycle detected',
      details: `node ${id} (${doc.nodes[id].type}) depends on itself through its inputs`,
      extra_info: {},
    });
  }
  // Only nodes that infer facts keep their checked inputs (the rest would be garbage held to the end).
  const passed = new Map<string, NodeCheck>();
  const checkAt = scope ? checked.map((id) => pass.graph.indexOf.get(id)!) : activeAt;
  // (an indexed loop: a for…of here, in an async function, allocated an iterator result per node)
  for (let i = 0; i < checkAt.length; i++) {
    let ok = checkNode(pass, checkAt[i]);
    if (ok instanceof Promise) ok = await ok;
    if (ok && typeof ok.t.def.infer === 'function') passed.set(ok.id, ok);
    else if (ok) pass.spare = ok; // nothing keeps it: the next node's check
  }
  // (passed holds only nodes that infer: without one, the walk would find nothing to ask)
  if (passed.size > 0) inferFacts(pass, acyclic ?? topoOrder(checked, sourcesOf, inCycle), passed);
  // dependent_outputs: the requested outputs whose ancestry includes the node.
  if (Object.keys(pass.nodeErrors).length > 0) {
    for (const out of outputs)
      for (const id of ancestry([out], sourcesOf)) pass.nodeErrors[id]?.dependent_outputs.push(out);
  }
  const error = promptLevelError(pass, outputs, missingTypes, promptError);
  const result = { ok: !error, ...(error ? { error } : {}), node_errors: pass.nodeErrors, outputs };
  return { result, graph: pass.graph };
}
