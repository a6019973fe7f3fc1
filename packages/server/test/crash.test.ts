/**
 * Durability: a server in a child process gets 20 jobs, is killed with SIGKILL while one runs, and
 * restarts on the same data dir. Every job is accounted for: the finished ones keep their history and
 * output files, the one that was running is marked interrupted (documented choice: not re-run), and
 * the pending ones run after the restart.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { get, post, type SpawnedServer, slowPrompt, spawnServer, WsRecorder } from '../testkit/index.js';

const children: ChildProcess[] = [];

const startChild = (dataDir: string): Promise<SpawnedServer> => spawnServer(dataDir, { track: children });

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('crash and restart', () => {
  it('keeps every accepted job, finished outputs and errors across kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pg-crash-'));
    try {
      const first = await startChild(dataDir);
      const ws = await WsRecorder.open(first.url, 'crash');
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        // value i → output i*2; job 7 fails on purpose so that an error also has to survive.
        const prompt =
          i === 7
            ? {
                '1': { class_type: 'Number', inputs: { value: i } },
                '2': { class_type: 'Fail', inputs: { x: ['1', 0], message: 'planned failure' } },
              }
            : slowPrompt(6, 40, i, `job${i}`);
        const r = await post(first.url, '/prompt', { prompt, client_id: 'crash' });
        expect(r.status).toBe(200);
        ids.push(r.json.prompt_id);
      }
      // Let a few finish (including the failing one), then kill while job 9 is mid-run.
      await ws.waitFor(
        (f) => f.type === 'progress' && f.data.prompt_id === ids[9] && (f.data.value as number) >= 2,
        60_000,
      );
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      ws.close();

      // What the database says at the moment of the kill.
      const db = new Database(join(dataDir, 'priorgraph.sqlite'), { readonly: true });
      const before = new Map(
        (db.prepare('SELECT id, status FROM jobs').all() as Array<{ id: string; status: string }>).map((r) => [
          r.id,
          r.status,
        ]),
      );
      db.close();
      expect(before.size).toBe(20);
      expect([...before.values()].filter((s) => s === 'running')).toHaveLength(1);
      expect(before.get(ids[9])).toBe('running');
      for (let i = 0; i < 9; i++) expect(before.get(ids[i]), `job ${i}`).toBe(i === 7 ? 'error' : 'success');

      const second = await startChild(dataDir);
      const ws2 = await WsRecorder.open(second.url, 'watch');
      const crashed = (await get(second.url, `/api/jobs/${ids[9]}`)).json;
      expect(crashed.status).toBe('interrupted');
      expect(crashed.error.type).toBe('server_restart');
      const h9 = (await get(second.url, `/history/${ids[9]}`)).json[ids[9]];
      expect(h9.status.status_str).toBe('error');
      // the rest continue: wait for the last one
      const last = ids[19];
      const end = (await get(second.url, `/api/jobs/${last}`)).json;
      if (end.status !== 'success') {
        await ws2.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === last, 60_000);
      }
      for (let i = 0; i < 20; i++) {
        const j = (await get(second.url, `/api/jobs/${ids[i]}`)).json;
        const want = i === 7 ? 'error' : i === 9 ? 'interrupted' : 'success';
        expect(j.status, `job ${i}`).toBe(want);
        if (want === 'success') {
          const img = j.outputs['3'].images[0];
          const file = readFileSync(join(dataDir, 'output', img.filename));
          expect(file.subarray(8).toString(), `job ${i} output`).toBe(String(i * 2));
          const view = await fetch(`${second.url}/view?filename=${encodeURIComponent(img.filename)}`);
          expect(Buffer.from(await view.arrayBuffer()).equals(file)).toBe(true);
        }
        if (i === 7) expect(j.error.message).toContain('planned failure');
      }
      const hist = (await get(second.url, '/history')).json;
      expect(Object.keys(hist)).toHaveLength(20);
      ws2.close();
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
