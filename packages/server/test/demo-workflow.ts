/**
 * Real workflows for the server tests and bench, in ComfyUI API format (what npm clients send):
 * text-to-image with CFG or prior swap, built from what a model root holds.
 *  - MODELS_DIR: the shipped demo family (<repo>/models), once it exists;
 *  - FIXTURES_DIR: the node library's tiny committed ONNX fixtures (always present).
 * A model folder is text-to-image when it has text_encoder/, unet/ and vae_decoder/; a prior is a
 * folder with unet/ (or transformer/) and no text_encoder/ whose UNet takes 4 latent channels.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MODELS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url));
export const FIXTURES_DIR = fileURLToPath(new URL('../../nodes/test/fixtures/models/', import.meta.url));
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));

function folders(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** The text-to-image folder under a root, or null. */
export function findT2I(root: string): string | null {
  for (const f of folders(root)) {
    const d = join(root, f);
    if (existsSync(join(d, 'text_encoder')) && existsSync(join(d, 'unet')) && existsSync(join(d, 'vae_decoder'))) {
      return f;
    }
  }
  return null;
}

/** An unconditional prior (a folder without a text encoder and not an editor), or null. */
export function findPrior(root: string): string | null {
  const candidates = folders(root).filter((f) => {
    const d = join(root, f);
    if (existsSync(join(d, 'text_encoder'))) return false;
    if (!existsSync(join(d, 'unet')) && !existsSync(join(d, 'transformer'))) return false;
    const name = f.toLowerCase();
    return !name.includes('edit') && !name.includes('pix2pix') && !name.includes('classifier');
  });
  return candidates.find((f) => f.toLowerCase().includes('base')) ?? candidates[0] ?? null;
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
}

/** API-format text-to-image prompt for the models under `root`; null when it holds none. */
export function demoWorkflow(root: string, o: DemoOptions = {}): Record<string, unknown> | null {
  const t2i = findT2I(root);
  if (!t2i) return null;
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
        preview_every: 2,
      },
    },
    decode: { class_type: 'VAEDecode', inputs: { samples: ['sample', 0], vae: ['load', 2] } },
    save: { class_type: 'SaveImage', inputs: { images: ['decode', 0], filename_prefix: o.prefix ?? 'server-test/pg' } },
  };
  if (prior) {
    p.base = { class_type: 'UNetLoader', inputs: { unet_path: prior } };
    p.neg = { class_type: 'Denoiser', inputs: { model: ['base', 0] } };
    p.guide = {
      class_type: 'PriorSwapCFGGuider',
      inputs: {
        model: ['pos', 0],
        prior: ['neg', 0],
        cfg: o.cfg ?? 4,
        guidance_rescale: 0,
        interval_sigma_lo: 0,
        interval_sigma_hi: 0,
      },
    };
  } else {
    p.neg = { class_type: 'Denoiser', inputs: { model: ['load', 0], conditioning: ['enc', 1] } };
    p.guide = {
      class_type: 'CFGGuider',
      inputs: {
        positive: ['pos', 0],
        negative: ['neg', 0],
        cfg: o.cfg ?? 4,
        guidance_rescale: 0,
        interval_sigma_lo: 0,
        interval_sigma_hi: 0,
      },
    };
  }
  return p;
}

/** The examples' ComfyUI API-format workflows (files whose JSON is `{id: {class_type, inputs}}`). */
export function exampleApiWorkflows(): Array<{ file: string; prompt: Record<string, unknown> }> {
  const out: Array<{ file: string; prompt: Record<string, unknown> }> = [];
  const walk = (d: string, depth: number) => {
    if (depth > 3) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'plugins') walk(p, depth + 1);
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
