/**
 * Per-image reference metrics for the novel-view and image-variation systems (paper Tables 1 and 2):
 * PSNR, SSIM, a feature distance (LPIPS-like), cosine similarity of embeddings (CLIP-I-like), and the
 * decoding of the held-out sample files (models/eval/*_samples.json: uint8 CHW, base64).
 * Images are ImageBatch [b,h,w,c] in [0,1].
 */
export interface Images {
  data: Float32Array;
  shape: [number, number, number, number];
}

/** base64 uint8 CHW [3,h,w] images → one batch [n,h,w,3] in [0,1]. */
export function decodeSamples(b64: string[], h = 32, w = 32): Images {
  const n = b64.length;
  const data = new Float32Array(n * h * w * 3);
  b64.forEach((s, i) => {
    const chw = Buffer.from(s, 'base64');
    if (chw.length !== 3 * h * w) throw new Error(`sample ${i}: ${chw.length} bytes, expected ${3 * h * w}`);
    for (let p = 0; p < h * w; p++)
      for (let k = 0; k < 3; k++) data[(i * h * w + p) * 3 + k] = chw[k * h * w + p] / 255;
  });
  return { data, shape: [n, h, w, 3] };
}

/** Images i of a batch, as a batch of one (or the slice [from, to)). */
export function slice(img: Images, from: number, to = from + 1): Images {
  const [, h, w, c] = img.shape;
  const per = h * w * c;
  return { data: img.data.slice(from * per, to * per), shape: [to - from, h, w, c] };
}

/** Concatenate batches of one image size. */
export function concat(parts: Images[]): Images {
  const [, h, w, c] = parts[0].shape;
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const data = new Float32Array(n * h * w * c);
  let off = 0;
  for (const p of parts) {
    data.set(p.data, off);
    off += p.data.length;
  }
  return { data, shape: [n, h, w, c] };
}

/** PSNR in dB of image i of `a` against image i of `b` (peak 1), clamped to [0,1] first. */
export function psnr(a: Images, b: Images, i: number): number {
  const [, h, w, c] = a.shape;
  const per = h * w * c;
  let se = 0;
  for (let j = 0; j < per; j++) {
    const d = clamp01(a.data[i * per + j]) - clamp01(b.data[i * per + j]);
    se += d * d;
  }
  const mse = se / per;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(1 / mse);
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** The Gaussian window of SSIM (Wang et al. 2004): 11×11, σ = 1.5, normalised. */
function gaussianWindow(size = 11, sigma = 1.5): Float64Array {
  const r = (size - 1) / 2;
  const g = new Float64Array(size * size);
  let sum = 0;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = Math.exp(-((x - r) ** 2 + (y - r) ** 2) / (2 * sigma * sigma));
      g[y * size + x] = v;
      sum += v;
    }
  for (let k = 0; k < g.length; k++) g[k] /= sum;
  return g;
}
const WINDOW = gaussianWindow();

/** SSIM of image i (Wang et al. 2004: 11×11 Gaussian window σ 1.5, K1 0.01, K2 0.03, data range 1),
 *  per channel over the windows that fit inside the image, averaged over windows and channels. */
export function ssim(a: Images, b: Images, i: number): number {
  const [, h, w, c] = a.shape;
  const size = 11;
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  let total = 0;
  let count = 0;
  const at = (img: Images, y: number, x: number, k: number) => clamp01(img.data[((i * h + y) * w + x) * c + k]);
  for (let k = 0; k < Math.min(3, c); k++) {
    for (let y0 = 0; y0 + size <= h; y0++)
      for (let x0 = 0; x0 + size <= w; x0++) {
        let ma = 0;
        let mb = 0;
        let saa = 0;
        let sbb = 0;
        let sab = 0;
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) {
            const g = WINDOW[y * size + x];
            const va = at(a, y0 + y, x0 + x, k);
            const vb = at(b, y0 + y, x0 + x, k);
            ma += g * va;
            mb += g * vb;
            saa += g * va * va;
            sbb += g * vb * vb;
            sab += g * va * vb;
          }
        const va = saa - ma * ma;
        const vb = sbb - mb * mb;
        const cov = sab - ma * mb;
        total += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
        count++;
      }
  }
  return total / count;
}

/** Cosine similarity of two vectors. */
export function cosine(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let j = 0; j < x.length; j++) {
    xy += x[j] * y[j];
    xx += x[j] * x[j];
    yy += y[j] * y[j];
  }
  return xy / Math.sqrt(xx * yy || 1);
}

/** LPIPS-like distance in one feature layer: ½‖f̂x − f̂y‖² of the unit-normalised features = 1 − cos. */
export const featureDistance = (x: ArrayLike<number>, y: ArrayLike<number>) => 1 - cosine(x, y);
