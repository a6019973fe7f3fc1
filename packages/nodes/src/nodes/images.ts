/** Images: load (from the input dir), save PNG with the workflow embedded (ComfyUI-style tEXt chunks
 *  "prompt" and "workflow"), preview (temp dir), and a labelled side-by-side compare/grid. */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, sep } from 'node:path';
import {
  checkImageSize,
  defineNode,
  type HostInfo,
  type NodeContext,
  type Registry,
  readImageHeader,
  toComfyPrompt,
} from '@priorgraph/core';
import { maxImagePixels, shapeOf, tensorBytes } from '../facts.ts';
import { decodePng, encodePng, imageItemToRgb, latin1Json } from '../image-utils.ts';
import { confinePath, isInside } from '../models/paths.ts';
import { drawLabels, textWidth } from '../text.ts';
import type { ImageValue } from '../types.ts';
import { confineValidator, forInput } from './common.ts';

/** The first 64 KiB of a file (enough for any image header). */
function readHead(file: string): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Saving holds the image and an 8-bit copy of one batch item. */
function saveInfer(_inputs: unknown, linked: { images?: unknown }) {
  const s = shapeOf(linked.images);
  return s ? { bytes: tensorBytes(s) + s[1] * s[2] * s[3] } : undefined;
}

let exportRegistry: Registry | null = null;
/** The registry used to write the ComfyUI API "prompt" chunk (set by the plugin entry). */
export function setPromptRegistry(r: Registry): void {
  exportRegistry = r;
}

export function asImage(v: unknown, input: string): ImageValue {
  const img = v as ImageValue | null;
  if (!img || !(img.data instanceof Float32Array) || img.shape?.length !== 4)
    throw new Error(`input "${input}": not an IMAGE`);
  return img;
}

const listInputImages = (h: HostInfo): string[] => {
  if (!existsSync(h.inputDir)) return [];
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of readdirSync(d)) {
      const f = join(d, e);
      const st = statSync(f);
      if (st.isDirectory() && depth < 3) walk(f, depth + 1);
      else if (/\.png$/i.test(e)) out.push(relative(h.inputDir, f).split(sep).join('/'));
    }
  };
  walk(h.inputDir, 0);
  return out.sort();
};

export const LoadImage = defineNode({
  type: 'LoadImage',
  version: 1,
  category: 'image',
  displayName: 'Load Image',
  description: 'Loads a PNG from the input folder.',
  inputs: { image: { kind: 'combo', options: listInputImages, upload: 'image' } },
  outputs: [{ name: 'IMAGE', type: 'IMAGE' }],
  validate: confineValidator('image', 'image', (h) => [h.inputDir]),
  infer({ image }, _linked, host) {
    const file = confinePath(String(image), [host.inputDir], 'image', 'image');
    const h = readImageHeader(readHead(file));
    const problems: Array<{ input: string; message: string }> = [];
    try {
      checkImageSize(h, maxImagePixels(host));
    } catch (e) {
      problems.push({ input: 'image', message: `${image}: ${(e as Error).message}` });
      return { problems };
    }
    const shape: [number, number, number, number] = [1, h.height, h.width, 3];
    // the 8-bit RGBA decode and the float image
    return { outputs: { IMAGE: { shape } }, bytes: h.width * h.height * 4 + tensorBytes(shape), problems };
  },
  execute({ image }, ctx) {
    return forInput('image', () => {
      const file = confinePath(image, [ctx.host.inputDir], 'image', 'image');
      let png: ReturnType<typeof decodePng>;
      const bytes = readFileSync(file);
      try {
        // The declared size is checked before the decoder allocates anything.
        checkImageSize(readImageHeader(bytes), maxImagePixels(ctx.host));
      } catch (e) {
        throw new Error(`${file}: ${(e as Error).message}`);
      }
      try {
        png = decodePng(bytes);
      } catch (e) {
        throw new Error(`${file}: not a readable PNG (${(e as Error).message})`);
      }
      const out: ImageValue = { data: png.data, shape: [1, png.height, png.width, 3] };
      return { IMAGE: out };
    });
  },
});

function safePrefix(prefix: string): { sub: string; base: string } {
  const clean = prefix
    .replace(/\\/g, '/')
    .split('/')
    .filter((p) => p && p !== '.' && p !== '..')
    .map((p) => p.replace(/[^A-Za-z0-9._ -]/g, '_'));
  const base = clean.pop() || 'priorgraph';
  return { sub: clean.join('/'), base };
}

/** Write PNGs as `<prefix>_<counter>_.png` (counter after the highest existing one; never overwrites). */
export function saveImages(
  img: ImageValue,
  root: string,
  prefix: string,
  text: Record<string, string> | undefined,
): Array<{ filename: string; subfolder: string }> {
  const [b, h, w] = img.shape;
  const out: Array<{ filename: string; subfolder: string }> = [];
  for (let i = 0; i < b; i++)
    out.push(saveNumbered(root, prefix, 'png', encodePng(imageItemToRgb(img, i), w, h, 3, text)));
  return out;
}

/**
 * Write one file as `<prefix>_<counter>_.<ext>` under `root` (the prefix may name subfolders; counter
 * after the highest existing one of that extension; never overwrites). Written whole under a hidden
 * temporary name, then linked to its final name (which fails rather than overwrite): a full disk
 * leaves no 0-byte or truncated file behind.
 */
export function saveNumbered(
  root: string,
  prefix: string,
  ext: string,
  bytes: Uint8Array,
): { filename: string; subfolder: string } {
  const { sub, base } = safePrefix(prefix);
  const dir = join(root, sub);
  if (!isInside(dir, root)) throw new Error(`filename_prefix "${prefix}" leaves the output folder`);
  mkdirSync(dir, { recursive: true });
  const re = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(\\d+)_\\.${ext}$`);
  let counter = 0;
  for (const f of readdirSync(dir)) {
    const m = re.exec(f);
    if (m) counter = Math.max(counter, Number(m[1]));
  }
  const tmp = join(dir, `.${base}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' });
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`${tmp}: ${(e as Error).message}`);
  }
  try {
    for (;;) {
      counter++;
      const filename = `${base}_${String(counter).padStart(5, '0')}_.${ext}`;
      try {
        linkSync(tmp, join(dir, filename));
        return { filename, subfolder: sub };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new Error(`${join(dir, filename)}: ${(e as Error).message}`);
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The workflow to embed in a saved file: the priorgraph document and the ComfyUI API prompt, as
 *  Latin-1-safe JSON. */
export function workflowText(ctx: NodeContext): Record<string, string> {
  const text: Record<string, string> = { workflow: latin1Json(ctx.document) };
  try {
    text.prompt = latin1Json(toComfyPrompt(ctx.document, exportRegistry ?? undefined));
  } catch (e) {
    ctx.log.warn(`SaveImage: the ComfyUI "prompt" chunk was left out: ${(e as Error).message}`);
  }
  return text;
}

export const SaveImage = defineNode({
  type: 'SaveImage',
  version: 1,
  category: 'image',
  displayName: 'Save Image',
  description:
    'Saves PNGs into the output folder with the workflow embedded (tEXt chunks "prompt" = ComfyUI API JSON, "workflow" = the priorgraph document).',
  inputs: {
    images: { kind: 'socket', type: 'IMAGE' },
    filename_prefix: { kind: 'string', default: 'priorgraph' },
  },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  infer: saveInfer,
  execute({ images, filename_prefix }, ctx) {
    const img = asImage(images, 'images');
    const files = forInput('filename_prefix', () =>
      saveImages(img, ctx.host.outputDir, filename_prefix, workflowText(ctx)),
    );
    return files.then((fs) => {
      ctx.ui({ images: fs.map((f) => ({ ...f, type: 'output' })) });
      return {};
    });
  },
});

export const PreviewImage = defineNode({
  type: 'PreviewImage',
  version: 1,
  category: 'image',
  displayName: 'Preview Image',
  description: 'Writes PNGs into the temp folder for the editor to show.',
  inputs: { images: { kind: 'socket', type: 'IMAGE' } },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  infer: saveInfer,
  execute({ images }, ctx) {
    const img = asImage(images, 'images');
    const prefix = `preview_${randomBytes(4).toString('hex')}`;
    const files = saveImages(img, ctx.host.tempDir, prefix, undefined);
    ctx.ui({ images: files.map((f) => ({ ...f, type: 'temp' })) });
    return {};
  },
});

/** Label size in pixels; the strip above the images holds its capitals and descenders. */
const LABEL_SIZE = 12;
const LABEL_STRIP = 16;

/** Lay images side by side (columns = inputs, rows = batch items) with a label strip above each column. */
export async function compareGrid(columns: ImageValue[], labels: string[], gap = 4): Promise<ImageValue> {
  const cellH = Math.max(...columns.map((c) => c.shape[1]));
  const widths = labels.map((l) => Math.ceil(textWidth(l, LABEL_SIZE)) + 4);
  const cellW = Math.max(...columns.map((c) => c.shape[2]), ...widths);
  const rows = Math.max(...columns.map((c) => c.shape[0]));
  const W = columns.length * cellW + (columns.length + 1) * gap;
  const H = LABEL_STRIP + rows * cellH + (rows + 1) * gap;
  const rgb = new Uint8Array(W * H * 3).fill(255);
  const x0 = (ci: number) => gap + ci * (cellW + gap);
  columns.forEach((col, ci) => {
    const [b, h, w] = col.shape;
    for (let r = 0; r < b; r++) {
      const item = imageItemToRgb(col, r);
      const y0 = LABEL_STRIP + gap + r * (cellH + gap);
      for (let y = 0; y < h; y++) rgb.set(item.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * W + x0(ci)) * 3);
    }
  });
  const text = columns.map((_, ci) => ({ text: labels[ci] ?? '', x: x0(ci) + 2, y: 3, size: LABEL_SIZE }));
  const out = await drawLabels(rgb, W, H, text);
  return { data: Float32Array.from(out, (v) => v / 255), shape: [1, H, W, 3] };
}

export const ImageCompare = defineNode({
  type: 'ImageCompare',
  version: 1,
  category: 'image',
  displayName: 'Image Compare / Grid',
  description: 'Lays images side by side with text labels (e.g. CFG vs prior swap); each batch item is a row.',
  inputs: {
    image_a: { kind: 'socket', type: 'IMAGE' },
    label_a: { kind: 'string', default: 'CFG' },
    image_b: { kind: 'socket', type: 'IMAGE', optional: true },
    label_b: { kind: 'string', default: 'PRIOR SWAP' },
    image_c: { kind: 'socket', type: 'IMAGE', optional: true },
    label_c: { kind: 'string', default: '' },
    image_d: { kind: 'socket', type: 'IMAGE', optional: true },
    label_d: { kind: 'string', default: '' },
  },
  outputs: [{ name: 'IMAGE', type: 'IMAGE' }],
  execute(i) {
    const cols: ImageValue[] = [asImage(i.image_a, 'image_a')];
    const labels = [i.label_a];
    for (const [k, l] of [
      ['image_b', i.label_b],
      ['image_c', i.label_c],
      ['image_d', i.label_d],
    ] as const) {
      const v = i[k];
      if (v !== undefined && v !== null) {
        cols.push(asImage(v, k));
        labels.push(l);
      }
    }
    return compareGrid(cols, labels).then((IMAGE) => ({ IMAGE }));
  },
});
