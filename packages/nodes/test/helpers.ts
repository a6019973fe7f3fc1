import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ExecutionEvent, Executor, type HostInfo, Registry, type WorkflowDocument } from '@priorgraph/core';
import plugin from '../src/index.ts';

export const FIXTURES = fileURLToPath(new URL('./fixtures/models/', import.meta.url));
export const fixture = (p: string) => join(FIXTURES, p);

export function makeHost(extra: Partial<HostInfo> = {}): HostInfo {
  const base = mkdtempSync(join(tmpdir(), 'pg-nodes-'));
  return {
    modelRoots: [FIXTURES],
    outputDir: join(base, 'output'),
    inputDir: join(base, 'input'),
    tempDir: join(base, 'temp'),
    config: { executionProviders: ['cpu'], modelMemoryBudgetMB: 256 },
    ...extra,
  };
}

export function makeExecutor(host: HostInfo) {
  const registry = new Registry();
  registry.register(plugin, '@priorgraph/nodes');
  return { registry, executor: new Executor(registry, { host }) };
}

type NodeSpec = { type: string; inputs: Record<string, unknown> };
export function doc(nodes: Record<string, NodeSpec>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes))
    out[id] = { type: `priorgraph.${n.type}`, version: 1, mode: 'normal', inputs: n.inputs };
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}

export const link = (node: string, output: string) => ({ node, output });

export async function runDoc(
  executor: Executor,
  d: WorkflowDocument,
  opts: { signal?: AbortSignal; outputs?: string[]; validate?: boolean } = {},
) {
  const events: ExecutionEvent[] = [];
  const result = await executor.run(d, { promptId: `p${Math.random()}`, onEvent: (e) => events.push(e), ...opts });
  return { result, events };
}

/** A text-to-image graph on the tiny-t2i fixture; `guider` chooses CFG or prior swap against tiny-base. */
export function t2iGraph(o: {
  guider: 'cfg' | 'priorswap';
  prior?: string;
  priorCond?: boolean;
  cfg?: number;
  steps?: number;
  save?: boolean;
  seed?: number;
}) {
  const nodes: Record<string, NodeSpec> = {
    load: { type: 'DiffusersLoader', inputs: { model_path: 'tiny-t2i' } },
    enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: 'a red circle' } },
    pos: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'CONDITIONING') } },
    sched: { type: 'Scheduler', inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' } },
    sample: {
      type: 'Sampler',
      inputs: {
        guider: link('guide', 'GUIDER'),
        scheduler: link('sched', 'SCHEDULER'),
        seed: o.seed ?? 42,
        steps: o.steps ?? 6,
        denoise: 1,
        batch_size: 2,
        preview_every: 2,
      },
    },
    decode: { type: 'VAEDecode', inputs: { samples: link('sample', 'LATENT'), vae: link('load', 'VAE') } },
  };
  if (o.guider === 'cfg') {
    nodes.neg = { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'EMPTY') } };
    nodes.guide = {
      type: 'CFGGuider',
      inputs: {
        positive: link('pos', 'DENOISER'),
        negative: link('neg', 'DENOISER'),
        cfg: o.cfg ?? 4,
        guidance_rescale: 0,
        interval_sigma_lo: 0,
        interval_sigma_hi: 0,
      },
    };
  } else {
    nodes.base = { type: 'UNetLoader', inputs: { unet_path: o.prior ?? 'tiny-base' } };
    nodes.neg = {
      type: 'Denoiser',
      inputs: o.priorCond
        ? { model: link('base', 'MODEL'), conditioning: link('enc', 'EMPTY') }
        : { model: link('base', 'MODEL') },
    };
    nodes.guide = {
      type: 'PriorSwapCFGGuider',
      inputs: {
        model: link('pos', 'DENOISER'),
        prior: link('neg', 'DENOISER'),
        cfg: o.cfg ?? 4,
        guidance_rescale: 0,
        interval_sigma_lo: 0,
        interval_sigma_hi: 0,
      },
    };
  }
  nodes.out = o.save
    ? { type: 'SaveImage', inputs: { images: link('decode', 'IMAGE'), filename_prefix: 'test/pg' } }
    : { type: 'PreviewImage', inputs: { images: link('decode', 'IMAGE') } };
  return doc(nodes);
}
