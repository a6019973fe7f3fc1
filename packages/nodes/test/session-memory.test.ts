/**
 * The sessions' memory options (runtime/options.ts), on a model this test writes: three unfused
 * attentions (MatMul → Softmax → MatMul, plus a residual Add) over 4096 query tokens with 1024, 4096
 * and 2048 keys, so that a run's activations (score tensors of 32, 128 and 64 MB) dwarf everything else
 * and come in several sizes, as in a UNet. With onnxruntime's defaults (CPU arena and memory pattern
 * both on) every run after the first allocates the recorded pattern as one contiguous block, which the
 * arena's chunks of the first run do not hold, so the arena grows again; the runtime's default
 * (pattern off) reuses those chunks. Measured as the peak RSS a fresh process adds after loading, over
 * the first run and over three runs, through the real model worker pool.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { sessionOptions } from '../src/runtime/options.ts';
import { type OnnxInitializer, type OnnxNode, onnxModel } from './onnx-writer.ts';

const BATCH = 2;
const QUERIES = 4096;
const KEYS = [1024, 4096, 2048];
const DIM = 8;
/** bytes of the largest score tensor (batch × queries × keys, fp32) */
const SCORES = BATCH * QUERIES * Math.max(...KEYS) * 4;

const dir = mkdtempSync(join(tmpdir(), 'pg-session-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function attentionModel(): string {
  const file = join(dir, 'attention.onnx');
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  let x = 'q';
  KEYS.forEach((keys, i) => {
    initializers.push(
      { name: `k${i}`, dims: [DIM, keys], values: Array.from({ length: DIM * keys }, (_, j) => Math.sin(j) * 0.1) },
      { name: `v${i}`, dims: [keys, DIM], values: Array.from({ length: keys * DIM }, (_, j) => Math.cos(j)) },
    );
    nodes.push(
      { op: 'MatMul', inputs: [x, `k${i}`], outputs: [`s${i}`] },
      { op: 'Softmax', inputs: [`s${i}`], outputs: [`p${i}`], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: [`p${i}`, `v${i}`], outputs: [`o${i}`] },
      { op: 'Add', inputs: [`o${i}`, x], outputs: [`r${i}`] },
    );
    x = `r${i}`;
  });
  const bytes = onnxModel({
    nodes,
    initializers,
    inputs: [{ name: 'q', dims: [BATCH, QUERIES, DIM] }],
    outputs: [{ name: x, dims: [BATCH, QUERIES, DIM] }],
  });
  writeFileSync(file, bytes);
  return file;
}

interface Peaks {
  /** peak RSS added over the loaded process by the first run, and by three runs */
  first: number;
  all: number;
  sum: number;
}

/** One fresh process; `memoryPattern` false leaves the pool at its default. */
function peaks(model: string, memoryPattern: boolean): Peaks {
  const mod = JSON.stringify(fileURLToPath(new URL('../src/runtime/pool.ts', import.meta.url)));
  const code = `import { readFileSync } from 'node:fs';
    import { RuntimePool } from ${mod};
    const field = (f) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(f + ':\\\\s+(\\\\d+) kB'))[1]) * 1024;
    const pool = new RuntimePool({ defaultThreads: 1${memoryPattern ? ', memoryPattern: true' : ''} });
    const h = await pool.load(${JSON.stringify(model)});
    const q = new Float32Array(${BATCH * QUERIES * DIM}).map((_, i) => Math.sin(i * 0.37));
    const loaded = field('VmRSS');
    let first = 0;
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      const [out] = await h.run([{ name: 'q', data: q, dims: [${BATCH}, ${QUERIES}, ${DIM}] }]);
      sum = out.data.reduce((a, b) => a + b, 0);
      if (i === 0) first = field('VmHWM') - loaded;
    }
    const all = field('VmHWM') - loaded;
    await pool.dispose();
    process.stdout.write(JSON.stringify({ first, all, sum }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('session memory options (a written attention model with 32–128 MB score tensors, real onnxruntime)', () => {
  it('the default keeps the CPU arena and turns the memory pattern off; the host can turn it on', () => {
    expect(sessionOptions(['cpu'], 2)).toMatchObject({ enableCpuMemArena: true, enableMemPattern: false });
    expect(sessionOptions(['cpu'], 2, { memoryPattern: true }).enableMemPattern).toBe(true);
  });

  it('later runs reuse the first run’s memory by default; with the pattern on they add a block', () => {
    const model = attentionModel();
    const off = peaks(model, false);
    const on = peaks(model, true);
    // the first run holds at least the largest score tensor either way
    expect(off.first).toBeGreaterThan(SCORES);
    expect(on.first).toBeGreaterThan(SCORES);
    // default: two more runs add well under the largest score tensor (36 MB measured: arena slack);
    // pattern on: they add more than all of it (the pattern's block: 180 MB measured, onnxruntime 1.30)
    expect(off.all - off.first).toBeLessThan(0.4 * SCORES);
    expect(on.all - on.first).toBeGreaterThan(SCORES);
    // memory planning does not change the numbers
    expect(on.sum).toBe(off.sum);
  }, 180_000);
});
