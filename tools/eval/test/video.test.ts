/** The video system's motion and consistency measures on the real evaluation clips (no models needed). */
import { describe, expect, it } from 'vitest';
import { centroids, loadClips, motionOf, psnr, slice, subjectConsistency } from '../systems/video.ts';

describe('video metrics on the real clips (tools/eval/video_inputs.json)', () => {
  const clips = loadClips();

  it('the centroid track follows the rendered one and reads every caption direction', () => {
    expect(clips.length).toBe(32);
    for (const c of clips) {
      const track = centroids(c.frames);
      track.forEach((p, t) => {
        // displacements from frame 0 (a shape's area centroid is not its drawing centre, but the offset is
        // the same in every frame); the thresholded mask snaps the edges to whole pixels, which moves each
        // estimate by under half a pixel, so a displacement (two estimates) by under one
        expect(p).not.toBeNull();
        expect(Math.abs(p![0] - track[0]![0] - (c.track[t][0] - c.track[0][0]))).toBeLessThan(1);
        expect(Math.abs(p![1] - track[0]![1] - (c.track[t][1] - c.track[0][1]))).toBeLessThan(1);
      });
      const m = motionOf(c.frames);
      expect(m.direction).toBe(c.motion);
      expect(m.step).toBeGreaterThan(0.5); // every real clip counts as dynamic
    }
  });

  it('a still clip (the first frame repeated) has no motion, full consistency and infinite-like PSNR', () => {
    const first = slice(clips[0].frames, 0, 1);
    const still = {
      data: new Float32Array(8 * first.data.length),
      shape: [8, 32, 32, 3] as [number, number, number, number],
    };
    for (let t = 0; t < 8; t++) still.data.set(first.data, t * first.data.length);
    expect(motionOf(still).step).toBe(0);
    expect(subjectConsistency(Array.from({ length: 8 }, () => [1, 2, 3]))).toBeCloseTo(1, 12);
    expect(psnr(first, first)).toBe(100);
  });
});
