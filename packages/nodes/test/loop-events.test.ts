/** The step loop's progress and previews (runtime/loop-events.ts): every step's progress, in order;
 *  previews coalesced at the source, the final step's always; and the same through a real model worker. */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { latentPreviewStrip } from '../src/guidance/index.ts';
import { singleMethod } from '../src/guiders/basic.ts';
import { guider as guiderValue } from '../src/guiders/common.ts';
import { previewPng } from '../src/image-utils.ts';
import { loadDenoiserModel } from '../src/models/load.ts';
import { EVENT_BATCH_MS, eventBatcher } from '../src/runtime/loop-events.ts';
import type { LoopEvents } from '../src/runtime/plan.ts';
import { RuntimePool } from '../src/runtime/pool.ts';
import { runSampling } from '../src/sampling.ts';
import type { GuiderValue } from '../src/types.ts';
import { fixture } from './helpers.ts';

interface Sent {
  batch: LoopEvents;
  transfer: ArrayBuffer[];
  at: number;
  final: boolean;
}

/** Each step's events go in the first message posted from its stepDone on (index into the sent list). */
type Carrier = number[];

/** Drive a batcher like the loop does: step i ends at times[i − 1]; the latents after step i are all i. */
function drive(times: number[], previewEvery: number, progress: boolean, previewIntervalMs: number) {
  let clock = 0;
  const sent: Sent[] = [];
  const carrier: Carrier = [];
  const b = eventBatcher(
    { progress, previewIntervalMs },
    (batch, transfer) => sent.push({ batch, transfer, at: clock, final: false }),
    () => clock,
  );
  const n = times.length;
  const latents = new Float32Array(4);
  for (let i = 1; i <= n; i++) {
    clock = times[i - 1];
    latents.fill(i);
    const due = previewEvery > 0 && (i % previewEvery === 0 || i === n);
    carrier[i] = sent.length;
    b.stepDone(i, n, due ? latents : null);
  }
  const rest = b.take();
  if (rest) sent.push({ ...rest, at: clock, final: true });
  latents.fill(-1); // the loop goes on with its latents: what was sent must be copies
  return Object.assign(sent, { carrier });
}

describe('loop events at the source', () => {
  it('a long fast run: every step reported in order, far fewer previews than steps, the last step previewed', () => {
    const n = 200;
    const sent = drive(
      Array.from({ length: n }, (_, i) => i),
      1,
      true,
      EVENT_BATCH_MS,
    ); // 1 ms per step
    const events = sent.flatMap((s) => s.batch.events);
    expect(events.map((e) => e.step)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    const previews = events.filter((e) => e.latents);
    // one at step 1, then one per 16 ms, and the final step's (which may replace the batch's earlier one)
    expect(previews.length).toBeLessThanOrEqual(Math.ceil(n / EVENT_BATCH_MS) + 1);
    expect(previews.length).toBeGreaterThanOrEqual(Math.floor(n / EVENT_BATCH_MS));
    expect(previews[0].step).toBe(1);
    expect(previews.at(-1)!.step).toBe(n);
    expect([...previews.at(-1)!.latents!]).toEqual([n, n, n, n]);
    // the final step's events travel with the result, not in a message of their own
    expect(sent.at(-1)!.final).toBe(true);
    expect(sent.at(-1)!.batch.events.at(-1)!.step).toBe(n);
  });

  it('slow steps: every due preview is made', () => {
    const sent = drive(
      // steps further apart than a batch
      Array.from({ length: 12 }, (_, i) => i * 2.5 * EVENT_BATCH_MS),
      3,
      true,
      EVENT_BATCH_MS,
    );
    const previews = sent.flatMap((s) => s.batch.events).filter((e) => e.latents);
    expect(previews.map((e) => e.step)).toEqual([3, 6, 9, 12]);
    expect(sent.filter((s) => !s.final)).toHaveLength(11); // each step but the last at once
  });

  it('previews without a progress listener: only the steps with a preview are sent', () => {
    const sent = drive(
      Array.from({ length: 50 }, (_, i) => i * 0.5),
      1,
      false,
      EVENT_BATCH_MS,
    );
    const events = sent.flatMap((s) => s.batch.events);
    expect(events.every((e) => e.latents)).toBe(true);
    expect(events.at(-1)!.step).toBe(50);
    expect(events.length).toBeLessThan(5);
  });

  it('invariants over random step timings (seeded)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 40, noNaN: true }), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        fc.constantFrom(0, EVENT_BATCH_MS, 100),
        (gaps, every, progress, interval) => {
          let clock = 0;
          const times = gaps.map((g) => (clock += g));
          const n = times.length;
          const sent = drive(times, every, progress, interval);
          const events = sent.flatMap((s) => s.batch.events);
          // progress: every step, in order, none twice
          if (progress) expect(events.map((e) => e.step)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          else expect(events.every((e) => e.latents)).toBe(true);
          const previews = events.filter((e) => e.latents);
          // a preview only for a due step; the final step's always (when previews are on)
          for (const p of previews) expect(p.step % every === 0 || p.step === n).toBe(true);
          if (every > 0) expect(previews.at(-1)?.step).toBe(n);
          else expect(previews).toHaveLength(0);
          // previews made at least `interval` apart, but for the final step's
          const at = previews.filter((p) => p.step < n).map((p) => times[p.step - 1]);
          for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(interval);
          // a due step without a preview came within `interval` of the last preview made, or its preview
          // was replaced by a later one of the same message (then it counts as made)
          let last = Number.NEGATIVE_INFINITY;
          for (let s = 1; s < n && every > 0; s++) {
            if (s % every !== 0) continue;
            const replaced = sent[sent.carrier[s]].batch.events.some((e) => e.latents && e.step > s);
            if (events.some((e) => e.step === s && e.latents) || (replaced && times[s - 1] - last >= interval))
              last = times[s - 1];
            else if (!replaced) expect(times[s - 1] - last).toBeLessThan(interval);
          }
          // at most one preview per message, and only its buffer transferred
          for (const m of sent) {
            const withLatents = m.batch.events.filter((e) => e.latents);
            expect(withLatents.length).toBeLessThanOrEqual(1);
            expect(m.transfer).toEqual(withLatents.map((e) => e.latents!.buffer));
            expect(m.batch.total).toBe(n);
            expect(m.batch.events.length).toBeGreaterThan(0);
          }
          // messages before the result's at least one batch interval apart
          const posted = sent.filter((m) => !m.final).map((m) => m.at);
          for (let i = 1; i < posted.length; i++)
            expect(posted[i] - posted[i - 1]).toBeGreaterThanOrEqual(EVENT_BATCH_MS);
          // what was sent are copies, each the latents after its own step
          for (const p of previews) expect(p.latents![0]).toBe(p.step);
        },
      ),
      { seed: 1214, numRuns: 300 },
    );
  });
});

describe('loop events through a model worker', () => {
  const pool = new RuntimePool({ defaultThreads: 2, memoryBudgetMB: 64 });
  afterAll(() => pool.dispose());

  it('a preview per interval, the final step previewed after its progress, every step reported in order', async () => {
    const m = await loadDenoiserModel(pool, fixture('tiny-base'));
    const g: GuiderValue = guiderValue(
      singleMethod,
      'single',
      [{ kind: 'DENOISER', model: m, cond: null, concat: null }],
      {},
    );
    const seen: Array<{ step: number } | { png: Uint8Array }> = [];
    const steps = 40;
    const r = await runSampling({
      pool,
      guider: g,
      scheduler: { kind: 'SCHEDULER', name: 'ddim', overrides: {}, base: null },
      steps,
      seed: 3,
      denoise: 1,
      batchSize: 1,
      latent: null,
      previewEvery: 1,
      hooks: {
        onProgress: (step) => seen.push({ step }),
        onPreview: (png) => seen.push({ png }),
        // an interval longer than any run: the first due preview and the final step's only
        previewIntervalMs: 600_000,
      },
    });
    const progress = seen.flatMap((e) => ('step' in e ? [e.step] : []));
    expect(progress).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    const previews = seen.flatMap((e, i) => ('png' in e ? [i] : []));
    expect(previews).toHaveLength(2);
    expect(seen[previews[0] - 1]).toEqual({ step: 1 });
    expect(previews[1]).toBe(seen.length - 1); // after the last step's progress
    // the run's hand-off stamps (one clock in both threads) in causal order: posted → the loop → received
    expect(r.handoff.toWorker).toBeGreaterThan(0);
    expect(r.handoff.toCoordinator).toBeGreaterThan(0);
    expect(r.handoff.finalEvents).toBeGreaterThan(0); // the final preview was drawn in it
    expect(r.handoff.toWorker + r.loopMs + r.handoff.toCoordinator).toBeLessThan(60_000);
    // ... and it shows the result
    const { rgba, width, height } = latentPreviewStrip(r.latents!, r.shape);
    expect((seen[previews[1]] as { png: Uint8Array }).png).toEqual(previewPng(rgba, width, height));
  });
});
