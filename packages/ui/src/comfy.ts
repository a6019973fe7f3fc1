/** Import of ComfyUI API-format prompts (`{id: {class_type, inputs}}`) into a priorgraph document, done
 *  in the editor from the /object_info output order (a link `[srcId, outputIndex]` becomes a link by
 *  output name). Nodes are laid out in columns by their depth in the graph. */
import { type NodeDefs, resolveType } from './nodedefs.ts';
import type { DocNode, InputValue, WorkflowDocument } from './types.ts';

export interface ComfyPromptNode {
  class_type: string;
  inputs?: Record<string, unknown>;
  _meta?: { title?: string };
}

export function isComfyPrompt(v: unknown): v is Record<string, ComfyPromptNode> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const values = Object.values(v);
  return (
    values.length > 0 &&
    values.every((n) => typeof n === 'object' && n !== null && typeof (n as ComfyPromptNode).class_type === 'string')
  );
}

function isComfyLink(v: unknown): v is [string, number] {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    (typeof v[0] === 'string' || typeof v[0] === 'number') &&
    Number.isInteger(v[1])
  );
}

export function comfyPromptToDocument(
  prompt: Record<string, ComfyPromptNode>,
  defs: NodeDefs,
): { doc: WorkflowDocument; warnings: string[] } {
  const warnings: string[] = [];
  const nodes: Record<string, DocNode> = {};
  for (const [id, cn] of Object.entries(prompt)) {
    const def = resolveType(defs, cn.class_type);
    if (!def) warnings.push(`node ${id}: unknown node type "${cn.class_type}"`);
    const inputs: Record<string, InputValue> = {};
    for (const [name, v] of Object.entries(cn.inputs ?? {})) {
      if (isComfyLink(v)) {
        const src = prompt[String(v[0])];
        const srcDef = src ? resolveType(defs, src.class_type) : undefined;
        const out = srcDef?.outputs[v[1]];
        if (!src) {
          warnings.push(`node ${id}: input "${name}" links to missing node "${v[0]}"`);
        } else if (!out) {
          warnings.push(`node ${id}: input "${name}" links to output ${v[1]} of node ${v[0]}, which it does not have`);
        } else inputs[name] = { node: String(v[0]), output: out.name };
      } else if (v && typeof v === 'object' && !Array.isArray(v) && '__value__' in v) {
        inputs[name] = (v as { __value__: unknown[] }).__value__;
      } else {
        inputs[name] = v as InputValue;
      }
    }
    const dn: DocNode = { type: def?.type ?? cn.class_type, inputs };
    if (def) dn.version = def.version;
    if (cn._meta?.title && cn._meta.title !== def?.displayName) dn.title = cn._meta.title;
    nodes[id] = dn;
  }
  layoutColumns(nodes);
  return { doc: { format: 'priorgraph', version: 1, nodes }, warnings };
}

/** Place nodes in columns by the length of the longest link chain that feeds them. */
export function layoutColumns(nodes: Record<string, DocNode>): void {
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle: validation reports it; just lay it out
    visiting.add(id);
    let d = 0;
    for (const v of Object.values(nodes[id]?.inputs ?? {})) {
      if (v && typeof v === 'object' && !Array.isArray(v) && 'node' in v && nodes[v.node])
        d = Math.max(d, depthOf(v.node) + 1);
    }
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  for (const id of Object.keys(nodes)) {
    const d = depthOf(id);
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    nodes[id].ui = { ...nodes[id].ui, pos: [40 + d * 340, 40 + row * 260] };
  }
}
