/**
 * Animated outputs of video frames (an IMAGE with `frames`: one file per clip; a plain batch of stills is
 * one animation, as ComfyUI's nodes take it): animated WebP (sharp / libwebp), animated PNG (upng-js)
 * and MP4 (Debian's ffmpeg, when it is on the PATH). Inputs as ComfyUI's SaveAnimatedWEBP /
 * SaveAnimatedPNG. The workflow is embedded as each format allows: PNG tEXt chunks "workflow" and
 * "prompt" (as SaveImage), WebP EXIF Make = "workflow:<json>" and Model = "prompt:<json>" (ComfyUI's
 * tags), MP4 metadata "comment" = the workflow document. The UI reports them as ComfyUI does:
 * `{images: [...], animated: [true]}`.
 */
/// <reference path="../upng-js.d.ts" />
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineNode, type NodeContext } from '@priorgraph/core';
import sharp from 'sharp';
import UPNG from 'upng-js';
import { imageFramesOf, shapeOf, tensorBytes } from '../facts.ts';
import { imageItemToRgb, pngChunk } from '../image-utils.ts';
import type { ImageValue } from '../types.ts';
import { clipOf } from '../video.ts';
import { forInput } from './common.ts';
import { asImage, saveNumbered, workflowText } from './images.ts';

/** The clips of an IMAGE, each as its frames' RGB bytes (frames of a video; else the whole batch). */
export function clipsOf(img: ImageValue): Uint8Array[][] {
  const { clips, frames } = img.frames ? clipOf(img) : { clips: 1, frames: img.shape[0] };
  return Array.from({ length: clips }, (_, c) =>
    Array.from({ length: frames }, (_, f) => imageItemToRgb(img, c * frames + f)),
  );
}

/** Milliseconds a frame shows at `fps` (what WebP and APNG store, to the millisecond). */
export const frameMs = (fps: number): number => Math.max(1, Math.round(1000 / fps));

const inputs = {
  images: {
    kind: 'socket',
    type: 'IMAGE',
    description: 'video frames (one file per clip) or a batch as one animation',
  },
  filename_prefix: { kind: 'string', default: 'priorgraph' },
  fps: { kind: 'float', default: 6, min: 0.01, max: 1000, step: 0.01 },
} as const;

/** Encoding holds the image, and one clip's 8-bit frames (and the encoder's copy of them). */
function animatedInfer(_i: unknown, linked: { images?: unknown }) {
  const s = shapeOf(linked.images);
  if (!s) return undefined;
  const frames = imageFramesOf(linked.images) ?? s[0];
  return { bytes: tensorBytes(s) + 2 * frames * s[1] * s[2] * 4 };
}

/** Save each clip with `encode`, report the files as ComfyUI reports animated outputs. */
async function saveClips(
  ctx: NodeContext,
  images: unknown,
  prefix: string,
  ext: string,
  encode: (frames: Uint8Array[], w: number, h: number, text: Record<string, string>) => Promise<Uint8Array>,
) {
  const img = asImage(images, 'images');
  const [, h, w] = img.shape;
  const text = workflowText(ctx);
  const files: Array<{ filename: string; subfolder: string; type: 'output' }> = [];
  for (const clip of clipsOf(img)) {
    const bytes = await encode(clip, w, h, text);
    files.push({ ...saveNumbered(ctx.host.outputDir, prefix, ext, bytes), type: 'output' });
  }
  ctx.ui({ images: files, animated: [true] });
  return {};
}

export const WEBP_METHODS = ['default', 'fastest', 'slowest'] as const;
/** ComfyUI's method names → libwebp effort (its `method` 0–6). */
const WEBP_EFFORT: Record<(typeof WEBP_METHODS)[number], number> = { default: 4, fastest: 0, slowest: 6 };

/** Animated WebP of RGB frames (sharp: the frames stacked as pages of one raw image). */
export async function encodeAnimatedWebp(
  frames: Uint8Array[],
  w: number,
  h: number,
  o: { fps: number; lossless: boolean; quality: number; method: (typeof WEBP_METHODS)[number] },
  text: Record<string, string>,
): Promise<Uint8Array> {
  const raw = Buffer.concat(frames);
  const exif: Record<string, string> = {};
  if (text.workflow) exif.Make = `workflow:${text.workflow}`;
  if (text.prompt) exif.Model = `prompt:${text.prompt}`;
  const out = await sharp(raw, { raw: { width: w, height: h * frames.length, channels: 3, pageHeight: h } })
    .webp({
      lossless: o.lossless,
      quality: o.quality,
      effort: WEBP_EFFORT[o.method] ?? 4,
      loop: 0,
      delay: frames.map(() => frameMs(o.fps)),
    })
    .withExif({ IFD0: exif })
    .toBuffer();
  return new Uint8Array(out);
}

export const SaveAnimatedWEBP = defineNode({
  type: 'SaveAnimatedWEBP',
  version: 1,
  category: 'image/animation',
  displayName: 'Save Animated WEBP',
  description:
    'Saves video frames as an animated WebP (libwebp through sharp), one file per clip, looping; the workflow in its EXIF (Make = "workflow:…", Model = "prompt:…", as ComfyUI writes them).',
  inputs: {
    ...inputs,
    lossless: { kind: 'boolean', default: true },
    quality: { kind: 'int', default: 80, min: 0, max: 100 },
    method: { kind: 'combo', options: WEBP_METHODS, default: 'default' },
  },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  infer: animatedInfer,
  execute({ images, filename_prefix, fps, lossless, quality, method }, ctx) {
    const o = { fps, lossless, quality, method: method as (typeof WEBP_METHODS)[number] };
    return forInput('images', () =>
      saveClips(ctx, images, filename_prefix, 'webp', (f, w, h, text) => encodeAnimatedWebp(f, w, h, o, text)),
    );
  },
});

/** Animated PNG of RGB frames (upng-js, lossless), with tEXt chunks placed right after IHDR. */
export function encodeAnimatedPng(
  frames: Uint8Array[],
  w: number,
  h: number,
  fps: number,
  text: Record<string, string>,
): Uint8Array {
  const rgba = frames.map((f) => {
    const out = new Uint8Array(w * h * 4);
    for (let p = 0; p < w * h; p++) {
      out[p * 4] = f[p * 3];
      out[p * 4 + 1] = f[p * 3 + 1];
      out[p * 4 + 2] = f[p * 3 + 2];
      out[p * 4 + 3] = 255;
    }
    return out.buffer;
  });
  const png = new Uint8Array(
    UPNG.encode(
      rgba,
      w,
      h,
      0,
      frames.map(() => frameMs(fps)),
    ),
  );
  const ihdrEnd = 8 + 8 + 13 + 4; // signature, IHDR header, its 13 bytes, CRC
  const chunks = Object.entries(text).map(([k, v]) => pngChunk('tEXt', Buffer.from(`${k}\0${v}`, 'latin1')));
  return Buffer.concat([png.subarray(0, ihdrEnd), ...chunks, png.subarray(ihdrEnd)]);
}

export const SaveAnimatedPNG = defineNode({
  type: 'SaveAnimatedPNG',
  version: 1,
  category: 'image/animation',
  displayName: 'Save Animated PNG',
  description:
    'Saves video frames as an animated PNG (APNG, lossless, upng-js), one file per clip, looping; the workflow in tEXt chunks "workflow" and "prompt" (drop it on the canvas to restore the graph). compress_level is accepted for ComfyUI prompts; upng-js chooses its own deflate level.',
  inputs: {
    ...inputs,
    compress_level: { kind: 'int', default: 4, min: 0, max: 9 },
  },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  infer: animatedInfer,
  execute({ images, filename_prefix, fps }, ctx) {
    return forInput('images', () =>
      saveClips(ctx, images, filename_prefix, 'png', async (f, w, h, text) => encodeAnimatedPng(f, w, h, fps, text)),
    );
  },
});

/** `ffmpeg` on the PATH (looked up once per process): its version line, or null. */
let ffmpegFound: string | null | undefined;
export function ffmpegVersion(): string | null {
  if (ffmpegFound === undefined) {
    const r = spawnSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8' });
    ffmpegFound = r.status === 0 ? (r.stdout.split('\n')[0] ?? 'ffmpeg') : null;
  }
  return ffmpegFound;
}

const NO_FFMPEG =
  'SaveVideo needs ffmpeg on the PATH (Debian: apt-get install ffmpeg), which this machine does not have; SaveAnimatedWEBP and SaveAnimatedPNG need nothing more';

/** ffmetadata escapes: '=', ';', '#', '\' and newlines get a backslash. */
const ffmeta = (s: string) => s.replace(/[=;#\\\n]/g, (c) => `\\${c}`);

/** MP4 (H.264, yuv420p; odd sizes padded to even) of RGB frames through ffmpeg, the workflow as its
 *  "comment" metadata. */
export async function encodeMp4(
  frames: Uint8Array[],
  w: number,
  h: number,
  o: { fps: number; crf: number },
  text: Record<string, string>,
): Promise<Uint8Array> {
  if (!ffmpegVersion()) throw new Error(NO_FFMPEG);
  const dir = mkdtempSync(join(tmpdir(), 'pg-mp4-'));
  try {
    const meta = join(dir, 'meta.txt');
    const out = join(dir, 'out.mp4');
    writeFileSync(meta, `;FFMETADATA1\ncomment=${ffmeta(text.workflow ?? '')}\n`);
    const args = [
      ...['-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, '-r', String(o.fps), '-i', 'pipe:0'],
      ...['-i', meta, '-map_metadata', '1', '-map', '0:v'],
      ...['-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', String(o.crf)],
      ...['-movflags', '+faststart', out],
    ];
    await new Promise<void>((resolve, reject) => {
      const p = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => {
        err += String(d);
      });
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err.trim()}`))));
      p.stdin.on('error', () => undefined); // a failing ffmpeg closes its input: reported by 'close'
      for (const f of frames) p.stdin.write(f);
      p.stdin.end();
    });
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const SaveVideo = defineNode({
  type: 'SaveVideo',
  version: 1,
  category: 'image/animation',
  displayName: 'Save Video (MP4)',
  description:
    'Saves video frames as MP4 (H.264 through Debian\'s ffmpeg, found on the PATH when it runs), one file per clip; the workflow document in its "comment" metadata. Without ffmpeg the node says so at validation.',
  inputs: {
    ...inputs,
    crf: { kind: 'int', default: 19, min: 0, max: 51, description: 'H.264 constant rate factor (lower = better)' },
  },
  outputs: [],
  outputNode: true,
  notIdempotent: true,
  validate: () => (ffmpegVersion() ? [] : [{ message: NO_FFMPEG }]),
  infer: animatedInfer,
  async execute({ images, filename_prefix, fps, crf }, ctx) {
    const img = asImage(images, 'images');
    const [, h, w] = img.shape;
    const text = workflowText(ctx);
    const files: Array<{ filename: string; subfolder: string; type: 'output'; format: string; frame_rate: number }> =
      [];
    for (const clip of clipsOf(img)) {
      const bytes = await encodeMp4(clip, w, h, { fps, crf }, text);
      const f = saveNumbered(ctx.host.outputDir, filename_prefix, 'mp4', bytes);
      files.push({ ...f, type: 'output', format: 'video/h264-mp4', frame_rate: fps });
    }
    ctx.ui({ images: files, animated: [true] });
    return {};
  },
});

export const animationNodes = [SaveAnimatedWEBP, SaveAnimatedPNG, SaveVideo] as const;
