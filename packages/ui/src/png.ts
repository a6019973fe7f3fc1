/**
 * Getting a workflow back from a saved output: the text chunks of a PNG or APNG (tEXt, and uncompressed
 * iTXt), the EXIF of an animated WebP ("workflow:…" / "prompt:…" values, as ComfyUI writes them), the
 * "comment" metadata of an MP4 (the workflow document, as SaveVideo writes it).
 */
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

const latin1 = new TextDecoder('latin1');

/** "key:value" strings of a WebP's EXIF chunk (ComfyUI's SaveAnimatedWEBP writes workflow: and prompt:). */
export function readWebpText(bytes: Uint8Array): Record<string, string> {
  const isWebp = latin1.decode(bytes.subarray(0, 4)) === 'RIFF' && latin1.decode(bytes.subarray(8, 12)) === 'WEBP';
  if (!isWebp) throw new Error('not a WebP file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, string> = {};
  for (let p = 12; p + 8 <= bytes.length; ) {
    const type = latin1.decode(bytes.subarray(p, p + 4));
    const len = view.getUint32(p + 4, true);
    if (type === 'EXIF') {
      // the IFD's ASCII values, NUL-terminated: take those that start with a key and a colon
      const exif = latin1.decode(bytes.subarray(p + 8, p + 8 + len));
      for (const m of exif.matchAll(/(workflow|prompt):([^\0]*)/g)) out[m[1]] ??= m[2];
    }
    p += 8 + len + (len & 1);
  }
  return out;
}

/** The "comment" of an MP4 (moov/udta/meta/ilst ©cmt data), as ffmpeg writes `-metadata comment=`. */
export function readMp4Comment(bytes: Uint8Array): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const walk = (start: number, end: number): string | null => {
    for (let p = start; p + 8 <= end; ) {
      const size = view.getUint32(p);
      const type = latin1.decode(bytes.subarray(p + 4, p + 8));
      const stop = size >= 8 ? Math.min(p + size, end) : end;
      if (type === '\xa9cmt') {
        // its 'data' box: size, 'data', type (4), locale (4), then UTF-8 text
        const dsize = view.getUint32(p + 8);
        if (latin1.decode(bytes.subarray(p + 12, p + 16)) === 'data')
          return new TextDecoder('utf-8').decode(bytes.subarray(p + 24, p + 8 + dsize));
      }
      if (type === 'moov' || type === 'udta' || type === 'ilst') {
        const r = walk(p + 8, stop);
        if (r !== null) return r;
      } else if (type === 'meta') {
        const r = walk(p + 12, stop); // a full box: version and flags first
        if (r !== null) return r;
      }
      p = stop;
    }
    return null;
  };
  return walk(0, bytes.length);
}

/** What kind of saved output the bytes are (by their signature), or null. */
export function outputKind(bytes: Uint8Array): 'png' | 'webp' | 'mp4' | null {
  if (SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (latin1.decode(bytes.subarray(0, 4)) === 'RIFF' && latin1.decode(bytes.subarray(8, 12)) === 'WEBP') return 'webp';
  if (latin1.decode(bytes.subarray(4, 8)) === 'ftyp') return 'mp4';
  return null;
}

/** The workflow a saved PNG / APNG, animated WebP or MP4 carries (see workflowFromPng). */
export function workflowFromOutput(bytes: Uint8Array, defs: NodeDefs): PngWorkflow {
  const kind = outputKind(bytes);
  if (kind === 'webp') return workflowFromText(readWebpText(bytes), defs, 'WebP');
  if (kind === 'mp4') {
    const comment = readMp4Comment(bytes);
    return workflowFromText(comment ? { workflow: comment } : {}, defs, 'video');
  }
  return workflowFromPng(bytes, defs);
}

/** The workflow a PNG carries: the `workflow` chunk when it is a priorgraph document, else the
 *  ComfyUI API `prompt` chunk converted. */
export function workflowFromPng(bytes: Uint8Array, defs: NodeDefs): PngWorkflow {
  return workflowFromText(readPngText(bytes), defs, 'PNG');
}

function workflowFromText(text: Record<string, string>, defs: NodeDefs, what: string): PngWorkflow {
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
      throw new Error(`the ${what}'s "prompt" text is not JSON: ${(err as Error).message}`);
    }
    if (isWorkflowDocument(parsed)) return { doc: parsed, source: 'prompt', warnings: [] };
    if (isComfyPrompt(parsed)) {
      const { doc, warnings } = comfyPromptToDocument(parsed, defs);
      return { doc, source: 'prompt', warnings };
    }
  }
  throw new Error(`this ${what} carries no priorgraph workflow (no "workflow" or "prompt" text)`);
}
