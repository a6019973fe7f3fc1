/**
 * Tiny video denoisers written by the tests (onnx-writer.ts), in the contract's layout: `sample`
 * [B, C_in, T, h, w] (C_in 4, or 8 = x_t ‖ image latent), `timestep` [B] float32,
 * `encoder_hidden_states` [B, 8, 64]; output `out_sample` [B, 4, T, h, w]. Each computes, elementwise,
 *   ε = a·x + c·img + b·mean(ehs of its item) + d·t + e·(frame index)
 * so a test can state every output in float64 (`videoEps`). Saved as diffusers folders (model_index.json,
 * unet/model.onnx, scheduler/) under a temporary model root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type OnnxInitializer, type OnnxNode, onnxModel } from './onnx-writer.ts';

export interface VideoCoefs {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
}

export const EHS_SEQ = 8;
export const EHS_DIM = 64;

export const DDIM_CONFIG = {
  _class_name: 'DDIMScheduler',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  prediction_type: 'epsilon',
  clip_sample: false,
  set_alpha_to_one: false,
  steps_offset: 1,
  timestep_spacing: 'leading',
};

export interface VideoModelOptions {
  inC: 4 | 8;
  frames: number;
  k: VideoCoefs;
  /** false: an unconditional model (no encoder_hidden_states; b unused) */
  ehs?: boolean;
}

/** The graph of one video denoiser; `frames` fixed (the frame term needs T), h and w symbolic. */
export function videoDenoiserOnnx(o: VideoModelOptions): Uint8Array {
  const ehs = o.ehs ?? true;
  const scalar = (name: string, v: number): OnnxInitializer => ({ name, dims: [], values: [v] });
  const ints = (name: string, values: number[]): OnnxInitializer => ({
    name,
    dims: [values.length],
    values,
    int64: true,
  });
  const init: OnnxInitializer[] = [
    scalar('a', o.k.a),
    scalar('b', o.k.b),
    scalar('d', o.k.d),
    { name: 'frame', dims: [1, 1, o.frames, 1, 1], values: Array.from({ length: o.frames }, (_, t) => o.k.e * t) },
    ints('to5', [-1, 1, 1, 1, 1]),
    ...(ehs ? [] : [scalar('zero', 0)]),
  ];
  const nodes: OnnxNode[] = [];
  let x = 'sample';
  if (o.inC === 8) {
    init.push(scalar('c', o.k.c), ints('s0', [0]), ints('s4', [4]), ints('s8', [8]), ints('ax1', [1]));
    nodes.push({ op: 'Slice', inputs: ['sample', 's0', 's4', 'ax1'], outputs: ['x'] });
    nodes.push({ op: 'Slice', inputs: ['sample', 's4', 's8', 'ax1'], outputs: ['img'] });
    nodes.push({ op: 'Mul', inputs: ['img', 'c'], outputs: ['ci'] });
    x = 'x';
  }
  nodes.push(
    { op: 'Reshape', inputs: ['timestep', 'to5'], outputs: ['t5'] },
    { op: 'Mul', inputs: [x, 'a'], outputs: ['ax'] },
    ...(ehs
      ? [
          {
            op: 'ReduceMean',
            inputs: ['encoder_hidden_states'],
            outputs: ['m3'],
            attrs: { axes: [1, 2], keepdims: 1 },
          },
          { op: 'Reshape', inputs: ['m3', 'to5'], outputs: ['m5'] },
          { op: 'Mul', inputs: ['m5', 'b'], outputs: ['bm'] },
        ]
      : [{ op: 'Mul', inputs: ['t5', 'zero'], outputs: ['bm'] }]),
    { op: 'Mul', inputs: ['t5', 'd'], outputs: ['dt'] },
    { op: 'Add', inputs: [o.inC === 8 ? 'ci' : 'ax', o.inC === 8 ? 'ax' : 'bm'], outputs: ['s1'] },
    { op: 'Add', inputs: ['s1', o.inC === 8 ? 'bm' : 'dt'], outputs: ['s2'] },
    { op: 'Add', inputs: ['s2', o.inC === 8 ? 'dt' : 'frame'], outputs: [o.inC === 8 ? 's3' : 'out_sample'] },
  );
  if (o.inC === 8) nodes.push({ op: 'Add', inputs: ['s3', 'frame'], outputs: ['out_sample'] });
  return onnxModel({
    nodes,
    initializers: init,
    inputs: [
      { name: 'sample', dims: ['batch', o.inC, o.frames, 'h', 'w'] },
      { name: 'timestep', dims: ['batch'] },
      ...(ehs ? [{ name: 'encoder_hidden_states', dims: ['batch', EHS_SEQ, EHS_DIM] }] : []),
    ],
    outputs: [{ name: 'out_sample', dims: ['batch', 4, o.frames, 'h', 'w'] }],
  });
}

/** Write a diffusers folder <root>/<name> holding one video denoiser. */
export function writeVideoModel(root: string, name: string, o: VideoModelOptions): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'unet'), { recursive: true });
  mkdirSync(join(dir, 'scheduler'), { recursive: true });
  writeFileSync(
    join(dir, 'model_index.json'),
    JSON.stringify({ _class_name: 'TestVideoPipeline', unet: ['diffusers', 'OnnxRuntimeModel'] }),
  );
  writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(DDIM_CONFIG));
  writeFileSync(join(dir, 'unet', 'model.onnx'), videoDenoiserOnnx(o));
  return dir;
}

/**
 * ε of such a model in float64 for a batch [B, 4, T, h, w]: `x` the latents, `img` the image latent
 * already laid out per item ([B, 4, T, h, w], or null), `ehsMean[b]` the mean of item b's hidden states.
 */
export function videoEps(
  k: VideoCoefs,
  shape: readonly number[],
  x: ArrayLike<number>,
  img: ArrayLike<number> | null,
  ehsMean: number[],
  t: number,
): Float64Array {
  const [B, C, T, h, w] = shape;
  const out = new Float64Array(B * C * T * h * w);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let f = 0; f < T; f++)
        for (let p = 0; p < h * w; p++) {
          const i = ((b * C + c) * T + f) * h * w + p;
          out[i] = k.a * x[i] + (img ? k.c * img[i] : 0) + k.b * ehsMean[b] + k.d * t + k.e * f;
        }
  return out;
}
