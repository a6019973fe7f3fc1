/**
 * GET /queue's cached answer (routes/queue.ts QueueBody: item texts kept by seq, the queue's order
 * read from an index) equals the answer made from scratch — JSON.stringify of store.list() — after
 * any sequence of queue changes on a real SQLite store (seeded fast-check: enqueues at the back, at
 * the front and at given numbers, re-used ids, runs, finishes, deletes, clears, recoveries, prunes,
 * with the answer read after some changes and not others). And the answer the HTTP server gives
 * before express (the fast path) is express's own, byte for byte and header for header, and it still
 * refuses what express refuses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QueueBody, queueItem } from '../src/routes/queue.js';
import { type JobStore, SqliteJobStore } from '../src/store.js';
import { post, slowPrompt, startServer } from '../testkit/index.js';

type Op =
  | { op: 'enqueue'; id: number; front: boolean; number: number | undefined; seed: number }
  | { op: 'run' | 'complete' | 'fail' | 'interrupt' | 'settle'; id: number }
  | { op: 'delete'; ids: number[] }
  | { op: 'clear' }
  | { op: 'recover'; resume: number[] }
  | { op: 'prune'; keep: number };

const ID = fc.integer({ min: 0, max: 11 }); // few ids: re-used after a delete or a finish
const OP: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('enqueue' as const),
      id: ID,
      front: fc.boolean(),
      number: fc.option(fc.integer({ min: -5, max: 30 }), { nil: undefined }),
      seed: fc.integer({ min: 0, max: 9 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom(
        'run' as const,
        'complete' as const,
        'fail' as const,
        'interrupt' as const,
        'settle' as const,
      ),
      id: ID,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), ids: fc.array(ID, { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('recover' as const), resume: fc.array(ID, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('prune' as const), keep: fc.integer({ min: 0, max: 4 }) }) },
  fc.constant({ op: 'clear' as const }),
);

async function apply(store: JobStore, o: Op): Promise<void> {
  const id = (n: number) => `job-${n}`;
  const finish = { results: {}, messages: [] };
  switch (o.op) {
    case 'enqueue':
      await store
        .enqueue({
          id: id(o.id),
          number: o.number,
          front: o.front,
          prompt: slowPrompt(1, 1, o.seed),
          document: { seed: o.seed },
          extraData: { client_id: `c${o.seed}` },
          outputs: [String(o.seed)],
        })
        .catch((e) => expect((e as Error).name).toBe('DuplicateJobError'));
      return;
    case 'run':
      await store.markRunning(id(o.id));
      return;
    case 'complete':
      await store.complete(id(o.id), finish);
      return;
    case 'fail':
      await store.fail(id(o.id), { ...finish, error: { type: 't', message: 'm' } });
      return;
    case 'interrupt':
      await store.interrupt(id(o.id), finish);
      return;
    case 'settle':
      await store.settle(id(o.id), { type: 't', message: 'm' });
      return;
    case 'delete':
      await store.delete(o.ids.map(id), ['pending']);
      return;
    case 'clear':
      await store.clear(['pending']);
      return;
    case 'recover':
      await store.recover(new Set(o.resume.map(id)));
      return;
    case 'prune':
      await store.prune(o.keep);
  }
}

/** The answer made from scratch, as the route made it before the cache. */
async function uncached(store: JobStore): Promise<string> {
  const running = (await store.list(['running'])).map(queueItem);
  const pending = (await store.list(['pending'])).map(queueItem);
  return JSON.stringify({ queue_running: running, queue_pending: pending });
}

describe('GET /queue answer', () => {
  it('the cached answer equals the uncached one after any sequence of queue changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(OP, fc.boolean()), { minLength: 1, maxLength: 40 }), async (steps) => {
        const dir = mkdtempSync(join(tmpdir(), 'pg-queue-answer-'));
        const store = new SqliteJobStore(dir);
        try {
          const body = new QueueBody(store);
          for (const [o, look] of steps) {
            await apply(store, o);
            if (look) expect((await body.current()).body).toBe(await uncached(store));
          }
          const a = await body.current((b) => `n${b.length}`);
          expect(a.body).toBe(await uncached(store));
          expect(a.bytes.equals(Buffer.from(a.body))).toBe(true);
          // unchanged store: the same answer object, not made again
          expect(await body.current()).toBe(a);
        } finally {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('the fast path answers as express does, and refuses what express refuses', async () => {
    const token = 'fast-path-token';
    const s = await startServer({ token });
    try {
      const auth = { authorization: `Bearer ${token}` };
      // the first job runs for 10 s: the queue does not change while the answers are compared
      for (let i = 0; i < 3; i++) {
        expect((await post(s.url, '/prompt', { prompt: slowPrompt(100, 100, i) }, auth)).status).toBe(200);
      }
      const answers = [];
      // '/queue' and '/api/queue' take the fast path; with a query string they go through express
      for (const path of ['/queue', '/queue?via=express', '/api/queue', '/api/queue?via=express']) {
        const r = await fetch(`${s.url}${path}`, { headers: auth });
        const headers = Object.fromEntries([...r.headers].filter(([k]) => k !== 'date'));
        answers.push({ status: r.status, headers, body: await r.text() });
      }
      const q = JSON.parse(answers[0]!.body);
      expect([q.queue_running.length, q.queue_pending.length]).toEqual([1, 2]);
      for (const a of answers.slice(1)) expect(a).toEqual(answers[0]);
      expect(answers[0]!.status).toBe(200);
      expect(answers[0]!.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(answers[0]!.headers.etag).toMatch(/^W\/"/);

      const noToken = await fetch(`${s.url}/queue`);
      expect(noToken.status).toBe(401);
      expect(noToken.headers.get('www-authenticate')).toBe('Bearer');
      expect((await noToken.json()).error.type).toBe('unauthorized');
      const wrong = await fetch(`${s.url}/api/queue`, { headers: { authorization: 'Bearer wrong-token-x' } });
      expect(wrong.status).toBe(401);
      await post(s.url, '/queue', { clear: true }, auth);
      await post(s.url, '/interrupt', {}, auth);
    } finally {
      await s.close();
    }
  });

  it('without a token, a foreign origin is refused on the fast path too', async () => {
    const s = await startServer();
    try {
      const r = await fetch(`${s.url}/queue`, { headers: { origin: 'http://evil.example' } });
      expect(r.status).toBe(403);
      expect((await r.json()).error.type).toBe('forbidden_origin');
      const ok = await fetch(`${s.url}/api/queue`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ queue_running: [], queue_pending: [] });
    } finally {
      await s.close();
    }
  });
});
