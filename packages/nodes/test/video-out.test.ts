/**
 * Animated outputs, each decoded back by a decoder other than its encoder: animated WebP (sharp /
 * libwebp) read by node-webpmux's demuxer, APNG (upng-js) read by fast-png's decodeApng, MP4 (ffmpeg)
 * read by ffprobe. Frame count, frame rate and the embedded workflow match. A video graph (a tiny
 * rank-5 denoiser written by the test → VAE Decode → the three save nodes) runs end to end.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeApng, decode as decodePng } from 'fast-png';
import WebP from 'node-webpmux';
import { afterAll, describe, expect, it } from 'vitest';
import plugin from '../src/index.ts';
import { encodeAnimatedPng, encodeAnimatedWebp, ffmpegVersion } from '../src/nodes/video-out.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';
import { writeVideoModel } from './video-fixtures.ts';

afterAll(() => plugin.dispose?.());

const FFPROBE = spawnSync('ffprobe', ['-version']).status === 0;

/** Distinct RGB frames (a moving bar), so no encoder may merge two of them. */
function frames(n: number, w: number, h: number): Uint8Array[] {
  return Array.from({ length: n }, (_, f) => {
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const on = x === f % w;
        rgb.set(on ? [250, 20, 20] : [10, 10 * f, 200], (y * w + x) * 3);
      }
    return rgb;
  });
}

/** The text after "key:" in a WebP's EXIF bytes (ASCII IFD0 values, as ComfyUI writes them). */
function exifValue(exif: Buffer, key: string): string | null {
  const s = exif.toString('latin1');
  const i = s.indexOf(`${key}:`);
  if (i < 0) return null;
  const end = s.indexOf('\0', i);
  return s.slice(i + key.length + 1, end < 0 ? undefined : end);
}

async function webpFacts(bytes: Uint8Array) {
  const img = new WebP.Image();
  await img.load(Buffer.from(bytes));
  return {
    anim: img.hasAnim,
    frames: img.frames?.length ?? 1,
    delays: img.frames?.map((f: { delay: number }) => f.delay),
    exif: img.exif as Buffer | undefined,
    width: img.width,
    height: img.height,
  };
}

/** Channel k of pixel (x, y) of a decoded frame: rows packed at the PNG's bit depth, indexed through
 *  the palette when there is one. */
function sampleAt(
  png: { width: number; depth: number; channels: number; palette?: number[][] },
  data: Uint8Array,
  x: number,
  y: number,
  k: number,
): number {
  const d = png.depth;
  const rowBytes = Math.ceil((png.width * png.channels * d) / 8);
  const bit = (x * png.channels + (png.palette ? 0 : k)) * d;
  const v =
    d === 8 ? data[y * rowBytes + bit / 8] : (data[y * rowBytes + (bit >> 3)] >> (8 - d - (bit & 7))) & ((1 << d) - 1);
  return png.palette ? png.palette[v][k] : v;
}

function ffprobe(file: string) {
  const r = spawnSync(
    'ffprobe',
    [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=nb_read_frames,r_frame_rate,width,height:format_tags=comment',
      '-of',
      'json',
      file,
    ],
    { encoding: 'utf8' },
  );
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  return { ...j.streams[0], comment: j.format?.tags?.comment as string | undefined };
}

describe('encoders, read back by independent decoders', () => {
  const [w, h, n] = [12, 8, 5];
  const text = { workflow: '{"format":"priorgraph","x":"a=b;c#d\\\\e"}', prompt: '{"1":{}}' };

  it('animated WebP: node-webpmux sees every frame at 1000/fps ms and the workflow in EXIF Make', async () => {
    const bytes = await encodeAnimatedWebp(
      frames(n, w, h),
      w,
      h,
      { fps: 8, lossless: true, quality: 80, method: 'default' },
      text,
    );
    const f = await webpFacts(bytes);
    expect(f.anim).toBe(true);
    expect([f.width, f.height]).toEqual([w, h]);
    expect(f.frames).toBe(n);
    expect(f.delays).toEqual(Array(n).fill(125));
    expect(exifValue(f.exif!, 'workflow')).toBe(text.workflow);
    expect(exifValue(f.exif!, 'prompt')).toBe(text.prompt);
  });

  it('APNG: fast-png decodes every frame losslessly at the frame rate, and the tEXt chunks', () => {
    const src = frames(n, w, h);
    const bytes = encodeAnimatedPng(src, w, h, 8, text);
    const apng = decodeApng(bytes);
    expect(apng.numberOfFrames).toBe(n);
    expect(apng.frames).toHaveLength(n);
    for (const [i, fr] of apng.frames.entries()) {
      expect(fr.delayNumber / (fr.delayDenominator || 100)).toBeCloseTo(1 / 8, 9);
      // full-canvas frames (indexed through the palette when the encoder chose one)
      const data = fr.data as Uint8Array;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let k = 0; k < 3; k++) expect(sampleAt(apng, data, x, y, k)).toBe(src[i][(y * w + x) * 3 + k]);
    }
    expect(decodePng(bytes).text).toMatchObject(text);
  });
});

describe('a video graph saved as WebP, APNG and MP4', () => {
  const root = mkdtempSync(join(tmpdir(), 'pg-video-out-'));
  writeVideoModel(root, 'video-uncond', {
    inC: 4,
    frames: 4,
    k: { a: 0.4, b: 0, c: 0, d: 0.0005, e: 0.3 },
    ehs: false,
  });
  const host = makeHost();
  host.modelRoots = [...host.modelRoots, root];
  const { executor } = makeExecutor(host);
  const fps = 8;
  const graph = (save: Record<string, { type: string; inputs: Record<string, unknown> }>) =>
    doc({
      m: { type: 'UNetLoader', inputs: { unet_path: 'video-uncond' } },
      d: { type: 'Denoiser', inputs: { model: link('m', 'MODEL') } },
      g: { type: 'BasicGuider', inputs: { denoiser: link('d', 'DENOISER') } },
      sched: { type: 'Scheduler', inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' } },
      lat: { type: 'EmptyVideoLatent', inputs: { width: 64, height: 64, frames: 4, batch_size: 2 } },
      s: {
        type: 'Sampler',
        inputs: {
          guider: link('g', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 3,
          steps: 2,
          denoise: 1,
          batch_size: 1,
          preview_every: 1,
          latent_image: link('lat', 'LATENT'),
        },
      },
      vae: { type: 'VAELoader', inputs: { vae_path: 'tiny-t2i' } },
      dec: { type: 'VAEDecode', inputs: { samples: link('s', 'LATENT'), vae: link('vae', 'VAE') } },
      ...save,
    });

  it('WebP and APNG: one file per clip, reported as ComfyUI reports animated outputs, the workflow restorable', async () => {
    const d = graph({
      webp: {
        type: 'SaveAnimatedWEBP',
        inputs: {
          images: link('dec', 'IMAGE'),
          filename_prefix: 'vid/clip',
          fps,
          lossless: true,
          quality: 80,
          method: 'default',
        },
      },
      apng: {
        type: 'SaveAnimatedPNG',
        inputs: { images: link('dec', 'IMAGE'), filename_prefix: 'vid/clip', fps, compress_level: 4 },
      },
    });
    const { result, events } = await runDoc(executor, d);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('success');
    // the preview of a video latent is a strip of its frames: 4 frames of 8×8 latents side by side
    const previews = events.filter((e) => e.type === 'preview');
    expect(previews.length).toBe(2);
    const p = previews[0] as { image: { data: Uint8Array } };
    const pv = decodePng(p.image.data);
    expect(pv.width).toBe(4 * pv.height); // (previews are scaled up to at least 64 px)

    const webp = result.outputs.webp as {
      images: Array<{ filename: string; subfolder: string; type: string }>;
      animated: boolean[];
    };
    const apng = result.outputs.apng as typeof webp;
    expect(webp.animated).toEqual([true]);
    expect(apng.animated).toEqual([true]);
    expect(webp.images.map((f) => f.filename)).toEqual(['clip_00001_.webp', 'clip_00002_.webp']);
    expect(apng.images.map((f) => f.filename)).toEqual(['clip_00001_.png', 'clip_00002_.png']);
    for (const f of webp.images) {
      const facts = await webpFacts(readFileSync(join(host.outputDir, f.subfolder, f.filename)));
      expect(f.type).toBe('output');
      expect(facts.frames).toBe(4);
      expect(facts.delays).toEqual(Array(4).fill(1000 / fps));
      expect(JSON.parse(exifValue(facts.exif!, 'workflow')!)).toEqual(JSON.parse(JSON.stringify(d)));
    }
    for (const f of apng.images) {
      const bytes = readFileSync(join(host.outputDir, f.subfolder, f.filename));
      const a = decodeApng(bytes);
      expect(a.numberOfFrames).toBe(4);
      for (const fr of a.frames) expect(fr.delayNumber / (fr.delayDenominator || 100)).toBeCloseTo(1 / fps, 9);
      expect(JSON.parse(decodePng(bytes).text.workflow)).toEqual(JSON.parse(JSON.stringify(d)));
    }
  });

  it.skipIf(!FFPROBE)(
    'MP4 (needs Debian ffmpeg/ffprobe on the PATH; skipped without): ffprobe counts the frames, the rate and the comment',
    async () => {
      expect(ffmpegVersion()).not.toBeNull();
      const d = graph({
        mp4: { type: 'SaveVideo', inputs: { images: link('dec', 'IMAGE'), filename_prefix: 'vid/clip', fps, crf: 19 } },
      });
      const { result } = await runDoc(executor, d);
      expect(result.error).toBeUndefined();
      const out = result.outputs.mp4 as {
        images: Array<{ filename: string; subfolder: string; format: string }>;
        animated: boolean[];
      };
      expect(out.animated).toEqual([true]);
      expect(out.images).toHaveLength(2);
      for (const f of out.images) {
        expect(f.filename).toMatch(/^clip_\d{5}_\.mp4$/);
        const probe = ffprobe(join(host.outputDir, f.subfolder, f.filename));
        expect(Number(probe.nb_read_frames)).toBe(4);
        expect(probe.r_frame_rate).toBe(`${fps}/1`);
        expect(JSON.parse(probe.comment!)).toEqual(JSON.parse(JSON.stringify(d)));
      }
    },
  );
});

describe('SaveVideo without ffmpeg', () => {
  it('says at validation that ffmpeg is missing (a child process with an empty PATH)', () => {
    const code = `import { SaveVideo } from ${JSON.stringify(new URL('../src/nodes/video-out.ts', import.meta.url).pathname)};
      process.stdout.write(JSON.stringify(await SaveVideo.validate({}, {})));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      env: { ...process.env, PATH: mkdtempSync(join(tmpdir(), 'pg-nopath-')) },
      cwd: new URL('..', import.meta.url).pathname,
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([
      { message: expect.stringMatching(/SaveVideo needs ffmpeg on the PATH \(Debian: apt-get install ffmpeg\)/) },
    ]);
  });
});
