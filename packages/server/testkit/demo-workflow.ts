/**
 * Real workflows for the server tests and bench, in ComfyUI API format (what npm clients send):
 * text-to-image with CFG or prior swap, built from what a model root holds.
 *  - MODELS_DIR: the shipped demo family (<repo>/models), once it exists;
 *  - FIXTURES_DIR: the node library's tiny committed ONNX fixtures (always present).
 * A model folder is text-to-image when it has text_encoder/, unet/ and vae_decoder/; a prior is a
 * folder with unet/ (or transformer/) and no text_encoder/ whose UNet takes 4 latent channels.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dirEntries } from '../src/paths.js';

export const MODELS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url));
export const FIXTURES_DIR = fileURLToPath(new URL('../../nodes/test/fixtures/models/', import.meta.url));
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));

/** Model folders under a root, as relative paths (depth ≤ 4): any folder with model_index.json,
 *  unet/, transformer/ or vae_decoder/. */
function folders(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number) => {
    if (depth > 4) return;
    const entries = dirEntries(join(root, rel));
    const names = new Set(entries.map((e) => e.name));
    if (rel !== '' && ['model_index.json', 'unet', 'transformer', 'vae_decoder'].some((n) => names.has(n))) {
      out.push(rel);
      return;
    }
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith('.')) walk(rel ? `${rel}/${e.name}` : e.name, depth + 1);
    }
  };
  walk('', 0);
  return out.sort();
}

const has = (root: string, f: string, part: string) => existsSync(join(root, f, part));

/** The text-to-image folder under a root (text_encoder/ + unet/), or null. */
export function findT2I(root: string): string | null {
  const c = folders(root).filter((f) => has(root, f, 'text_encoder') && has(root, f, 'unet'));
  const notEdit = c.filter((f) => !/edit|pix2pix/i.test(f));
  return notEdit[0] ?? c[0] ?? null;
}

/** A folder with vae_decoder/ (the t2i folder itself when it has one). */
export function findVae(root: string, t2i: string): string | null {
  if (has(root, t2i, 'vae_decoder')) return t2i;
  return folders(root).find((f) => has(root, f, 'vae_decoder')) ?? null;
}

/** An unconditional prior (a folder without a text encoder and not an editor), or null. */
export function findPrior(root: string): string | null {
  const candidates = folders(root).filter(
    (f) =>
      !has(root, f, 'text_encoder') &&
      (has(root, f, 'unet') || has(root, f, 'transformer')) &&
      !/edit|pix2pix|classifier/i.test(f),
  );
  return (
    candidates.find((f) => /base/i.test(f)) ?? candidates.find((f) => has(root, f, 'unet')) ?? candidates[0] ?? null
  );
}

export function hasDemoModels(): boolean {
  return findT2I(MODELS_DIR) !== null;
}

export interface DemoOptions {
  steps?: number;
  seed?: number;
  cfg?: number;
  guider?: 'cfg' | 'priorswap';
  text?: string;
  prefix?: string;
  /** Sampler preview interval (default 2; 0 = no previews). */
  previewEvery?: number;
}

/** API-format text-to-image prompt for the models under `root`; null when it holds none. */
export function demoWorkflow(root: string, o: DemoOptions = {}): Record<string, unknown> | null {
  const t2i = findT2I(root);
  if (!t2i) return null;
  const vae = findVae(root, t2i);
  if (!vae) return null;
  const prior = o.guider === 'priorswap' ? findPrior(root) : null;
  if (o.guider === 'priorswap' && !prior) return null;
  const p: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {
    load: { class_type: 'DiffusersLoader', inputs: { model_path: t2i } },
    enc: {
      class_type: 'CLIPTextEncode',
      inputs: { clip: ['load', 1], text: o.text ?? 'a red circle on a dark background' },
    },
    pos: { class_type: 'Denoiser', inputs: { model: ['load', 0], conditioning: ['enc', 0] } },
    sched: {
      class_type: 'Scheduler',
      inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: ['load', 0] },
    },
    sample: {
      class_type: 'Sampler',
      inputs: {
        guider: ['guide', 0],
        scheduler: ['sched', 0],
        seed: o.seed ?? 42,
        steps: o.steps ?? 8,
        denoise: 1,
        batch_size: 1,
        preview_every: o.previewEvery ?? 2,
      },
    },
    decode: {
      class_type: 'VAEDecode',
      inputs: { samples: ['sample', 0], vae: vae === t2i ? ['load', 2] : ['vae', 0] },
    },
    save: { class_type: 'SaveImage', inputs: { images: ['decode', 0], filename_prefix: o.prefix ?? 'server-test/pg' } },
  };
  if (vae !== t2i) p.vae = { class_type: 'VAELoader', inputs: { vae_path: vae } };
  const guide = { cfg: o.cfg ?? 4, guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
  if (prior) {
    p.base = { class_type: 'UNetLoader', inputs: { unet_path: prior } };
    p.neg = { class_type: 'Denoiser', inputs: { model: ['base', 0] } };
    p.guide = { class_type: 'PriorSwapCFGGuider', inputs: { model: ['pos', 0], prior: ['neg', 0], ...guide } };
  } else {
    p.neg = { class_type: 'Denoiser', inputs: { model: ['load', 0], conditioning: ['enc', 1] } };
    p.guide = { class_type: 'CFGGuider', inputs: { positive: ['pos', 0], negative: ['neg', 0], ...guide } };
  }
  return p;
}

/** The examples' ComfyUI API-format workflows (files whose JSON is `{id: {class_type, inputs}}`), but
 *  not those for real model families. */
export function exampleApiWorkflows(): Array<{ file: string; prompt: Record<string, unknown> }> {
  const out: Array<{ file: string; prompt: Record<string, unknown> }> = [];
  const walk = (d: string, depth: number) => {
    if (depth > 3) return;
    const entries = dirEntries(d);
    for (const e of entries) {
      const p = join(d, e.name);
      // examples/workflows/real/ needs the user's exports of real model families (not shipped; run by
      // packages/nodes/test/real-examples.test.ts on the conformance fixtures instead)
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'plugins' && e.name !== 'real') walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.json') && e.name !== 'package.json') {
        try {
          const j = JSON.parse(readFileSync(p, 'utf8'));
          const vals = Object.values(j ?? {});
          if (vals.length > 0 && vals.every((v) => typeof v === 'object' && v !== null && 'class_type' in v)) {
            out.push({ file: p, prompt: j });
          }
        } catch {
          /* not JSON */
        }
      }
    }
  };
  walk(EXAMPLES_DIR, 0);
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** Width and height from a PNG's IHDR chunk. */
export function pngSize(bytes: Uint8Array): [number, number] {
  const b = Buffer.from(bytes);
  if (b.readUInt32BE(0) !== 0x89504e47 || b.subarray(12, 16).toString() !== 'IHDR') throw new Error('not a PNG');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}
