/**
 * Image headers: the format and pixel size of a PNG, JPEG or WebP read from its first bytes, without
 * decoding it. Uploads use it to refuse bytes that are not an image; image loaders use it to refuse a
 * declared size over the budget before a decoder allocates the pixels (a 600 KiB PNG may declare
 * 25000×25000, which decodes to gigabytes).
 */

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

/** Default bound on width × height of a decoded image: 64 megapixels (8192 × 8192). */
export const DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192;

export class ImageHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageHeaderError';
  }
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function ascii(b: Uint8Array, at: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && at + i < b.length; i++) s += String.fromCharCode(b[at + i]);
  return s;
}
const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const u24le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

function png(b: Uint8Array): ImageHeader {
  if (b.length < 24 || ascii(b, 12, 4) !== 'IHDR') throw new ImageHeaderError('PNG without an IHDR chunk');
  return { format: 'png', width: u32be(b, 16), height: u32be(b, 20) };
}

function jpeg(b: Uint8Array): ImageHeader {
  // Walk the marker segments up to the first start-of-frame (SOF0..SOF15 except DHT/JPG/DAC).
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw new ImageHeaderError(`JPEG: expected a marker at byte ${i}`);
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2;
      continue;
    }
    const len = u16be(b, i + 2);
    if (len < 2) throw new ImageHeaderError(`JPEG: bad segment length at byte ${i}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (i + 9 > b.length) break;
      return { format: 'jpeg', height: u16be(b, i + 5), width: u16be(b, i + 7) };
    }
    if (marker === 0xda || marker === 0xd9) break; // scan data or end before any frame header
    i += 2 + len;
  }
  throw new ImageHeaderError('JPEG without a frame header (SOF)');
}

function webp(b: Uint8Array): ImageHeader {
  const kind = ascii(b, 12, 4);
  if (kind === 'VP8 ' && b.length >= 30) {
    return { format: 'webp', width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  if (kind === 'VP8L' && b.length >= 25) {
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (kind === 'VP8X' && b.length >= 30) {
    return { format: 'webp', width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  }
  throw new ImageHeaderError(`WebP with an unknown or truncated chunk ${JSON.stringify(kind)}`);
}

/** The format and size declared by the header; throws ImageHeaderError when the bytes are not a
 *  PNG, JPEG or WebP (or the header is truncated). Reads at most the first few KiB. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const b = bytes;
  let h: ImageHeader;
  if (b.length >= 8 && PNG_SIG.every((v, i) => b[i] === v)) h = png(b);
  else if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) h = jpeg(b);
  else if (b.length >= 16 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') h = webp(b);
  else throw new ImageHeaderError('not a PNG, JPEG or WebP image');
  if (!(h.width > 0 && h.height > 0)) {
    throw new ImageHeaderError(`${h.format.toUpperCase()} declares an empty size ${h.width}×${h.height}`);
  }
  return h;
}

/** Throws ImageHeaderError when the declared size exceeds `maxPixels` (width × height). */
export function checkImageSize(h: ImageHeader, maxPixels: number = DEFAULT_MAX_IMAGE_PIXELS): void {
  if (h.width * h.height > maxPixels) {
    throw new ImageHeaderError(
      `${h.format.toUpperCase()} declares ${h.width}×${h.height} = ${(h.width * h.height).toLocaleString('en')} pixels, over the limit of ${maxPixels.toLocaleString('en')} (refused before decoding)`,
    );
  }
}
