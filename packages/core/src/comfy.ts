/**
 * Import and export of ComfyUI's API ("prompt") format:
 * `{ "<id>": { class_type, inputs: { name: literal | ["<srcId>", outputIndex] }, _meta?: { title } } }`.
 *
 * Links carry output INDICES there and output NAMES here; the registry's output order maps between
 * them. A link to an output of an unknown node type (or an index past its outputs) is kept as the
 * output name `#<index>` and restored on export. List literals are wrapped as `{"__value__": [...]}`
 * there and are plain arrays here. Node type version and mode, which the format lacks, travel in
 * `_meta.priorgraph` (ComfyUI ignores unknown `_meta` keys).
 */
import type { OutputSpec } from './api.js';
import type { Registry } from './registry.js';
import { CURRENT_DOCUMENT_VERSION, isLink, type WorkflowDocument, type WorkflowNode } from './schema.js';

export interface ComfyPromptNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string; priorgraph?: { version?: number; mode?: 'muted' | 'bypass' }; [k: string]: unknown };
}
export type ComfyPrompt = Record<string, ComfyPromptNode>;

export class ComfyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ComfyFormatError';
  }
}

/** A ComfyUI link: `["<id>", <integer ≥ 0>]`. */
export function isComfyLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isInteger(v[1]) && v[1] >= 0;
}

function outputsOf(registry: Registry | undefined, type: string): readonly OutputSpec[] | undefined {
  if (!registry) return undefined;
  const r = registry.resolve(type);
  return r.ok ? (r.node.def.outputs as readonly OutputSpec[]) : undefined;
}

function importValue(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '__value__' && Array.isArray(o.__value__)) return o.__value__;
  }
  return v;
}

/**
 * Converts a ComfyUI API prompt into a workflow document. Unknown class types are kept as they are
 * (validation reports them); known bare names are stored under their qualified name. Throws
 * `ComfyFormatError` when the value is not a prompt at all (not an object of `{class_type, inputs}`).
 */
export function fromComfyPrompt(prompt: unknown, registry?: Registry): WorkflowDocument {
  if (typeof prompt !== 'object' || prompt === null || Array.isArray(prompt)) {
    throw new ComfyFormatError('a ComfyUI prompt must be an object of {id: {class_type, inputs}}');
  }
  const entries = Object.entries(prompt as Record<string, unknown>);
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, raw] of entries) {
    if (typeof raw !== 'object' || raw === null || typeof (raw as ComfyPromptNode).class_type !== 'string') {
      throw new ComfyFormatError(`prompt node "${id}" has no class_type`);
    }
    const node = raw as ComfyPromptNode;
    if (node.inputs !== undefined && (typeof node.inputs !== 'object' || node.inputs === null)) {
      throw new ComfyFormatError(`prompt node "${id}": inputs must be an object`);
    }
    let type = node.class_type;
    let version = 1;
    const resolved = registry?.resolve(type);
    if (resolved?.ok) {
      type = resolved.node.qualifiedName;
      version = resolved.node.def.version;
    }
    const pg = node._meta?.priorgraph;
    if (pg && Number.isInteger(pg.version) && (pg.version as number) >= 1) version = pg.version as number;
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(node.inputs ?? {})) {
      if (isComfyLink(value)) {
        const [src, index] = value;
        const srcNode = (prompt as Record<string, ComfyPromptNode | undefined>)[src];
        const outs =
          srcNode && typeof srcNode.class_type === 'string' ? outputsOf(registry, srcNode.class_type) : undefined;
        const outName = outs && index < outs.length ? outs[index].name : `#${index}`;
        inputs[name] = { node: src, output: outName };
      } else {
        inputs[name] = importValue(value);
      }
    }
    const out: WorkflowNode = { type, version, mode: 'normal', inputs: inputs as WorkflowNode['inputs'] };
    if (typeof node._meta?.title === 'string') out.title = node._meta.title;
    if (pg?.mode === 'muted' || pg?.mode === 'bypass') out.mode = pg.mode;
    nodes[id] = out;
  }
  return { format: 'priorgraph', version: CURRENT_DOCUMENT_VERSION, nodes };
}

/**
 * Converts a workflow document into a ComfyUI API prompt. Links become `[id, index]` through the
 * registry's output order (`#<index>` names are restored as they are); arrays become `{__value__}`.
 * Throws `ComfyFormatError` naming the node and input when a link names an output that the source
 * node's type does not have.
 */
export function toComfyPrompt(doc: WorkflowDocument, registry?: Registry): ComfyPrompt {
  const prompt: ComfyPrompt = {};
  for (const [id, node] of Object.entries(doc.nodes)) {
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(node.inputs ?? {})) {
      if (isLink(value)) {
        const m = /^#(\d+)$/.exec(value.output);
        if (m) {
          inputs[name] = [value.node, Number(m[1])];
          continue;
        }
        const src = doc.nodes[value.node];
        const outs = src ? outputsOf(registry, src.type) : undefined;
        const index = outs ? outs.findIndex((o) => o.name === value.output) : -1;
        if (index < 0) {
          throw new ComfyFormatError(
            `node "${id}" input "${name}": cannot export the link to output "${value.output}" of node "${value.node}"${
              src ? ` (${src.type})` : ' (missing)'
            }: the output index is unknown`,
          );
        }
        inputs[name] = [value.node, index];
      } else if (Array.isArray(value)) {
        inputs[name] = { __value__: value };
      } else {
        inputs[name] = value;
      }
    }
    const entry: ComfyPromptNode = { class_type: node.type, inputs };
    const meta: NonNullable<ComfyPromptNode['_meta']> = {};
    if (node.title !== undefined) meta.title = node.title;
    const known = registry?.resolve(node.type);
    const registeredVersion = known?.ok ? known.node.def.version : 1;
    const pg: { version?: number; mode?: 'muted' | 'bypass' } = {};
    if ((node.version ?? 1) !== registeredVersion) pg.version = node.version;
    if (node.mode === 'muted' || node.mode === 'bypass') pg.mode = node.mode;
    if (Object.keys(pg).length > 0) meta.priorgraph = pg;
    if (Object.keys(meta).length > 0) entry._meta = meta;
    prompt[id] = entry;
  }
  return prompt;
}
