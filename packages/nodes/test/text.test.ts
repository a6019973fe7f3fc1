/** Text on images (src/text.ts): DejaVu Sans from its npm package through resvg, composited by sharp. */
import { describe, expect, it } from 'vitest';
import { drawLabels, textWidth } from '../src/text.ts';

describe('text in the bundled font', () => {
  it('measures ink: blank is 0, longer and bold are wider, width scales with the size', () => {
    expect(textWidth('', 12)).toBe(0);
    expect(textWidth('   ', 12)).toBe(0);
    const a = textWidth('PRIOR', 12);
    expect(a).toBeGreaterThan(20);
    expect(textWidth('PRIOR SWAP', 12)).toBeGreaterThan(a + 20);
    expect(textWidth('PRIOR', 12, true)).toBeGreaterThan(a);
    // outlines are scaled, not hinted: twice the size is twice the width (to a hundredth)
    expect(textWidth('PRIOR', 24) / a).toBeCloseTo(2, 2);
  });

  it('draws in the colour asked for, only where the text is, and leaves the input untouched', async () => {
    const w = 80;
    const h = 20;
    const white = new Uint8Array(w * h * 3).fill(255);
    const out = await drawLabels(white, w, h, [{ text: 'Hi', x: 2, y: 4, size: 12, color: '#ff0000' }]);
    expect(white.every((v) => v === 255)).toBe(true);
    let red = 0;
    let other = 0;
    for (let p = 0; p < w * h; p++) {
      const [r, g, b] = out.subarray(p * 3, p * 3 + 3);
      if (r === 255 && g < 128 && b < 128 && g === b) red++;
      else if (!(r === 255 && g === 255 && b === 255) && !(r === 255 && g === b)) other++;
      // ink only inside the text's box: x < 2 + width + 1, y within the line
      if (g < 255) expect(p % w, `pixel ${p}`).toBeLessThan(2 + Math.ceil(textWidth('Hi', 12)) + 1);
    }
    expect(red).toBeGreaterThan(5);
    expect(other).toBe(0); // red over white: every pixel is a mix of the two
    expect(await drawLabels(white, w, h, [{ text: ' ', x: 0, y: 0, size: 12 }])).toBe(white);
  });

  it('refuses a buffer that is not w × h RGB, naming both', async () => {
    await expect(drawLabels(new Uint8Array(10), 4, 4, [])).rejects.toThrow(
      /drawLabels: 10 bytes is not a 4×4 RGB image/,
    );
  });
});
