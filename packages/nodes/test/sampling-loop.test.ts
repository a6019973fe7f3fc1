/** The step loop's prepared calls (runtime/sampling-loop.ts CallCache): a run reuses its call groups,
 *  buffers and input lists from step to step, also when the guidance method asks for another set of
 *  branches at some σ (a guidance interval). What the models see and what the guider returns must be
 *  what a fresh preparation at every step gives. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cfgMethod } from '../src/guiders/cfg.ts';
import type { DenoiserSpec, GuiderSpec } from '../src/runtime/plan.ts';
import type { HostTensor } from '../src/runtime/protocol.ts';
import { type CallModels, callCache, guide } from '../src/runtime/sampling-loop.ts';
import type { LatentShape } from '../src/types.ts';

const ALPHAS = Float64Array.from({ length: 1000 }, (_, i) => 1 - (i + 1) / 1001);

function spec(channel: number, label: string, ehs: number): DenoiserSpec {
  return {
    channel,
    label,
    sampleName: 'sample',
    timestepName: 'timestep',
    encoderHiddenStatesName: 'encoder_hidden_states',
    classLabelsName: null,
    inChannels: 4,
    predictionType: 'epsilon',
    alphasCumprod: ALPHAS,
    sameSchedule: true,
    ehs: Float32Array.of(ehs, ehs + 1),
    ehsDims: [1, 1, 2],
    classLabel: null,
    concat: null,
  };
}

/** A stand-in for the models: each output value depends on the call's sample, timestep, conditioning
 *  and model (channel), so a stale or misplaced input shows in the result. Records every call's inputs. */
function fakeModels(seen: string[]): CallModels {
  return (calls) =>
    calls.map(({ channel, inputs }) => {
      const byName = new Map(inputs.map((t) => [t.name, t]));
      const sample = byName.get('sample')!;
      const ts = byName.get('timestep')!.data as Float32Array;
      const ehs = byName.get('encoder_hidden_states')!.data as Float32Array;
      seen.push(JSON.stringify([channel, sample.dims, [...ts], [...ehs]]));
      const x = sample.data as Float32Array;
      const per = x.length / sample.dims[0];
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const item = Math.floor(i / per);
        out[i] = 0.5 * x[i] + 1e-3 * ts[item] + 0.1 * ehs[item * 2] + channel;
      }
      return [{ name: 'out', data: out, dims: sample.dims } satisfies HostTensor];
    });
}

describe('prepared model calls', () => {
  it('give what a fresh preparation at every step gives, as the branch set changes with σ (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }), // batch
        fc.boolean(), // both branches on one model (CFG) or on two (prior swap)
        fc.array(fc.double({ min: 0.05, max: 20, noNaN: true }), { minLength: 1, maxLength: 12 }), // σ per step
        fc.double({ min: 0, max: 10, noNaN: true }), // the interval's lower end (0: none)
        async (B, oneModel, sigmas, lo) => {
          const shape: LatentShape = [B, 4, 2, 3];
          const g: GuiderSpec = {
            kind: 'GUIDER',
            method: cfgMethod.name,
            label: 'cfg',
            denoisers: [spec(0, 'ft', 1), spec(oneModel ? 0 : 1, 'base', 5)],
            params: { cfg: 4, guidance_rescale: 0, interval_sigma_lo: lo, interval_sigma_hi: 0 },
          };
          const n = shape.reduce((a, b) => a * b, 1);
          const kept = callCache(shape);
          const seenKept: string[] = [];
          const seenFresh: string[] = [];
          for (let s = 0; s < sigmas.length; s++) {
            const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i + 7 * s));
            const t = 10 * s + 3;
            const a = await guide(g, x, t, sigmas[s], shape, fakeModels(seenKept), kept);
            const b = await guide(g, x, t, sigmas[s], shape, fakeModels(seenFresh)); // a new cache each step
            expect([...a]).toEqual([...b]);
          }
          expect(seenKept).toEqual(seenFresh);
        },
      ),
      { seed: 25, numRuns: 150 },
    );
  });
});
