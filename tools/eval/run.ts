/**
 * The evaluation: runs each system's real workflows through the real engine and nodes on the shipped
 * demo models, scores them and writes
 *   <out>/results.json   every system's table (every number with its confidence interval)
 *   <out>/results.md     the same as markdown, one section per system
 *   <out>/grid-*.png     each system's image grids
 *   <out>/plot.svg, .png every system's metrics against the guidance scale (plot.ts), drawn from results.json
 *
 *   node --import tsx tools/eval/run.ts [--out docs/eval] [--only id,id] [--quick]
 *        [--per-prompt 64] [--prompts 24] [--steps 30] [--uncond-samples 512] [--scales 1,2,3]  (shapes system)
 *   node --import tsx tools/eval/run.ts --plots-only docs/eval   (redraws the plot from results.json alone)
 *
 * A progress bar on stderr counts workflow runs over all systems. Seeds and settings are fixed in each
 * system's file, before any result was seen; nothing is tuned to favour a method.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopRuntime } from '../../packages/nodes/src/index.ts';
import { createContext, type EvalOptions, type EvalSystem, Progress, ROOT } from './harness.ts';
import { writePlot } from './plot.ts';
import { SYSTEMS } from './systems/index.ts';
import { FULL, QUICK, type ShapesSettings, settings } from './systems/shapes.ts';

export interface RunOptions extends EvalOptions {
  /** system ids to run (default: all) */
  only?: string[];
  /** overrides for the shapes system's sizes */
  shapes?: Partial<ShapesSettings>;
  /** only redraw the plot from <out>/results.json */
  plotsOnly?: boolean;
}

/** Redraws <out>/plot.svg and plot.png from <out>/results.json, evaluating nothing; returns the files. */
export async function redrawPlots(out: string): Promise<string[]> {
  const file = join(out, 'results.json');
  if (!existsSync(file)) throw new Error(`--plots-only: no ${file} (run the evaluation first)`);
  const { systems } = JSON.parse(readFileSync(file, 'utf8')) as { systems?: Record<string, Record<string, unknown>> };
  if (!systems) throw new Error(`--plots-only: ${file} has no "systems"`);
  return writePlot(out, SYSTEMS, systems);
}

function optionsFromArgv(): RunOptions {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(ROOT, 'docs', 'eval') },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'per-prompt': { type: 'string' },
      prompts: { type: 'string' },
      steps: { type: 'string' },
      'uncond-samples': { type: 'string' },
      scales: { type: 'string' },
      'plots-only': { type: 'string' },
    },
  });
  const shapes: Partial<ShapesSettings> = {};
  if (values['per-prompt']) shapes.perPrompt = Number(values['per-prompt']);
  if (values.prompts) shapes.prompts = Number(values.prompts);
  if (values.steps) shapes.steps = Number(values.steps);
  if (values['uncond-samples']) shapes.uncondSamples = Number(values['uncond-samples']);
  if (values.scales) shapes.scales = values.scales.split(',').map(Number);
  return {
    out: values['plots-only'] ?? values.out!,
    plotsOnly: values['plots-only'] !== undefined,
    quick: values.quick!,
    steps: shapes.steps ?? FULL.steps,
    only: values.only?.split(','),
    shapes,
  };
}

/** Runs the chosen systems and writes results.json / results.md; returns the results object. */
export async function evaluate(opts: RunOptions) {
  mkdirSync(opts.out, { recursive: true });
  const unknown = (opts.only ?? []).filter((id) => !SYSTEMS.some((s) => s.id === id));
  if (unknown.length)
    throw new Error(`--only: no system ${unknown.join(', ')} (known: ${SYSTEMS.map((s) => s.id).join(', ')})`);
  const chosen: EvalSystem[] = SYSTEMS.filter((s) => !opts.only || opts.only.includes(s.id));
  settings.current = { ...(opts.quick ? QUICK : FULL), ...opts.shapes };
  const progress = new Progress(
    chosen.reduce((a, s) => a + s.plannedRuns(opts.quick), 0),
    opts.quiet,
  );
  const ctx = await createContext(opts, progress);
  const t0 = performance.now();
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
  const systems: Record<string, Record<string, unknown>> = {};
  try {
    for (const s of chosen) {
      const t = performance.now();
      const r = await s.evaluate(ctx);
      const seconds = (performance.now() - t) / 1000;
      const load = `load average ${loadavg()[0].toFixed(1)} at its end`;
      systems[s.id] = { ...r.results, seconds, title: s.title, markdown: r.markdown, machine: `${machine}, ${load}` };
    }
  } finally {
    progress.finish();
    settings.current = null;
  }
  // every system says in advance how many runs it makes (the progress bar's total); check it kept its word
  const runs = { planned: progress.total, done: progress.done };
  // --only updates those systems' sections and keeps the others' from the previous results.json
  const file = join(opts.out, 'results.json');
  const previous =
    opts.only && existsSync(file)
      ? ((JSON.parse(readFileSync(file, 'utf8')) as { systems?: Record<string, Record<string, unknown>> }).systems ??
        {})
      : {};
  const all: Record<string, Record<string, unknown>> = {};
  for (const s of SYSTEMS) {
    const r = systems[s.id] ?? previous[s.id];
    if (r) all[s.id] = r;
  }
  const sections = Object.entries(all).map(
    ([id, r]) => `## ${r.title}\n\n${r.markdown}\n_${id}: ${(r.seconds as number).toFixed(0)} s on ${r.machine}._\n`,
  );
  const total = Object.values(all).reduce((a, r) => a + (r.seconds as number), 0);
  const results = { machine, seconds: (performance.now() - t0) / 1000, runs, systems: all };
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(
    join(opts.out, 'results.md'),
    `Machine: ${machine}. All systems: ${total.toFixed(0)} s (each section gives its own time and machine load).\n\n${sections.join('\n')}`,
  );
  await writePlot(opts.out, SYSTEMS, all);
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = optionsFromArgv();
  (opts.plotsOnly
    ? redrawPlots(opts.out).then((files) =>
        process.stderr.write(`wrote ${files.join(', ') || 'no plot (no curves)'}\n`),
      )
    : evaluate(opts)
  ).then(
    async () => {
      await stopRuntime();
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`evaluation failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
