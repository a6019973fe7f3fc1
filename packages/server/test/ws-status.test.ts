/**
 * Status broadcasts (queue_remaining to every socket) are coalesced in time (ws.ts statusChanged): the
 * first change after a quiet spell goes on the next turn of the event loop, later ones at most one per
 * gap, and the last broadcast always carries the final count. Real HTTP server, real `ws` clients.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WsHub } from '../src/ws.js';

type Msg = { type: string; data: { status?: { exec_info: { queue_remaining: number } } } };

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** A hub whose count is `count.n`, behind a real HTTP server. */
async function hubWithGap(statusGapMs: number): Promise<{ hub: WsHub; count: { n: number }; url: string }> {
  const count = { n: 0 };
  const hub = new WsHub({ queueRemaining: () => count.n, maxUploadBytes: 1024, statusGapMs });
  const http: Server = createServer((_req, res) => res.end());
  http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head, null));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  open.push(async () => {
    hub.close();
    await new Promise((r) => http.close(r));
  });
  return { hub, count, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws` };
}

/** A listener; `next()` resolves with the next message it receives (they are kept in order). */
async function listener(url: string): Promise<{ ws: WebSocket; next: () => Promise<Msg>; got: Msg[] }> {
  const ws = new WebSocket(url);
  const got: Msg[] = [];
  let read = 0;
  let wake = () => {};
  ws.on('message', (data) => {
    got.push(JSON.parse(String(data)) as Msg);
    wake();
  });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const next = async () => {
    while (got.length <= read) await new Promise<void>((r) => (wake = r));
    return got[read++]!;
  };
  open.push(async () => {
    ws.close();
  });
  return { ws, next, got };
}

const remaining = (m: Msg) => m.data.status?.exec_info.queue_remaining;

/** A round trip: whatever the hub wrote before the acknowledgement arrives before it. */
async function roundTrip(l: Awaited<ReturnType<typeof listener>>): Promise<Msg[]> {
  const before: Msg[] = [];
  l.ws.send(JSON.stringify({ type: 'subscribe', data: { prompt_id: `p${Math.random()}` } }));
  for (;;) {
    const m = await l.next();
    if (m.type === 'subscribed') return before;
    before.push(m);
  }
}

describe('status broadcasts coalesced in time', () => {
  it('a lone change goes out at once, not after the gap; changes in one turn are one broadcast', async () => {
    // a gap of 10 minutes: a first change that waited for it would time this test out
    const { hub, count, url } = await hubWithGap(10 * 60_000);
    const l = await listener(url);
    expect(remaining(await l.next())).toBe(0); // the greeting
    for (let i = 1; i <= 5; i++) {
      count.n = i;
      hub.statusChanged();
    }
    const first = await l.next();
    expect(first.type).toBe('status');
    expect(remaining(first)).toBe(5); // the count when it went out
    expect(await roundTrip(l)).toEqual([]); // one broadcast for the five changes
    // within the gap: held (the trailing broadcast would come 10 minutes later)
    count.n = 6;
    hub.statusChanged();
    await new Promise((r) => setImmediate(r));
    expect(await roundTrip(l)).toEqual([]);
  });

  it('a run of changes in separate turns: at most one broadcast per gap, the last carries the final count', async () => {
    const gap = 50;
    const { hub, count, url } = await hubWithGap(gap);
    const a = await listener(url);
    const b = await listener(url);
    await a.next();
    await b.next();
    const changes = 300;
    const t0 = performance.now();
    for (let i = 1; i <= changes; i++) {
      count.n = i;
      hub.statusChanged();
      await new Promise((r) => setImmediate(r));
    }
    const spanMs = performance.now() - t0;
    for (const l of [a, b]) {
      const seen: number[] = [];
      while (seen.at(-1) !== changes) {
        const m = await l.next();
        expect(m.type).toBe('status');
        seen.push(remaining(m)!);
      }
      // each broadcast carries the count of its moment: increasing, ending with the final one
      expect(seen).toEqual([...seen].sort((x, y) => x - y));
      expect(new Set(seen).size).toBe(seen.length);
      // the leading one, one per gap while the changes went on, and the trailing one (+1: a timer can
      // fire up to a millisecond before performance.now says its delay is up, libuv's clock being coarser)
      expect(seen.length).toBeLessThanOrEqual(3 + Math.ceil(spanMs / gap));
      expect(await roundTrip(l)).toEqual([]); // nothing after the final count
    }
    // the final broadcast is the same for every socket
    expect(a.got.filter((m) => m.type === 'status').at(-1)).toEqual(b.got.filter((m) => m.type === 'status').at(-1));
  });
});
