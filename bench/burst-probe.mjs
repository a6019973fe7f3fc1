/**
 * Loaded into the server process by `burst.bench.ts --stalls FILE` (node --import): records when the
 * server's event loop was late and why, and writes it to FILE ($PG_BURST_PROBE) at exit.
 *  - stalls: a 2 ms interval timer that fires more than 5 ms late; with the process's CPU time
 *    (all its threads) used in that span: near the span's length = the loop was busy (what it ran is
 *    in a --profile), far below it = the process waited for a CPU (the machine's load);
 *  - gcs: every garbage collection, with its kind (1 scavenge, 2 mark-compact, 4 incremental, 8 weak);
 * times are wall-clock ms (performance.timeOrigin + now), comparable with the bench's samples.
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const out = process.env.PG_BURST_PROBE;
if (out) {
  const stalls = []; // [wall ms at the start of the span, ms late, CPU ms used in the span]
  const gcs = []; // [wall ms at start, ms, kind]
  const EVERY = 2;
  let last = performance.now();
  let cpu = process.cpuUsage();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - EVERY;
    const used = process.cpuUsage(cpu);
    if (late > 5) stalls.push([performance.timeOrigin + last, late, (used.user + used.system) / 1000]);
    last = now;
    cpu = process.cpuUsage();
  }, EVERY).unref();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([performance.timeOrigin + e.startTime, e.duration, e.detail?.kind]);
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(out, JSON.stringify({ stalls, gcs })));
}
