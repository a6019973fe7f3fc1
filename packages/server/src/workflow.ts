/**
 * Accepting both workflow formats everywhere: a priorgraph document (`format: "priorgraph"`) or a
 * ComfyUI API-format prompt (`{id: {class_type, inputs}}`). Returns the document to execute and the
 * API-format prompt to show in /queue and /history.
 */
import {
  type ComfyPrompt,
  fromComfyPrompt,
  parseDocument,
  type Registry,
  toComfyPrompt,
  type WorkflowDocument,
} from '@priorgraph/core';

export type Normalized =
  | { ok: true; doc: WorkflowDocument; prompt: Record<string, unknown>; warnings: string[] }
  | { ok: false; type: string; message: string };

export function isPriorgraphDocument(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === 'priorgraph';
}

export function normalizeWorkflow(value: unknown, registry: Registry): Normalized {
  try {
    if (isPriorgraphDocument(value)) {
      const { doc, warnings } = parseDocument(value);
      let prompt: Record<string, unknown>;
      try {
        prompt = toComfyPrompt(doc, registry) as Record<string, unknown>;
      } catch {
        prompt = doc as unknown as Record<string, unknown>;
      }
      return { ok: true, doc, prompt, warnings };
    }
    const doc = fromComfyPrompt(value, registry);
    return { ok: true, doc, prompt: value as ComfyPrompt as Record<string, unknown>, warnings: [] };
  } catch (e) {
    return { ok: false, type: 'invalid_prompt', message: e instanceof Error ? e.message : String(e) };
  }
}

/** Applies `--set node.input=value` style overrides to a document (value: JSON if it parses, else a string). */
export function applyOverrides(doc: WorkflowDocument, sets: readonly string[]): WorkflowDocument {
  const out = structuredClone(doc);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq < 0) throw new Error(`--set ${s}: expected node.input=value`);
    const key = s.slice(0, eq);
    const raw = s.slice(eq + 1);
    const dot = key.lastIndexOf('.');
    if (dot <= 0 || dot === key.length - 1) throw new Error(`--set ${s}: expected node.input=value`);
    const nodeId = key.slice(0, dot);
    const input = key.slice(dot + 1);
    const node = out.nodes[nodeId];
    if (!node) {
      throw new Error(`--set ${s}: no node "${nodeId}" in the workflow (nodes: ${Object.keys(out.nodes).join(', ')})`);
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    (node.inputs as Record<string, unknown>)[input] = value;
  }
  return out;
}
