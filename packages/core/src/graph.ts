/**
 * The resolved graph: a document's nodes by integer index (document order), each with its registered
 * type and its active link sources as indices. Built once per run (by validation, or by planning when
 * a run skips validation); validation, planning, signing and scheduling then read these arrays
 * instead of looking ids up in the document's node dictionary again (at 10k nodes each such lookup
 * is a cache miss, and every pass over the document repeats them).
 */
import type { RegisteredNodeType, Registry } from './registry.js';
import { type DocumentOrder, isLink, type WorkflowDocument, type WorkflowNode } from './schema.js';

/** modes[i]: the node's mode as a small integer */
export const NORMAL = 0;
export const BYPASS = 1;
export const MUTED = 2;

export interface ResolvedGraph {
  doc: WorkflowDocument;
  /** node ids, in document order */
  ids: string[];
  /** the nodes, by index */
  nodes: WorkflowNode[];
  indexOf: IdIndex;
  /** registered type by index, null when the type does not resolve */
  types: Array<RegisteredNodeType | null>;
  /** NORMAL, BYPASS or MUTED, by index */
  modes: Uint8Array;
  /** Node i's active link sources (as written, before migrations) are `src[srcFrom[i] .. srcFrom[i + 1])`,
   *  in input order; `srcSlot[k]` is the input that link k feeds, as its position among the node
   *  type's inputs (-1 when the type has no such input). A link to a missing or muted node is not
   *  listed. (Typed arrays: see IntList.) */
  srcFrom: Int32Array;
  src: Int32Array;
  srcSlot: Int32Array;
}

/**
 * A growable list of int32s in a typed array. Not a plain array: past 16k elements (128 KB) a plain
 * array's storage is allocated in V8's large-object space, on fresh pages each time it grows, and at
 * 10k nodes a run's link lists pass that size: pushing then cost ≈ 44 ns per element against ≈ 7 ns
 * at 2k (measured on this VM; the difference is page faults). A typed array's buffer comes from
 * malloc, which reuses freed memory.
 */
export class IntList {
  data: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Int32Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
}

/** Per definition's inputs: each input name's position among them (Object.keys order). */
const slotMaps = new WeakMap<object, Map<string, number>>();

/** The input names of a definition, in order (built once per definition). */
const slotNames = new WeakMap<object, string[]>();

/** The position of input `name` among a definition's inputs, -1 when it has none such. */
export function inputSlot(t: RegisteredNodeType | null, name: string): number {
  if (t === null) return -1;
  let m = slotMaps.get(t.def.inputs);
  if (!m) {
    m = new Map(inputNames(t.def.inputs).map((k, i) => [k, i]));
    slotMaps.set(t.def.inputs, m);
  }
  return m.get(name) ?? -1;
}

/** A definition's input names in order: the positions inputSlot counts. */
export function inputNames(specs: object): string[] {
  let names = slotNames.get(specs);
  if (!names) {
    names = Object.keys(specs);
    slotNames.set(specs, names);
  }
  return names;
}

const modeCode = (mode: string): number => (mode === 'muted' ? MUTED : mode === 'bypass' ? BYPASS : NORMAL);

/** Appends the active link sources of `inputs` (by index) and their inputs' slots for type `t`. */
export function appendLinks(
  g: Pick<ResolvedGraph, 'indexOf' | 'modes'>,
  t: RegisteredNodeType | null,
  inputs: Record<string, unknown>,
  src: IntList,
  slot: IntList,
): void {
  for (const k in inputs) {
    const v = inputs[k];
    if (!isLink(v)) continue;
    const j = g.indexOf.get(v.node);
    if (j === undefined || g.modes[j] === MUTED) continue;
    src.push(j);
    slot.push(inputSlot(t, k));
  }
}

/** FNV-1a over an id's UTF-16 code units. */
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Node id → index, by open addressing over an Int32Array holding index + 1 (0 is empty). Not a Map:
 * a Map (or a dictionary object) past 4,096 entries is allocated in V8's large-object space, on
 * fresh pages each time, and building one then costs ≈ 300 ns per entry against ≈ 17 ns below that
 * size (measured on this VM; most of it page faults). A typed array's buffer comes from malloc,
 * which reuses freed memory.
 */
export class IdIndex {
  private readonly table: Int32Array;
  private readonly mask: number;
  constructor(private readonly ids: readonly string[]) {
    let size = 16;
    while (size < ids.length * 2) size *= 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < ids.length; i++) {
      let h = hashId(ids[i]) & this.mask;
      while (this.table[h] !== 0) h = (h + 1) & this.mask;
      this.table[h] = i + 1;
    }
  }

  get(id: string): number | undefined {
    if (typeof id !== 'string') return undefined;
    for (let h = hashId(id) & this.mask; ; h = (h + 1) & this.mask) {
      const j = this.table[h];
      if (j === 0) return undefined;
      if (this.ids[j - 1] === id) return j - 1;
    }
  }
}

/** The document's ids and nodes in document order (given by the parser, or enumerated here). */
function orderOf(doc: WorkflowDocument, order: DocumentOrder | undefined): DocumentOrder {
  if (order) return order;
  const ids: string[] = [];
  const nodes: WorkflowNode[] = [];
  for (const id in doc.nodes) {
    ids.push(id);
    nodes.push(doc.nodes[id]);
  }
  return { ids, nodes };
}

/** One pass over the nodes (enumerating the document's dictionary only when the parser did not),
 *  one over their inputs. `order` must be the document's own (parseForRun's). */
export function resolveGraph(doc: WorkflowDocument, registry: Registry, order?: DocumentOrder): ResolvedGraph {
  const { ids, nodes } = orderOf(doc, order);
  const n = ids.length;
  const types: Array<RegisteredNodeType | null> = new Array(n);
  const modes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = registry.resolve(nodes[i].type);
    types[i] = r.ok ? r.node : null;
    modes[i] = modeCode(nodes[i].mode);
  }
  const indexOf = new IdIndex(ids);
  const srcFrom = new Int32Array(n + 1);
  const src = new IntList(2 * n);
  const slot = new IntList(2 * n);
  const g = { indexOf, modes };
  for (let i = 0; i < n; i++) {
    appendLinks(g, types[i], nodes[i].inputs, src, slot);
    srcFrom[i + 1] = src.length;
  }
  return { doc, ids, nodes, indexOf, types, modes, srcFrom, src: src.data, srcSlot: slot.data };
}
