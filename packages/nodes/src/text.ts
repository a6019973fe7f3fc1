/**
 * Text on images through a real font renderer: labels become an SVG <text> layer, resvg renders it with
 * DejaVu Sans loaded by path from its npm package (system fonts are never read, so every machine draws
 * the same pixels, CI machines without fonts included), and sharp composites the layer onto the image.
 */
import { createRequire } from 'node:module';
import { Resvg, type ResvgRenderOptions, renderAsync } from '@resvg/resvg-js';
import sharp from 'sharp';

export const FONT_FAMILY = 'DejaVu Sans';
const fontFile = (name: string) => createRequire(import.meta.url).resolve(`dejavu-fonts-ttf/ttf/${name}`);
/** The regular and the bold face: the only fonts resvg sees. */
const FONT_FILES = [fontFile('DejaVuSans.ttf'), fontFile('DejaVuSans-Bold.ttf')];
/** DejaVu Sans' capital height in em (1493 / 2048 units): a label's y is the top of its capitals. */
const CAP_HEIGHT = 0.729;

const fontOptions = (): ResvgRenderOptions['font'] => ({
  fontFiles: FONT_FILES,
  loadSystemFonts: false,
  defaultFontFamily: FONT_FAMILY,
  sansSerifFamily: FONT_FAMILY,
});

export interface Label {
  text: string;
  /** left end of the text (or its centre / right end, see anchor), in pixels */
  x: number;
  /** top of the capital letters, in pixels (descenders reach about 0.24 × size below the baseline) */
  y: number;
  /** font size in pixels (the em) */
  size: number;
  /** any SVG colour; black by default */
  color?: string;
  anchor?: 'start' | 'middle' | 'end';
  bold?: boolean;
}

/** Text as XML character data: markup characters escaped, characters XML forbids dropped. */
function xmlText(s: string): string {
  return s
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function textElement(l: Label): string {
  const baseline = l.y + CAP_HEIGHT * l.size;
  return (
    `<text x="${l.x}" y="${baseline}" font-family="${FONT_FAMILY}" font-size="${l.size}" ` +
    `font-weight="${l.bold ? 'bold' : 'normal'}" fill="${xmlText(l.color ?? '#000')}" text-anchor="${l.anchor ?? 'start'}" xml:space="preserve">${xmlText(l.text)}</text>`
  );
}

type RenderOptions = { background?: string; zoom?: number };
const resvgOptions = (o: RenderOptions = {}): ResvgRenderOptions => ({
  font: fontOptions(),
  background: o.background,
  fitTo: o.zoom ? { mode: 'zoom', value: o.zoom } : { mode: 'original' },
});

/** An SVG document as PNG bytes, drawn with the bundled font only; `zoom` scales the whole picture. */
export function svgToPng(svg: string, opts: RenderOptions = {}): Uint8Array {
  return new Resvg(svg, resvgOptions(opts)).render().asPng();
}

/** The width in pixels the text's ink covers at this size (0 for blank text). */
export function textWidth(text: string, size: number, bold = false): number {
  if (!text.trim()) return 0;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">` +
    `${textElement({ text, x: 0, y: 0, size, bold })}</svg>`;
  const box = new Resvg(svg, resvgOptions()).getBBox();
  return box ? box.x + box.width : 0;
}

/** Draws labels onto an RGB image (w × h, 3 bytes a pixel) and returns the new RGB bytes. */
export async function drawLabels(rgb: Uint8Array, w: number, h: number, labels: Label[]): Promise<Uint8Array> {
  if (rgb.length !== w * h * 3) throw new Error(`drawLabels: ${rgb.length} bytes is not a ${w}×${h} RGB image`);
  const shown = labels.filter((l) => l.text.trim());
  if (!shown.length) return rgb;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` + `${shown.map(textElement).join('')}</svg>`;
  const layer = await renderAsync(svg, resvgOptions()); // off the event loop, like sharp
  const out = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .composite([{ input: layer.pixels, raw: { width: w, height: h, channels: 4, premultiplied: true } }])
    .removeAlpha()
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
