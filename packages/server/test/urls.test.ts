/**
 * The address `priorgraph serve` tells people to open: a reachable one instead of 0.0.0.0, with the
 * token in `?token=` when one is set (the editor reads it from there).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { editorUrls } from '../src/urls.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pg-urls-'));
mkdirSync(join(dir, 'models'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('editor URLs', () => {
  it('a wildcard bind lists the machine addresses then localhost, each with the token', () => {
    expect(editorUrls('http://0.0.0.0:8188', 'sec ret+1', ['192.168.1.20', '[fd00::5]'])).toEqual([
      'http://192.168.1.20:8188/?token=sec+ret%2B1',
      'http://[fd00::5]:8188/?token=sec+ret%2B1',
      'http://localhost:8188/?token=sec+ret%2B1',
    ]);
    expect(editorUrls('http://[::]:9000', undefined, [])).toEqual(['http://localhost:9000']);
  });

  it('a bound address is kept; without a token the bare origin (scripts append paths to it)', () => {
    expect(editorUrls('http://127.0.0.1:8188')).toEqual(['http://127.0.0.1:8188']);
    expect(editorUrls('http://10.0.0.7:8188', 'abcdefgh')).toEqual(['http://10.0.0.7:8188/?token=abcdefgh']);
  });

  it('serve --host 0.0.0.0 --token prints a URL to open with the token, not 0.0.0.0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'serve',
        '--host',
        '0.0.0.0',
        '--port',
        '0',
        '--token',
        'printed-token-1',
        '--data-dir',
        join(dir, 'srv'),
        '--models',
        join(dir, 'models'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let err = '';
      child.stderr.on('data', (d) => {
        err += String(d);
      });
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += String(d);
          const m = out.match(/(http:\/\/\S+)\n/);
          if (m) resolve(m[1]);
        });
        child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
      });
      const u = new URL(url);
      expect(u.hostname).not.toBe('0.0.0.0');
      expect(u.searchParams.get('token')).toBe('printed-token-1');
      // the page itself answers there (loopback stands in for the address printed)
      const page = await fetch(`http://127.0.0.1:${u.port}/?token=printed-token-1`);
      expect(page.status).toBe(200);
      expect(err).toContain(`open the editor at ${url}`);
      const stop = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await stop).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
