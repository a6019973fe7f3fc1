/**
 * The step loop's progress and previews on their way from the loop's worker to the coordinator
 * (runtime/index.ts), batched and coalesced at the source. Each message costs the loop's thread a
 * structured clone and wakes the coordinator's thread, and each preview costs the coordinator a draw
 * and a PNG encode: on a small machine, CPU taken from the session.
 *
 * - Progress: every step, in order, none dropped. The first event goes at once, later ones at most once
 *   per EVENT_BATCH_MS (a step that ends within that time of the last message waits for a later step's,
 *   or for `take` before the run's result). The final step's events always travel with the result.
 * - Previews are a display, not data: a step whose preview is due (every `previewEvery` steps) makes one
 *   (copies the latents) only when `previewIntervalMs` has passed since the last one made — the first
 *   due at once, the final step's always. A message carries at most one preview, its batch's latest.
 *
 * Nothing is made for what no one listens to (`progress` false, `previewEvery` 0).
 */
import type { LoopEvent, LoopEvents } from './plan.ts';

/**
 * At most one event message per this many ms: 10 a second, what the server passes on to its clients
 * per job by default (packages/server throttle.ts DEFAULT_PROGRESS_INTERVAL_MS) — a progress bar needs
 * no more, and every step still arrives, in order. Each message wakes the coordinator's thread;
 * bench/pipeline.bench.ts, 3 runs each alternating with 16 ms on the quiet 2-core machine (3 Dec):
 * wall ÷ Σ session.run 1.106 / 1.169 / 1.230 vs 1.132 / 1.196 / 1.231 (fixture UNets), 1.135 / 1.133 /
 * 1.135 vs 1.132 / 1.141 / 1.146 (demo models) — lower in 5 of 6, by at most 0.026. A step longer
 * than this (every real model) still sends its own message.
 */
export const EVENT_BATCH_MS = 100;

/** By default at most one preview per this many ms: 10 a second, what the server passes on to its
 *  clients per job by default (packages/server throttle.ts) — a preview made more often would be drawn
 *  and encoded only to be dropped there. On the 2-core development machine each preview costs the
 *  coordinator's thread ≈ 0.5–1 ms (wake-up, draw, PNG), taken from the session: pipeline.bench's runs
 *  (30 steps of ≈ 2 ms, a preview due every 5) make 6 previews without coalescing, 3–4 at 16 ms, 2 at
 *  100 ms. */
export const PREVIEW_INTERVAL_MS = 100;

export interface EventBatcherOptions {
  /** report every step (someone listens to progress) */
  progress: boolean;
  /** at most one preview per this many ms (the final step's always) */
  previewIntervalMs: number;
}

export interface EventBatcher {
  /** after step `step` of `total`; `preview`: the latents after it when its preview is due (copied if
   *  one is made: the loop goes on with them) */
  stepDone(step: number, total: number, preview: Float32Array | null): void;
  /** the events not yet posted, and the buffers to transfer with them (null: none); for the message
   *  that ends the run */
  take(): { batch: LoopEvents; transfer: ArrayBuffer[] } | null;
}

/** `post` sends a batch (with its transfer list); `now` is the clock (ms). */
export function eventBatcher(
  opts: EventBatcherOptions,
  post: (batch: LoopEvents, transfer: ArrayBuffer[]) => void,
  now: () => number = () => performance.now(),
): EventBatcher {
  let events: LoopEvent[] = [];
  /** the batch's event that carries a preview */
  let withPreview: LoopEvent | null = null;
  let total = 0;
  let lastPost = Number.NEGATIVE_INFINITY;
  let lastPreview = Number.NEGATIVE_INFINITY;
  const take = () => {
    if (!events.length) return null;
    const batch: LoopEvents = { total, events };
    const transfer = withPreview?.latents ? [withPreview.latents.buffer as ArrayBuffer] : [];
    events = [];
    withPreview = null;
    return { batch, transfer };
  };
  const stepDone = (step: number, n: number, preview: Float32Array | null) => {
    total = n;
    const t = now();
    let e: LoopEvent | null = opts.progress ? { step } : null;
    if (preview && (step === n || t - lastPreview >= opts.previewIntervalMs)) {
      lastPreview = t;
      // only the latest preview of a batch travels (the final step's may replace an earlier one)
      if (withPreview && opts.progress) delete withPreview.latents;
      else if (withPreview) events.splice(events.indexOf(withPreview), 1);
      e ??= { step };
      e.latents = preview.slice();
      withPreview = e;
    }
    if (e) events.push(e);
    // the final step's events go with the run's result (one message, one wake-up fewer)
    if (events.length && step < n && t - lastPost >= EVENT_BATCH_MS) {
      const m = take()!;
      post(m.batch, m.transfer);
      lastPost = t;
    }
  };
  return { stepDone, take };
}
