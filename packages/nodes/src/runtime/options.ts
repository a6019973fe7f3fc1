import type { InferenceSession } from 'onnxruntime-node';

/** How the sessions of one pool are tuned (host.config.allowSpinning / host.config.memoryPattern). */
export interface SessionTuning {
  /** onnxruntime intra-op spinning (default off) */
  spinning?: boolean;
  /** onnxruntime's memory pattern (default off) */
  memoryPattern?: boolean;
}

/**
 * Session options of every model worker (and of the benchmarks' bare baselines).
 *
 * Intra-op spinning is off by default: with several sessions, the sampling loop and the main thread
 * sharing few cores, spinning pool threads starve the others (measured on the 2-core machine under
 * load: 3.7–4.4 ms per call without spinning vs 10–15 ms with it). `host.config.allowSpinning: true`
 * turns it back on for a machine with cores to spare.
 *
 * onnxruntime's memory pattern is off by default, the CPU arena stays on. With both on (onnxruntime's
 * defaults), the first run of a shape allocates its activations from the arena, which keeps them, and
 * every later run allocates the recorded pattern as one more block of the same size outside it: a
 * full-size SD 1.5 UNet at 512×512 (batch-2 calls) peaked at 8.4 GB instead of 5.9 GB for 3.4 GB of
 * weights from its second call on, with no measurable speed gain (bench/realscale.bench.ts `mem`).
 * Without the pattern the arena's chunks are reused run after run. `host.config.memoryPattern: true`
 * turns it back on.
 */
export function sessionOptions(
  providers: string[],
  threads: number,
  tuning: SessionTuning = {},
): InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: tuning.memoryPattern === true,
    extra: { session: { intra_op: { allow_spinning: tuning.spinning ? '1' : '0' } } },
  };
}
