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
}

export interface Plan {
  nodes: Map<string, PlanNode>;
  /** every planned node, each after its sources */
  order: string[];
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
  const deps: string[] = [];
  for (const k in inputs) {
    const v = inputs[k];
    if (isLink(v)) {
      const src = doc.nodes[v.node];
      if (src && src.mode !== 'muted') deps.push(v.node);
    }
  }
  return { id, t: r.node, mode: n.mode === 'bypass' ? 'bypass' : 'normal', inputs, sig: '', deps };
}

/** The plan of `targets` (iterative depth-first, so deep graphs do not overflow the stack); throws a
 *  PlanningError on an unknown type, a failed migration or a dependency cycle. */
export function planRun(doc: WorkflowDocument, registry: Registry, targets: readonly string[]): Plan {
  const nodes = new Map<string, PlanNode>();
  const order: string[] = [];
  const state = new Map<string, 1 | 2>(); // 1: visiting, 2: done
  const stack: Array<{ id: string; deps: string[]; i: number }> = [];
  const enter = (id: string) => {
    const p = planNode(doc, registry, id);
    nodes.set(id, p);
    state.set(id, 1);
    stack.push({ id, deps: p.deps, i: 0 });
  };
  for (const root of targets) {
    if (state.has(root)) continue;
    enter(root);
    while (stack.length > 0) {
      const f = stack[stack.length - 1];
      if (f.i < f.deps.length) {
        const d = f.deps[f.i++];
        const s = state.get(d);
        if (s === 1) throw new PlanningError(`dependency cycle through node ${d}`, d, doc.nodes[d].type);
        if (s === undefined) enter(d);
      } else {
        stack.pop();
        state.set(f.id, 2);
        order.push(f.id);
      }
    }
  }
  return { nodes, order };
}
