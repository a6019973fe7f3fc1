/**
 * Issue 16, item 3: a PNG that does not fit on the disk leaves nothing behind (it used to leave a
 * 0-byte or truncated file that history then pointed at). The output folder is a small tmpfs nearly
 * filled up; where mounting is not allowed (not root) the test skips and says so.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveImages } from '../src/nodes/images.ts';

let mounted: string | null = null;
afterAll(() => {
  if (mounted) {
    try {
      execFileSync('umount', ['-l', mounted]);
    } catch {}
    rmSync(mounted, { recursive: true, force: true });
  }
});

describe('SaveImage on a full disk', () => {
  it('fails with ENOSPC and leaves no PNG and no temporary file', (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      return ctx.skip(`cannot mount a tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`);
    }
    mounted = dir;
    // Leave about 16 KiB free: the PNG (incompressible noise, ~190 KiB) starts writing, then fails.
    const fd = openSync(join(dir, 'filler'), 'w');
    writeFileSync(fd, Buffer.alloc(256 * 1024 - 16 * 1024, 1));
    closeSync(fd);
    const w = 256;
    const h = 256;
    const data = new Float32Array(w * h * 3);
    let x = 12345;
    for (let i = 0; i < data.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      data[i] = (x >>> 8) / 2 ** 24;
    }
    expect(() => saveImages({ data, shape: [1, h, w, 3] }, dir, 'full', undefined)).toThrow(/ENOSPC/);
    expect(readdirSync(dir).sort()).toEqual(['filler']);
  });
});
