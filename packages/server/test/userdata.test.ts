/** ComfyUI's /userdata routes (named workflows of the editor): stored byte for byte, confined to the
 *  data dir, size-limited, with clear 4xx answers. Real server, real HTTP. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Started, startServer } from '../testkit/index.js';

describe('/userdata', () => {
  let s: Started;
  const u = (file: string, q = '') => `${s.url}/userdata/${encodeURIComponent(file)}${q}`;
  beforeAll(async () => {
    s = await startServer({ maxUserdataBytes: 1024 });
  });
  afterAll(() => s.close());

  it('saves, lists, reads and deletes a workflow (bytes kept, seeds above 2^53 exact)', async () => {
    const text = '{"format":"priorgraph","seed":18446744073709551615}';
    let r = await fetch(u('workflows/my flow.json'), { method: 'POST', body: text });
    expect(r.status).toBe(200);
    expect(await r.json()).toBe('workflows/my flow.json');
    expect(readFileSync(join(s.dataDir, 'userdata', 'workflows', 'my flow.json'), 'utf8')).toBe(text);
    r = await fetch(`${s.url}/api/userdata?dir=workflows`);
    expect(await r.json()).toEqual(['my flow.json']);
    r = await fetch(`${s.url}/userdata?dir=workflows&full_info=true`);
    const [info] = (await r.json()) as Array<{ path: string; size: number; modified: number }>;
    expect(info).toMatchObject({ path: 'my flow.json', size: text.length });
    r = await fetch(u('workflows/my flow.json'));
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(text);
    r = await fetch(u('workflows/my flow.json', '?overwrite=false'), { method: 'POST', body: '{}' });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/exists.*overwrite/);
    r = await fetch(u('workflows/my flow.json'), { method: 'DELETE' });
    expect(r.status).toBe(204);
    r = await fetch(u('workflows/my flow.json'));
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/no user file/);
  });

  it('refuses paths that leave the user folder, bad JSON, too large bodies and a missing dir', async () => {
    const msg = async (r: Response) => ((await r.json()) as { error: { message: string } }).error.message;
    for (const bad of ['../escape.json', 'workflows/../../x.json', '/etc/passwd', 'workflows/.hidden.json']) {
      const r = await fetch(u(bad), { method: 'POST', body: '{}' });
      expect(r.status, bad).toBe(400);
      expect(await msg(r)).toMatch(/file/);
    }
    expect(existsSync(join(s.dataDir, 'escape.json'))).toBe(false);
    let r = await fetch(u('workflows/bad.json'), { method: 'POST', body: '{nope' });
    expect(r.status).toBe(400);
    expect(await msg(r)).toMatch(/workflows\/bad\.json: not valid JSON/);
    r = await fetch(u('workflows/big.json'), { method: 'POST', body: JSON.stringify({ x: 'a'.repeat(2000) }) });
    expect(r.status).toBe(413);
    r = await fetch(`${s.url}/userdata`);
    expect(r.status).toBe(400);
    expect(await msg(r)).toMatch(/dir/);
    r = await fetch(`${s.url}/userdata?dir=nothing-here`);
    expect(r.status).toBe(404);
    r = await fetch(`${s.url}/userdata?dir=..`);
    expect(r.status).toBe(400);
    r = await fetch(u('workflows/none.json'), { method: 'DELETE' });
    expect(r.status).toBe(404);
  });
});
