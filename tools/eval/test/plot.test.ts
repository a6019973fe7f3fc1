/** The evaluation plot, redrawn from the committed results (docs/eval/results.json): no models, no runs. */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../../../packages/nodes/src/image-utils.ts';
import { plotRows } from '../plot.ts';
import { redrawPlots } from '../run.ts';
import { SYSTEMS } from '../systems/index.ts';

const DOCS = fileURLToPath(new URL('../../../docs/eval/', import.meta.url));
const results = JSON.parse(readFileSync(join(DOCS, 'results.json'), 'utf8')) as {
  systems: Record<string, Record<string, unknown>>;
};

describe('evaluation plot (tools/eval/plot.ts)', () => {
  it('every system with a guidance-scale sweep gets a row; γ = 1 (conditional only) starts every curve', () => {
    const rows = plotRows(SYSTEMS, results.systems);
    expect(rows.map((r) => r.title)).toEqual(SYSTEMS.map((s) => results.systems[s.id].title));
    for (const { curves } of rows) {
      const metrics = new Set(curves.points.map((p) => p.metric));
      for (const method of curves.methods) {
        const own = curves.points.filter((p) => p.method === method);
        // one point per metric and scale: every method has the same scales
        const scales = [...new Set(own.map((p) => p.scale))];
        expect(own.length).toBe(metrics.size * scales.length);
        for (const p of own) expect(p.lo <= p.mean && p.mean <= p.hi, `${method} ${p.metric} ${p.scale}`).toBe(true);
      }
    }
    // the DiT class system stores γ = 1 once (method "cond"): both curves start there, with its numbers
    const dit = rows[SYSTEMS.findIndex((s) => s.id === 'dit-class')].curves;
    const cond = (results.systems['dit-class'].rows as Array<{ method: string; fd: { mean: number } }>)[0];
    expect(cond.method).toBe('cond');
    const at1 = dit.points.filter((p) => p.scale === 1 && p.metric.startsWith('FD'));
    expect(at1.map((p) => p.method)).toEqual(dit.methods);
    expect(at1.every((p) => p.mean === cond.fd.mean)).toBe(true);
  });

  it('--plots-only redraws plot.svg and plot.png from results.json alone, the same bytes every time', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pg-plot-'));
    copyFileSync(join(DOCS, 'results.json'), join(out, 'results.json'));
    const files = await redrawPlots(out);
    expect(files).toEqual([join(out, 'plot.svg'), join(out, 'plot.png')]);
    const svg = readFileSync(files[0], 'utf8');
    // every system's title and panel titles are text in the SVG (escaped as XML)
    const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    for (const row of plotRows(SYSTEMS, results.systems)) {
      expect(svg).toContain(xml(row.title));
      for (const m of new Set(row.curves.points.map((p) => p.metric))) expect(svg).toContain(xml(m));
    }
    expect(svg).toContain('font-family="DejaVu Sans"');
    const png = decodePng(readFileSync(files[1]));
    const [, w, h] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
    expect([png.width, png.height]).toEqual([Math.round(w * 1.5), Math.round(h * 1.5)]);
    const first = readFileSync(files[1]);
    await redrawPlots(out);
    expect(readFileSync(files[1]).equals(first)).toBe(true);
  }, 60_000);

  it('--plots-only without results.json says so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pg-plot-'));
    await expect(redrawPlots(out)).rejects.toThrow(/--plots-only: no .*results\.json \(run the evaluation first\)/);
  });
});
