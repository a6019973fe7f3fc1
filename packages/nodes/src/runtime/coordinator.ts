/**
 * The sampling coordinator (a worker thread) for guiders with several models (single-model runs loop
 * inside their model worker, see index.ts). It receives ONE message per sampling run (the whole
 * SamplePlan), runs the step loop here, close to the sessions: each model call goes through a
 * SharedArrayBuffer channel to the model's worker, signalled with Atomics (no postMessage per call).
 * Calls to different models are posted before any is awaited, so they run concurrently. Only
 * progress, previews and the result are posted to the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { latentPreviewRGBA } from '../guidance/index.ts';
import type { CoordinatorMessage, DistributiveOmit, SamplePlan } from './plan.ts';
import { awaitResponse, detachChannel, postRequest } from './protocol.ts';
import { runLoop } from './sampling-loop.ts';

parentPort!.on('message', async (plan: SamplePlan) => {
  const post = (m: DistributiveOmit<CoordinatorMessage, 'runId'>, transfer: ArrayBuffer[] = []) =>
    parentPort!.postMessage({ ...m, runId: plan.runId }, transfer);
  const tStart = performance.now();
  const control = new Int32Array(plan.control);
  let modelMs = 0;
  let calls = 0;
  try {
    const latents = await runLoop(
      plan,
      (cs) => {
        const t0 = performance.now();
        for (const c of cs) postRequest(plan.channels[c.channel], c.inputs);
        const outs = cs.map((c) => awaitResponse(plan.channels[c.channel], 'model call'));
        modelMs += performance.now() - t0;
        calls += cs.length;
        return outs;
      },
      {
        cancelled: () => Atomics.load(control, 0) === 1,
        progress: (step, total) => post({ op: 'progress', step, total }),
        preview: (lat) => {
          const [, C, H, W] = plan.shape;
          post({ op: 'preview', rgba: latentPreviewRGBA(lat, C, H, W, 0), width: W, height: H });
        },
      },
    );
    if (latents === null) post({ op: 'cancelled' });
    else {
      const runMs = plan.channels.reduce((s, ch) => s + Atomics.load(new Int32Array(ch, 0, 4), 2) / 1000, 0);
      const loopMs = performance.now() - tStart;
      post({ op: 'done', latents, modelMs, runMs, loopMs, calls }, [latents.buffer as ArrayBuffer]);
    }
  } catch (e) {
    post({ op: 'error', message: (e as Error).message });
  } finally {
    for (const ch of plan.channels) detachChannel(ch);
  }
});
