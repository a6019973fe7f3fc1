/**
 * A runner may start a job as soon as it is written, before its POST /prompt has been answered (the
 * answer waits for the WAL's fsync; under load that took up to 171 ms, and a busy runner takes the
 * next job the moment the previous one ends). The submitter's socket must get the job's events all
 * the same. Here the store answers one enqueue only after that job has finished (a very slow disk),
 * with the real server, worker process and websocket.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JobFinish, type NewJob, SqliteJobStore } from '../src/store.js';
import { post, type Started, slowPrompt, startServer, WsRecorder } from '../testkit/index.js';

const HELD = 'held-until-finished';

/** SQLite, except that HELD's enqueue settles only once HELD has completed. */
class HeldStore extends SqliteJobStore {
  private readonly done = new Set<string>();
  private release: (() => void) | null = null;

  override async enqueue(job: NewJob): Promise<number> {
    const n = await super.enqueue(job);
    if (job.id === HELD && !this.done.has(HELD)) await new Promise<void>((r) => (this.release = r));
    return n;
  }

  override async complete(id: string, f: JobFinish): Promise<void> {
    await super.complete(id, f);
    this.done.add(id);
    if (id === HELD) this.release?.();
  }
}

let s: Started;
beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-owner-'));
  s = await startServer({ dataDir, store: new HeldStore(dataDir) });
});
afterAll(async () => {
  await s?.close();
});

describe('events of a job that starts before its POST is answered', () => {
  it('reach the socket of the client that submitted it', async () => {
    const ws = await WsRecorder.open(s.url, 'c-held');
    // a first prompt makes c-held a submitter (no longer in watch mode) and keeps the runner busy
    const first = await post(s.url, '/prompt', { prompt: slowPrompt(5, 60, 1, 'first'), client_id: 'c-held' });
    expect(first.status).toBe(200);
    const held = await post(s.url, '/prompt', {
      prompt: slowPrompt(2, 10, 2, 'held'),
      prompt_id: HELD,
      client_id: 'c-held',
    });
    expect(held.status).toBe(200);
    // the answer came after the job had finished: every event of it was sent before
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === HELD, 5_000);
    const types = ws.of(HELD).map((f) => f.type);
    expect(types[0]).toBe('execution_start');
    expect(types).toContain('executed');
    expect(types).toContain('execution_success');
    ws.close();
  });
});
