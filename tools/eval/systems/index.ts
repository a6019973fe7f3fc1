/** Every evaluated system, in the order the evaluation runs them. One line per system. */
import type { EvalSystem } from '../harness.ts';
import shapes from './shapes.ts';

export const SYSTEMS: EvalSystem[] = [shapes];
