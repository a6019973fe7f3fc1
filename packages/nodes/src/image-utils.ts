/**
 * Image helpers: PNG encode/decode (fast-png) with ComfyUI-style tEXt chunks and IMAGE ↔ RGB bytes.
 * Text on images is text.ts (a real font through resvg).
 */
import { decode, encode } from 'fast-png';
import type { ImageValue } from './types.ts';

/** tEXt is Latin-1: escape anything else as \uXXXX (still valid JSON). */
export function latin1Json(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function encodePng(
  rgb: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4,
  text?: Record<string, string>,
): Uint8Array {
  return encode({ width, height, data: rgb, channels, depth: 8, text });
}

/** PNG → IMAGE item data (float [h,w,3] in [0,1]) plus its tEXt chunks. */
export function decodePng(bytes: Uint8Array): {
  data: Float32Array;
  width: number;
  height: number;
  text: Record<string, string>;
} {
  const png = decode(bytes);
  const { width, height, channels } = png;
  const src = png.data;
  const max = png.depth === 16 ? 65535 : (1 << png.depth) - 1;
  if (png.palette) throw new Error('indexed-colour PNGs are not supported');
  const out = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const sc = channels >= 3 ? c : 0; // grey → RGB
      out[p * 3 + c] = src[p * channels + sc] / max;
    }
  }
  return { data: out, width, height, text: png.text ?? {} };
}

/** One item of an IMAGE as RGB bytes. */
export function imageItemToRgb(img: ImageValue, b: number): Uint8Array {
  const [, h, w, c] = img.shape;
  const out = new Uint8Array(h * w * 3);
  const off = b * h * w * c;
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = img.data[off + p * c + Math.min(k, c - 1)];
      out[p * 3 + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  return out;
}

/** A step preview as PNG: the small latent-preview RGBA enlarged (nearest) to at least 64 px. Made on
 *  the sampling run's coordinating thread (runtime/index.ts), not in the step loop's. */
export function previewPng(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const k = Math.max(1, Math.ceil(64 / Math.max(w, h)));
  if (k === 1) return encodePng(rgba, w, h, 4);
  // one 32-bit word per RGBA pixel: a row of source pixels, each repeated k times, then that row k times
  const px = rgba.byteOffset % 4 === 0 ? rgba : rgba.slice();
  const src = new Uint32Array(px.buffer, px.byteOffset, w * h);
  const W = w * k;
  const out = new Uint32Array(W * h * k);
  for (let y = 0; y < h; y++) {
    const row = y * k * W;
    for (let x = 0; x < w; x++) out.fill(src[y * w + x], row + x * k, row + (x + 1) * k);
    for (let r = 1; r < k; r++) out.copyWithin(row + r * W, row, row + W);
  }
  return encodePng(new Uint8Array(out.buffer), W, h * k, 4);
}
