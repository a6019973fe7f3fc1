/** The evaluation command end to end on the shipped demo models, at a tiny size. */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRuntime } from '../../../packages/nodes/src/index.ts';
import { evaluate } from '../run.ts';
import { SYSTEMS } from '../systems/index.ts';
import { METHODS } from '../systems/shapes.ts';

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

afterAll(async () => {
  await stopRuntime();
});

describe('evaluation (tools/eval/run.ts)', () => {
  it('runs every system (quick size); the shapes system runs every method through the engine and writes the table, plot and grids', async () => {
    expect(existsSync(join(MODELS, 'eval', 'reference_stats.json'))).toBe(true);
    const out = mkdtempSync(join(tmpdir(), 'pg-eval-'));
    // every registered system at its quick size: each must make exactly the runs it announced
    const all = await evaluate({ out, quick: true, steps: 6, quiet: true });
    expect(Object.keys(all.systems)).toEqual(SYSTEMS.map((s) => s.id));
    expect(all.runs.done).toBe(all.runs.planned);
    const r = all.systems.shapes as unknown as {
      t2i: Record<string, { fd_per_prompt: { mean: number }; kid_per_prompt: { mean: number }; samples: number }>;
      noise_floor: { fd_per_prompt: { mean: number }; kid_per_prompt: { mean: number }; real_per_prompt: number };
      unconditional: Record<string, { fd_to_finetune_data: number; kid_to_finetune_data: number }>;
    };
    for (const f of [
      'results.json',
      'results.md',
      'plot.svg',
      'plot.png',
      'grid-t2i.png',
      'grid-uncond.png',
      'grid-edit.png',
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    // At w = 1 every guidance form is the conditional prediction alone: same seeds, same images, same FD.
    const at1 = METHODS.map((m) => r.t2i[`${m.id}@1`].fd_per_prompt.mean);
    expect(new Set(at1).size).toBe(1);
    // At w = 3 the unconditional branch matters, so CFG and prior swap differ.
    expect(r.t2i['cfg@3'].fd_per_prompt.mean).not.toBe(r.t2i['swap-base@3'].fd_per_prompt.mean);
    expect(r.t2i['cfg@3'].samples).toBe(8);
    // The noise floor scores fresh real images the same way, at the same sample size (4 per prompt here).
    expect(r.noise_floor.real_per_prompt).toBe(4);
    expect(r.noise_floor.fd_per_prompt.mean).toBeGreaterThan(0);
    expect(Number.isFinite(r.noise_floor.kid_per_prompt.mean)).toBe(true);
    expect(Number.isFinite(r.t2i['cfg@3'].kid_per_prompt.mean)).toBe(true);
    // Real fine-tune images are closer to the fine-tune data than to the base data, by both measures.
    const realFt = r.unconditional['real ft data (floor)'];
    expect(realFt.kid_to_finetune_data).toBeLessThan(r.unconditional['real base data (floor)'].kid_to_finetune_data);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/\| swap-dit \| 3 \|/);
    expect(md).toMatch(/\| real images \(noise floor\) \|/);
    expect(md).toMatch(/^## Text-to-image and InstructPix2Pix/m);
    // --only re-runs one system and keeps the others' sections from the previous results.json
    const again = await evaluate({ out, quick: true, steps: 6, only: ['dit-class'], quiet: true });
    expect(Object.keys(again.systems)).toEqual(SYSTEMS.map((s) => s.id));
    expect(again.runs.done).toBe(again.runs.planned);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/^## Text-to-image and InstructPix2Pix/m);
  }, 240_000);

  it('refuses an unknown system name, listing the known ones', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pg-eval-'));
    await expect(evaluate({ out, quick: true, steps: 6, only: ['nope'], quiet: true })).rejects.toThrow(
      /--only: no system nope \(known: shapes/,
    );
  });
});
