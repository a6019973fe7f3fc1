// Replays the fixtures written by tools/train/export.py (fixed inputs + PyTorch outputs) through
// onnxruntime-node and checks every output matches within 1e-4 (absolute, plus 1e-4 relative).
//   node tools/train/check_onnx.mjs [fixture-dir]     (default /tmp/priorgraph_ckpt/onnx_check)
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch {
    const pnpmDir = join(here, '..', '..', 'node_modules', '.pnpm');
    const hit = existsSync(pnpmDir) && readdirSync(pnpmDir).find((d) => d.startsWith('onnxruntime-node@'));
    if (!hit) throw new Error('onnxruntime-node not found; run pnpm install');
    return require(join(pnpmDir, hit, 'node_modules', 'onnxruntime-node'));
  }
}
const ort = loadOrt();
const dir = process.argv[2] ?? '/tmp/priorgraph_ckpt/onnx_check';
const arrays = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array };
let failed = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const fx = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const session = await ort.InferenceSession.create(fx.model, { intraOpNumThreads: 1 });
  const feeds = {};
  for (const [name, t] of Object.entries(fx.inputs)) {
    const data = t.dtype === 'int64' ? BigInt64Array.from(t.data.map((v) => BigInt(v))) : arrays[t.dtype].from(t.data);
    feeds[name] = new ort.Tensor(t.dtype, data, t.dims);
  }
  const out = await session.run(feeds);
  const meta = session.inputMetadata ?? [];
  const parts = [];
  for (const [name, want] of Object.entries(fx.outputs)) {
    const got = out[name];
    let maxErr = 0;
    let bad = got.dims.join(',') !== want.dims.join(',');
    for (let i = 0; i < want.data.length; i++) {
      const err = Math.abs(got.data[i] - want.data[i]);
      maxErr = Math.max(maxErr, err);
      if (!(err <= 1e-4 + 1e-4 * Math.abs(want.data[i]))) bad = true;
    }
    if (bad) failed++;
    parts.push(`${name}[${got.dims}] max|diff| ${maxErr.toExponential(2)}${bad ? ' FAIL' : ''}`);
  }
  const ins = Object.entries(fx.inputs).map(([n, t]) => `${n}:${t.dtype}[${t.dims}]`).join(' ');
  console.log(`${file.replace('.json', '').padEnd(22)} ${ins} -> ${parts.join(', ')}${meta.length ? '' : ''}`);
}
if (failed) {
  console.error(`${failed} output(s) differ from PyTorch`);
  process.exit(1);
}
console.log('all ONNX outputs match PyTorch within 1e-4');
