/** Facts read from a model when its session metadata leaves them open, and batch-wide scalar inputs. */
import { describe, expect, it } from 'vitest';
import { convInputChannels } from '../src/models/onnx-graph.ts';
import { fitToDeclaredShape } from '../src/runtime/protocol.ts';
import { fixture } from './helpers.ts';

describe('convInputChannels (the first Conv weight fed by an input)', () => {
  it('reads the input channels of the Conv a sample input feeds, through Cast', () => {
    expect(convInputChannels(fixture('single/bench_unet.onnx'), 'sample')).toBe(4);
    expect(convInputChannels(fixture('single/other_latent.onnx'), 'sample')).toBe(3);
    // the fp16 model casts its float32 input before the first Conv
    expect(convInputChannels(fixture('single/unet_fp16.onnx'), 'sample')).toBe(4);
  });
  it('is null when the graph does not say (no such input, not a file)', () => {
    expect(convInputChannels(fixture('single/bench_unet.onnx'), 'timestep')).toBeNull();
    expect(convInputChannels(fixture('single/missing.onnx'), 'sample')).toBeNull();
  });
});

describe('fitToDeclaredShape', () => {
  const ts = (v: number[]) => ({ name: 'timestep', data: Float32Array.from(v), dims: [v.length] });
  it('passes one value for the batch to an input declared as a scalar or [1]', () => {
    expect(fitToDeclaredShape(ts([981, 981, 981]), [])).toEqual({
      name: 'timestep',
      data: Float32Array.from([981]),
      dims: [],
    });
    expect(fitToDeclaredShape(ts([5, 5]), [1]).dims).toEqual([1]);
    // a batch of one is still reshaped to the declared rank 0 (onnxruntime would take [1] and broadcast wrongly)
    expect(fitToDeclaredShape(ts([7]), []).dims).toEqual([]);
  });
  it('leaves per-item inputs alone', () => {
    const t = ts([1, 2]);
    expect(fitToDeclaredShape(t, ['batch'])).toBe(t);
    expect(fitToDeclaredShape(t, [2])).toBe(t);
  });
  it('refuses different per-item values for a batch-wide input, naming it', () => {
    expect(() => fitToDeclaredShape(ts([1, 2]), [])).toThrow(/input "timestep" takes one value for the whole batch/);
  });
});
