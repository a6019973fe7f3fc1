/**
 * Image helpers: PNG encode/decode (fast-png) with ComfyUI-style tEXt chunks and IMAGE ↔ RGB bytes; the
 * sampler's step previews are written by zlibPng (small ones stored, larger ones deflated by node's zlib).
 * Text on images is text.ts (a real font through resvg).
 */
import { crc32, deflateSync } from 'node:zlib';
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

/** A PNG chunk (length, type, data, CRC-32 of type and data). */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  putChunk(out, 0, type, data);
  return out;
}

/** Writes a PNG chunk (as pngChunk makes it) at `o` of `out`; returns the offset after it. */
function putChunk(out: Uint8Array, o: number, type: string, data: Uint8Array): number {
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint32(o, data.length);
  for (let i = 0; i < 4; i++) out[o + 4 + i] = type.charCodeAt(i);
  out.set(data, o + 8);
  v.setUint32(o + 8 + data.length, crc32(out.subarray(o + 4, o + 8 + data.length)));
  return o + 12 + data.length;
}

const PNG_SIGNATURE = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);
/** A 64×64 preview is 4–16 KB of rows, each row repeated (the enlargement): a 4 KB window and a smaller
 *  hash table than zlib's defaults (32 KB, memLevel 8) find the same matches, and set up ≈ 40 KB of
 *  state per preview instead of ≈ 260 KB. With the caches cooled as a session call cools them: 20 vs
 *  75 µs (palette), 146 vs 213 µs (RGBA), the same sizes within 1 %. */
const PREVIEW_DEFLATE = { level: 3, windowBits: 12, memLevel: 5 };

/**
 * Rows up to this many bytes are stored, not deflated. The final step's preview is made while the run's
 * result waits (runtime/index.ts), on a thread idle for the whole run, where a call to node's deflate
 * (its stream object, its C++ state, its buffers) is dear: bench/pipeline.bench.ts's "events that came
 * with the result" column, 3 alternating runs (3 Dec 2026, 2-core AMD EPYC, load ≈ 1), deflated vs
 * stored: demo models (8×8 latents, palette) 0.35–0.46 vs 0.16–0.19 ms a run, fixture UNets (32×32,
 * RGBA) 0.74–1.10 vs 0.37–0.56 ms. Stored, a 64×64 palette preview is ≈ 4 KB instead of ≈ 0.4 KB, an
 * RGBA one ≈ 16 KB: at most 10 previews a second per job (loop-events.ts), well within a websocket's
 * means. Larger previews (latents over 64 px a side) are deflated.
 */
export const STORED_PREVIEW_BYTES = 20 * 1024;

/** A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4): no compression, no state. */
export function zlibStored(raw: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const out = new Uint8Array(2 + raw.length + 5 * blocks + 4);
  out[0] = 0x78; // deflate, 32 KB window
  out[1] = 0x01; // check bits: (0x78 · 256 + 0x01) % 31 = 0, no dictionary, fastest
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * 65535;
    const len = Math.min(65535, raw.length - start);
    out[o] = b === blocks - 1 ? 1 : 0; // BFINAL, BTYPE 00
    out[o + 1] = len & 255;
    out[o + 2] = len >>> 8;
    out[o + 3] = ~len & 255;
    out[o + 4] = (~len >>> 8) & 255;
    out.set(raw.subarray(start, start + len), o + 5);
    o += 5 + len;
  }
  // Adler-32, reduced every 5552 bytes (the most that cannot overflow 2^32 before the modulo)
  let a = 1;
  let s2 = 0;
  for (let i = 0; i < raw.length; ) {
    const end = Math.min(raw.length, i + 5552);
    for (; i < end; i++) {
      a += raw[i];
      s2 += a;
    }
    a %= 65521;
    s2 %= 65521;
  }
  out[o] = s2 >>> 8;
  out[o + 1] = s2 & 255;
  out[o + 2] = a >>> 8;
  out[o + 3] = a & 255;
  return out;
}

/** An 8-bit PNG of `pixels` (colour type 3: one palette index a pixel, with `palette` as RGB triples;
 *  6: RGBA), rows unfiltered, deflated by node's zlib (stored up to STORED_PREVIEW_BYTES). The previews'
 *  encoder: the last step's preview is made while the run's result waits (runtime/index.ts). On the
 *  2-core development machine under load, the preview of a 32×32 latent (RGBA, 64×64) took a median
 *  131 µs through zlib vs 342 µs through fast-png's JavaScript deflate (mean 0.69 vs 1.75 ms: its
 *  per-call setup feeds the GC); an 8×8 latent's (palette) ≈ 75 µs either way. */
function zlibPng(pixels: Uint8Array, width: number, height: number, palette: number[][] | null): Uint8Array {
  const row = width * (palette ? 1 : 4);
  const raw = new Uint8Array(height * (row + 1)); // each row: filter type 0 (none), then its bytes
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, palette ? 3 : 6, 0, 0, 0], 8); // bit depth, colour type, deflate, adaptive filters, no interlace
  const idat = raw.length <= STORED_PREVIEW_BYTES ? zlibStored(raw) : deflateSync(raw, PREVIEW_DEFLATE);
  const plte = palette ? Uint8Array.from(palette.flat()) : null;
  // one buffer, each chunk written in place (no per-chunk buffers to concatenate)
  const out = new Uint8Array(8 + 25 + (plte ? 12 + plte.length : 0) + 12 + idat.length + 12);
  out.set(PNG_SIGNATURE);
  let o = putChunk(out, 8, 'IHDR', ihdr);
  if (plte) o = putChunk(out, o, 'PLTE', plte);
  o = putChunk(out, o, 'IDAT', idat);
  putChunk(out, o, 'IEND', new Uint8Array(0));
  return out;
}

/** A step preview as PNG: the small latent-preview RGBA enlarged (nearest) to at least 64 px. Made on
 *  the sampling run's coordinating thread (runtime/index.ts), not in the step loop's. A strip of at
 *  most 256 colours, all opaque (an image latent's up to 16×16 always), is written with a palette: one
 *  byte per pixel, fewer bytes to deflate and to send, the same colours once decoded. */
export function previewPng(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const k = Math.max(1, Math.ceil(64 / Math.max(w, h)));
  const px = rgba.byteOffset % 4 === 0 ? rgba : rgba.slice();
  const src = new Uint32Array(px.buffer, px.byteOffset, w * h);
  // colour → palette index, and the first pixel of each colour
  const index = new Map<number, number>();
  const first: number[] = [];
  const idx = new Uint8Array(w * h);
  for (let i = 0; i < src.length && first.length <= 256; i++) {
    let j = index.get(src[i]);
    if (j === undefined) {
      j = first.length;
      index.set(src[i], j);
      first.push(i);
    }
    idx[i] = j;
  }
  // more colours, or translucent ones: RGBA
  if (first.length > 256 || !first.every((i) => px[i * 4 + 3] === 255)) {
    const big = enlarge(src, w, h, k, Uint32Array);
    return zlibPng(new Uint8Array(big.buffer, big.byteOffset, big.byteLength), w * k, h * k, null);
  }
  const palette = first.map((i) => [px[i * 4], px[i * 4 + 1], px[i * 4 + 2]]);
  return zlibPng(enlarge(idx, w, h, k, Uint8Array), w * k, h * k, palette);
}

/** Nearest enlargement by k of a w×h image of one array element per pixel. */
function enlarge<A extends Uint8Array | Uint32Array>(
  src: A,
  w: number,
  h: number,
  k: number,
  Type: new (n: number) => A,
): A {
  if (k === 1) return src;
  const W = w * k;
  const out = new Type(W * h * k);
  for (let y = 0; y < h; y++) {
    const row = y * k * W;
    for (let x = 0; x < w; x++) out.fill(src[y * w + x], row + x * k, row + (x + 1) * k);
    for (let r = 1; r < k; r++) out.copyWithin(row + r * W, row, row + W);
  }
  return out;
}
