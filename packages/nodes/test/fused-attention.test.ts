/**
 * Fused attention: a com.microsoft MultiHeadAttention node — what tools/bench/fuse_attention.py puts into
 * a Stable Diffusion UNet in place of each MatMul → Softmax → MatMul — against the unfused graph, on a
 * model this test writes (one attention, batch 2, 4096 queries, 4096 keys, head size 8), each through
 * the real model worker pool in a fresh process. The fused model loads unchanged, gives the unfused
 * numbers, and its run never holds the 4096 × 4096 score tensor: onnxruntime's CPU kernel computes the
 * attention in tiles sized from the L2 cache (MlasFlashAttention) — when the OS reports that cache's
 * size (sysconf); where it does not, onnxruntime falls back to materializing the scores, and the memory
 * check is skipped.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OnnxNode, onnxModel } from './onnx-writer.ts';

const BATCH = 2;
const TOKENS = 4096;
const HEAD = 8;
/** bytes of one score tensor (batch × queries × keys, fp32): 128 MiB */
const SCORES = BATCH * TOKENS * TOKENS * 4;
const l2 = Number(spawnSync('getconf', ['LEVEL2_CACHE_SIZE'], { encoding: 'utf8' }).stdout?.trim() || 0);

const dir = mkdtempSync(join(tmpdir(), 'pg-fused-attention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function model(fused: boolean): string {
  const file = join(dir, fused ? 'fused.onnx' : 'unfused.onnx');
  const nodes: OnnxNode[] = fused
    ? [
        {
          op: 'MultiHeadAttention',
          domain: 'com.microsoft',
          inputs: ['q', 'k', 'v'],
          outputs: ['o'],
          attrs: { num_heads: 1 },
        },
      ]
    : [
        { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 2, 1] } },
        { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['s0'] },
        { op: 'Mul', inputs: ['s0', 'scale'], outputs: ['s'] },
        { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
        { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
      ];
  const io = (name: string) => ({ name, dims: [BATCH, TOKENS, HEAD] });
  const bytes = onnxModel({
    nodes,
    initializers: fused ? [] : [{ name: 'scale', dims: [], values: [1 / Math.sqrt(HEAD)] }],
    inputs: ['q', 'k', 'v'].map(io),
    outputs: [io('o')],
  });
  writeFileSync(file, bytes);
  return file;
}

/** One fresh process: the peak RSS the first run adds over the loaded model, and the output. */
function run(file: string): { added: number; out: number[] } {
  const mod = JSON.stringify(fileURLToPath(new URL('../src/runtime/pool.ts', import.meta.url)));
  const n = BATCH * TOKENS * HEAD;
  const code = `import { readFileSync } from 'node:fs';
    import { RuntimePool } from ${mod};
    const field = (f) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(f + ':\\\\s+(\\\\d+) kB'))[1]) * 1024;
    const pool = new RuntimePool({ defaultThreads: 2 });
    const h = await pool.load(${JSON.stringify(file)});
    // pseudo-random values in (-m, m) (a sine hash; no shared state)
    const data = (seed, m = 1) => new Float32Array(${n}).map((_, i) => m * ((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1));
    const dims = [${BATCH}, ${TOKENS}, ${HEAD}];
    const loaded = field('VmRSS');
    const [out] = await h.run([
      { name: 'q', data: data(1, 8), dims },
      { name: 'k', data: data(2), dims },
      { name: 'v', data: data(3), dims },
    ]);
    const added = field('VmHWM') - loaded;
    await pool.dispose();
    process.stdout.write(JSON.stringify({ added, out: Array.from(out.data) }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('fused attention (com.microsoft MultiHeadAttention) through the model worker pool, real onnxruntime', () => {
  let unfused: ReturnType<typeof run>;
  let fused: ReturnType<typeof run>;
  beforeAll(() => {
    unfused = run(model(false));
    fused = run(model(true));
  }, 180_000);

  it('loads unchanged and gives the unfused attention’s numbers', () => {
    expect(fused.out.length).toBe(BATCH * TOKENS * HEAD);
    // (queries scaled by 8: logits with a standard deviation of ≈ 2.7, so the softmax is far from uniform)
    // each output is a softmax-weighted mean of 4096 values in [-1, 1]; summed in another order (tiles,
    // rescaled running sums) fp32 can differ by up to n·ε·Σ|p·v| ≤ 4096 · 2⁻²⁴ ≈ 2.4e-4
    const bound = TOKENS * 2 ** -24;
    let max = 0;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < fused.out.length; i++) {
      max = Math.max(max, Math.abs(fused.out[i] - unfused.out[i]));
      lo = Math.min(lo, unfused.out[i]);
      hi = Math.max(hi, unfused.out[i]);
    }
    expect(max).toBeLessThan(bound);
    // not a constant output: the check compares something
    expect(hi - lo).toBeGreaterThan(0.1);
  });

  it.skipIf(!(l2 > 0))('never holds the score tensor (the unfused graph holds at least one)', () => {
    expect(unfused.added).toBeGreaterThan(SCORES);
    // tiles, the transposed Q/K/V and the output: 8.7 MB measured (onnxruntime 1.30, 2 threads, 1 MiB L2),
    // against 151 MB for the unfused graph; the max. difference of the outputs was 7.7e-7
    expect(fused.added).toBeLessThan(0.1 * SCORES);
  });
});
