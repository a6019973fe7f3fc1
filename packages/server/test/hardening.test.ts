/**
 * Issue 16, item 6 (the smaller holes), each reproduced against a real server: absurdly deep JSON in
 * extra_data and in an input value answers 400 naming the field (not 500 / "failed unexpectedly");
 * /system_stats never echoes a --token given on the command line; uploads must be images, and an
 * upload can never replace an output file that history still points to; a full database (real
 * SQLite, its page count capped) answers 507 with the reason instead of 500.
 */
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, post, type Started, slowPrompt, startServer, WsRecorder } from '../testkit/index.js';

let s: Started;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

function deep(n: number): string {
  return `${'['.repeat(n)}1${']'.repeat(n)}`;
}

async function postRaw(path: string, body: string) {
  const res = await fetch(s.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {}
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: res.status, json: json as any };
}

function pngBytes(width: number, height: number): Buffer {
  // A valid PNG header (signature + IHDR) is enough for the header check; the payload is the
  // smallest real image we can produce without an encoder: a 1×1 gray PNG with IDAT + IEND.
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

async function upload(bytes: Buffer, name: string, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)]), name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${s.url}/upload/image`, { method: 'POST', body: form });
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: res.status, json: (await res.json()) as any };
}

describe('deep JSON', () => {
  it('a 100k-deep extra_data answers 400 naming body.extra_data', async () => {
    const body = `{"prompt":${JSON.stringify(slowPrompt(1, 1))},"extra_data":{"x":${deep(100_000)}}}`;
    const r = await postRaw('/prompt', body);
    expect(r.status).toBe(400);
    expect(r.json.error.extra_info.field).toMatch(/^body\.extra_data\.x/);
    expect(r.json.error.message).toContain('nested');
    expect((await get(s.url, '/queue')).status).toBe(200);
  });

  it('a 100k-deep input value answers 400 naming the input', async () => {
    const p = slowPrompt(1, 1) as Record<string, { inputs: Record<string, unknown> }>;
    const text = JSON.stringify({ prompt: p }).replace('"value":1', `"value":${deep(100_000)}`);
    const body = JSON.stringify({ prompt: p }).replace('"value":3', `"value":${deep(100_000)}`);
    expect(body).not.toBe(text);
    const r = await postRaw('/prompt', body);
    expect(r.status).toBe(400);
    expect(r.json.error.extra_info.field).toMatch(/^body\.prompt\.1\.inputs\.value/);
    expect(r.json.error.message).not.toContain('unexpectedly');
  });

  it('moderately nested values (64 levels) are still accepted in extra_data', async () => {
    const body = `{"prompt":${JSON.stringify(slowPrompt(1, 1))},"extra_data":{"x":${deep(64)}}}`;
    const r = await postRaw('/prompt', body);
    expect(r.status).toBe(200);
  });
});

describe('/system_stats', () => {
  it('redacts a --token (and --token=) given on the command line', async () => {
    const saved = process.argv;
    process.argv = [...saved, '--token', 'hunter2-secret', '--token=other-secret', '--port', '8188'];
    try {
      const r = await get(s.url, '/system_stats');
      const text = JSON.stringify(r.json);
      expect(text).not.toContain('hunter2-secret');
      expect(text).not.toContain('other-secret');
      expect(r.json.system.argv).toContain('--token');
      expect(r.json.system.argv).toContain('8188');
    } finally {
      process.argv = saved;
    }
  });
});

describe('uploads', () => {
  it('refuses bytes that are not an image, naming the field', async () => {
    const r = await upload(Buffer.from('#!/bin/sh\necho hi\n'), 'evil.png');
    expect(r.status).toBe(400);
    expect(r.json.error.extra_info.field).toBe('image');
    expect(r.json.error.message).toMatch(/not a PNG, JPEG or WebP/);
    const ok = await upload(pngBytes(4, 4), 'small.png');
    expect(ok.status).toBe(200);
  });

  it('overwrite=true&type=output never replaces an image that history references', async () => {
    const ws = await WsRecorder.open(s.url, 'hist');
    const r = await post(s.url, '/prompt', { prompt: slowPrompt(1, 1, 5, 'kept'), client_id: 'hist' });
    expect(r.status).toBe(200);
    const id = r.json.prompt_id as string;
    await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
    ws.close();
    const h = await get(s.url, `/history/${id}`);
    const img = h.json[id].outputs['3'].images[0] as { filename: string };
    const before = await fetch(`${s.url}/view?filename=${encodeURIComponent(img.filename)}&type=output`);
    const beforeBytes = Buffer.from(await before.arrayBuffer());
    const up = await upload(pngBytes(2, 2), img.filename, { type: 'output', overwrite: 'true' });
    expect(up.status).toBe(409);
    expect(up.json.error.type).toBe('output_in_history');
    expect(up.json.error.message).toContain(id);
    const after = await fetch(`${s.url}/view?filename=${encodeURIComponent(img.filename)}&type=output`);
    expect(Buffer.from(await after.arrayBuffer())).toEqual(beforeBytes);
    // Without overwrite the upload gets a fresh name, as in ComfyUI.
    const fresh = await upload(pngBytes(2, 2), img.filename, { type: 'output' });
    expect(fresh.status).toBe(200);
    expect(fresh.json.name).not.toBe(img.filename);
  });
});

describe('a full database', () => {
  it('POST /prompt answers 507 with the reason, and the server keeps answering', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: reach the real SQLite handle
    const db = (s.server.store as any).db as import('better-sqlite3').Database;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    try {
      const big = 'x'.repeat(256 * 1024);
      const r = await post(s.url, '/prompt', { prompt: slowPrompt(1, 1), extra_data: { big } });
      expect(r.status).toBe(507);
      expect(r.json.error.type).toBe('storage_full');
      expect(r.json.error.message).toMatch(/full/i);
      expect((await get(s.url, '/queue')).status).toBe(200);
    } finally {
      db.pragma('max_page_count = 1073741823');
    }
  });
});

describe('history: paginated by default, with retention (item 5)', () => {
  async function finished(st: Started, n: number, from = 0): Promise<void> {
    for (let i = from; i < from + n; i++) {
      const id = `old-${i}`;
      await st.server.store.enqueue({ id, prompt: {}, document: {}, extraData: {}, outputs: [] });
      await st.server.store.markRunning(id);
      await st.server.store.complete(id, { results: {}, messages: [] });
    }
  }

  it('GET /history answers the newest 200 unless max_items says otherwise; /api/jobs pages', async () => {
    const st = await startServer();
    try {
      await finished(st, 250);
      const h = await get(st.url, '/history');
      expect(Object.keys(h.json)).toHaveLength(200);
      expect(h.headers.get('x-priorgraph-history-total')).toBe('250');
      expect(h.headers.get('x-priorgraph-history-next-offset')).toBe('200');
      expect(Object.keys(h.json).at(-1)).toBe('old-249'); // newest last, as ComfyUI's dict
      const all = await get(st.url, '/history?max_items=1000');
      expect(Object.keys(all.json)).toHaveLength(250);
      expect(all.headers.get('x-priorgraph-history-next-offset')).toBeNull();
      const five = await get(st.url, '/history?max_items=5&offset=10');
      expect(Object.keys(five.json)).toEqual(['old-235', 'old-236', 'old-237', 'old-238', 'old-239']);
      const j = await get(st.url, '/api/jobs?offset=240&limit=20');
      expect(j.json.total).toBe(250);
      expect(j.json.jobs.map((x: { id: string }) => x.id)).toEqual(
        Array.from({ length: 10 }, (_, i) => `old-${9 - i}`),
      );
      expect(j.json.next_offset).toBeNull();
      const bad = await get(st.url, '/api/jobs?limit=5000');
      expect(bad.status).toBe(400);
      expect(bad.json.error.extra_info.field).toBe('query.limit');
    } finally {
      await st.close();
    }
  });

  it('historyMaxItems keeps the newest finished jobs only', async () => {
    const st = await startServer({ historyMaxItems: 100 });
    try {
      await finished(st, 150);
      const ws = await WsRecorder.open(st.url, 'ret');
      const r = await post(st.url, '/prompt', { prompt: slowPrompt(1, 1), client_id: 'ret' });
      const id = r.json.prompt_id as string;
      await ws.waitFor((f) => f.type === 'executing' && f.data.node === null && f.data.prompt_id === id);
      ws.close();
      for (let i = 0; i < 500 && (await st.server.store.count(['success'])) > 100; i++) {
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(await st.server.store.count(['success', 'error', 'interrupted'])).toBe(100);
      expect(await st.server.store.get(id)).not.toBeNull();
      expect(await st.server.store.get('old-0')).toBeNull();
      expect(await st.server.store.get('old-149')).not.toBeNull();
    } finally {
      await st.close();
    }
  });
});
