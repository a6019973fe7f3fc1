/**
 * priorgraph vs a plain PyTorch loop on the same trained weights (issue 4 §5).
 *
 * (a) PyTorch: tools/bench/torch_sample.py under /usr/bin/python3 — an eager, diffusers-style DDIM loop
 *     over the tools/train/nets.py modules, whose weights are loaded from the committed ONNX files
 *     (models/shapes-*); standard CFG as ONE batch-2 UNet call per step, prior swap as two calls (the
 *     fine-tuned UNet, then the base UNet) one after the other. Timed twice: with nn.Linear as diffusers
 *     runs it, and with tools/train's 1-D-convolution linear layers (Debian's torch links the reference
 *     BLAS, where F.linear is slow; that variant is usually the faster eager PyTorch here, and the headline
 *     ratio uses the faster of the two).
 * (b) priorgraph: a workflow document (DiffusersLoader → CLIPTextEncode → Denoiser(s) → CFGGuider or
 *     PriorSwapCFGGuider → Sampler (DDIM) → VAEDecode) run through core's Executor with the built-in
 *     nodes plugin. Each timed run uses a new seed, so the sampler and decoder really run; the text
 *     encoding and the loaders are served from the executor's cache, as they would be for a user.
 *
 * Same scheduler (DDIM, eta 0, the models' scheduler_config), steps, guidance, batch size and thread
 * count (2) on both sides. Prints a markdown table: wall time per image and priorgraph ÷ PyTorch.
 *
 *   node --import tsx bench/torch-vs-priorgraph.bench.ts [steps=30] [rounds=5] [batch=1] [guidance=5]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  defineNode,
  definePlugin,
  Executor,
  type HostInfo,
  Registry,
  type WorkflowDocument,
} from '../packages/core/src/index.ts';
import { machine } from '../packages/nodes/bench/common.ts';
import nodesPlugin, { stopRuntime } from '../packages/nodes/src/index.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MODELS = join(ROOT, 'models');
const steps = Number(process.argv[2] ?? 30);
const rounds = Number(process.argv[3] ?? 5);
const batch = Number(process.argv[4] ?? 1);
const guidance = Number(process.argv[5] ?? 5);
const THREADS = 2;
const WARMUP = 2;
const PROMPT = 'a red circle on a light background';

if (!existsSync(join(MODELS, 'shapes-t2i', 'model_index.json'))) {
  console.error(`no demo models under ${MODELS} (run tools/train/train_all.py)`);
  process.exit(1);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ------------------------------------------------------------------ (a) PyTorch
type Mode = 'cfg' | 'priorswap';
interface TorchResult {
  per_image_ms: number[];
  torch: string;
  weights: string;
}
function torchRun(mode: Mode, linear: 'plain' | 'conv'): TorchResult {
  const out = execFileSync(
    '/usr/bin/python3',
    [
      join(ROOT, 'tools/bench/torch_sample.py'),
      ...['--mode', mode, '--steps', String(steps), '--batch', String(batch), '--guidance', String(guidance)],
      ...['--threads', String(THREADS), '--rounds', String(rounds), '--warmup', String(WARMUP)],
      ...['--linear', linear, '--prompt', PROMPT],
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 24 },
  );
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as TorchResult;
  } catch {
    throw new Error(`tools/bench/torch_sample.py (${mode}, ${linear}): no result line in its output: ${out}`);
  }
}

// ------------------------------------------------------------------ (b) priorgraph
const sink = definePlugin({
  name: 'bench',
  version: '0.1.0',
  nodes: [
    defineNode({
      type: 'Sink',
      version: 1,
      category: 'bench',
      description: 'Takes the decoded images and drops them (an output node, so the graph runs).',
      outputNode: true,
      notIdempotent: true,
      inputs: { images: { kind: 'socket', type: 'IMAGE' } },
      outputs: [],
      execute() {
        return {};
      },
    }),
  ],
});

const link = (node: string, output: string) => ({ node, output });
function doc(nodes: Record<string, { type: string; inputs: Record<string, unknown> }>): WorkflowDocument {
  const out: Record<string, unknown> = {};
  for (const [id, n] of Object.entries(nodes))
    out[id] = { type: n.type.includes('.') ? n.type : `priorgraph.${n.type}`, version: 1, inputs: n.inputs };
  return { format: 'priorgraph', version: 1, nodes: out } as unknown as WorkflowDocument;
}
const g0 = { cfg: guidance, guidance_rescale: 0, interval_sigma_lo: 0, interval_sigma_hi: 0 };
function workflow(mode: Mode, seed: number) {
  return doc({
    load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
    enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: PROMPT } },
    cond: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'CONDITIONING') } },
    ...(mode === 'cfg'
      ? {
          uncond: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'EMPTY') } },
          guider: {
            type: 'CFGGuider',
            inputs: { positive: link('cond', 'DENOISER'), negative: link('uncond', 'DENOISER'), ...g0 },
          },
        }
      : {
          prior: { type: 'UNetLoader', inputs: { unet_path: 'shapes-base' } },
          prior_den: { type: 'Denoiser', inputs: { model: link('prior', 'MODEL') } },
          guider: {
            type: 'PriorSwapCFGGuider',
            inputs: { model: link('cond', 'DENOISER'), prior: link('prior_den', 'DENOISER'), ...g0 },
          },
        }),
    sched: {
      type: 'Scheduler',
      inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('load', 'MODEL') },
    },
    sample: {
      type: 'Sampler',
      inputs: {
        guider: link('guider', 'GUIDER'),
        scheduler: link('sched', 'SCHEDULER'),
        seed,
        steps,
        denoise: 1,
        batch_size: batch,
        preview_every: 0,
      },
    },
    decode: { type: 'VAEDecode', inputs: { samples: link('sample', 'LATENT'), vae: link('load', 'VAE') } },
    out: { type: 'bench.Sink', inputs: { images: link('decode', 'IMAGE') } },
  });
}

const base = mkdtempSync(join(tmpdir(), 'pg-torch-bench-'));
const host: HostInfo = {
  modelRoots: [MODELS],
  outputDir: join(base, 'output'),
  inputDir: join(base, 'input'),
  tempDir: join(base, 'temp'),
  config: { executionProviders: ['cpu'], intraOpNumThreads: THREADS },
};
const registry = new Registry();
registry.register(nodesPlugin, '@priorgraph/nodes');
registry.register(sink, 'bench');
await nodesPlugin.setup?.(host, console as never);
const executor = new Executor(registry, { host });
let runs = 0;
async function priorgraphRun(mode: Mode): Promise<number[]> {
  const per: number[] = [];
  for (let r = 0; r < WARMUP + rounds; r++) {
    const t0 = performance.now();
    const res = await executor.run(workflow(mode, 1 + r), { promptId: `bench-${runs++}` });
    const ms = performance.now() - t0;
    if (res.status !== 'success') throw new Error(`priorgraph ${mode} run failed: ${JSON.stringify(res.error)}`);
    if (r >= WARMUP) per.push(ms / batch);
  }
  return per;
}

// ------------------------------------------------------------------ run side by side
const rows: string[] = [];
let torchVersion = '';
const load0 = loadavg()[0];
for (const mode of ['cfg', 'priorswap'] as const) {
  const tPlain = torchRun(mode, 'plain');
  const tConv = torchRun(mode, 'conv');
  torchVersion = tConv.torch;
  const pg = await priorgraphRun(mode);
  const mp = median(tPlain.per_image_ms);
  const mc = median(tConv.per_image_ms);
  const mg = median(pg);
  const label = mode === 'cfg' ? 'standard CFG (batch-2 call / step)' : 'prior swap (base UNet as ∅ branch)';
  rows.push(
    `| ${label} | ${mp.toFixed(1)} | ${mc.toFixed(1)} | ${mg.toFixed(1)} | **${(Math.min(mp, mc) / mg).toFixed(2)}×** | ${(mp / mg).toFixed(2)}× |`,
  );
  process.stderr.write(
    `${mode}: torch plain ${mp.toFixed(1)} ms, torch conv ${mc.toFixed(1)} ms, priorgraph ${mg.toFixed(1)} ms\n`,
  );
}
await stopRuntime();

console.log(
  `\n## priorgraph vs PyTorch eager — shapes demo models, DDIM ${steps} steps, w=${guidance}, batch ${batch}, ${THREADS} threads each, median of ${rounds} runs (after ${WARMUP} warm-up)\n`,
);
console.log(
  `Machine: ${machine()}; torch ${torchVersion} (/usr/bin/python3); load average ${load0.toFixed(2)} → ${loadavg()[0].toFixed(2)}\n`,
);
console.log(
  '| guidance | PyTorch, nn.Linear (ms/image) | PyTorch, conv-linear (ms/image) | priorgraph (ms/image) | speed-up vs fastest PyTorch | speed-up vs nn.Linear |',
);
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(
  '\nSpeed-up = PyTorch ÷ priorgraph wall time per image (goal ≥ 1.6). PyTorch weights: the ONNX initializers of models/ loaded into tools/train/nets.py (checked bit-exact by re-export).',
);
