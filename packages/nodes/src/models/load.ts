/**
 * Loading the diffusers ONNX layout (model_index.json; text_encoder/, unet/ or transformer/,
 * vae_encoder/, vae_decoder/, tokenizer/, scheduler/scheduler_config.json) and single .onnx files.
 * External weights (model.onnx_data next to model.onnx) are loaded by onnxruntime by path.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { PredictionType } from '../guidance/index.ts';
import type { LoadOptions, RuntimePool } from '../runtime/pool.ts';
import { readSchedulerConfig, type SchedulerConfig } from '../schedulers/index.ts';
import type { ClipValue, ModelValue, VaeValue } from '../types.ts';
import { denoiserSignature } from './signature.ts';
import { loadClipTokenizer } from './tokenizer.ts';

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read JSON (${(e as Error).message})`);
  }
}

export interface FolderIndex {
  dir: string;
  index: Record<string, unknown>;
  latentSpace: string | null;
}

export function readModelIndex(dir: string): FolderIndex {
  const file = join(dir, 'model_index.json');
  if (!existsSync(file)) throw new Error(`${dir}: not a diffusers model folder (no model_index.json)`);
  const index = readJson(file) as Record<string, unknown>;
  const pg = index.priorgraph as { latent_space?: unknown } | undefined;
  return { dir, index, latentSpace: typeof pg?.latent_space === 'string' ? pg.latent_space : null };
}

/** The denoiser network of a folder: unet/ or transformer/. */
export function denoiserFile(dir: string): string {
  for (const part of ['unet', 'transformer']) {
    const f = join(dir, part, 'model.onnx');
    if (existsSync(f)) return f;
  }
  throw new Error(`${dir}: no unet/model.onnx or transformer/model.onnx`);
}

/** The diffusers folder a component file belongs to (…/<folder>/unet/model.onnx), if any. */
function owningFolder(file: string): string | null {
  const up = dirname(dirname(file));
  return existsSync(join(up, 'model_index.json')) ? up : null;
}

function schedulerConfigNear(file: string): Partial<SchedulerConfig> {
  const candidates = [
    join(dirname(file), 'scheduler_config.json'),
    join(dirname(dirname(file)), 'scheduler', 'scheduler_config.json'),
    file.replace(/\.onnx$/, '.scheduler_config.json'),
  ];
  for (const c of candidates) {
    if (existsSync(c)) {
      try {
        return readSchedulerConfig(readJson(c));
      } catch (e) {
        throw new Error(`${c}: ${(e as Error).message}`);
      }
    }
  }
  return {};
}

/** Load a UNet/transformer: a folder (diffusers layout) or a single .onnx file. */
export async function loadDenoiserModel(pool: RuntimePool, path: string, opts: LoadOptions = {}): Promise<ModelValue> {
  const file = statSync(path).isDirectory() ? denoiserFile(path) : path;
  const folder = statSync(path).isDirectory() ? path : owningFolder(file);
  const handle = await pool.load(file, opts);
  const sig = denoiserSignature(handle.info, file);
  const schedulerConfig = schedulerConfigNear(file);
  const latentSpace = folder ? readModelIndex(folder).latentSpace : null;
  return {
    kind: 'MODEL',
    path: handle.path,
    name: folder ? basename(folder) : basename(file),
    handle,
    sig,
    schedulerConfig,
    predictionType: (schedulerConfig.prediction_type ?? 'epsilon') as PredictionType,
    latentSpace,
  };
}

/** CLIP: a folder with tokenizer/ and text_encoder/ (or a text_encoder .onnx file inside such a folder). */
export async function loadClip(pool: RuntimePool, path: string, opts: LoadOptions = {}): Promise<ClipValue> {
  let dir = path;
  let file = join(path, 'text_encoder', 'model.onnx');
  if (!statSync(path).isDirectory()) {
    file = path;
    dir = dirname(dirname(path));
  }
  if (!existsSync(file)) throw new Error(`${dir}: no text_encoder/model.onnx`);
  const handle = await pool.load(file, opts);
  const ids = handle.info.inputs.find((i) => i.name === 'input_ids') ?? handle.info.inputs[0];
  if (!ids || !/int/.test(ids.type))
    throw new Error(`${file}: not a text encoder (expected an integer input_ids input)`);
  const seq = typeof ids.shape[1] === 'number' && ids.shape[1] > 0 ? ids.shape[1] : undefined;
  const tokenizer = loadClipTokenizer(join(dir, 'tokenizer'), seq ?? 77);
  if (seq !== undefined && tokenizer.maxLength !== seq) {
    throw new Error(
      `${file}: the text encoder takes ${seq} tokens but the tokenizer's model_max_length is ${tokenizer.maxLength}`,
    );
  }
  return { kind: 'CLIP', path: handle.path, tokenizer, handle, idsType: ids.type };
}

function readScalingFactor(dir: string): number {
  for (const part of ['vae_decoder', 'vae_encoder', 'vae']) {
    const f = join(dir, part, 'config.json');
    if (existsSync(f)) {
      const c = readJson(f) as { scaling_factor?: unknown };
      if (typeof c.scaling_factor === 'number') return c.scaling_factor;
    }
  }
  return 0.18215;
}

/** VAE: a folder with vae_encoder/ and/or vae_decoder/ (scaling_factor from their config.json). */
export async function loadVae(pool: RuntimePool, dir: string, opts: LoadOptions = {}): Promise<VaeValue> {
  if (!statSync(dir).isDirectory()) {
    // a single decoder (or encoder) file
    const handle = await pool.load(dir, opts);
    const isEnc = handle.info.inputs.some((i) => i.name === 'sample');
    return {
      kind: 'VAE',
      name: basename(dir),
      encoder: isEnc ? handle : null,
      decoder: isEnc ? null : handle,
      scalingFactor: 0.18215,
    };
  }
  const enc = join(dir, 'vae_encoder', 'model.onnx');
  const dec = join(dir, 'vae_decoder', 'model.onnx');
  if (!existsSync(enc) && !existsSync(dec))
    throw new Error(`${dir}: no vae_encoder/model.onnx or vae_decoder/model.onnx`);
  const [encoder, decoder] = await Promise.all([
    existsSync(enc) ? pool.load(enc, opts) : null,
    existsSync(dec) ? pool.load(dec, opts) : null,
  ]);
  return { kind: 'VAE', name: basename(dir), encoder, decoder, scalingFactor: readScalingFactor(dir) };
}

/** A whole diffusers folder → its parts (those present). */
export async function loadFolder(pool: RuntimePool, dir: string, opts: LoadOptions = {}) {
  readModelIndex(dir);
  const model = await loadDenoiserModel(pool, dir, opts);
  const clip = existsSync(join(dir, 'text_encoder', 'model.onnx')) ? await loadClip(pool, dir, opts) : null;
  const vae =
    existsSync(join(dir, 'vae_decoder', 'model.onnx')) || existsSync(join(dir, 'vae_encoder', 'model.onnx'))
      ? await loadVae(pool, dir, opts)
      : null;
  return { model, clip, vae };
}
