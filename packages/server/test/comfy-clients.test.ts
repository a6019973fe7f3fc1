/**
 * Existing ComfyUI client packages from npm drive the server unchanged: comfy-ui-client
 * (queue + wait for `executing {node:null}` + /history + /view) and @saintno/comfyui-sdk
 * (init/ping/system_stats, PromptBuilder + CallWrapper with progress, previews and images).
 * Here with the test plugin; comfy-clients.models.test.ts does the same with the demo models.
 */
import { CallWrapper, ComfyApi, PromptBuilder } from '@saintno/comfyui-sdk';
import { ComfyUIClient } from 'comfy-ui-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { coalescedProgressProblem, post, type Started, slowPrompt, startServer } from '../testkit/index.js';

let s: Started;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

describe('npm ComfyUI clients, unchanged', () => {
  it('comfy-ui-client queues a prompt, waits for the end and fetches the image', async () => {
    const client = new ComfyUIClient(new URL(s.url).host, 'comfy-ui-client-test');
    await client.connect();
    try {
      const images = await client.getImages(slowPrompt(3, 10, 21, 'cuc') as never);
      const node = images['3'];
      expect(node).toHaveLength(1);
      const bytes = Buffer.from(await node[0].blob.arrayBuffer());
      expect(bytes.subarray(8).toString()).toBe('42');
      const queue = await client.getQueue();
      expect(queue).toEqual({ queue_running: [], queue_pending: [] });
      await client.interrupt(); // expects a JSON body
      const stats = await client.getSystemStats();
      expect(stats.devices.length).toBeGreaterThan(0);
      const info = await client.getObjectInfo('Slow');
      expect(Object.keys(info)).toEqual(['Slow']);
    } finally {
      await client.disconnect();
    }
  });

  it('@saintno/comfyui-sdk runs a workflow with progress, previews and the output image', async () => {
    const api = new ComfyApi(s.url, 'saintno-sdk-test', {
      customWebSocketImpl: WebSocket as never,
      forceWs: true,
    });
    api.init(5, 200);
    await api.waitForReady();
    try {
      // The SDK attaches its listeners only after its POST /prompt returns, so a prompt that starts at
      // once can outrun them (the same race exists with ComfyUI): a long blocker job holds the queue
      // and is interrupted once the SDK reports our prompt pending.
      const blocker = await post(s.url, '/prompt', { prompt: slowPrompt(1000, 20, 99, 'blocker') });
      expect(blocker.status).toBe(200);
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's generics want literal key types
      const Builder = PromptBuilder as any;
      const builder = new Builder(slowPrompt(4, 100, 4, 'sdk'), ['value', 'steps'], ['saved'])
        .setInputNode('value', '1.inputs.value')
        .setInputNode('steps', '2.inputs.steps')
        .setOutputNode('saved', '3')
        .input('value', 17)
        .input('steps', 5);
      const progress: number[] = [];
      let previews = 0;
      const result = await new Promise<Record<string, unknown> | false>((resolve, reject) => {
        new CallWrapper(api, builder as never)
          .onPending(() => {
            setTimeout(() => post(s.url, '/interrupt', { prompt_id: blocker.json.prompt_id }), 100);
          })
          .onProgress((p: { value: number }) => progress.push(p.value))
          .onPreview(() => {
            previews++;
          })
          .onFinished((data) => resolve(data as Record<string, unknown>))
          .onFailed((err) => reject(err))
          .run()
          .then((r) => {
            if (r === false) resolve(false);
          }, reject);
      });
      expect(result).not.toBe(false);
      // Per-step progress and previews are coalesced (≤ 10/s by default); the last value always arrives.
      expect(coalescedProgressProblem(progress, 5)).toBeNull();
      expect(previews).toBeGreaterThanOrEqual(1);
      expect(previews).toBeLessThanOrEqual(5);
      const saved = (result as { saved: { images: Array<{ filename: string; subfolder: string; type: string }> } })
        .saved;
      const blob = await api.getImage(saved.images[0] as never);
      expect(
        Buffer.from(await blob.arrayBuffer())
          .subarray(8)
          .toString(),
      ).toBe('34');
      // let the SDK's own follow-up requests (it re-reads /queue on each status message) settle
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      api.destroy();
    }
  });
});
