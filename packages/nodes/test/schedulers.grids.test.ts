/**
 * timestep_spacing (leading / linspace / trailing, steps_offset) gives diffusers' exact timestep grid
 * for EVERY step count 1..num_train_timesteps, and above it diffusers' answer per class (a grid, or a
 * refusal). Fixture: tools/reference/timestep_grids.py, running diffusers' own scheduler modules
 * (24-bit hash per count; the lengths of grids with n + 1 entries are listed as well).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScheduler, type SchedulerConfig, type SchedulerName } from '../src/schedulers/index.ts';

interface GridRecord {
  scheduler: SchedulerName;
  config: Partial<SchedulerConfig>;
  /** counts 1..up_to, then over */
  up_to: number;
  over: number[];
  hashes: string;
  lengths: Record<string, number>;
}
const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'schedulers', 'timestep_grids.json'), 'utf8'),
) as { num_train_timesteps: number; diffusers_commit: string; grids: GridRecord[] };

/** the fixture's hash of a grid (see tools/reference/timestep_grids.py) */
function gridHash(ts: readonly number[]): string {
  const text = ts.map((v) => String(Math.fround(v))).join(',');
  return createHash('sha256').update(text).digest().subarray(0, 3).toString('base64');
}

describe(`timestep grids = diffusers' (${fixture.diffusers_commit}) for every step count`, () => {
  const countsOf = (g: GridRecord) => [...Array.from({ length: g.up_to }, (_, i) => i + 1), ...g.over];

  it('the fixture covers every scheduler, spacing and count 1..N', () => {
    const names = new Set(fixture.grids.map((g) => g.scheduler));
    expect([...names].sort()).toEqual(['ddim', 'ddpm', 'dpmpp_2m', 'euler', 'euler_ancestral', 'lcm', 'pndm']);
    for (const g of fixture.grids) {
      expect(g.hashes.length, JSON.stringify(g.config)).toBe(4 * countsOf(g).length);
      if (g.scheduler !== 'lcm') expect(g.up_to).toBe(fixture.num_train_timesteps);
    }
  });

  for (const g of fixture.grids) {
    it(`${g.scheduler} ${JSON.stringify(g.config)}: ${countsOf(g).length} counts`, () => {
      const s = createScheduler(g.scheduler, { num_train_timesteps: fixture.num_train_timesteps, ...g.config });
      const wrong: string[] = [];
      countsOf(g).forEach((n, i) => {
        const want = g.hashes.slice(4 * i, 4 * i + 4);
        // the one divergence: leading spacing with steps_offset reaching t = N, which integer-timestep
        // schedulers refuse (diffusers builds the grid and fails at its first step, indexing ᾱ[N])
        const pastTable =
          n * Math.floor(fixture.num_train_timesteps / n) -
          Math.floor(fixture.num_train_timesteps / n) +
          (g.config.steps_offset ?? 0);
        if (
          ['ddim', 'ddpm', 'pndm'].includes(g.scheduler) &&
          g.config.timestep_spacing === 'leading' &&
          pastTable >= fixture.num_train_timesteps
        ) {
          expect(() => s.setTimesteps(n)).toThrow(/past the 1000 training timesteps/);
          return;
        }
        let got: string;
        let len = -1;
        try {
          s.setTimesteps(n);
          got = gridHash(s.timesteps);
          len = s.timesteps.length;
        } catch {
          got = '!!!!';
        }
        if (got !== want) {
          const wantLen = want === '!!!!' ? 'refused' : (g.lengths[String(n)] ?? (g.scheduler === 'pndm' ? '?' : n));
          wrong.push(`n=${n}: diffusers ${want} (${wantLen} steps), ours ${got} (${len < 0 ? 'refused' : len})`);
        }
      });
      expect(wrong.slice(0, 10), `${wrong.length} counts differ`).toEqual([]);
    });
  }
});
