/**
 * Coalesced per-step events (src/throttle.ts): at most one progress and one preview per job per
 * interval, the last progress value and every state change always delivered, in the engine's order.
 * The unit tests drive time with fake timers; the end-to-end test uses an interval no job here can
 * reach (60 s), so what a listener receives does not depend on how fast this machine runs the steps.
 */
import type { ExecutionEvent } from '@priorgraph/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventThrottle } from '../src/throttle.js';
import { post, type Started, slowPrompt, startServer, WsRecorder } from '../testkit/index.js';

// One fixed seed (FC_SEED explores others); a failure names the seed and path to replay.
const seed = Number.parseInt(process.env.FC_SEED ?? '20261203', 10);
if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer (got ${process.env.FC_SEED})`);

const P = 'p1';
const progress = (value: number, max = 30, nodeId = 's'): ExecutionEvent => ({
  type: 'progress',
  promptId: P,
  nodeId,
  value,
  max,
});
const preview = (n: number, nodeId = 's'): ExecutionEvent => ({
  type: 'preview',
  promptId: P,
  nodeId,
  image: { format: 'png', data: new Uint8Array([n]) },
});
const state = (nodeId: string): ExecutionEvent => ({ type: 'node_start', promptId: P, nodeId, nodeType: 'T' });

describe('EventThrottle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('interval 0 passes every event through', () => {
    const out: ExecutionEvent[] = [];
    const t = new EventThrottle(0, (e) => out.push(e));
    const input = [state('s'), progress(1), preview(1), progress(2), preview(2), state('x')];
    for (const e of input) t.push(e);
    expect(out).toEqual(input);
  });

  it('a 30-step node at 10 ms a step: one progress per 100 ms, the last value, then the state change', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const out: ExecutionEvent[] = [];
    const t = new EventThrottle(100, (e) => out.push(e));
    t.push(state('s'));
    for (let i = 1; i <= 30; i++) {
      t.push(progress(i));
      t.push(preview(i));
      vi.advanceTimersByTime(10);
    }
    t.push(state('next'));
    const values = out.filter((e) => e.type === 'progress').map((e) => (e as { value: number }).value);
    // sent at 0, 100 and 200 ms (the latest value then: 10 came at 90 ms), the rest held until the state change
    expect(values).toEqual([1, 10, 20, 30]);
    expect(out.filter((e) => e.type === 'preview')).toHaveLength(4);
    expect(out[0]).toEqual(state('s'));
    expect(out.at(-1)).toEqual(state('next'));
    expect(t.dropped).toBe(2 * 30 - 8);
  });

  it("a held progress goes out when its interval is up, and before another node's progress", () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const out: ExecutionEvent[] = [];
    const t = new EventThrottle(100, (e) => out.push(e));
    t.push(progress(1, 3, 'a'));
    t.push(progress(2, 3, 'a'));
    expect(out).toHaveLength(1);
    vi.advanceTimersByTime(100);
    expect(out.map((e) => (e as { value: number }).value)).toEqual([1, 2]);
    t.push(progress(3, 3, 'a')); // held: 2 went out just now
    t.push(progress(1, 5, 'b')); // another node: a's last value first
    expect(out.map((e) => `${(e as { nodeId: string }).nodeId}${(e as { value: number }).value}`)).toEqual([
      'a1',
      'a2',
      'a3',
    ]);
    t.flush();
    expect(out.at(-1)).toEqual(progress(1, 5, 'b'));
  });

  it('any event stream: state changes at once and in order, the last progress of each run kept, ≤ 1 per interval', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const step = fc.record({
      kind: fc.constantFrom('progress', 'preview', 'state'),
      node: fc.constantFrom('a', 'b'),
      gap: fc.integer({ min: 0, max: 250 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.integer({ min: 1, max: 200 }), (steps, interval) => {
        // each send: when, which input, and what was being pushed (an input, the timer, or the end)
        const out: Array<{ e: ExecutionEvent; at: number; id: number; during: number | 'timer' | 'end' }> = [];
        const ids = new Map<ExecutionEvent, number>();
        let during: number | 'timer' | 'end' = 'timer';
        const t = new EventThrottle(interval, (e) => out.push({ e, at: performance.now(), id: ids.get(e)!, during }));
        const input: ExecutionEvent[] = [];
        steps.forEach((s, i) => {
          during = 'timer';
          vi.advanceTimersByTime(s.gap);
          const e = s.kind === 'progress' ? progress(i, 99, s.node) : s.kind === 'preview' ? preview(i) : state(s.node);
          ids.set(e, i);
          input.push(e);
          const before = out.length;
          during = i;
          t.push(e);
          // a state change leaves at once (after whatever was held)
          if (s.kind === 'state') expect(out.at(-1)?.e).toBe(e);
          else expect(out.length - before).toBeLessThanOrEqual(2);
        });
        during = 'end';
        t.flush();
        // each kind arrives in input order, and a state change after everything pushed before it and
        // before everything pushed after it (a progress may pass a held preview: separate streams)
        const order = out.map((o) => o.id);
        for (const kind of ['progress', 'preview', 'node_start']) {
          const ofKind = out.filter((o) => o.e.type === kind).map((o) => o.id);
          expect(ofKind).toEqual([...ofKind].sort((x, y) => x - y));
        }
        out.forEach((o, k) => {
          if (o.e.type !== 'node_start') return;
          expect(out.slice(0, k).every((x) => x.id < o.id)).toBe(true);
          expect(out.slice(k + 1).every((x) => x.id > o.id)).toBe(true);
        });
        // every state change arrives; so does the last progress before a state change, a node switch, the end
        const got = new Set(order);
        input.forEach((e, i) => {
          if (e.type === 'node_start') expect(got.has(i)).toBe(true);
          if (e.type !== 'progress') return;
          const next = input.slice(i + 1).find((x) => x.type !== 'preview');
          if (next?.type !== 'progress' || next.nodeId !== e.nodeId) expect(got.has(i)).toBe(true);
        });
        // a kind is sent at most once per interval by the timer or as it comes; only a flush (what was
        // held, sent while another event is pushed or at the end) goes sooner
        for (const kind of ['progress', 'preview'] as const) {
          const sent = out.filter((o) => o.e.type === kind);
          for (let k = 1; k < sent.length; k++) {
            const own = sent[k].during === 'timer' || sent[k].during === sent[k].id;
            if (own) expect(sent[k].at - sent[k - 1].at).toBeGreaterThanOrEqual(interval);
          }
        }
      }),
      { seed, numRuns: 200 },
    );
  });
});

describe('a listener of a many-step job', () => {
  const servers: Started[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  /** Runs the prompt with a submitter and an `all` subscriber listening; returns both recordings. */
  async function listen(s: Started, prompt: Record<string, unknown>) {
    const own = await WsRecorder.open(s.url, 'own');
    const all = await WsRecorder.open(s.url, 'all');
    all.send({ type: 'subscribe', data: { all: true } });
    await all.waitFor((f) => f.type === 'subscribed');
    const id = (await post(s.url, '/prompt', { prompt, client_id: 'own' })).json.prompt_id as string;
    for (const ws of [own, all]) {
      await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id, 60_000);
      ws.close();
    }
    return { id, own, all };
  }

  it('gets coalesced progress (fewer frames than steps) but the final value and every state event', async () => {
    const steps = 30;
    const prompt = slowPrompt(steps, 2, 7);
    // the reference: every step sent
    const plain = await startServer({ progressIntervalMs: 0 });
    servers.push(plain);
    const ref = await listen(plain, prompt);
    // an interval longer than the job: the first step goes at once, then only the last one
    const slow = await startServer({ progressIntervalMs: 60_000 });
    servers.push(slow);
    const got = await listen(slow, prompt);

    const kinds = (frames: Array<{ type: string; data: Record<string, unknown> }>) =>
      frames
        .filter((f) => f.type !== 'progress')
        .map((f) => (f.type === 'executing' || f.type === 'executed' ? `${f.type}:${f.data.node}` : f.type));
    const values = (frames: Array<{ type: string; data: Record<string, unknown> }>) =>
      frames.filter((f) => f.type === 'progress').map((f) => f.data.value);
    expect(values(ref.own.of(ref.id))).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    expect(ref.own.binary).toHaveLength(steps);
    for (const ws of [got.own, got.all]) {
      const frames = ws.of(got.id);
      expect(values(frames)).toEqual([1, steps]);
      expect(ws.binary).toHaveLength(2);
      expect(ws.binary[1].subarray(8).at(-1)).toBe(steps - 1); // the last step's preview
      // every state event, in the same order as without coalescing
      expect(kinds(frames)).toEqual(kinds(ref.own.of(ref.id)));
      expect(kinds(frames)).toEqual(
        expect.arrayContaining(['execution_start', 'executing:2', 'executed:3', 'execution_success', 'executing:null']),
      );
      // the last progress comes before the node's end
      const types = frames.map((f) => (f.type === 'executing' ? `executing:${f.data.node}` : f.type));
      expect(types.lastIndexOf('progress')).toBeLessThan(types.indexOf('executing:3'));
    }
  }, 120_000);
});
