import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/test/**/*.test.ts', 'tools/**/test/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    // generous: the suite spawns servers, workers, npm and a browser on 2 shared cores; a test that
    // takes 5 s on a quiet machine took over a minute at load average 25 (session 20)
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Tests that start servers, workers or a browser share 2 cores: keep files mostly serial.
    maxWorkers: 2,
  },
});
