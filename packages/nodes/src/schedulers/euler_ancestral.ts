/**
 * Euler ancestral — Karras et al. 2022 / k-diffusion's sample_euler_ancestral with η = 1
 * (diffusers' EulerAncestralDiscreteScheduler):
 *
 *   σ_up   = √(σ_{i+1}² · (σ_i² − σ_{i+1}²) / σ_i²)
 *   σ_down = √(σ_{i+1}² − σ_up²)
 *   x_{i+1} = x + (σ_down − σ_i)·(x − x̂0)/σ_i + σ_up · z,   z ~ N(0, I) from the rng
 *
 * The rng is drawn every step (also the last, where σ_up = 0), as diffusers does.
 */

import { toF32 } from './common.ts';
import { requireRng } from './ddim.ts';
import { SigmaScheduler } from './karras_base.ts';
import type { Rng, StepResult } from './types.ts';

export class EulerAncestralScheduler extends SigmaScheduler {
  readonly name = 'euler_ancestral' as const;

  protected get karras(): boolean {
    return false;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, rng?: Rng): StepResult {
    if (this.sigmas.length !== this.timesteps.length + 1) {
      throw new Error('scheduler euler_ancestral: call setTimesteps before step');
    }
    const r = requireRng(this.name, rng);
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i];
    const sigmaTo = this.sigmas[i + 1];
    const x0 = this.predX0(modelOutput, sample, sigma);
    const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(Math.max(0, sigmaTo * sigmaTo - sigmaUp * sigmaUp));
    const dt = sigmaDown - sigma;
    const noise = r.randn(sample.length);
    const prevSample = new Float32Array(sample.length);
    for (let k = 0; k < prevSample.length; k++) {
      const d = (sample[k] - x0[k]) / sigma;
      prevSample[k] = sample[k] + d * dt + noise[k] * sigmaUp;
    }
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: toF32(x0) };
  }
}
