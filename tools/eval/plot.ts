/**
 * The evaluation plot: each system's metrics against the guidance scale, CFG beside prior swap. A
 * Vega-Lite spec (one row per system, one panel per metric, 95% intervals as bands) compiled to Vega,
 * rendered headless to SVG, and from the SVG to PNG by resvg with the bundled font (text is measured
 * with that font too, so the layout fits what is drawn). It reads results.json data only, so
 * `run.ts --plots-only <dir>` redraws it without evaluating anything.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { FONT_FAMILY, svgToPng, textWidth } from '../../packages/nodes/src/text.ts';
import type { Curves, EvalSystem } from './harness.ts';

/** CFG first, then each prior it is compared with: the same colours in every row. */
const COLORS = ['#c82828', '#1e64c8', '#14963c', '#8c50b4'];
const PANEL = { width: 200, height: 140 };

/** One row of the plot: a system's title and curves. */
export interface PlotRow {
  title: string;
  curves: Curves;
}

/** The rows for the systems that have results and curves, in the evaluation's order. */
export function plotRows(systems: EvalSystem[], results: Record<string, Record<string, unknown>>): PlotRow[] {
  return systems.flatMap((s) => {
    const r = results[s.id];
    if (!r) return [];
    const curves = s.curves(r);
    return curves.points.length ? [{ title: (r.title as string | undefined) ?? s.title, curves }] : [];
  });
}

function rowSpec({ title, curves }: PlotRow, i: number) {
  const metrics = [...new Set(curves.points.map((p) => p.metric))];
  const scales = [...new Set(curves.points.map((p) => p.scale))].sort((a, b) => a - b);
  const y = { type: 'quantitative', title: null, scale: { zero: false, nice: false } } as const;
  return {
    title: { text: title, anchor: 'start', fontSize: 13, offset: 4 },
    data: { values: curves.points },
    facet: {
      column: { field: 'metric', type: 'nominal', sort: metrics, title: null, header: { labelFontSize: 11 } },
    },
    spec: {
      ...PANEL,
      encoding: {
        x: {
          field: 'scale',
          type: 'quantitative',
          title: curves.scale,
          scale: { zero: false, nice: false, padding: 8 },
          axis: { values: scales, format: '.4~g', grid: false },
        },
        color: {
          field: 'method',
          type: 'nominal',
          sort: curves.methods,
          scale: { domain: curves.methods, range: COLORS.slice(0, curves.methods.length) },
          legend: {
            title: null,
            orient: 'right',
            labelLimit: 260,
            symbolType: 'stroke',
            symbolOpacity: 1,
            symbolStrokeWidth: 2,
          },
        },
      },
      layer: [
        { mark: { type: 'area', opacity: 0.15 }, encoding: { y: { field: 'lo', ...y }, y2: { field: 'hi' } } },
        { mark: { type: 'line', point: true, strokeWidth: 1.5 }, encoding: { y: { field: 'mean', ...y } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
    name: `system${i}`,
  };
}

/** The Vega-Lite spec of the whole plot. */
export function plotSpec(rows: PlotRow[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 12,
    config: { font: FONT_FAMILY, view: { stroke: '#ccc' }, axis: { labelFontSize: 10, titleFontSize: 10 } },
    title: {
      text: 'CFG beside prior swap: each system’s metrics against the guidance scale',
      subtitle: 'lines: means; bands: 95% intervals (data: results.json)',
      anchor: 'start',
      fontSize: 15,
    },
    vconcat: rows.map(rowSpec),
    spacing: 18,
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
}
type Metrics = { width: (item: TextItem, text: unknown) => number };

/** The spec as SVG, through Vega's headless view; text widths come from the bundled font. */
export async function plotSvg(spec: TopLevelSpec): Promise<string> {
  // Vega sizes labels and legends with textMetrics.width: without a canvas it guesses 0.8 em a letter
  const metrics = (vega as unknown as { textMetrics: Metrics }).textMetrics;
  const estimate = metrics.width;
  const cache = new Map<string, number>();
  metrics.width = (item, text) => {
    const s = text == null ? '' : String(text).trim();
    const size = item.fontSize ?? 11;
    const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600;
    const key = `${size}/${bold}/${s}`;
    if (!cache.has(key)) cache.set(key, textWidth(s, size, bold));
    return cache.get(key)!;
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
    metrics.width = estimate;
  }
}

/** Writes <out>/plot.svg and <out>/plot.png (1.5 times the SVG's size); returns the files, none without data. */
export async function writePlot(
  out: string,
  systems: EvalSystem[],
  results: Record<string, Record<string, unknown>>,
): Promise<string[]> {
  const rows = plotRows(systems, results);
  if (!rows.length) return [];
  const svg = await plotSvg(plotSpec(rows));
  const files = [join(out, 'plot.svg'), join(out, 'plot.png')];
  writeFileSync(files[0], svg);
  writeFileSync(files[1], svgToPng(svg, { zoom: 1.5 }));
  return files;
}
