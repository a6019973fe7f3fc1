import type { InferenceSession } from 'onnxruntime-node';

/**
 * Session options of every model worker (and of the benchmarks' bare baselines).
 * Intra-op spinning is off by default: with several sessions, the sampling loop and the main thread
 * sharing few cores, spinning pool threads starve the others (measured on the 2-core machine under
 * load: 3.7–4.4 ms per call without spinning vs 10–15 ms with it). `host.config.allowSpinning: true`
 * turns it back on for a machine with cores to spare.
 */
export function sessionOptions(
  providers: string[],
  threads: number,
  spinning = false,
): InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
  };
}
