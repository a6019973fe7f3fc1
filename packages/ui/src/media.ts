/**
 * Outputs as media: stills, animations (animated WebP / APNG / GIF) and videos (MP4 / WebM). Lists (the
 * history panel) show an <img> (which animates by itself) or a muted looping <video>. The canvas draws a
 * `CanvasMedia`: a still, the current frame of an animation (its frames decoded once with the browser's
 * ImageDecoder and shown by their own durations, so the node plays it whatever the browser does with
 * off-screen images), or the playing video; while a node shows one the editor redraws it.
 */

export const isVideoFile = (name: string): boolean => /\.(mp4|webm|mov|m4v)$/i.test(name);

/** A muted, looping, autoplaying <video> or an <img> for an output file. */
function element(url: string, filename: string, onReady: () => void): HTMLImageElement | HTMLVideoElement {
  if (isVideoFile(filename)) {
    const v = document.createElement('video');
    v.muted = true;
    v.loop = true;
    v.autoplay = true;
    v.playsInline = true;
    v.preload = 'auto';
    v.addEventListener('loadeddata', () => {
      onReady();
      void v.play().catch(() => undefined);
    });
    v.src = url;
    return v;
  }
  const img = new Image();
  img.onload = onReady;
  img.src = url;
  return img;
}

/** A thumbnail element for a list (the history panel): <video> for video files, else <img>. */
export function mediaThumb(url: string, filename: string): HTMLImageElement | HTMLVideoElement {
  const m = element(url, filename, () => undefined);
  m.title = filename;
  if (m instanceof HTMLImageElement) m.alt = filename;
  return m;
}

/** The size of something the canvas can draw (0 × 0 until it has loaded). */
export function sourceSize(s: CanvasImageSource): [number, number] {
  if (s instanceof HTMLVideoElement) return [s.videoWidth, s.videoHeight];
  if (s instanceof HTMLImageElement) return [s.naturalWidth, s.naturalHeight];
  const b = s as { width: number; height: number };
  return [Number(b.width) || 0, Number(b.height) || 0];
}

/** What the canvas draws for one output. */
export interface CanvasMedia {
  readonly kind: 'image' | 'animation' | 'video';
  readonly filename: string;
  /** the <img> or <video> behind it */
  readonly element: HTMLImageElement | HTMLVideoElement;
  /** what to draw now (the current frame), or null while nothing has loaded */
  current(): CanvasImageSource | null;
  /** stop playing and free decoded frames */
  release(): void;
}

/** Browsers play videos only in the document: the canvas's videos are kept in a 1-pixel holder. */
function holder(): HTMLElement {
  let h = document.getElementById('media-holder');
  if (!h) {
    h = document.createElement('div');
    h.id = 'media-holder';
    h.setAttribute('aria-hidden', 'true');
    h.style.cssText =
      'position:fixed;left:0;top:0;width:1px;height:1px;overflow:hidden;opacity:0.01;pointer-events:none;z-index:-1';
    document.body.append(h);
  }
  return h;
}

/** The frames of an animated image with their durations (ms), or null when it has one frame or the
 *  browser has no ImageDecoder. */
async function decodeFrames(url: string, type: string): Promise<Array<{ bitmap: ImageBitmap; ms: number }> | null> {
  if (typeof ImageDecoder === 'undefined' || !(await ImageDecoder.isTypeSupported(type))) return null;
  const data = await (await fetch(url)).arrayBuffer();
  const dec = new ImageDecoder({ data, type });
  try {
    await dec.tracks.ready;
    const n = dec.tracks.selectedTrack?.frameCount ?? 1;
    if (n < 2) return null;
    const frames: Array<{ bitmap: ImageBitmap; ms: number }> = [];
    for (let i = 0; i < n; i++) {
      const { image } = await dec.decode({ frameIndex: i });
      frames.push({ bitmap: await createImageBitmap(image), ms: Math.max(10, (image.duration ?? 100_000) / 1000) });
      image.close();
    }
    return frames;
  } finally {
    dec.close();
  }
}

const ANIMATED_TYPES: Record<string, string> = {
  webp: 'image/webp',
  png: 'image/png',
  apng: 'image/apng',
  gif: 'image/gif',
};

/** A node output for the canvas; `animated` (ComfyUI's flag) decodes an image's frames to play them. */
export function canvasMedia(url: string, filename: string, animated: boolean, onReady: () => void): CanvasMedia {
  const el = element(url, filename, onReady);
  if (el instanceof HTMLVideoElement) {
    el.style.cssText = 'width:1px;height:1px';
    holder().append(el);
    return {
      kind: 'video',
      filename,
      element: el,
      current: () => (el.readyState >= 2 && el.videoWidth > 0 ? el : null),
      release() {
        el.pause();
        el.remove();
      },
    };
  }
  const still = () => (el.complete && el.naturalWidth > 0 ? el : null);
  const type = ANIMATED_TYPES[filename.split('.').pop()?.toLowerCase() ?? ''];
  if (!animated || !type) return { kind: 'image', filename, element: el, current: still, release() {} };
  let frames: Array<{ bitmap: ImageBitmap; ms: number }> | null = null;
  let released = false;
  void decodeFrames(url, type).then(
    (f) => {
      if (released) for (const x of f ?? []) x.bitmap.close();
      else {
        frames = f;
        onReady();
      }
    },
    () => undefined, // the <img> still shows it
  );
  const start = performance.now();
  return {
    kind: 'animation',
    filename,
    element: el,
    current() {
      if (!frames) return still();
      const total = frames.reduce((a, f) => a + f.ms, 0);
      let t = (performance.now() - start) % total;
      for (const f of frames) {
        if (t < f.ms) return f.bitmap;
        t -= f.ms;
      }
      return frames[frames.length - 1].bitmap;
    },
    release() {
      released = true;
      for (const f of frames ?? []) f.bitmap.close();
      frames = null;
    },
  };
}
