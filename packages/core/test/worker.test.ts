import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { spawnWorker } from '../src/index.js';

describe('spawnWorker', () => {
  it('runs a TypeScript worker file (adds --import tsx)', async () => {
    const w = spawnWorker(new URL('./workers/echo-worker.ts', import.meta.url), { workerData: { greeting: 'hi' } });
    try {
      w.postMessage({ a: 2, b: 3 });
      const [msg] = await once(w, 'message');
      expect(msg).toEqual({ sum: 5, greeting: 'hi', compatible: true });
    } finally {
      await w.terminate();
    }
  });

  it('leaves JavaScript workers alone', async () => {
    const w = spawnWorker(new URL('./workers/plain-worker.mjs', import.meta.url), { execArgv: [] });
    try {
      const [msg] = await once(w, 'message');
      expect(msg.argv).not.toContain('--import');
    } finally {
      await w.terminate();
    }
  });
});

describe('spawnWorker errors', () => {
  it('reports a failing TypeScript worker through the error event', async () => {
    const w = spawnWorker(new URL('./workers/failing-worker.ts', import.meta.url));
    const [err] = await once(w, 'error');
    expect(String((err as Error).message)).toMatch(/worker refuses to start/);
  });
});
