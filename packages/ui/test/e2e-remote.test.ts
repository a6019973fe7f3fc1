/**
 * The editor opened from another machine: a server with a token, the page loaded by a host name that
 * is not loopback (so Chromium treats it as an insecure context: no crypto.randomUUID), all traffic
 * kept on loopback by mapping that name to 127.0.0.1 with Chromium's host-resolver rules. Without the
 * token, or with a wrong one, the page says so and offers a field for it instead of a blank canvas.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.ts';
import { type Browser, launchBrowser, SKIP_BROWSER } from './browser.ts';
import { type E2eServer, ensureBuilt, startE2eServer } from './e2e-setup.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const HOST = 'priorgraph-box.test';
const TOKEN = 'remote-secret-123';

declare global {
  interface Window {
    priorgraph: App;
  }
}

describe.skipIf(SKIP_BROWSER)('editor opened by address over plain HTTP, with a token', () => {
  let server: E2eServer;
  let browser: Browser;
  let page: Page;
  let base = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await ensureBuilt();
    server = await startE2eServer({ plugin: 'dev', token: TOKEN });
    base = `http://${HOST}:${new URL(server.url).port}/`;
    browser = await launchBrowser({ args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
    page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('works in an insecure context when opened with ?token=', async () => {
    await page.goto(`${base}?token=${TOKEN}`);
    // the host name really is treated as insecure: the API the editor used to need is absent
    expect(await page.evaluate(() => [window.isSecureContext, typeof crypto.randomUUID])).toEqual([false, 'undefined']);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    expect((await page.evaluate(() => window.priorgraph.editor.nodeIds())).length).toBeGreaterThan(0);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'idle');
    // a run goes through the WebSocket too
    await page.evaluate(() => window.priorgraph.editor.setWidgetValue('2', 'delay_ms', 0));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('success')), null, {
      timeout: 30_000,
    });
    await page.screenshot({ path: join(ARTIFACTS, 'remote-with-token.png') });
    expect(pageErrors).toEqual([]);
  });

  it('without the token: a screen that says so and takes the token', async () => {
    // a new tab shares nothing in sessionStorage (where the page keeps its token) with the first
    const p = await browser.context.newPage();
    try {
      await p.goto(base);
      await p.waitForSelector('#blocker:not([hidden])', { timeout: 30_000 });
      expect(await p.locator('#blocker-title').textContent()).toBe('This server needs an access token');
      expect(await p.locator('#blocker-text').textContent()).toContain('?token=');
      await p.screenshot({ path: join(ARTIFACTS, 'remote-no-token.png') });
      await p.locator('#token-input').fill(TOKEN);
      await p.locator('#token-form button').click();
      await p.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
      expect(await p.locator('#blocker').isHidden()).toBe(true);
    } finally {
      await p.close();
    }
  });

  it('with a wrong token: says the token is wrong', async () => {
    const p = await browser.context.newPage();
    try {
      await p.goto(`${base}?token=not-the-token`);
      await p.waitForSelector('#blocker:not([hidden])', { timeout: 30_000 });
      expect(await p.locator('#blocker-title').textContent()).toBe('Wrong access token');
      await p.screenshot({ path: join(ARTIFACTS, 'remote-wrong-token.png') });
    } finally {
      await p.close();
    }
  });
});
