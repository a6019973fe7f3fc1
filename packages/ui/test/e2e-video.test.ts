/**
 * Video in the editor, in Chromium against the real server and the built-in plugin: a video graph (a
 * tiny rank-5 denoiser the test writes, the node fixtures' VAE) saved as animated WebP, APNG and, with
 * Debian's ffmpeg, MP4. The outputs play on their nodes (the canvas draws changing frames) and in the
 * history panel, and a saved WebP / MP4 dropped on the canvas restores the graph.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeVideoModel } from '../../nodes/test/video-fixtures.ts';
import type { App } from '../src/app.ts';
import { type Browser, launchBrowser, SKIP_BROWSER } from './browser.ts';
import { type E2eServer, ensureBuilt, REPO, startE2eServer } from './e2e-setup.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;

declare global {
  interface Window {
    priorgraph: App;
  }
}

const link = (node: string, output: string) => ({ node, output });
const saves: Record<string, { type: string; inputs: Record<string, unknown>; ui: { pos: [number, number] } }> = {
  webp: {
    type: 'priorgraph.SaveAnimatedWEBP',
    inputs: {
      images: link('dec', 'IMAGE'),
      filename_prefix: 'v',
      fps: 8,
      lossless: true,
      quality: 80,
      method: 'fastest',
    },
    ui: { pos: [1200, 40] },
  },
  apng: {
    type: 'priorgraph.SaveAnimatedPNG',
    inputs: { images: link('dec', 'IMAGE'), filename_prefix: 'v', fps: 8, compress_level: 4 },
    ui: { pos: [1200, 380] },
  },
};
if (FFMPEG) {
  saves.mp4 = {
    type: 'priorgraph.SaveVideo',
    inputs: { images: link('dec', 'IMAGE'), filename_prefix: 'v', fps: 8, crf: 20 },
    ui: { pos: [1200, 720] },
  };
}
const node = (type: string, inputs: Record<string, unknown>, pos: [number, number]) => ({
  type: `priorgraph.${type}`,
  inputs,
  ui: { pos },
});
const workflow = {
  format: 'priorgraph',
  version: 1,
  nodes: {
    m: node('UNetLoader', { unet_path: 'video-uncond' }, [20, 40]),
    d: node('Denoiser', { model: link('m', 'MODEL') }, [20, 200]),
    g: node('BasicGuider', { denoiser: link('d', 'DENOISER') }, [20, 340]),
    sched: node('Scheduler', { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' }, [20, 460]),
    lat: node('EmptyVideoLatent', { width: 64, height: 64, frames: 4, batch_size: 1 }, [20, 700]),
    s: node(
      'Sampler',
      {
        guider: link('g', 'GUIDER'),
        scheduler: link('sched', 'SCHEDULER'),
        seed: 4,
        steps: 2,
        denoise: 1,
        batch_size: 1,
        preview_every: 1,
        latent_image: link('lat', 'LATENT'),
      },
      [420, 40],
    ),
    vae: node('VAELoader', { vae_path: 'tiny-t2i' }, [420, 460]),
    dec: node('VAEDecode', { samples: link('s', 'LATENT'), vae: link('vae', 'VAE') }, [820, 40]),
    ...saves,
  },
};

describe.skipIf(SKIP_BROWSER)('editor: animated outputs (real Chromium, real server, built-in plugin)', () => {
  let server: E2eServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const models = mkdtempSync(join(tmpdir(), 'pg-ui-video-'));
    writeVideoModel(models, 'video-uncond', {
      inC: 4,
      frames: 4,
      k: { a: 0.4, b: 0, c: 0, d: 0.0005, e: 0.3 },
      ehs: false,
    });
    await ensureBuilt();
    server = await startE2eServer({
      workflow,
      modelRoots: [join(REPO, 'packages', 'nodes', 'test', 'fixtures', 'models'), models],
    });
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

  /** Frames the canvas shows of a node's output change (the animation plays): sampled until two differ. */
  async function playsOnNode(p: Page, id: string) {
    await p.waitForFunction(
      (nodeId) => {
        const w = window as unknown as { __frames?: Record<string, Set<string>> };
        w.__frames ??= {};
        const s = window.priorgraph.editor.runState(nodeId);
        const m = s?.images[0]?.current();
        if (!m) return false;
        const c = document.createElement('canvas');
        c.width = 16;
        c.height = 16;
        const ctx = c.getContext('2d')!;
        try {
          ctx.drawImage(m, 0, 0, 16, 16);
        } catch {
          return false; // not loaded yet
        }
        const key = Array.from(ctx.getImageData(0, 0, 16, 16).data).join(',');
        w.__frames[nodeId] ??= new Set();
        w.__frames[nodeId].add(key);
        return w.__frames[nodeId].size >= 2;
      },
      id,
      { polling: 50, timeout: 30_000 },
    );
  }

  it('plays the WebP, APNG and MP4 outputs on their nodes and in the history panel', async () => {
    await page.locator('#btn-queue').click();
    for (const id of Object.keys(saves)) {
      await page.waitForFunction((n) => window.priorgraph.events.some((e) => e.startsWith(`images ${n} `)), id, {
        timeout: 60_000,
      });
    }
    for (const id of Object.keys(saves)) {
      const state = await page.evaluate((n) => {
        const s = window.priorgraph.editor.runState(n)!;
        return { animated: s.animated, kinds: s.images.map((m) => m.kind) };
      }, id);
      expect(state.animated).toBe(true);
      expect(state.kinds).toEqual([id === 'mp4' ? 'video' : 'animation']);
      await playsOnNode(page, id);
    }
    // the history panel: animated WebP / PNG in <img> (they animate by themselves), the MP4 in a <video>
    await page.waitForFunction(
      (n) => document.querySelectorAll('#history .thumbs img, #history .thumbs video').length >= n,
      Object.keys(saves).length,
      { timeout: 30_000 },
    );
    const thumbs = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLImageElement | HTMLVideoElement>('#history .thumbs > *')).map((t) => ({
        tag: t.tagName,
        src: t.getAttribute('src') ?? '',
      })),
    );
    expect(thumbs.some((t) => t.tag === 'IMG' && /\.webp/.test(t.src))).toBe(true);
    expect(thumbs.some((t) => t.tag === 'IMG' && /\.png/.test(t.src))).toBe(true);
    if (FFMPEG) {
      expect(thumbs.some((t) => t.tag === 'VIDEO' && /\.mp4/.test(t.src))).toBe(true);
      await page.waitForFunction(
        () => {
          const v = document.querySelector<HTMLVideoElement>('#history .thumbs video');
          return !!v && v.readyState >= 2 && v.currentTime > 0;
        },
        null,
        { timeout: 30_000 },
      );
    }
    await page.screenshot({ path: join(ARTIFACTS, 'video-outputs.png') });
    expect(consoleErrors).toEqual([]);
  }, 180_000);

  it('restores the graph from a saved WebP (and MP4) dropped on the canvas', async () => {
    for (const id of Object.keys(saves).filter((k) => k !== 'apng')) {
      // a fresh graph, then the output file dropped on it
      await page.evaluate(() =>
        window.priorgraph.loadDocument({ format: 'priorgraph', version: 1, nodes: {} } as never),
      );
      expect(await page.evaluate(() => window.priorgraph.editor.nodeIds().length)).toBe(0);
      const file = await page.evaluate(
        async (ext) => {
          const t = Array.from(document.querySelectorAll('#history .thumbs > *')).find((e) =>
            new RegExp(`\\.${ext}`).test(e.getAttribute('src') ?? ''),
          );
          const url = t!.getAttribute('src')!;
          const bytes = await (await fetch(url)).arrayBuffer();
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], `out.${ext}`, { type: ext === 'mp4' ? 'video/mp4' : 'image/webp' }));
          document
            .getElementById('canvas-wrap')!
            .dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          return url;
        },
        id === 'mp4' ? 'mp4' : 'webp',
      );
      expect(file).toBeTruthy();
      await page.waitForFunction(() => window.priorgraph.editor.nodeIds().includes('dec'), null, { timeout: 10_000 });
      const ids = await page.evaluate(() => window.priorgraph.editor.nodeIds().sort());
      expect(ids).toEqual(Object.keys(workflow.nodes).sort());
    }
  });
});
