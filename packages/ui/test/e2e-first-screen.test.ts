/**
 * The first screen a person sees (`npm start`, then the page): the shipped example, with the built-in
 * nodes. At 1280×800 and 1400×900 every node of the example is on the canvas at a readable zoom,
 * including its output nodes (nothing of the page covers them): checked on the screenshot's layout
 * with the element under each output node's centre. While a sampler runs, its step preview never
 * grows the node over its neighbour.
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

describe.skipIf(SKIP_BROWSER)('the first screen shows the whole example and its result', () => {
  let server: E2eServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await ensureBuilt();
    server = await startE2eServer({ plugin: 'builtin' });
    browser = await launchBrowser();
    page = await browser.context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('model lists offer only the models that fit each loader (by layout and signature)', async () => {
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    const lists = await page.evaluate(() => {
      const a = window.priorgraph;
      const out: Record<string, string[]> = {};
      for (const [type, input] of [
        ['priorgraph.UNetLoader', 'unet_path'],
        ['priorgraph.DiffusersLoader', 'model_path'],
        ['priorgraph.CLIPLoader', 'clip_path'],
        ['priorgraph.VAELoader', 'vae_path'],
      ]) {
        out[type] = a.defs.get(type)?.inputs.find((i) => i.name === input)?.options ?? [];
      }
      return out;
    });
    const unet = lists['priorgraph.UNetLoader'];
    expect(unet.length).toBeGreaterThan(0);
    // text encoders, VAE halves and the evaluation classifier are not denoisers
    expect(unet.filter((m) => /text_encoder|vae_|classifier/.test(m))).toEqual([]);
    expect(unet).toContain('shapes-base');
    expect(unet.some((m) => /(unet|transformer)\/model\.onnx$/.test(m))).toBe(true);
    // a CLIP needs a tokenizer and a text encoder: the class-conditional and unconditional bases have none
    expect(lists['priorgraph.CLIPLoader']).toContain('shapes-t2i');
    expect(lists['priorgraph.CLIPLoader']).not.toContain('shapes-base');
    expect(lists['priorgraph.CLIPLoader']).not.toContain('eval');
    expect(lists['priorgraph.VAELoader']).toContain('shapes-base');
    expect(lists['priorgraph.DiffusersLoader']).not.toContain('eval');
  });

  it('10. a ComfyUI prompt whose Empty Latent Image has no channels opens, queues and runs', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    const prompt = {
      '1': { class_type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      '2': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
      '3': { class_type: 'VAEDecode', inputs: { samples: ['2', 0], vae: ['1', 2] } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'no-channels' } },
    };
    // as a ComfyUI client sends it (no editor filling in defaults)
    const direct = await fetch(`${server.url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt }),
    });
    expect(direct.status, await direct.clone().text()).toBe(200);
    // and dropped on the editor
    await page.evaluate((json) => {
      const dt = new DataTransfer();
      dt.items.add(new File([json], 'prompt_api.json', { type: 'application/json' }));
      document
        .getElementById('canvas-wrap')!
        .dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, JSON.stringify(prompt));
    await page.waitForFunction(() => window.priorgraph.editor.nodeIds().includes('4'));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(
      () => window.priorgraph.events.some((e) => /^(success|error|validation failed)/.test(e)),
      null,
      { timeout: 60_000 },
    );
    const events = await page.evaluate(() => window.priorgraph.events);
    expect(events.filter((e) => /^(error|validation failed)/.test(e))).toEqual([]);
    expect(events.some((e) => e.startsWith('images 4'))).toBe(true);
  });

  for (const [w, h] of [
    [1280, 800],
    [1400, 900],
  ]) {
    it(`at ${w}×${h}: every node in view, the outputs uncovered, text readable`, async () => {
      await page.setViewportSize({ width: w, height: h });
      await page.goto(server.url);
      await page.evaluate(() => localStorage.clear());
      await page.reload();
      await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
      await page.screenshot({ path: join(ARTIFACTS, `first-screen-${w}x${h}.png`) });
      const r = await page.evaluate(() => {
        const a = window.priorgraph;
        const canvas = document.getElementById('graph-canvas')!;
        const cb = canvas.getBoundingClientRect();
        const outputs = new Set(a.editor.nodeIds().filter((id) => a.defs.get(a.editor.nodeType(id)!)?.outputNode));
        return {
          scale: a.editor.canvas.ds.scale,
          lowQuality: a.editor.canvas.low_quality,
          nodes: a.editor.nodeIds().map((id) => {
            const [x, y, bw, bh] = a.editor.nodeScreenBox(id)!;
            const cx = cb.left + x + bw / 2;
            const cy = cb.top + y + bh / 2;
            const inView = x >= 0 && y >= 0 && x + bw <= cb.width && y + bh <= cb.height;
            const visibleRight = Math.min(cb.right, document.documentElement.clientWidth);
            return {
              id,
              output: outputs.has(id),
              inView: inView && cb.left + x + bw <= visibleRight,
              uncovered: document.elementFromPoint(cx, cy) === canvas,
            };
          }),
        };
      });
      const boxes = await page.evaluate(() =>
        window.priorgraph.editor.nodeIds().map((id) => [id, ...window.priorgraph.editor.nodeScreenBox(id)!] as const),
      );
      const overlaps = boxes.flatMap(([a, ax, ay, aw, ah], i) =>
        boxes
          .slice(i + 1)
          .filter(([, bx, by, bw, bh]) => ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah)
          .map(([b]) => `${a}/${b}`),
      );
      expect(overlaps).toEqual([]);
      expect(r.nodes.filter((n) => n.output).length).toBeGreaterThan(0);
      expect(r.nodes.filter((n) => !n.inView).map((n) => n.id)).toEqual([]);
      expect(r.nodes.filter((n) => n.output && !n.uncovered).map((n) => n.id)).toEqual([]);
      expect(r.lowQuality).toBe(false);
    });
  }
});
