/**
 * The one list of guiders. Each file next to this one is a guidance method: its node(s), its GUIDER
 * params type, its pure combine function and its entry in the sampling loop's table. Adding a method
 * is a new file here and one line in each list below.
 */
import { APGGuider, apgMethod } from './apg.ts';
import { AutoGuidance } from './autoguidance.ts';
import { BasicGuider, singleMethod } from './basic.ts';
import { CFGGuider, cfgMethod } from './cfg.ts';
import { CFGZeroStarGuider, cfgZeroStarMethod } from './cfg-zero-star.ts';
import type { AnyGuidanceMethod } from './common.ts';
import { Denoiser } from './denoiser.ts';
import { InstructPix2PixGuider, twoConditionMethod } from './ip2p.ts';
import { PriorSwapCFGGuider } from './prior-swap.ts';

/** The nodes, in menu order. */
export const guiderNodes = [
  Denoiser,
  BasicGuider,
  CFGGuider,
  PriorSwapCFGGuider,
  InstructPix2PixGuider,
  AutoGuidance,
  APGGuider,
  CFGZeroStarGuider,
] as const;

/** The sampling loop's table: GUIDER.method → its entry. */
const methods: ReadonlyMap<string, AnyGuidanceMethod> = new Map(
  [singleMethod, cfgMethod, apgMethod, cfgZeroStarMethod, twoConditionMethod].map((m) => [m.name, m]),
);

export function guidanceMethod(name: string): AnyGuidanceMethod {
  const m = methods.get(name);
  if (!m) throw new Error(`unknown guidance method "${name}" (known: ${[...methods.keys()].join(', ')})`);
  return m;
}

export { APGGuider, apgCombine, apgMethod } from './apg.ts';
export { AutoGuidance } from './autoguidance.ts';
export { BasicGuider, singleMethod } from './basic.ts';
export { CFGGuider, cfgCombine, cfgGuider, cfgMethod } from './cfg.ts';
export { CFGZeroStarGuider, cfgZeroStarCombine, cfgZeroStarMethod } from './cfg-zero-star.ts';
export type { GuidanceMethod, StepPoint } from './common.ts';
export { checkGuider, checkSameLatentSpace, guider, rescaled } from './common.ts';
export { Denoiser } from './denoiser.ts';
export { InstructPix2PixGuider, twoConditionCombine, twoConditionMethod } from './ip2p.ts';
export { PriorSwapCFGGuider } from './prior-swap.ts';
