/**
 * Conversion between litegraph's serialised graph (the 0.4 JSON that `LGraph.serialize()` writes and
 * `LGraph.configure()` reads) and the priorgraph workflow document (docs/contracts.md §1).
 *
 * The document stores inputs by name and links by output name; litegraph stores widget values by
 * position and links by slot index. The node definitions from /object_info map one onto the other.
 * Nodes of unknown types keep their document entry verbatim (in `properties.priorgraph_raw`).
 */
import { isWidget, type NodeDef, type NodeDefs, resolveType, widgetLayout } from './nodedefs.ts';
import type { DocNode, InputValue, LinkRef, SeedControl, WorkflowDocument } from './types.ts';
import { isLinkRef } from './types.ts';

export type SerialisedLink = [
  id: number,
  originId: number | string,
  originSlot: number,
  targetId: number | string,
  targetSlot: number,
  type: string,
];

export interface SerialisedInput {
  name: string;
  type: string;
  link: number | null;
  label?: string;
  /** Set when the input slot stands for a widget input fed by a link. */
  widget?: { name: string };
}

export interface SerialisedOutput {
  name: string;
  type: string;
  links: number[] | null;
  label?: string;
}

export interface SerialisedNode {
  id: number | string;
  type: string;
  title?: string;
  pos: [number, number];
  size?: [number, number];
  flags: { collapsed?: boolean };
  order: number;
  mode: number;
  inputs: SerialisedInput[];
  outputs: SerialisedOutput[];
  properties: Record<string, unknown>;
  widgets_values?: unknown[];
  color?: string;
  bgcolor?: string;
}

export interface SerialisedGroup {
  title: string;
  bounding: [number, number, number, number];
  color?: string;
}

export interface SerialisedGraph {
  last_node_id: number;
  last_link_id: number;
  nodes: SerialisedNode[];
  links: SerialisedLink[];
  groups: SerialisedGroup[];
  config: Record<string, unknown>;
  extra: Record<string, unknown>;
  version: number;
}

export interface ConversionResult<T> {
  value: T;
  warnings: string[];
}

const MODE_TO_LG: Record<string, number> = { normal: 0, muted: 2, bypass: 4 };
const LG_TO_MODE: Record<number, DocNode['mode']> = { 0: 'normal', 2: 'muted', 4: 'bypass' };
const SEED_CONTROLS: SeedControl[] = ['fixed', 'increment', 'decrement', 'randomize'];
export const DEFAULT_NODE_POS: [number, number] = [0, 0];

/** litegraph keys nodes by number or string; keep numeric-looking ids numeric so new nodes count on. */
function lgId(id: string): number | string {
  return /^(0|[1-9]\d{0,14})$/.test(id) ? Number(id) : id;
}

function widgetDefault(def: NodeDef, name: string): unknown {
  return def.inputs.find((i) => i.name === name)?.default;
}

/** Widget values of a node in litegraph's positional order, from named document inputs. */
export function widgetValues(def: NodeDef, inputs: Record<string, InputValue>, controls?: Record<string, SeedControl>) {
  return widgetLayout(def).map((slot) => {
    if (slot.control) return controls?.[slot.input] ?? 'fixed';
    const v = inputs[slot.input];
    return v === undefined || isLinkRef(v) ? widgetDefault(def, slot.input) : v;
  });
}

/** litegraph's `extra`: viewport, document meta, and reroutes tied to the (renumbered) link ids. */
function graphExtra(doc: WorkflowDocument, linkByTarget: Map<string, number>): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  if (doc.ui?.viewport) extra.ds = { offset: [...doc.ui.viewport.offset], scale: doc.ui.viewport.scale };
  if (doc.meta) extra.priorgraph_meta = structuredClone(doc.meta);
  // reroutes: litegraph keeps them in extra, tied to link ids (renumbered, so mapped by target)
  if (doc.ui?.reroutes?.length) {
    extra.reroutes = doc.ui.reroutes.map((r) => ({
      id: r.id,
      pos: [...r.pos],
      ...(r.parentId !== undefined ? { parentId: r.parentId } : {}),
      linkIds: r.links.flatMap((k) => linkByTarget.get(k) ?? []),
    }));
    extra.linkExtensions = Object.entries(doc.ui.linkReroutes ?? {}).flatMap(([k, parentId]) => {
      const id = linkByTarget.get(k);
      return id === undefined ? [] : [{ id, parentId }];
    });
  }
  return extra;
}

export function documentToGraph(doc: WorkflowDocument, defs: NodeDefs): ConversionResult<SerialisedGraph> {
  const warnings: string[] = [];
  const nodes: SerialisedNode[] = [];
  const links: SerialisedLink[] = [];
  const byId = new Map<string, SerialisedNode>();
  let lastNodeId = 0;

  const entries = Object.entries(doc.nodes);
  entries.forEach(([id, dn], order) => {
    const def = resolveType(defs, dn.type);
    const n: SerialisedNode = {
      id: lgId(id),
      type: def?.type ?? dn.type,
      pos: [...(dn.ui?.pos ?? [order * 30, order * 30])] as [number, number],
      flags: dn.ui?.collapsed ? { collapsed: true } : {},
      order,
      mode: MODE_TO_LG[dn.mode ?? 'normal'] ?? 0,
      inputs: [],
      outputs: [],
      properties: {},
    };
    if (typeof n.id === 'number') lastNodeId = Math.max(lastNodeId, n.id);
    if (dn.ui?.size) n.size = [...dn.ui.size] as [number, number];
    if (dn.title !== undefined) n.title = dn.title;
    if (dn.ui?.color) n.color = dn.ui.color;
    if (dn.ui?.bgcolor) n.bgcolor = dn.ui.bgcolor;
    if (def) {
      for (const input of def.inputs) {
        const v = dn.inputs?.[input.name];
        if (!isWidget(input)) n.inputs.push({ name: input.name, type: input.type, link: null });
        else if (isLinkRef(v))
          n.inputs.push({ name: input.name, type: input.type, link: null, widget: { name: input.name } });
      }
      for (const name of Object.keys(dn.inputs ?? {})) {
        if (!def.inputs.some((i) => i.name === name))
          warnings.push(`node ${id} (${dn.type}): unknown input "${name}" dropped`);
      }
      n.outputs = def.outputs.map((o) => ({ name: o.name, type: o.type, links: null }));
      n.widgets_values = widgetValues(def, dn.inputs ?? {}, dn.ui?.controls);
      if (def.version !== (dn.version ?? def.version)) {
        warnings.push(`node ${id} (${dn.type}): saved with type version ${dn.version}, the server has ${def.version}`);
      }
    } else {
      warnings.push(`node ${id}: unknown node type "${dn.type}" (kept as is)`);
      n.properties.priorgraph_raw = structuredClone(dn);
      for (const [name, v] of Object.entries(dn.inputs ?? {})) {
        if (isLinkRef(v)) n.inputs.push({ name, type: '*', link: null });
      }
    }
    nodes.push(n);
    byId.set(id, n);
  });

  // Outputs of unknown nodes are only known from the links that use them.
  for (const [, dn] of entries) {
    for (const v of Object.values(dn.inputs ?? {})) {
      if (!isLinkRef(v)) continue;
      const src = byId.get(v.node);
      if (src?.properties.priorgraph_raw && !src.outputs.some((o) => o.name === v.output)) {
        src.outputs.push({ name: v.output, type: '*', links: null });
      }
    }
  }

  let linkId = 0;
  const linkByTarget = new Map<string, number>();
  for (const [id, dn] of entries) {
    const target = byId.get(id)!;
    for (const [name, v] of Object.entries(dn.inputs ?? {})) {
      if (!isLinkRef(v)) continue;
      const slot = target.inputs.findIndex((i) => i.name === name);
      if (slot < 0) continue;
      const src = byId.get(v.node);
      if (!src) {
        warnings.push(`node ${id}: input "${name}" links to missing node "${v.node}" (link dropped)`);
        continue;
      }
      const outSlot = src.outputs.findIndex((o) => o.name === v.output);
      if (outSlot < 0) {
        warnings.push(
          `node ${id}: input "${name}" links to output "${v.output}" that node ${v.node} does not have (link dropped)`,
        );
        continue;
      }
      const lid = ++linkId;
      const type = src.outputs[outSlot].type;
      links.push([lid, src.id, outSlot, target.id, slot, type]);
      linkByTarget.set(`${id}/${name}`, lid);
      target.inputs[slot].link = lid;
      const out = src.outputs[outSlot];
      out.links = [...(out.links ?? []), lid];
    }
  }

  const extra = graphExtra(doc, linkByTarget);
  return {
    value: {
      last_node_id: lastNodeId,
      last_link_id: linkId,
      nodes,
      links,
      groups: (doc.ui?.groups ?? []).map((g) => ({
        title: g.title,
        bounding: [...g.bounding] as SerialisedGroup['bounding'],
        ...(g.color ? { color: g.color } : {}),
      })),
      config: {},
      extra,
      version: 0.4,
    },
    warnings,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export function graphToDocument(graph: SerialisedGraph, defs: NodeDefs): ConversionResult<WorkflowDocument> {
  const warnings: string[] = [];
  const nodesById = new Map(graph.nodes.map((n) => [String(n.id), n]));
  const linksById = new Map<number, SerialisedLink>();
  for (const l of graph.links ?? []) {
    // litegraph may write links as arrays (0.4) or objects (newer); accept both.
    if (Array.isArray(l)) linksById.set(l[0], l);
    else {
      const o = l as {
        id: number;
        origin_id: number;
        origin_slot: number;
        target_id: number;
        target_slot: number;
        type: string;
      };
      linksById.set(o.id, [o.id, o.origin_id, o.origin_slot, o.target_id, o.target_slot, o.type]);
    }
  }
  const sorted = [...graph.nodes].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
  const nodes: Record<string, DocNode> = {};
  for (const n of sorted) {
    const id = String(n.id);
    const raw = n.properties?.priorgraph_raw as DocNode | undefined;
    const def = raw ? undefined : defs.get(n.type);
    const ui: DocNode['ui'] = { pos: [round(n.pos[0]), round(n.pos[1])] };
    if (n.size) ui.size = [round(n.size[0]), round(n.size[1])];
    if (n.color) ui.color = n.color;
    if (n.bgcolor) ui.bgcolor = n.bgcolor;
    if (n.flags?.collapsed) ui.collapsed = true;
    if (raw) {
      const dn: DocNode = structuredClone(raw);
      dn.ui = { ...dn.ui, ...ui };
      nodes[id] = dn;
      continue;
    }
    if (!def) {
      warnings.push(`node ${id}: unknown node type "${n.type}" (saved without inputs)`);
      nodes[id] = { type: n.type, inputs: {}, ui };
      continue;
    }
    const inputs: Record<string, InputValue> = {};
    const controls: Record<string, SeedControl> = {};
    const layout = widgetLayout(def);
    const values = n.widgets_values ?? [];
    layout.forEach((slot, i) => {
      const v = values[i];
      if (slot.control) {
        if (SEED_CONTROLS.includes(v as SeedControl) && v !== 'fixed') controls[slot.input] = v as SeedControl;
      } else if (v !== undefined) inputs[slot.input] = v as InputValue;
    });
    for (const input of n.inputs ?? []) {
      if (input.link == null) continue;
      const l = linksById.get(input.link);
      const src = l ? nodesById.get(String(l[1])) : undefined;
      const out = l && src ? src.outputs?.[l[2]] : undefined;
      if (!l || !src || !out) {
        warnings.push(`node ${id}: input "${input.name}" has a broken link (dropped)`);
        continue;
      }
      const ref: LinkRef = { node: String(src.id), output: out.name };
      inputs[input.widget?.name ?? input.name] = ref;
    }
    if (Object.keys(controls).length) ui.controls = controls;
    const dn: DocNode = { type: def.type, version: def.version, inputs, ui };
    if (n.title !== undefined && n.title !== def.displayName) dn.title = n.title;
    const mode = LG_TO_MODE[n.mode ?? 0];
    if (mode && mode !== 'normal') dn.mode = mode;
    nodes[id] = dn;
  }
  const doc: WorkflowDocument = { format: 'priorgraph', version: 1, nodes };
  const groups = (graph.groups ?? []).map((g) => ({
    title: g.title,
    bounding: g.bounding.map(round) as [number, number, number, number],
    ...(g.color ? { color: g.color } : {}),
  }));
  const ds = graph.extra?.ds as { offset?: [number, number]; scale?: number } | undefined;
  // reroutes, with their links named by target (link ids do not survive a document)
  const targetOf = (lid: number): string | undefined => {
    const l = linksById.get(lid);
    const input = l ? nodesById.get(String(l[3]))?.inputs?.[l[4]] : undefined;
    return input ? `${l![3]}/${input.widget?.name ?? input.name}` : undefined;
  };
  const rawReroutes = (graph.extra?.reroutes ?? []) as Array<{
    id: number;
    pos: [number, number];
    parentId?: number;
    linkIds?: number[];
  }>;
  const reroutes = rawReroutes.map((r) => ({
    id: r.id,
    pos: [round(r.pos[0]), round(r.pos[1])] as [number, number],
    ...(r.parentId !== undefined ? { parentId: r.parentId } : {}),
    links: (r.linkIds ?? []).flatMap((lid) => targetOf(lid) ?? []),
  }));
  const linkReroutes: Record<string, number> = {};
  for (const x of (graph.extra?.linkExtensions ?? []) as Array<{ id: number; parentId: number }>) {
    const k = targetOf(x.id);
    if (k) linkReroutes[k] = x.parentId;
  }
  if (groups.length || ds?.offset || reroutes.length) {
    doc.ui = {};
    if (groups.length) doc.ui.groups = groups;
    if (reroutes.length) {
      doc.ui.reroutes = reroutes;
      doc.ui.linkReroutes = linkReroutes;
    }
    if (ds?.offset) doc.ui.viewport = { offset: [round(ds.offset[0]), round(ds.offset[1])], scale: ds.scale ?? 1 };
  }
  const meta = graph.extra?.priorgraph_meta as Record<string, unknown> | undefined;
  if (meta) doc.meta = structuredClone(meta);
  return { value: doc, warnings };
}

/** Resolve bare type names of a document to the qualified names of /object_info, and fill in
 *  missing widget inputs with their defaults (a document from elsewhere may leave them out). */
export function normaliseDocument(doc: WorkflowDocument, defs: NodeDefs): WorkflowDocument {
  return graphToDocument(documentToGraph(doc, defs).value, defs).value;
}
