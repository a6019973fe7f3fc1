/**
 * End to end in Chromium against the real server running the small dev plugin (no models needed): a node
 * that fails at run time is marked with its message, and Interrupt stops a running prompt.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.ts';
import { type Browser, launchBrowser, SKIP_BROWSER } from './browser.ts';
import { type E2eServer, ensureBuilt, startE2eServer } from './e2e-setup.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

declare global {
  interface Window {
    priorgraph: App;
  }
}

const failing = {
  format: 'priorgraph',
  version: 1,
  nodes: {
    '1': { type: 'dev.Canvas', inputs: { width: 32, height: 32 }, ui: { pos: [40, 80] } },
    '2': {
      type: 'dev.Painter',
      inputs: { latent: { node: '1', output: 'LATENT' }, seed: 1, steps: 2, delay_ms: 10, colour: 'red' },
      ui: { pos: [360, 80] },
    },
    '3': { type: 'dev.Explode', inputs: { image: { node: '2', output: 'IMAGE' } }, ui: { pos: [720, 80] } },
    '4': { type: 'dev.SaveImage', inputs: { images: { node: '3', output: 'IMAGE' } }, ui: { pos: [1000, 80] } },
  },
};

describe.skipIf(SKIP_BROWSER)(
  'editor: failed runs, interrupt, imports (real Chromium, real server, dev plugin)',
  () => {
    let server: E2eServer;
    let browser: Browser;
    let page: Page;
    const consoleErrors: string[] = [];

    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      await ensureBuilt();
      server = await startE2eServer({ plugin: 'dev', workflow: failing });
      browser = await launchBrowser();
      page = await browser.context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
      await page.goto(server.url);
      await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    }, 180_000);

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it('marks the node that failed with its message', async () => {
      await page.locator('#btn-queue').click();
      await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('error')), null, {
        timeout: 30_000,
      });
      const state = await page.evaluate(() => window.priorgraph.editor.runState('3'));
      expect(state?.error).toMatch(/always fails/);
      expect(await page.locator('#errors li').first().textContent()).toMatch(/Explode.*always fails/);
      await page.screenshot({ path: join(ARTIFACTS, 'failure-node-error.png') });
    });

    it('interrupts a running prompt', async () => {
      await page.evaluate(() => {
        const a = window.priorgraph;
        a.editor.setWidgetValue('2', 'steps', 50);
        a.editor.setWidgetValue('2', 'delay_ms', 200);
      });
      await page.keyboard.press('Control+Enter');
      await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('progress 2 2/50')), null, {
        timeout: 30_000,
      });
      await page.locator('#btn-interrupt').click();
      await page.waitForFunction(() => window.priorgraph.events.at(-1) === 'interrupted', null, { timeout: 30_000 });
      const progressed = await page.evaluate(
        () => window.priorgraph.events.filter((e) => e.startsWith('progress 2 ')).length,
      );
      expect(progressed).toBeLessThan(50 + 2);
      await page.screenshot({ path: join(ARTIFACTS, 'interrupted.png') });
    });

    it('opens a ComfyUI API-format prompt dropped on the canvas', async () => {
      const prompt = {
        '10': { class_type: 'Canvas', inputs: { width: 48, height: 40 } },
        '11': { class_type: 'dev.Painter', inputs: { latent: ['10', 0], seed: 9, steps: 3, colour: 'green' } },
        '12': { class_type: 'SaveImage', inputs: { images: ['11', 0], filename_prefix: 'api' } },
      };
      await page.evaluate((json) => {
        const dt = new DataTransfer();
        dt.items.add(new File([json], 'prompt_api.json', { type: 'application/json' }));
        document
          .getElementById('canvas-wrap')!
          .dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, JSON.stringify(prompt));
      await page.waitForFunction(() => window.priorgraph.editor.nodeIds().includes('12'));
      const doc = await page.evaluate(() => window.priorgraph.currentDocument());
      expect(Object.keys(doc.nodes).sort()).toEqual(['10', '11', '12']);
      expect(doc.nodes['11'].inputs).toMatchObject({
        latent: { node: '10', output: 'LATENT' },
        seed: 9,
        steps: 3,
        colour: 'green',
      });
      expect(doc.nodes['12'].inputs.images).toEqual({ node: '11', output: 'IMAGE' });
      await page.screenshot({ path: join(ARTIFACTS, 'comfy-api-imported.png') });
    });

    it('opens a priorgraph document through the Open button', async () => {
      await page.locator('#file-input').setInputFiles({
        name: 'failing.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(failing)),
      });
      await page.waitForFunction(() => window.priorgraph.editor.nodeIds().includes('3'));
      const doc = await page.evaluate(() => window.priorgraph.currentDocument());
      expect(doc.nodes['3']).toMatchObject({ type: 'dev.Explode', inputs: { image: { node: '2', output: 'IMAGE' } } });
    });

    it('logged no console errors', () => {
      expect(consoleErrors).toEqual([]);
    });
  },
);
