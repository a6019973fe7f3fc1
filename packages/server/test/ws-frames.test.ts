/**
 * The websocket hub frames each event once and writes the same bytes to every listener (ws.ts
 * frame()). Real HTTP server, real `ws` clients: every message arrives whole and in order, text as
 * text and previews as binary, at the frame-length boundaries of RFC 6455 (125/126 bytes: 7-bit vs
 * 16-bit length, 65535/65536: 16-bit vs 64-bit), with multi-byte UTF-8 (the length counts bytes),
 * and interleaved with the per-socket messages ws itself frames (subscribe acknowledgements).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { frame, WsHub } from '../src/ws.js';

let http: Server;
let hub: WsHub;
let url: string;

beforeAll(async () => {
  hub = new WsHub({ queueRemaining: () => 7, maxUploadBytes: 1024 });
  http = createServer((_req, res) => res.end());
  http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head, null));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`;
});
afterAll(async () => {
  hub.close();
  await new Promise((r) => http.close(r));
});

interface Received {
  binary: boolean;
  data: Buffer;
}

async function listener(): Promise<{ ws: WebSocket; got: Received[]; until: (n: number) => Promise<void> }> {
  const ws = new WebSocket(url);
  const got: Received[] = [];
  let wake = () => {};
  ws.on('message', (data, binary) => {
    got.push({ binary, data: Buffer.from(data as Buffer) });
    wake();
  });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const until = async (n: number) => {
    while (got.length < n) await new Promise<void>((r) => (wake = r));
  };
  await until(1); // the status greeting
  return { ws, got, until };
}

/** A `{type, data}` event whose JSON is exactly `bytes` long in UTF-8 (some of it two-byte "é"). */
function eventOfBytes(bytes: number): { type: string; data: { pad: string } } {
  const empty = Buffer.byteLength(JSON.stringify({ type: 'x', data: { pad: '' } }));
  const room = bytes - empty;
  const wide = Math.min(Math.floor(room / 2), 40);
  const pad = 'é'.repeat(wide) + 'a'.repeat(room - 2 * wide);
  const e = { type: 'x', data: { pad } };
  expect(Buffer.byteLength(JSON.stringify(e))).toBe(bytes);
  return e;
}

describe('websocket frames made once for every listener', () => {
  it('frame() writes the RFC 6455 header for each length class', () => {
    expect([...frame(Buffer.from('hi'), false)]).toEqual([0x81, 2, 0x68, 0x69]);
    const mid = frame(Buffer.alloc(126), true);
    expect([...mid.subarray(0, 4)]).toEqual([0x82, 126, 0, 126]);
    expect(mid.length).toBe(4 + 126);
    const big = frame(Buffer.alloc(65536), false);
    expect([...big.subarray(0, 10)]).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect(big.length).toBe(10 + 65536);
    // a string payload: its UTF-8 bytes, counted as bytes
    expect([...frame('é', false)]).toEqual([0x81, 2, 0xc3, 0xa9]);
  });

  it('events, statuses and previews of every length class reach every listener whole and in order', async () => {
    const a = await listener();
    const b = await listener();
    // both subscribe to one prompt: the acknowledgement is framed by ws itself, between ours
    const expected: Received[] = [];
    const sizes = [31, 125, 126, 127, 1000, 65535, 65536, 70001];
    for (const s of [a, b]) s.ws.send(JSON.stringify({ type: 'subscribe', data: { prompt_id: 'p1' } }));
    await a.until(2);
    await b.until(2);
    expected.push({
      binary: false,
      data: Buffer.from(JSON.stringify({ type: 'subscribed', data: { all: false, prompt_ids: ['p1'] } })),
    });
    for (const size of sizes) {
      const e = eventOfBytes(size);
      hub.emit('p1', e.type, e.data);
      expected.push({ binary: false, data: Buffer.from(JSON.stringify(e)) });
      hub.broadcast('status', { status: { exec_info: { queue_remaining: size } } });
      expected.push({
        binary: false,
        data: Buffer.from(
          JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: size } } } }),
        ),
      });
      const image = new Uint8Array(size).map((_, i) => (i * 7 + size) & 255);
      hub.preview('p1', '2', { format: 'png', data: image } as never);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(1, 0);
      head.writeUInt32BE(2, 4);
      expected.push({ binary: true, data: Buffer.concat([head, image]) });
    }
    hub.emit('other-prompt', 'x', { not: 'for them' }); // subscribed to p1 only: neither gets it
    for (const s of [a, b]) {
      await s.until(1 + expected.length);
      const got = s.got.slice(1);
      expect(got.map((g) => g.binary)).toEqual(expected.map((e) => e.binary));
      for (let i = 0; i < expected.length; i++) expect(got[i].data.equals(expected[i].data), `message ${i}`).toBe(true);
      s.ws.close();
    }
  });
});
