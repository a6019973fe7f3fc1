/**
 * Euler — Karras et al. 2022 (EDM), Algorithm 2 with S_churn = 0 (diffusers' EulerDiscreteScheduler).
 * The probability-flow ODE dx/dσ = (x − x̂0)/σ, integrated with one explicit Euler step:
 *
 *   d = (x − x̂0(x, σ_i)) / σ_i
 *   x_{i+1} = x + (σ_{i+1} − σ_i) · d
 *
 * σ_i: np.interp of the training σ at the spaced timesteps, or Karras' ρ=7 levels when
 * use_karras_sigmas (timesteps then by log-σ interpolation, fractional); final σ = 0 or σ_min.
 */
import { toF32 } from './common.ts';
import { SigmaScheduler } from './karras_base.ts';
import type { StepResult } from './types.ts';

export class EulerScheduler extends SigmaScheduler {
  readonly name = 'euler' as const;

  protected get karras(): boolean {
    return this.config.use_karras_sigmas;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepResult {
    if (this.sigmas.length !== this.timesteps.length + 1)
      throw new Error('scheduler euler: call setTimesteps before step');
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i];
    const sigmaNext = this.sigmas[i + 1];
    const x0 = this.predX0(modelOutput, sample, sigma);
    const dt = sigmaNext - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let k = 0; k < prevSample.length; k++) {
      const d = (sample[k] - x0[k]) / sigma;
      prevSample[k] = sample[k] + d * dt;
    }
    this.stepIndex = i + 1;
    return { prevSample, predOriginalSample: toF32(x0) };
  }
}
