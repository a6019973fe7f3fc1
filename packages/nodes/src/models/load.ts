/**
 * Loading the diffusers ONNX layout (model_index.json; text_encoder/, unet/ or transformer/,
 * vae_encoder/, vae_decoder/, tokenizer/, scheduler/scheduler_config.json) and single .onnx files.
 * External weights (model.onnx_data next to model.onnx) are loaded by onnxruntime by path.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ModelFacts, VaeFacts } from '../facts.ts';
import type { PredictionType } from '../guidance/index.ts';
import type { LoadOptions, ModelHandle, RuntimePool } from '../runtime/pool.ts';
import { parseSchedulerConfigJson, readSchedulerConfig, type SchedulerConfig } from '../schedulers/index.ts';
import type { ClipValue, ModelValue, VaeValue } from '../types.ts';
import { convInputChannels, graphInputs } from './onnx-graph.ts';
import { type ChannelEvidence, denoiserSignature, SAMPLE } from './signature.ts';
import { loadClipTokenizer } from './tokenizer.ts';
import { loadJsonTokenizer } from './tokenizer-json.ts';

function readJson(file: string): unknown {
  try {
    // Python's json module writes bare Infinity/NaN (diffusers' DPM-Solver configs: lambda_min_clipped)
    return parseSchedulerConfigJson(readFileSync(file, 'utf8'));
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
        // Python's json writes -Infinity / NaN bare (e.g. lambda_min_clipped)
        return readSchedulerConfig(parseSchedulerConfigJson(readFileSync(c, 'utf8')));
      } catch (e) {
        throw new Error(`${c}: ${(e as Error).message}`);
      }
    }
  }
  return {};
}

/** The component's own config.json (diffusers' save_pretrained / optimum write one next to model.onnx). */
function componentConfig(file: string): Record<string, unknown> | null {
  const f = join(dirname(file), 'config.json');
  return existsSync(f) ? (readJson(f) as Record<string, unknown>) : null;
}

/** Channel counts the session leaves dynamic: config.json (in_channels / out_channels), else the graph. */
function channelEvidence(file: string): ChannelEvidence {
  const intOf = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
  return {
    inChannels: (sampleName) => intOf(componentConfig(file)?.in_channels) ?? convInputChannels(file, sampleName),
    outChannels: () => intOf(componentConfig(file)?.out_channels),
    maxFrames: () => maxFramesOf(file),
  };
}

/** The frame limit a video denoiser's config.json states (`priorgraph.frames.max`), or null. */
function maxFramesOf(file: string): number | null {
  const frames = (componentConfig(file)?.priorgraph as { frames?: { max?: unknown } } | undefined)?.frames;
  const max = frames?.max;
  return typeof max === 'number' && Number.isInteger(max) && max > 0 ? max : null;
}

/** What validation knows of a denoiser (folder or file) before it loads: its graph's latent input,
 *  a video's [B, C, T, h, w] or a still's [B, C, h, w]. Null when the graph does not declare one. */
export function denoiserFacts(path: string): ModelFacts | null {
  const file = statSync(path).isDirectory() ? denoiserFile(path) : path;
  const sample = graphInputs(file).find((i) => SAMPLE.includes(i.name));
  if (!sample || (sample.dims.length !== 4 && sample.dims.length !== 5)) return null;
  const video = sample.dims.length === 5;
  return { path: file, video, frames: video ? sample.dims[2] : null, maxFrames: video ? maxFramesOf(file) : null };
}

/** Load a UNet/transformer: a folder (diffusers layout) or a single .onnx file. */
export async function loadDenoiserModel(pool: RuntimePool, path: string, opts: LoadOptions = {}): Promise<ModelValue> {
  const file = statSync(path).isDirectory() ? denoiserFile(path) : path;
  const folder = statSync(path).isDirectory() ? path : owningFolder(file);
  const handle = await pool.load(file, opts);
  const sig = denoiserSignature(handle.info, file, channelEvidence(file));
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

/** CLIP: a folder with tokenizer/ and text_encoder/ (or a text_encoder .onnx file inside such a folder);
 *  SDXL-style folders also give text_encoder_2/ + tokenizer_2/ (CLIPValue.second). The tokenizer is
 *  CLIP's BPE (vocab.json + merges.txt) or a fast tokenizer's tokenizer.json (T5). */
export async function loadClip(pool: RuntimePool, path: string, opts: LoadOptions = {}): Promise<ClipValue> {
  let dir = path;
  let file = join(path, 'text_encoder', 'model.onnx');
  if (!statSync(path).isDirectory()) {
    file = path;
    dir = dirname(dirname(path));
  }
  if (!existsSync(file)) throw new Error(`${dir}: no text_encoder/model.onnx`);
  const first = await loadTextEncoderPart(pool, file, join(dir, 'tokenizer'), opts);
  const file2 = join(dir, 'text_encoder_2', 'model.onnx');
  if (file !== join(dir, 'text_encoder', 'model.onnx') || !existsSync(file2)) return { kind: 'CLIP', ...first };
  const second = await loadTextEncoderPart(pool, file2, join(dir, 'tokenizer_2'), opts);
  return { kind: 'CLIP', ...first, second };
}

async function loadTextEncoderPart(pool: RuntimePool, file: string, tokDir: string, opts: LoadOptions) {
  const handle = await pool.load(file, opts);
  const ids = handle.info.inputs.find((i) => i.name === 'input_ids') ?? handle.info.inputs[0];
  if (!ids || !/int/.test(ids.type))
    throw new Error(`${file}: not a text encoder (expected an integer input_ids input)`);
  const seq = typeof ids.shape[1] === 'number' && ids.shape[1] > 0 ? ids.shape[1] : undefined;
  const bpe = existsSync(join(tokDir, 'vocab.json')) || !existsSync(join(tokDir, 'tokenizer.json'));
  const tokenizer = bpe ? loadClipTokenizer(tokDir, seq ?? 77) : loadJsonTokenizer(tokDir, seq);
  if (seq !== undefined && tokenizer.maxLength !== seq) {
    throw new Error(
      `${file}: the text encoder takes ${seq} tokens but the tokenizer's model_max_length is ${tokenizer.maxLength}`,
    );
  }
  return { path: handle.path, tokenizer, handle, idsType: ids.type };
}

/** scaling_factor and latent_channels from the VAE parts' config.json (diffusers' defaults otherwise). */
function readVaeConfig(dir: string): { scalingFactor: number; latentChannels: number | null } {
  for (const part of ['vae_decoder', 'vae_encoder', 'vae']) {
    const f = join(dir, part, 'config.json');
    if (existsSync(f)) {
      const c = readJson(f) as { scaling_factor?: unknown; latent_channels?: unknown };
      if (typeof c.scaling_factor === 'number' || typeof c.latent_channels === 'number') {
        return {
          scalingFactor: typeof c.scaling_factor === 'number' ? c.scaling_factor : 0.18215,
          latentChannels: typeof c.latent_channels === 'number' ? c.latent_channels : null,
        };
      }
    }
  }
  return { scalingFactor: 0.18215, latentChannels: null };
}

/** The VAE's pixel factor from its config.json: `downsample_factor` when it says it, else diffusers'
 *  AutoencoderKL layout (each block after the first halves the size: 2^(len(block_out_channels) − 1)). */
export function vaeFactorOf(config: Record<string, unknown>): number | null {
  const f = config.downsample_factor;
  if (typeof f === 'number' && Number.isInteger(f) && f > 0) return f;
  const blocks = config.block_out_channels;
  if (Array.isArray(blocks) && blocks.length > 0) return 2 ** (blocks.length - 1);
  return null;
}

/** VAE facts for validation (pixel factor, latent channels) from the config.json of a VAE folder (or of
 *  the folder next to a single decoder/encoder file), read without loading; null when no config says. */
export function vaeFacts(path: string): VaeFacts | null {
  const dirs = statSync(path).isDirectory()
    ? ['vae_decoder', 'vae_encoder', 'vae', '.'].map((p) => join(path, p))
    : [dirname(path)];
  for (const d of dirs) {
    const f = join(d, 'config.json');
    if (!existsSync(f)) continue;
    const c = readJson(f) as Record<string, unknown>;
    const factor = vaeFactorOf(c);
    if (factor !== null) {
      const ch = c.latent_channels;
      return { path, factor, channels: typeof ch === 'number' && ch > 0 ? ch : null };
    }
  }
  return null;
}

/** The decoder's fixed input channel count, when it has one. */
function decoderChannels(decoder: ModelHandle | null): number | null {
  const c = decoder?.info.inputs[0]?.shape[1];
  return typeof c === 'number' && c > 0 ? c : null;
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
      latentChannels: isEnc ? null : decoderChannels(handle),
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
  const cfg = readVaeConfig(dir);
  return {
    kind: 'VAE',
    name: basename(dir),
    encoder,
    decoder,
    scalingFactor: cfg.scalingFactor,
    latentChannels: cfg.latentChannels ?? decoderChannels(decoder),
  };
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
