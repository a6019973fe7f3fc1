/**
 * The editor as a person uses it for a day (issue 15), in Chromium against the real server with the
 * small dev plugin: undo and redo that never get stuck, the Example button that asks first and can be
 * undone, the first screen, the queue and history panels, image uploads, model lists, tooltips,
 * ComfyUI's shortcuts. Each test first reproduced the problem it names.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.ts';
import type { WorkflowDocument } from '../src/types.ts';
import { type Browser, launchBrowser, SKIP_BROWSER } from './browser.ts';
import { type E2eServer, ensureBuilt, startE2eServer } from './e2e-setup.ts';
import { encodePng } from './fixtures/png-encode.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

declare global {
  interface Window {
    priorgraph: App;
  }
}

describe.skipIf(SKIP_BROWSER)('editor for daily use (real Chromium, real server, dev plugin)', () => {
  let server: E2eServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const doc = () => page.evaluate(() => window.priorgraph.currentDocument()) as Promise<WorkflowDocument>;
  const canvasBox = async () => (await page.locator('#graph-canvas').boundingBox())!;
  const nodeBox = (id: string) =>
    page.evaluate((i) => window.priorgraph.editor.nodeScreenBox(i)!, id) as Promise<[number, number, number, number]>;
  // the editor records a change for undo 120 ms after it: a page timer set now, for longer, runs after
  // that one (the page's timers run in order of their due time), however late a loaded machine runs both
  const settle = () => page.evaluate(() => new Promise<void>((r) => setTimeout(r, 200)));
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `daily-${name}.png`) });

  /** Drag a node by its title bar by (dx, dy) CSS pixels. */
  const dragNode = async (id: string, dx: number, dy: number) => {
    const box = await canvasBox();
    const [x, y] = await nodeBox(id);
    await page.mouse.move(box.x + x + 40, box.y + y + 10);
    await page.mouse.down();
    await page.mouse.move(box.x + x + 40 + dx, box.y + y + 10 + dy, { steps: 6 });
    await page.mouse.up();
    await settle();
  };
  const posOf = async (id: string) => (await doc()).nodes[id].ui?.pos;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await ensureBuilt();
    server = await startE2eServer({ plugin: 'dev' });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('2. undo keeps working after a redo (link dragged off an input, Esc, Ctrl+Z, Ctrl+Shift+Z)', async () => {
    const linked = async () => typeof (await doc()).nodes['3'].inputs.images === 'object';
    const start = await posOf('3');
    await dragNode('3', 60, 40);
    const moved = await posOf('3');
    expect(moved).not.toEqual(start);
    // drag the link off node 3's input and release it on empty canvas: the search opens; Esc closes it
    const box = await canvasBox();
    const from = (await page.evaluate(() => window.priorgraph.editor.slotScreenPos('3', 'input', 'images')))!;
    await page.mouse.move(box.x + from[0], box.y + from[1]);
    await page.mouse.down();
    await page.mouse.move(box.x + from[0] - 30, box.y + box.height - 60, { steps: 6 });
    await page.mouse.up();
    await settle();
    await shot('link-dropped');
    await page.keyboard.press('Escape');
    await settle();
    expect(await linked()).toBe(false);
    const steps: string[] = [];
    const state = async () => `${(await linked()) ? 'linked' : 'unlinked'} ${JSON.stringify(await posOf('3'))}`;
    const press = async (k: string) => {
      await page.keyboard.press(k);
      await settle();
      steps.push(`${k}: ${await state()}`);
    };
    await press('Control+z');
    await press('Control+Shift+z');
    await press('Control+z');
    await press('Control+z');
    await press('Control+Shift+z');
    await press('Control+Shift+z');
    const s = JSON.stringify;
    expect(steps).toEqual([
      `Control+z: linked ${s(moved)}`,
      `Control+Shift+z: unlinked ${s(moved)}`,
      `Control+z: linked ${s(moved)}`,
      `Control+z: linked ${s(start)}`,
      `Control+Shift+z: linked ${s(moved)}`,
      `Control+Shift+z: unlinked ${s(moved)}`,
    ]);
  });

  it('3. "Example" asks before replacing the graph, and Ctrl+Z brings the old graph back', async () => {
    // a graph of the person's own: the example with one node fewer
    await page.evaluate(() => {
      const a = window.priorgraph;
      const d = a.currentDocument();
      delete d.nodes['3'];
      a.loadDocument(d, { fit: false });
    });
    await settle();
    const mine = await doc();
    const questions: string[] = [];
    let answer = false;
    const onDialog = (d: import('playwright-core').Dialog) => {
      questions.push(d.message());
      void (answer ? d.accept() : d.dismiss());
    };
    page.on('dialog', onDialog);
    try {
      await page.locator('#btn-default').click();
      await settle();
      expect(questions).toHaveLength(1);
      expect(questions[0]).toMatch(/Replace the current graph with the example/);
      expect((await doc()).nodes).toEqual(mine.nodes);
      answer = true;
      await page.locator('#btn-default').click();
      await page.waitForFunction(() => window.priorgraph.events.at(-1) === 'opened the example');
      await settle();
      expect(questions).toHaveLength(2);
      expect(Object.keys((await doc()).nodes).sort()).toEqual(
        Object.keys(server.defaultWorkflow.nodes as object).sort(),
      );
      await page.keyboard.press('Control+z');
      await settle();
      expect((await doc()).nodes).toEqual(mine.nodes);
      await page.keyboard.press('Control+Shift+z');
      await settle();
      expect(Object.keys((await doc()).nodes)).toContain('3');
    } finally {
      page.off('dialog', onDialog);
    }
  });

  it("4. a running sampler's step preview does not grow over the node below it", async () => {
    await page.evaluate(() => {
      const a = window.priorgraph;
      const d = a.currentDocument();
      const painter = d.nodes['2'];
      painter.inputs.steps = 12;
      painter.inputs.delay_ms = 250;
      // a node right under the sampler, 40 units below its bottom edge
      const [x, y] = painter.ui!.pos!;
      const h = painter.ui?.size?.[1] ?? 226;
      d.nodes['9'] = { type: 'dev.Canvas', inputs: { width: 16, height: 16 }, ui: { pos: [x, y + h + 70] } };
      a.loadDocument(d, { fit: true });
    });
    await settle();
    const overlap = () =>
      page.evaluate(() => {
        const [ax, ay, aw, ah] = window.priorgraph.editor.nodeScreenBox('2')!;
        const [bx, by, bw, bh] = window.priorgraph.editor.nodeScreenBox('9')!;
        return ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
      });
    expect(await overlap()).toBe(false);
    await page.evaluate(() => window.priorgraph.events.splice(0));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => window.priorgraph.events.includes('preview 2'), null, { timeout: 30_000 });
    await shot('preview-room');
    expect(await page.evaluate(() => !!window.priorgraph.editor.runState('2')?.preview)).toBe(true);
    expect(await overlap()).toBe(false);
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('success')), null, {
      timeout: 30_000,
    });
  });

  it('5. queue panel (running, pending, cancel one, clear) and a history with failed and interrupted runs', async () => {
    await page.evaluate(() => {
      const a = window.priorgraph;
      const d = a.currentDocument();
      delete d.nodes['9'];
      Object.assign(d.nodes['2'].inputs, { steps: 40, delay_ms: 100 });
      a.loadDocument(d, { fit: true });
      // each run a new seed: identical runs would come from the server's cache at once
      a.editor.setWidgetValue('2', 'seed after run', 'increment');
    });
    if (await page.locator('#side').isHidden()) await page.keyboard.press('q');
    await page.waitForSelector('#side:not([hidden])');
    for (let i = 0; i < 3; i++) await page.locator('#btn-queue').click();
    const rows = () => page.locator('#queue-list li').evaluateAll((ls) => ls.map((l) => l.className));
    await page.waitForFunction(() => document.querySelectorAll('#queue-list li.pending').length === 2, null, {
      timeout: 20_000,
    });
    expect(await rows()).toEqual(['job running', 'job pending', 'job pending']);
    await shot('queue-panel');
    // cancel the last pending job, then clear the rest
    await page.locator('#queue-list li.pending button.cancel').last().click();
    await page.waitForFunction(() => document.querySelectorAll('#queue-list li.pending').length === 1);
    await page.locator('#btn-clear-queue').click();
    await page.waitForFunction(() => document.querySelectorAll('#queue-list li.pending').length === 0);
    expect(await rows()).toEqual(['job running']);
    // interrupt the running one from its row
    await page.locator('#queue-list li.running button.cancel').click();
    await page.waitForSelector('#history li[data-status=interrupted]', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelectorAll('#queue-list li').length === 0);
    // a run that fails (queued by another client) appears with its message
    const failing = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        '1': { type: 'dev.Canvas', inputs: { width: 16, height: 16 } },
        '2': {
          type: 'dev.Painter',
          inputs: {
            ...{ latent: { node: '1', output: 'LATENT' }, seed: 1, steps: 1, delay_ms: 0, colour: 'red' },
            ...{ strength: 0.5, note: '', sharp: true },
          },
        },
        '3': { type: 'dev.Explode', inputs: { image: { node: '2', output: 'IMAGE' } } },
        '4': { type: 'dev.SaveImage', inputs: { images: { node: '3', output: 'IMAGE' }, filename_prefix: 'x' } },
      },
    };
    const r = await fetch(`${server.url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: failing }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
    await page.waitForSelector('#history li[data-status=error] .job-error', { timeout: 20_000 });
    expect(await page.locator('#history li[data-status=error] .job-error').first().textContent()).toMatch(
      /node 3: .*always fails/,
    );
    await shot('history-panel');
    // the same order after a reload
    const order = await page.evaluate(() => window.priorgraph.jobs.historyOrder);
    const domOrder = () =>
      page.locator('#history li').evaluateAll((ls) => ls.map((l) => (l as HTMLElement).dataset.id));
    expect(await domOrder()).toEqual(order);
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    expect(await domOrder()).toEqual(order);
    // load the failed run's workflow back (it asks first: the graph is replaced)
    page.once('dialog', (d) => void d.accept());
    await page.locator('#history li[data-status=error] button.load').first().click();
    await page.waitForFunction(() => window.priorgraph.editor.nodeIds().length === 4);
    expect(Object.values((await doc()).nodes).map((n) => n.type)).toContain('dev.Explode');
    await page.keyboard.press('Control+z');
    await settle();
    expect(Object.values((await doc()).nodes).map((n) => n.type)).not.toContain('dev.Explode');
  });

  it('6. a plain PNG dropped on the canvas becomes a Load Image node; its upload button; lists refresh', async () => {
    page.once('dialog', (d) => void d.accept());
    await page.locator('#btn-new').click();
    await settle();
    const png = encodePng(4, 4, new Uint8Array(4 * 4 * 3).fill(200));
    const box = await canvasBox();
    await page.evaluate(
      ({ b64, x, y }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'holiday.png', { type: 'image/png' }));
        const target = document.getElementById('canvas-wrap')!;
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        target.dispatchEvent(
          new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true, clientX: x, clientY: y }),
        );
      },
      { b64: Buffer.from(png).toString('base64'), x: box.x + 200, y: box.y + 150 },
    );
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('uploaded holiday')));
    const d = await doc();
    const [id, node] = Object.entries(d.nodes)[0];
    expect(node.type).toBe('dev.LoadImage');
    expect(node.inputs.image).toBe('holiday.png');
    expect(await page.evaluate((i) => window.priorgraph.editor.comboOptions(i, 'image'), id)).toContain('holiday.png');
    await shot('image-dropped');
    // the node's upload button: a file chooser, then the new file selected. The button's place is read
    // right after a synchronous redraw (a busy machine may not have drawn the new node yet); the click
    // is repeated only if no chooser opened (it lands on the button's current place each time)
    const buttonAt = () =>
      page.evaluate((i) => {
        const e = window.priorgraph.editor;
        e.canvas.draw(true, true);
        return e.widgetScreenPos(i, 'choose image to upload');
      }, id);
    let chooser: import('playwright-core').FileChooser | undefined;
    for (let attempt = 0; attempt < 3 && !chooser; attempt++) {
      const at = (await buttonAt())!;
      expect(at).toBeDefined();
      const waiting = page.waitForEvent('filechooser', { timeout: 5000 }).catch(() => undefined);
      await page.mouse.click(box.x + at[0], box.y + at[1]);
      chooser = await waiting;
    }
    expect(chooser).toBeDefined();
    await chooser!.setFiles({ name: 'second.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('uploaded second')));
    expect((await doc()).nodes[id].inputs.image).toBe('second.png');
    // a file uploaded by someone else through the API shows up without a reload
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'from-api.png');
    expect((await fetch(`${server.url}/upload/image`, { method: 'POST', body: form })).status).toBe(200);
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await page.waitForFunction((i) => window.priorgraph.editor.comboOptions(i, 'image').includes('from-api.png'), id);
  });

  it("8. tooltips from the node definitions: an input's help on its widget, the description on the title", async () => {
    page.once('dialog', (d) => void d.accept());
    await page.evaluate(() => window.priorgraph.openExample());
    await page.waitForFunction(() => window.priorgraph.editor.nodeIds().includes('2'));
    await page.evaluate(() => window.priorgraph.editor.canvas.setDirty(true, true));
    const box = await canvasBox();
    const at = (await (
      await page.waitForFunction(() => window.priorgraph.editor.widgetScreenPos('2', 'steps'))
    ).jsonValue())!;
    await page.mouse.move(box.x + at[0] - 5, box.y + at[1]);
    await page.mouse.move(box.x + at[0], box.y + at[1]);
    await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
    expect(await page.locator('#tooltip').textContent()).toBe('steps: how many steps the pattern takes to settle');
    await shot('tooltip');
    // over the title of a node with a description
    const desc = await page.evaluate(() => {
      const a = window.priorgraph;
      const id = a.editor.nodeIds().find((i) => a.defs.get(a.editor.nodeType(i)!)?.description);
      return id ? { id, text: a.defs.get(a.editor.nodeType(id)!)!.description } : undefined;
    });
    expect(desc).toBeDefined();
    const [tx, ty] = await nodeBox(desc!.id);
    await page.mouse.move(box.x + tx + 30, box.y + ty + 8);
    await page.mouse.move(box.x + tx + 32, box.y + ty + 8);
    await page.waitForFunction((t) => document.getElementById('tooltip')?.textContent === t, desc!.text);
  });

  it('12. Ctrl+B bypass, Ctrl+M mute, double-click a title to rename, Save asks for a name, Download uses it', async () => {
    const box = await canvasBox();
    const [x, y] = await nodeBox('2');
    await page.mouse.click(box.x + x + 60, box.y + y + 10);
    const mode = async () => (await doc()).nodes['2'].mode ?? 'normal';
    await page.keyboard.press('Control+b');
    await settle();
    expect(await mode()).toBe('bypass');
    await shot('bypassed');
    await page.keyboard.press('Control+b');
    await settle();
    expect(await mode()).toBe('normal');
    await page.keyboard.press('Control+m');
    await settle();
    expect(await mode()).toBe('muted');
    await page.keyboard.press('Control+z');
    await settle();
    expect(await mode()).toBe('normal');
    // rename in place
    const [tx, ty] = await nodeBox('3');
    await page.mouse.dblclick(box.x + tx + 60, box.y + ty + 10);
    await page.waitForSelector('input.title-editor');
    expect(await page.locator('.litesearchbox').count()).toBe(0);
    await page.keyboard.press('Control+a');
    await page.keyboard.type('My output');
    await page.keyboard.press('Enter');
    await settle();
    expect((await doc()).nodes['3'].title).toBe('My output');
    // Save asks for a name the first time (kept on the server); Download names the file after it
    page.once('dialog', (d) => void d.accept('holiday pictures'));
    await page.locator('#btn-save').click();
    await page.waitForFunction(() => window.priorgraph.events.includes('saved as holiday pictures'));
    expect((await doc()).meta?.name).toBe('holiday pictures');
    const download = page.waitForEvent('download');
    await page.locator('#btn-download').click();
    expect((await download).suggestedFilename()).toBe('holiday_pictures.priorgraph.json');
  });

  it('7. "Convert to Subgraph" is not offered (it lost the node): neither on a node nor on a selection', async () => {
    const box = await canvasBox();
    await page.keyboard.press('Escape');
    const [x, y] = await nodeBox('2');
    await page.mouse.click(box.x + x + 60, box.y + y + 10, { button: 'right' });
    await page.waitForSelector('.litecontextmenu');
    const entries = await page.locator('.litecontextmenu .litemenu-entry').allTextContents();
    expect(entries.length).toBeGreaterThan(3);
    expect(entries.filter((e) => /subgraph/i.test(e))).toEqual([]);
    await page.keyboard.press('Escape');
    await page.mouse.click(box.x + 5, box.y + 5);
    await page.keyboard.press('Control+a');
    const spot = (await nodeBox('1')).slice(0, 2);
    await page.mouse.click(box.x + spot[0] + 10, box.y + Math.max(5, spot[1] - 30), { button: 'right' });
    await page.waitForSelector('.litecontextmenu');
    const canvasEntries = await page.locator('.litecontextmenu .litemenu-entry').allTextContents();
    expect(canvasEntries.filter((e) => /subgraph/i.test(e))).toEqual([]);
    await page.mouse.click(box.x + 5, box.y + 5);
  });

  it('11. two samplers at once: each shows its own progress and previews, the status names both', async () => {
    await page.evaluate(() => {
      const a = window.priorgraph;
      const painter = (seed: number, colour: string) => ({
        type: 'dev.Painter',
        inputs: { latent: { node: '1', output: 'LATENT' }, seed, steps: 14, delay_ms: 200, colour },
      });
      a.loadDocument(
        {
          format: 'priorgraph',
          version: 1,
          nodes: {
            '1': { type: 'dev.Canvas', inputs: { width: 32, height: 32 }, ui: { pos: [40, 80] } },
            '2': { ...painter(11, 'red'), ui: { pos: [360, 20] } },
            '5': { ...painter(12, 'green'), ui: { pos: [360, 330] } },
            '3': { type: 'dev.SaveImage', inputs: { images: { node: '2', output: 'IMAGE' } }, ui: { pos: [700, 20] } },
            '6': { type: 'dev.SaveImage', inputs: { images: { node: '5', output: 'IMAGE' } }, ui: { pos: [700, 330] } },
          },
        },
        { fit: true },
      );
      a.events.splice(0);
    });
    await settle();
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => window.priorgraph.editor.activeIds().length === 2, null, { timeout: 30_000 });
    const status = await page.locator('#status').textContent();
    expect(status).toContain('Pattern Sampler, Pattern Sampler');
    await page.waitForFunction(
      () => ['preview 2', 'preview 5'].every((p) => window.priorgraph.events.includes(p)),
      null,
      { timeout: 30_000 },
    );
    await shot('two-samplers');
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('success')), null, {
      timeout: 30_000,
    });
    const events = await page.evaluate(() => window.priorgraph.events);
    expect(events.filter((e) => e.startsWith('images')).sort()).toEqual(['images 3 1', 'images 6 1']);
    // the same run again: what the server reports as taken from its cache is marked so (the server
    // reports the cached outputs only, not the nodes upstream of them: a server-side gap, see issue 15)
    await page.evaluate(() => window.priorgraph.events.splice(0));
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => window.priorgraph.events.some((e) => e.startsWith('success')), null, {
      timeout: 30_000,
    });
    const again = await page.evaluate(() => window.priorgraph.events);
    const cached =
      again
        .find((e) => e.startsWith('cached'))
        ?.split(' ')[1]
        .split(',') ?? [];
    expect(cached.length).toBeGreaterThan(0);
    const marked = await page.evaluate(
      (ids) => ids.every((id) => window.priorgraph.editor.runState(id)?.cached),
      cached,
    );
    expect(marked).toBe(true);
  });

  it('logged no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
