/** The class-conditional DiT pair of the demo family (models/shapes-dit-class-{base,ft}; issue 12 §1):
 *  loading, a prior-swap run through the shipped example workflow, and out-of-range class labels. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromComfyPrompt, type WorkflowDocument } from '@priorgraph/core';
import { decode } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRuntime } from '../src/index.ts';
import { loadDenoiserModel } from '../src/models/load.ts';
import { numClassesOf } from '../src/nodes/conditioning.ts';
import { RuntimePool } from '../src/runtime/pool.ts';
import { doc, link, makeExecutor, makeHost, runDoc } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MODELS = process.env.PRIORGRAPH_DEMO_MODELS ?? join(ROOT, 'models');
const EXAMPLE = join(ROOT, 'examples', 'workflows', 'dit-class-priorswap.json');
const present = ['shapes-dit-class-base', 'shapes-dit-class-ft', 'shapes-t2i'].every((p) =>
  existsSync(join(MODELS, p, 'model_index.json')),
);

const pool = new RuntimePool({ defaultThreads: 1, memoryBudgetMB: 64 });
afterAll(async () => {
  await pool.dispose();
  await stopRuntime();
});

/** The example document with a short sampler (the graph itself unchanged). */
function example(steps: number, batch: number): WorkflowDocument {
  const d = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as WorkflowDocument;
  for (const id of ['sample_cfg', 'sample_swap']) {
    const inputs = d.nodes[id].inputs as Record<string, unknown>;
    inputs.steps = steps;
    inputs.batch_size = batch;
  }
  return d;
}

describe.skipIf(!present)('class-conditional DiT pair (models/shapes-dit-class-*)', () => {
  const host = makeHost({ modelRoots: [MODELS] });
  const { executor, registry } = makeExecutor(host);

  it('both load: hidden_states + float32 timestep + int64 class_labels, learned σ (8 outputs), v-prediction', async () => {
    for (const [folder, classes] of [
      ['shapes-dit-class-base', 24],
      ['shapes-dit-class-ft', 6],
    ] as const) {
      const m = await loadDenoiserModel(pool, join(MODELS, folder));
      expect(m.sig).toMatchObject({
        sampleName: 'hidden_states',
        timestepType: 'float32',
        classLabelsName: 'class_labels',
        inChannels: 4,
        outChannels: 8,
        latentChannels: 4,
        learnedSigma: true,
      });
      expect(m.handle.input('class_labels')?.type).toBe('int64');
      expect(m.predictionType).toBe('v_prediction');
      expect(m.latentSpace).toBe('shapes-vae-v1');
      expect(numClassesOf(m)).toBe(classes);
      // the variance half is trained (learned_range values), not the untrained zeros of shapes-dit
      const x = new Float32Array(2 * 4 * 64).map((_, i) => Math.sin(i));
      const [out] = await m.handle.run([
        { name: 'hidden_states', data: x, dims: [2, 4, 8, 8] },
        { name: 'timestep', data: Float32Array.from([500, 20]), dims: [2] },
        { name: 'class_labels', data: Float32Array.from([0, classes]), dims: [2] },
      ]);
      expect(out.dims).toEqual([2, 8, 8, 8]);
      const v = Array.from(out.data as Float32Array).filter((_, i) => Math.floor(i / 64) % 8 >= 4);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(1e-3);
    }
  });

  it('the example workflow (fine-tune class + base null class, prior swap beside CFG) runs and saves images', async () => {
    const { result } = await runDoc(executor, example(4, 2));
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
    const f = (result.outputs.save as { images: Array<{ filename: string }> }).images[0].filename;
    const png = decode(readFileSync(join(host.outputDir, f)));
    let min = 255;
    let max = 0;
    for (const p of png.data) {
      min = Math.min(min, p);
      max = Math.max(max, p);
    }
    expect(max - min).toBeGreaterThan(50);
  });

  it('its ComfyUI API form converts to the same graph and runs', async () => {
    const api = JSON.parse(readFileSync(EXAMPLE.replace(/\.json$/, '.api.json'), 'utf8'));
    const d = fromComfyPrompt(api, registry);
    expect(Object.keys(d.nodes).sort()).toEqual(Object.keys(example(30, 4).nodes).sort());
    for (const id of ['sample_cfg', 'sample_swap']) Object.assign(d.nodes[id].inputs, { steps: 3, batch_size: 1 });
    const { result } = await runDoc(executor, d);
    expect(result.error?.message ?? '').toBe('');
    expect(result.status).toBe('success');
  });

  const labelled = (classId: number, withModel: boolean) =>
    doc({
      ft: { type: 'UNetLoader', inputs: { unet_path: 'shapes-dit-class-ft' } },
      label: {
        type: 'ClassLabelConditioning',
        inputs: { class_id: classId, null_class: false, ...(withModel ? { model: link('ft', 'MODEL') } : {}) },
      },
      cond: { type: 'Denoiser', inputs: { model: link('ft', 'MODEL'), conditioning: link('label', 'CONDITIONING') } },
      guide: { type: 'BasicGuider', inputs: { denoiser: link('cond', 'DENOISER') } },
      sched: {
        type: 'Scheduler',
        inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}', model: link('ft', 'MODEL') },
      },
      sample: {
        type: 'Sampler',
        inputs: {
          guider: link('guide', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 1,
          steps: 2,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
        },
      },
    });

  it('a class label past the null class is refused by the label node, naming its input', async () => {
    const { result } = await runDoc(executor, labelled(7, true), { outputs: ['sample'] });
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('label');
    expect(result.error?.message).toMatch(/class_id.*7.*null class 6/);
  });

  it("a label node without the model: the Denoiser refuses the label against the model's class count", async () => {
    const { result } = await runDoc(executor, labelled(23, false), { outputs: ['sample'] });
    expect(result.status).toBe('error');
    expect(result.error?.nodeId).toBe('cond');
    expect(result.error?.message).toMatch(/conditioning.*class label 23 is out of range.*classes 0–5, null class 6/);
  });

  it('the null class itself and the last class are accepted', async () => {
    for (const k of [5, 6]) {
      const { result } = await runDoc(executor, labelled(k, false), { outputs: ['sample'] });
      expect(result.error?.message ?? '').toBe('');
    }
  });
});
