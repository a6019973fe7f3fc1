/**
 * Image helpers: PNG encode/decode (fast-png) with ComfyUI-style tEXt chunks, IMAGE ↔ RGB bytes, and a
 * tiny built-in 3×5 bitmap font for labels.
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

// --- 3×5 bitmap font ------------------------------------------------------------------------------------
const GLYPHS: Record<string, string> = {
  A: '010101111101101',
  B: '110101110101110',
  C: '011100100100011',
  D: '110101101101110',
  E: '111100110100111',
  F: '111100110100100',
  G: '011100101101011',
  H: '101101111101101',
  I: '111010010010111',
  J: '001001001101010',
  K: '101101110101101',
  L: '100100100100111',
  M: '101111111101101',
  N: '110101101101101',
  O: '010101101101010',
  P: '110101110100100',
  Q: '010101101110011',
  R: '110101110101101',
  S: '011100010001110',
  T: '111010010010010',
  U: '101101101101111',
  V: '101101101101010',
  W: '101101111111101',
  X: '101101010101101',
  Y: '101101010010010',
  Z: '111001010100111',
  '0': '111101101101111',
  '1': '010110010010111',
  '2': '110001010100111',
  '3': '110001010001110',
  '4': '101101111001001',
  '5': '111100110001110',
  '6': '011100111101111',
  '7': '111001010010010',
  '8': '111101111101111',
  '9': '111101111001110',
  ' ': '000000000000000',
  '-': '000000111000000',
  '.': '000000000000010',
  ':': '000010000010000',
  _: '000000000000111',
  '=': '000111000111000',
  '(': '001010010010001',
  ')': '100010010010100',
  '/': '001001010100100',
  '+': '000010111010000',
  '%': '101001010100101',
  ',': '000000000010100',
  '*': '000101010101000',
  '?': '110001010000010',
};

/** Draw text into an RGB buffer (width w) at (x, y) with integer scale. Unknown characters draw as '?'. */
export function drawText(
  rgb: Uint8Array,
  w: number,
  h: number,
  text: string,
  x: number,
  y: number,
  scale: number,
  color: [number, number, number],
): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const g = GLYPHS[ch] ?? GLYPHS['?'];
    for (let r = 0; r < 5; r++) {
      for (let c = 0; c < 3; c++) {
        if (g[r * 3 + c] !== '1') continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = cx + c * scale + dx;
            const py = y + r * scale + dy;
            if (px < 0 || py < 0 || px >= w || py >= h) continue;
            rgb.set(color, (py * w + px) * 3);
          }
        }
      }
    }
    cx += 4 * scale;
  }
}

export const textWidth = (text: string, scale: number): number => Math.max(0, text.length * 4 * scale - scale);

/** A step preview as PNG: the small latent-preview RGBA enlarged (nearest) to at least 64 px. Runs in the
 *  sampling worker, so the host's event loop never pays for it. */
export function previewPng(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const k = Math.max(1, Math.ceil(64 / Math.max(w, h)));
  if (k === 1) return encodePng(rgba, w, h, 4);
  const W = w * k;
  const out = new Uint8Array(W * h * k * 4);
  for (let y = 0; y < h * k; y++) {
    for (let x = 0; x < W; x++) {
      const src = (Math.floor(y / k) * w + Math.floor(x / k)) * 4;
      out.set(rgba.subarray(src, src + 4), (y * W + x) * 4);
    }
  }
  return encodePng(out, W, h * k, 4);
}
