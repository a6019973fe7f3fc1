/**
 * Planning: which nodes the requested outputs need, in dependency order, each with its migrated
 * inputs and the active sources it links to. Pure: no running, no cache.
 */
import { appendLinks, BYPASS, IntList, type ResolvedGraph, resolveGraph } from './graph.js';
import type { RegisteredNodeType, Registry } from './registry.js';
import type { WorkflowDocument } from './schema.js';

/** One planned node. Its sources are read from the plan's index lists (`deps` builds their ids on
 *  demand, for tests and diagnostics: a run never asks). */
export class PlanNode {
  /** the ancestry signature (filled by caching) */
  sig = '';
  constructor(
    readonly id: string,
    readonly t: RegisteredNodeType,
    readonly mode: 'normal' | 'bypass',
    readonly inputs: Record<string, unknown>,
    /** position in the plan's order */
    readonly index: number,
    private readonly plan: Plan,
  ) {}

  /** Active sources (ids) this node links to, in input order. */
  get deps(): string[] {
    const { sourcesFrom, sources, planned } = this.plan;
    const out: string[] = [];
    for (let k = sourcesFrom[this.index]; k < sourcesFrom[this.index + 1]; k++) out.push(planned[sources[k]].id);
    return out;
  }
}

/** What the targets need, in dependency order, as index lists over the resolved graph. */
export class Plan {
  /** the planned nodes, each after its sources */
  readonly planned: PlanNode[] = [];
  /** The sources of each node by plan index: node i's are `sources[sourcesFrom[i] .. sourcesFrom[i + 1])`
   *  (plan indices, input order) and `sourceSlot[k]` is the input that source k feeds (its position
   *  among the node type's inputs, see inputSlot). Caching and scheduling walk these instead of
   *  looking ids up: at 10k nodes every lookup in a graph-sized map or set is a cache miss. Typed
   *  arrays (see IntList); planRun fills them. */
  sourcesFrom: Int32Array;
  sources: Int32Array;
  sourceSlot: Int32Array;
  /** plan index by graph index, -1 where not planned */
  readonly at: Int32Array;
  constructor(readonly graph: ResolvedGraph) {
    this.at = new Int32Array(graph.ids.length).fill(-1);
    this.sourcesFrom = new Int32Array(graph.ids.length + 1);
    this.sources = this.sourceSlot = new Int32Array(0);
  }

  /** The plan index of a node id, -1 when not planned. */
  indexOf(id: string): number {
    const g = this.graph.indexOf.get(id);
    return g === undefined ? -1 : this.at[g];
  }

  /** The plan index of the source feeding input `slot` (inputSlot) of node `i`, -1 when none (not
   *  a link, or a link to a muted or missing node). */
  sourceOf(i: number, slot: number): number {
    for (let k = this.sourcesFrom[i]; k < this.sourcesFrom[i + 1]; k++)
      if (this.sourceSlot[k] === slot) return this.sources[k];
    return -1;
  }

  /** every planned id, in order (built on demand) */
  get order(): string[] {
    return this.planned.map((p) => p.id);
  }

  /** the planned nodes by id (built on demand) */
  get nodes(): Map<string, PlanNode> {
    return new Map(this.planned.map((p) => [p.id, p]));
  }
}

/** A planning failure, naming the node. */
export class PlanningError extends Error {
  constructor(
    message: string,
    readonly nodeId: string,
    readonly nodeType: string,
  ) {
    super(message);
    this.name = 'PlanningError';
  }
}

/** The default targets: the non-muted output nodes (or the given ids, without muted ones). */
export function defaultTargets(doc: WorkflowDocument, registry: Registry, outputs?: string[]): string[] {
  return (outputs ?? Object.keys(doc.nodes)).filter((id) => {
    const n = doc.nodes[id];
    if (!n || n.mode === 'muted') return false;
    if (outputs) return true;
    return registry.resolve(n.type).ok && registry.get(n.type)?.def.outputNode === true;
  });
}

/** Fields of a frame of planRun's depth-first stack, FRAME int32s each. */
const NODE = 0; // graph index
const POS = 1; // next link to follow
const END = 2; // end of its links
const START = 3; // start of its links
const MIG = 4; // 1 when its links are in the migrated lists
const FRAME = 5;

/**
 * The depth-first stack of planRun: per entry, its graph index and its links `links[start .. end)`
 * (the graph's own lists, or planRun's copies for migrated nodes), FRAME int32s each in one IntList (a
 * chain of 10k nodes is 10k deep: plain arrays per field grew by copying on every run). A migrated
 * node's inputs are kept by graph index; the others' are the document's.
 */
class Stack {
  readonly frames = new IntList(FRAME * 64);
  readonly migratedInputs = new Map<number, Record<string, unknown>>();

  /** entries on the stack */
  get depth(): number {
    return this.frames.length / FRAME;
  }

  push(node: number, start: number, end: number, mig: boolean): void {
    const { frames } = this;
    frames.push(node); // NODE
    frames.push(start); // POS
    frames.push(end); // END
    frames.push(start); // START
    frames.push(mig ? 1 : 0); // MIG
  }

  /** Removes the top entry; returns its offset in frames.data (valid until the next push). */
  pop(): number {
    this.frames.length -= FRAME;
    return this.frames.length;
  }
}

/** Lists of links of migrated nodes (their inputs may link elsewhere than the document says). */
interface Migrated {
  src: IntList;
  slot: IntList;
}

/** Checks node g (its type resolves, its inputs migrate) and pushes it on the stack. */
function visit(g: ResolvedGraph, registry: Registry, at: number, stack: Stack, mig: Migrated): void {
  const n = g.nodes[at];
  const t = g.types[at];
  if (t === null) {
    const r = registry.resolve(n.type);
    throw new PlanningError(r.ok ? `unknown node type "${n.type}"` : r.message, g.ids[at], n.type);
  }
  if (n.version === t.def.version) {
    stack.push(at, g.srcFrom[at], g.srcFrom[at + 1], false);
    return;
  }
  const m = registry.migrateNode(n);
  if (!m.ok) throw new PlanningError(m.message, g.ids[at], n.type);
  const from = mig.src.length;
  appendLinks(g, t, m.inputs, mig.src, mig.slot);
  stack.migratedInputs.set(at, m.inputs);
  stack.push(at, from, mig.src.length, true);
}

/** Pops the top entry of the stack: node g is planned (its sources are). */
function planTop(plan: Plan, stack: Stack, mig: Migrated, sources: IntList, slots: IntList): void {
  const { graph, at, planned, sourcesFrom } = plan;
  const f = stack.pop();
  const { data } = stack.frames;
  const g = data[f + NODE];
  const fromMig = data[f + MIG] === 1;
  const index = planned.length;
  at[g] = index;
  const mode = graph.modes[g] === BYPASS ? 'bypass' : 'normal';
  const inputs = fromMig ? stack.migratedInputs.get(g)! : graph.nodes[g].inputs;
  planned.push(new PlanNode(graph.ids[g], graph.types[g]!, mode, inputs, index, plan));
  for (let j = data[f + START]; j < data[f + END]; j++) {
    sources.push(at[fromMig ? mig.src.data[j] : graph.src[j]]);
    slots.push(fromMig ? mig.slot.data[j] : graph.srcSlot[j]);
  }
  sourcesFrom[index + 1] = sources.length;
}

/** The plan of `targets` (iterative depth-first, so deep graphs do not overflow the stack); throws a
 *  PlanningError on an unknown type, a failed migration or a dependency cycle. The graph is the one
 *  validation resolved, or resolved here. Per node: integers on a stack and one PlanNode. */
export function planRun(
  doc: WorkflowDocument,
  registry: Registry,
  targets: readonly string[],
  graph: ResolvedGraph = resolveGraph(doc, registry),
): Plan {
  const plan = new Plan(graph);
  const sources = new IntList(graph.srcFrom[graph.ids.length]);
  const slots = new IntList(graph.srcFrom[graph.ids.length]);
  const state = new Uint8Array(graph.ids.length); // 0 unseen, 1 on the stack, 2 planned
  const stack = new Stack();
  const mig: Migrated = { src: new IntList(0), slot: new IntList(0) };
  for (const root of targets) {
    const r = graph.indexOf.get(root);
    if (r === undefined) throw new PlanningError(`unknown node "${root}"`, root, '');
    if (state[r] !== 0) continue;
    visit(graph, registry, r, stack, mig);
    state[r] = 1;
    while (stack.depth > 0) {
      const f = (stack.depth - 1) * FRAME;
      const { data } = stack.frames;
      const k = data[f + POS];
      if (k < data[f + END]) {
        data[f + POS] = k + 1;
        const d = data[f + MIG] === 1 ? mig.src.data[k] : graph.src[k];
        if (state[d] === 1)
          throw new PlanningError(`dependency cycle through node ${graph.ids[d]}`, graph.ids[d], graph.nodes[d].type);
        if (state[d] === 0) {
          visit(graph, registry, d, stack, mig);
          state[d] = 1;
        }
        continue;
      }
      state[data[f + NODE]] = 2;
      planTop(plan, stack, mig, sources, slots);
    }
  }
  plan.sources = sources.data;
  plan.sourceSlot = slots.data;
  return plan;
}
