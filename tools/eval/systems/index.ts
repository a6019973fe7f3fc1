/** Every evaluated system, in the order the evaluation runs them. One line per system. */
import type { EvalSystem } from '../harness.ts';
import ditClass from './dit-class.ts';
import imageVariation from './image-variation.ts';
import novelViews from './novel-views.ts';
import shapes from './shapes.ts';
import video from './video.ts';

export const SYSTEMS: EvalSystem[] = [shapes, ditClass, video, novelViews, imageVariation];
