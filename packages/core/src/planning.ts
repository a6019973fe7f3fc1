/**
 * Planning: which nodes the requested outputs need, in dependency order, each with its migrated
 * inputs and the active sources it links to. Pure: no running, no cache.
 */
import type { RegisteredNodeType, Registry } from './registry.js';
import { isLink, type WorkflowDocument } from './schema.js';

export interface PlanNode {
  id: string;
  t: RegisteredNodeType;
  mode: 'normal' | 'bypass';
  inputs: Record<string, unknown>;
  /** the ancestry signature (filled by caching) */
  sig: string;
  /** Active sources (ids) this node links to. */
  deps: string[];
  /** Position in the plan's order (-1 while planning visits its sources). */
  index: number;
}

export interface Plan {
  nodes: Map<string, PlanNode>;
  /** every planned node, each after its sources */
  order: string[];
  /** the planned nodes, in `order` */
  planned: PlanNode[];
  /** The sources of each node by plan index: node i's are `sources[sourcesFrom[i] .. sourcesFrom[i + 1])`
   *  (its `deps`, as plan indices). Caching and scheduling walk these instead of looking ids up: at
   *  10k nodes every lookup in a graph-sized map or set is a cache miss. */
  sourcesFrom: number[];
  sources: number[];
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

/** Scratch list for linkSources, written by index and copied out at its exact size (an array grown
 *  by push keeps room for 17 or more entries, and validation and planning keep one list per node until
 *  they end; setting the scratch list's length to 0 would drop its storage, regrown for every node). */
const scratch: string[] = [];

/** The active link sources of one node's inputs, in input order; undefined when none. Shared by
 *  validation (its link checks) and planning (a node's deps). */
export function linkSources(doc: WorkflowDocument, inputs: Record<string, unknown>): string[] | undefined {
  let count = 0;
  for (const k in inputs) {
    const v = inputs[k];
    if (!isLink(v)) continue;
    const src = doc.nodes[v.node];
    if (!src || src.mode === 'muted') continue;
    scratch[count++] = v.node;
  }
  return count === 0 ? undefined : scratch.slice(0, count);
}

function planNode(doc: WorkflowDocument, registry: Registry, id: string): PlanNode {
  const n = doc.nodes[id];
  const r = registry.resolve(n.type);
  if (!r.ok) throw new PlanningError(r.message, id, n.type);
  let inputs: Record<string, unknown> = n.inputs;
  if (n.version !== r.node.def.version) {
    const mig = registry.migrateNode(n);
    if (!mig.ok) throw new PlanningError(mig.message, id, n.type);
    inputs = mig.inputs;
  }
  const deps = linkSources(doc, inputs) ?? [];
  return { id, t: r.node, mode: n.mode === 'bypass' ? 'bypass' : 'normal', inputs, sig: '', deps, index: -1 };
}

/** The plan of `targets` (iterative depth-first, so deep graphs do not overflow the stack); throws a
 *  PlanningError on an unknown type, a failed migration or a dependency cycle. A node's visiting
 *  state is its `index` (no map beside `nodes`, no frame object per node: planning runs per node
 *  per run). */
export function planRun(doc: WorkflowDocument, registry: Registry, targets: readonly string[]): Plan {
  const nodes = new Map<string, PlanNode>();
  const order: string[] = [];
  const planned: PlanNode[] = [];
  const sourcesFrom: number[] = [0];
  const sources: number[] = [];
  const stack: PlanNode[] = [];
  const next: number[] = []; // per stack entry: the next of its deps to visit
  // The sources met so far by the nodes on the stack, each node's on top of its consumer's: when a
  // node is done, its last `deps.length` entries are its sources, all planned (no second lookup).
  const met: PlanNode[] = [];
  let metTop = 0; // met's length in use (never shortened: shortening drops storage that the next push regrows)
  for (const root of targets) {
    if (nodes.has(root)) continue;
    const r = planNode(doc, registry, root);
    nodes.set(root, r);
    stack.push(r);
    next.push(0);
    while (stack.length > 0) {
      const top = stack.length - 1;
      const p = stack[top];
      const i = next[top];
      if (i < p.deps.length) {
        next[top] = i + 1;
        const d = p.deps[i];
        const seen = nodes.get(d);
        if (seen === undefined) {
          const q = planNode(doc, registry, d);
          nodes.set(d, q);
          met[metTop++] = q;
          stack.push(q);
          next.push(0);
        } else if (seen.index === -1)
          throw new PlanningError(`dependency cycle through node ${d}`, d, doc.nodes[d].type);
        else met[metTop++] = seen;
      } else {
        stack.pop();
        next.pop();
        p.index = order.length;
        order.push(p.id);
        planned.push(p);
        const from = metTop - p.deps.length;
        for (let k = from; k < metTop; k++) sources.push(met[k].index);
        metTop = from;
        sourcesFrom.push(sources.length);
      }
    }
  }
  return { nodes, order, planned, sourcesFrom, sources };
}
