/**
 * TurnShare (src/turns.ts): prompts beyond a turn's share wait for later turns, one per turn, in arrival
 * order, so that requests arriving meanwhile are answered between them. A fake clock decides the
 * budget; the turns are the real event loop's; the last test uses a real HTTP server and sockets.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TurnShare } from '../src/turns.js';

/** Counts turns of the event loop (a setImmediate chain) until stopped. */
function turnCounter() {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    stop() {
      on = false;
    },
  };
}

describe('TurnShare', () => {
  it('outside a burst nothing waits', async () => {
    const share = new TurnShare(5, () => 0);
    for (let turn = 0; turn < 3; turn++) {
      for (let i = 0; i < 10; i++) expect(share.enter()).toBeNull();
      await new Promise((r) => setImmediate(r));
    }
    expect(share.deferred).toBe(0);
  });

  it("past a turn's budget: the rest wait, released one per turn in arrival order", async () => {
    let clock = 0;
    const share = new TurnShare(5, () => clock);
    const counter = turnCounter();
    const released: Array<{ i: number; turn: number }> = [];
    const waits: Array<Promise<void>> = [];
    const inline: number[] = [];
    for (let i = 0; i < 8; i++) {
      const w = share.enter();
      clock += 2; // each prompt takes 2 ms of this turn
      if (w === null) inline.push(i);
      else waits.push(w.then(() => void released.push({ i, turn: counter.turns })));
    }
    await Promise.all(waits);
    counter.stop();
    // 0, 2, 4 ms into the turn: under the 5 ms budget; from 6 ms on, later turns
    expect(inline).toEqual([0, 1, 2]);
    expect(released.map((r) => r.i)).toEqual([3, 4, 5, 6, 7]);
    for (let k = 1; k < released.length; k++) expect(released[k].turn).toBeGreaterThan(released[k - 1].turn);
    expect(share.deferred).toBe(5);
    // the next turn, nothing waiting: at once again
    await new Promise((r) => setImmediate(r));
    expect(share.enter()).toBeNull();
  });

  it('a request arriving during a wave of heavy ones is answered before the wave ends (real sockets)', async () => {
    const share = new TurnShare(5);
    const order: string[] = [];
    let firstHeavyStarted: () => void = () => undefined;
    const started = new Promise<void>((r) => {
      firstHeavyStarted = r;
    });
    const http = createServer(async (req, res) => {
      if (req.url === '/heavy') {
        const w = share.enter();
        if (w) await w;
        firstHeavyStarted();
        const until = performance.now() + 20; // the work of one prompt, on this thread
        while (performance.now() < until);
        order.push('heavy');
      } else order.push('light');
      res.end('ok');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const heavy = Array.from({ length: 10 }, () => fetch(`${url}/heavy`).then((r) => r.text()));
      await started;
      await fetch(`${url}/light`).then((r) => r.text());
      await Promise.all(heavy);
      // without the share, the ten heavy handlers ready in one turn run back to back before the light one
      expect(order.indexOf('light')).toBeGreaterThan(-1);
      expect(order.indexOf('light')).toBeLessThan(order.length - 1);
      expect(share.deferred).toBeGreaterThan(0);
    } finally {
      await new Promise((r) => http.close(r));
    }
  });
});
