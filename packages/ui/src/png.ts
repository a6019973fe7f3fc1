/** Reading the text chunks of a PNG (tEXt, and uncompressed iTXt), and getting a workflow back from them. */
import { comfyPromptToDocument, isComfyPrompt } from './comfy.ts';
import type { NodeDefs } from './nodedefs.ts';
import { isWorkflowDocument, type WorkflowDocument } from './types.ts';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function readPngText(bytes: Uint8Array): Record<string, string> {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  let p = 8;
  while (p + 8 <= bytes.length) {
    const len = view.getUint32(p);
    const type = latin1.decode(bytes.subarray(p + 4, p + 8));
    const start = p + 8;
    const end = start + len;
    if (end + 4 > bytes.length) throw new Error(`PNG chunk ${type} at byte ${p} runs past the end of the file`);
    const data = bytes.subarray(start, end);
    if (type === 'tEXt') {
      const z = data.indexOf(0);
      if (z > 0) out[latin1.decode(data.subarray(0, z))] = latin1.decode(data.subarray(z + 1));
    } else if (type === 'iTXt') {
      const z = data.indexOf(0);
      if (z > 0 && data[z + 1] === 0) {
        const key = latin1.decode(data.subarray(0, z));
        let q = z + 3;
        q = data.indexOf(0, q) + 1; // language tag
        q = data.indexOf(0, q) + 1; // translated keyword
        if (q > 0) out[key] = utf8.decode(data.subarray(q));
      }
    } else if (type === 'IEND') break;
    p = end + 4;
  }
  return out;
}

export interface PngWorkflow {
  doc: WorkflowDocument;
  source: 'workflow' | 'prompt';
  warnings: string[];
}

/** The workflow a PNG carries: the `workflow` chunk when it is a priorgraph document, else the
 *  ComfyUI API `prompt` chunk converted. */
export function workflowFromPng(bytes: Uint8Array, defs: NodeDefs): PngWorkflow {
  const text = readPngText(bytes);
  if (text.workflow) {
    try {
      const parsed = JSON.parse(text.workflow);
      if (isWorkflowDocument(parsed)) return { doc: parsed, source: 'workflow', warnings: [] };
    } catch {
      // fall through to the prompt chunk
    }
  }
  if (text.prompt) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.prompt);
    } catch (err) {
      throw new Error(`the PNG's "prompt" text chunk is not JSON: ${(err as Error).message}`);
    }
    if (isWorkflowDocument(parsed)) return { doc: parsed, source: 'prompt', warnings: [] };
    if (isComfyPrompt(parsed)) {
      const { doc, warnings } = comfyPromptToDocument(parsed, defs);
      return { doc, source: 'prompt', warnings };
    }
  }
  throw new Error('this PNG carries no priorgraph workflow (no "workflow" or "prompt" text chunk)');
}
