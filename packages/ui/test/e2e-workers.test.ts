/**
 * The Workers panel against a real queue: redis-server on a free port, the real server in queue mode
 * and a real `priorgraph worker` process with the dev plugin. The panel appears with the worker, shows
 * the job it runs, and drops the worker when it stops. Skipped, saying so, without redis-server or
 * with PRIORGRAPH_SKIP_REDIS=1 (and without Chromium, as every editor test).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.ts';
import { type Browser, launchBrowser, SKIP_BROWSER } from './browser.ts';
import { type E2eServer, ensureBuilt, startE2eServer } from './e2e-setup.ts';

const REDIS = process.env.PRIORGRAPH_REDIS_SERVER ?? '/usr/bin/redis-server';
const noRedis = process.env.PRIORGRAPH_SKIP_REDIS === '1' || !existsSync(REDIS);
if (noRedis) process.stderr.write(`editor workers panel test skipped: no redis-server at ${REDIS}\n`);
const cli = fileURLToPath(new URL('../../server/src/cli.ts', import.meta.url));
const devPluginUrl = new URL('./fixtures/dev-plugin.ts', import.meta.url).href;

declare global {
  interface Window {
    priorgraph: App;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (ready.test(out)) resolve(child);
    });
    child.stderr!.on('data', (d) => {
      out += String(d);
    });
    child.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code}): ${out}`)));
  });
}

describe.skipIf(SKIP_BROWSER || noRedis)('editor: the Workers panel in queue mode', () => {
  let dir: string;
  let redis: ChildProcess;
  let worker: ChildProcess;
  let server: E2eServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pg-ui-workers-'));
    mkdirSync(join(dir, 'models'));
    const port = await freePort();
    redis = await start(
      REDIS,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      /Ready to accept connections/,
    );
    const queue = `redis://127.0.0.1:${port}/0`;
    server = await startE2eServer({ plugin: 'dev', queue });
    // named "local" on purpose: the panel once hid a lone worker of that name, taking it for the
    // server's own process; now the server says each worker's kind and no name is special
    worker = await start(
      process.execPath,
      ['--import', 'tsx', cli, 'worker', '--queue', queue, '--plugin', devPluginUrl, '--name', 'local'].concat([
        '--data-dir',
        join(dir, 'worker'),
        '--models',
        join(dir, 'models'),
      ]),
      /ready\n/,
    );
    browser = await launchBrowser();
    page = await browser.context.newPage();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    for (const p of [worker, redis]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the worker (even one named "local": its kind says queue), shows the job it runs, and drops it when it stops', async () => {
    await page.setViewportSize({ width: 1600, height: 900 });
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    await page.waitForSelector('#workers-panel:not([hidden]) li[data-worker="local"]', { timeout: 30_000 });
    expect(await page.locator('li[data-worker="local"]').textContent()).toMatch(/local · .* · idle · /);
    const listed = (await (await fetch(`${server.url}/api/workers`)).json()) as Array<{ name: string; kind: string }>;
    expect(listed.map((w) => [w.name, w.kind])).toEqual([['local', 'queue']]);
    // a slow run: the row says which job the worker runs
    await page.evaluate(() => window.priorgraph.editor.setWidgetValue('2', 'delay_ms', 1500));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(
      () => /running [0-9a-f]{8}/.test(document.querySelector('li[data-worker="local"]')?.textContent ?? ''),
      null,
      { timeout: 30_000 },
    );
    await page.locator('#btn-interrupt').click();
    worker.kill('SIGTERM');
    await page.waitForSelector('#workers-panel[hidden]', { state: 'attached', timeout: 30_000 });
    expect(await page.evaluate(() => window.priorgraph.workers.shown)).toEqual([]);
  }, 120_000);
});
