/**
 * Bad input never crashes the server and always gets a 4xx that says what is wrong: malformed JSON,
 * wrong types (the 400 names the field), huge bodies (413), unknown nodes, traversal paths, and
 * fast-check generated garbage bodies, queries and websocket messages.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, post, type Started, slowPrompt, startServer, WsRecorder } from '../testkit/index.js';

let s: Started;
beforeAll(async () => {
  s = await startServer({ maxBodyBytes: 64 * 1024, maxUploadBytes: 64 * 1024 });
});
afterAll(async () => {
  await post(s.url, '/queue', { clear: true });
  await post(s.url, '/interrupt', {});
  await s?.close();
});

async function alive(): Promise<void> {
  const r = await get(s.url, '/prompt');
  expect(r.status).toBe(200);
}

const POST_ROUTES = ['/prompt', '/api/prompt', '/queue', '/interrupt', '/history', '/api/workflows/run'];

describe('malformed and mistyped bodies', () => {
  it('malformed JSON answers 400 invalid_json on every POST route', async () => {
    for (const route of POST_ROUTES) {
      for (const body of ['{', '{"prompt":', 'nul', '{"a":1,}', '\u0000']) {
        const r = await post(s.url, route, body);
        expect(r.status, `${route} ${JSON.stringify(body)}`).toBe(400);
        expect(r.json.error.type).toBe('invalid_json');
      }
    }
    await alive();
  });

  it('a 400 names the offending field', async () => {
    const p = slowPrompt(1, 1);
    const cases: Array<[string, unknown, string]> = [
      ['/prompt', { prompt: p, prompt_id: 5 }, 'body.prompt_id'],
      ['/prompt', { prompt: p, prompt_id: '../x' }, 'body.prompt_id'],
      ['/prompt', { prompt: p, client_id: {} }, 'body.client_id'],
      ['/prompt', { prompt: p, number: 'one' }, 'body.number'],
      ['/prompt', { prompt: p, front: 'yes' }, 'body.front'],
      ['/prompt', { prompt: p, extra_data: [1] }, 'body.extra_data'],
      ['/prompt', { prompt: p, partial_execution_targets: [1] }, 'body.partial_execution_targets.0'],
      ['/prompt', { prompt: 'text' }, 'body.prompt'],
      ['/prompt', { prompt: [1, 2] }, 'body.prompt'],
      ['/queue', { delete: 'abc' }, 'body.delete'],
      ['/queue', { clear: 1 }, 'body.clear'],
      ['/history', { delete: [1] }, 'body.delete.0'],
      ['/interrupt', { prompt_id: 3 }, 'body.prompt_id'],
    ];
    for (const [route, body, field] of cases) {
      const r = await post(s.url, route, body);
      expect(r.status, `${route} ${JSON.stringify(body)}`).toBe(400);
      expect(r.json.error.extra_info.field, `${route} ${JSON.stringify(body)}`).toBe(field);
      expect(r.json.error.message).toContain(field);
      expect(r.json.node_errors).toEqual({});
    }
    const q = await get(s.url, '/history?offset=-1');
    expect(q.status).toBe(400);
    expect(q.json.error.extra_info.field).toBe('query.offset');
    const v = await get(s.url, '/view?type=output');
    expect(v.json.error.extra_info.field).toBe('query.filename');
    const w = await post(s.url, '/api/workflows/run?wait=maybe', {});
    expect(w.json.error.extra_info.field).toBe('query.wait');
  });

  it('rejects prompts that are not workflows, or name unknown nodes, with a reason', async () => {
    const cases: unknown[] = [
      { '1': { class_type: 'NoSuchNode', inputs: {} } },
      { '1': { inputs: {} } },
      { '1': 'node' },
      { '1': { class_type: 'Number', inputs: { value: 'ten' } } },
      { '1': { class_type: 'Add', inputs: { a: ['9', 0], b: ['1', 0] } } },
      { format: 'priorgraph', version: 99, nodes: {} },
      { format: 'priorgraph', version: 1, nodes: { a: { type: 'test.Nope', inputs: {} } } },
      { format: 'priorgraph', version: 1, nodes: 'x' },
      {},
    ];
    for (const prompt of cases) {
      const r = await post(s.url, '/prompt', { prompt });
      expect(r.status, JSON.stringify(prompt)).toBe(400);
      expect(r.json.error.message.length, JSON.stringify(prompt)).toBeGreaterThan(0);
    }
    const unknown = await post(s.url, '/prompt', { prompt: { '1': { class_type: 'NoSuchNode', inputs: {} } } });
    expect(JSON.stringify(unknown.json)).toContain('NoSuchNode');
    await alive();
  });

  it('huge bodies answer 413 and the server stays up', async () => {
    const big = JSON.stringify({ prompt: slowPrompt(1, 1), extra_data: { pad: 'x'.repeat(200 * 1024) } });
    const r = await post(s.url, '/prompt', big);
    expect(r.status).toBe(413);
    expect(r.json.error.type).toBe('body_too_large');
    const f = new FormData();
    f.append('image', new Blob([Buffer.alloc(100 * 1024)]), 'big.png');
    const u = await fetch(`${s.url}/upload/image`, { method: 'POST', body: f });
    expect(u.status).toBe(413);
    await alive();
  });
});

describe('generated garbage (fast-check)', () => {
  it('any JSON body on any POST route gets a non-5xx answer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...POST_ROUTES),
        fc.oneof(
          fc.jsonValue(),
          fc.record({ prompt: fc.jsonValue() }),
          fc.record({
            prompt: fc.dictionary(
              fc.string({ maxLength: 4 }),
              fc.record({
                class_type: fc.constantFrom('Number', 'Add', 'Fail', 'test.SaveNumber', 'Nope', '__proto__'),
                inputs: fc.dictionary(
                  fc.constantFrom('value', 'a', 'b', 'x', 'message', 'prefix', '__proto__', 'constructor'),
                  fc.oneof(fc.jsonValue(), fc.tuple(fc.string({ maxLength: 3 }), fc.integer({ min: -2, max: 3 }))),
                ),
              }),
            ),
            prompt_id: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
          }),
        ),
        async (route, body) => {
          const r = await post(s.url, route, JSON.stringify(body));
          expect(r.status, `${route} ${JSON.stringify(body)}`).toBeLessThan(500);
          if (r.status >= 400) expect(r.json.error.message.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150 },
    );
    await post(s.url, '/queue', { clear: true });
    await alive();
  });

  it('raw bytes with odd content types never get a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...POST_ROUTES, '/upload/image'),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'multipart/form-data; boundary=xyz',
          'application/octet-stream',
        ),
        async (route, bytes, type) => {
          const res = await fetch(s.url + route, { method: 'POST', headers: { 'content-type': type }, body: bytes });
          await res.arrayBuffer();
          expect(res.status, `${route} ${type}`).toBeLessThan(500);
        },
      ),
      { numRuns: 100 },
    );
    await post(s.url, '/queue', { clear: true });
    await alive();
  });

  it('garbage /view queries never escape and never 5xx', async () => {
    const segment = fc.constantFrom('..', '.', '', 'a', '%2e%2e', '/', '\\', '%00', 'etc', 'passwd', '..%2f', '~');
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { maxLength: 6 }),
        fc.array(segment, { maxLength: 4 }),
        fc.constantFrom('output', 'input', 'temp', 'x', ''),
        async (file, sub, type) => {
          const q = `filename=${file.join('/')}&subfolder=${sub.join('/')}&type=${type}`;
          const r = await get(s.url, `/view?${q}`);
          expect(r.status, q).toBeLessThan(500);
          expect([400, 404], q).toContain(r.status);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('garbage websocket messages get error frames; the socket stays open', async () => {
    const ws = await WsRecorder.open(s.url, 'fuzz');
    await ws.waitFor((f) => f.type === 'status');
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 50 }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc
            .record({ type: fc.constantFrom('subscribe', 'unsubscribe', 'feature_flags', 'x'), data: fc.jsonValue() })
            .map((v) => JSON.stringify(v)),
        ),
        async (msg) => {
          ws.send(msg);
          sent++;
          // every message gets exactly one answer (an error or an acknowledgement)
          await ws.waitFor(() => ws.frames.length >= sent + 1, 5000);
          expect(ws.ws.readyState).toBe(ws.ws.OPEN);
        },
      ),
      { numRuns: 150 },
    );
    expect(ws.frames.filter((f) => f.type === 'error').length).toBeGreaterThan(0);
    ws.close();
    await alive();
  });
});
