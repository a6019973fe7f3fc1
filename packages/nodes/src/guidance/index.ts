/**
 * Guidance math shared by every guider: ONE pure module (no I/O, no onnxruntime), used by the sampling
 * loop in the model workers and by the tests. Each method's own combine lives in its file in src/guiders/. Formulas follow ../shared/reference/guidance.md (paper: "Unconditional Priors Matter!",
 * arXiv 2503.20240) and are written next to the code.
 *
 * Notation: ᾱ = cumulative alpha of a schedule at the model's timestep, a = √ᾱ, s = √(1−ᾱ),
 * σ = s / a (the VP noise level). x = x_t (the model input, VP-scaled).
 *
 * The common parameterization of a DENOISER is x̂0 (each model converted with its OWN ᾱ). Guidance
 * combines ε with respect to the reference (fine-tuned) schedule: ε_ref = (x − a_ref·x̂0)/s_ref. Every
 * combiner (guiders/) except rescale is an affine combination with weights summing to 1, so combining x̂0
 * or ε gives the same result; rescale is not, and is applied in the reference model's own
 * parameterization as diffusers' `guidance_rescale` is (guiders/common.ts `rescaled`).
 */
import { latentDims } from '../video.ts';

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type Vec = Float64Array | Float32Array;

/** x̂0 from a model prediction with that model's own ᾱ.
 *  ε-pred:  x̂0 = (x − √(1−ᾱ)·ε)/√ᾱ
 *  v-pred:  x̂0 = √ᾱ·x − √(1−ᾱ)·v
 *  sample:  x̂0 = prediction */
export function predictionToX0(pred: Vec, x: Vec, alphaBar: number, type: PredictionType): Float64Array {
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  const out = new Float64Array(pred.length);
  if (type === 'epsilon') for (let i = 0; i < out.length; i++) out[i] = (x[i] - s * pred[i]) / a;
  else if (type === 'v_prediction') for (let i = 0; i < out.length; i++) out[i] = a * x[i] - s * pred[i];
  else if (type === 'sample') out.set(pred);
  else throw new Error(`unknown prediction_type ${JSON.stringify(type)}`);
  return out;
}

/** ε from x̂0: ε = (x − √ᾱ·x̂0)/√(1−ᾱ) */
export function x0ToEpsilon(x0: Vec, x: Vec, alphaBar: number): Float64Array {
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  const out = new Float64Array(x0.length);
  for (let i = 0; i < out.length; i++) out[i] = (x[i] - a * x0[i]) / s;
  return out;
}

/** A prediction of the given type from ε (and x): the scheduler consumes its config's prediction_type.
 *  v = √ᾱ·ε − √(1−ᾱ)·x̂0 ;  x̂0 = (x − √(1−ᾱ)·ε)/√ᾱ */
export function epsilonToPrediction(eps: Vec, x: Vec, alphaBar: number, type: PredictionType): Vec {
  if (type === 'epsilon') return eps; // no copy
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  const out = new Float64Array(eps.length);
  for (let i = 0; i < out.length; i++) {
    const x0 = (x[i] - s * eps[i]) / a;
    out[i] = type === 'v_prediction' ? a * eps[i] - s * x0 : x0;
  }
  return out;
}

/** σ = √((1−ᾱ)/ᾱ) (schedulers/common.ts) and back: ᾱ = 1/(1+σ²). */
export { sigmaOfAlphaBar } from '../schedulers/common.ts';
export const alphaBarOfSigma = (sigma: number): number => 1 / (1 + sigma * sigma);

/** CFG rescale (Lin et al. 2023, arXiv 2305.08891), per batch item:
 *  x' = φ·x_cfg·std(x_pos)/std(x_cfg) + (1−φ)·x_cfg  (std over all of an item's elements, as diffusers). */
export function rescaleGuidance(guided: Vec, positive: Vec, phi: number, batch: number): Float64Array {
  const out = Float64Array.from(guided);
  if (phi === 0) return out;
  const n = guided.length / batch;
  for (let b = 0; b < batch; b++) {
    const sp = std(positive, b * n, n);
    const sg = std(guided, b * n, n);
    const k = sg === 0 ? 1 : sp / sg;
    for (let i = b * n; i < (b + 1) * n; i++) out[i] = phi * guided[i] * k + (1 - phi) * guided[i];
  }
  return out;
}

/** Sample standard deviation (Bessel-corrected, as torch.std) of a[off .. off+n). */
export function std(a: Vec, off: number, n: number): number {
  let mean = 0;
  for (let i = off; i < off + n; i++) mean += a[i];
  mean /= n;
  let v = 0;
  for (let i = off; i < off + n; i++) v += (a[i] - mean) ** 2;
  return Math.sqrt(v / Math.max(1, n - 1));
}

/** Guidance interval (Kynkäänniemi et al. 2024, arXiv 2404.07724): the scale applies for σ ∈ (lo, hi];
 *  elsewhere w = 1 (no unconditional branch is computed). null bounds mean unbounded. */
export function effectiveScale(w: number, sigma: number, lo: number | null, hi: number | null): number {
  if (lo !== null && !(sigma > lo)) return 1;
  if (hi !== null && !(sigma <= hi)) return 1;
  return w;
}

/** The fixed linear latent → RGB map of the step preview (4 latent channels; SD-family coefficients
 *  as ComfyUI's Latent2RGB uses; other channel counts use the first 3 channels as RGB). */
export const LATENT_RGB_4: readonly (readonly number[])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** Latent [C,H,W] (one item) → RGBA bytes [H,W,4] via the fixed 4×3 map. `stride`: values between
 *  channels (T·h·w for one frame of a video item [C,T,h,w]). */
export function latentPreviewRGBA(
  latent: Vec,
  c: number,
  h: number,
  w: number,
  offset = 0,
  stride = h * w,
): Uint8Array {
  const out = new Uint8Array(h * w * 4);
  const hw = stride;
  for (let p = 0; p < h * w; p++) {
    let r = 0;
    let g = 0;
    let b = 0;
    if (c === 4) {
      for (let k = 0; k < 4; k++) {
        const v = latent[offset + k * hw + p];
        r += v * LATENT_RGB_4[k][0];
        g += v * LATENT_RGB_4[k][1];
        b += v * LATENT_RGB_4[k][2];
      }
    } else {
      r = latent[offset + p];
      g = latent[offset + Math.min(1, c - 1) * hw + p];
      b = latent[offset + Math.min(2, c - 1) * hw + p];
    }
    out[p * 4] = toByte((r + 1) / 2);
    out[p * 4 + 1] = toByte((g + 1) / 2);
    out[p * 4 + 2] = toByte((b + 1) / 2);
    out[p * 4 + 3] = 255;
  }
  return out;
}

const toByte = (v: number): number => Math.max(0, Math.min(255, Math.round(v * 255)));

/** The per-step preview of batch item 0: a still latent as an image; a video latent as its frames side
 *  by side (a strip T·w wide, frame 0 on the left). */
export function latentPreviewStrip(
  latent: Vec,
  shape: readonly number[],
): { rgba: Uint8Array; width: number; height: number } {
  const { channels, frames, height: h, width: w } = latentDims(shape);
  const T = frames ?? 1;
  const rgba = new Uint8Array(T * w * h * 4);
  for (let t = 0; t < T; t++) {
    const frame = latentPreviewRGBA(latent, channels, h, w, t * h * w, T * h * w);
    for (let y = 0; y < h; y++) rgba.set(frame.subarray(y * w * 4, (y + 1) * w * 4), (y * T * w + t * w) * 4);
  }
  return { rgba, width: T * w, height: h };
}
