/** The side panel's queue (running and pending jobs: cancel one, clear all) and history (every
 *  finished run, failed and interrupted ones too, newest first by queue number, each able to load
 *  its workflow back). Both read the server's ComfyUI routes (/queue, /history). */
import { type Api, type HistoryEntry, type ImageRef, type QueueItem, viewUrl } from './api.ts';
import { mediaThumb } from './media.ts';
import type { WorkflowDocument } from './types.ts';

export interface JobsHooks {
  /** Open a finished job's workflow in the editor. */
  loadWorkflow(doc: WorkflowDocument | Record<string, unknown>, label: string): void;
  openImage(img: ImageRef): void;
  toast(text: string, error?: boolean): void;
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { className?: string } = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** The workflow a job was queued with: the editor's document it sent along (extra_pnginfo.workflow,
 *  as ComfyUI's own frontend does), else the API prompt the server kept. */
export function workflowOf(item: QueueItem): WorkflowDocument | Record<string, unknown> | undefined {
  const extra = item[3] as { extra_pnginfo?: { workflow?: unknown } } | undefined;
  const wf = extra?.extra_pnginfo?.workflow;
  if (wf && typeof wf === 'object') return wf as Record<string, unknown>;
  return item[2] && typeof item[2] === 'object' ? (item[2] as Record<string, unknown>) : undefined;
}

function nodeCount(item: QueueItem): number {
  const wf = workflowOf(item) as { nodes?: Record<string, unknown> } | undefined;
  return Object.keys(wf?.nodes ?? wf ?? {}).length;
}

function seconds(a?: number | null, b?: number | null): string {
  if (!a || !b) return '';
  return ` · ${((b - a) / 1000).toFixed(1)} s`;
}

export class JobsPanel {
  private timer?: ReturnType<typeof setTimeout>;
  private historyTimer?: ReturnType<typeof setTimeout>;
  /** Ids shown in the history, newest first (what the end-to-end test compares across reloads). */
  historyOrder: string[] = [];

  constructor(
    private readonly api: Api,
    private readonly hooks: JobsHooks,
  ) {
    $('btn-clear-queue').addEventListener('click', () => void this.clear());
    $('btn-clear-history').addEventListener('click', () => void this.clearHistory());
  }

  /** Re-read the queue soon (several websocket messages in a row cause one request). */
  refreshSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refreshQueue().catch(() => {}), 80);
  }

  historySoon(): void {
    clearTimeout(this.historyTimer);
    this.historyTimer = setTimeout(() => void this.refreshHistory().catch(() => {}), 80);
  }

  async refreshQueue(): Promise<void> {
    const q = await this.api.queueState();
    const list = $('queue-list');
    const rows = [
      ...q.queue_running.map((item) => this.queueRow(item, true)),
      ...q.queue_pending.sort((a, b) => a[0] - b[0]).map((item) => this.queueRow(item, false)),
    ];
    list.replaceChildren(...rows);
    $('queue-empty').hidden = rows.length > 0;
    ($('btn-clear-queue') as HTMLButtonElement).disabled = q.queue_pending.length === 0;
  }

  private queueRow(item: QueueItem, running: boolean): HTMLLIElement {
    const [number, id] = item;
    const cancel = el('button', {
      type: 'button',
      className: 'cancel',
      textContent: '✕',
      title: running ? 'Interrupt this run' : 'Remove from the queue',
    });
    cancel.addEventListener('click', () => void this.cancel(id, running));
    return el(
      'li',
      { className: running ? 'job running' : 'job pending' },
      el('span', { className: 'job-title', textContent: `#${number} ${running ? 'running' : 'pending'}` }),
      el('span', { className: 'muted', textContent: ` · ${nodeCount(item)} nodes` }),
      cancel,
    );
  }

  async cancel(id: string, running: boolean): Promise<void> {
    if (running) await this.api.interrupt(id);
    else await this.api.deleteQueued([id]);
    await this.refreshQueue();
  }

  async clear(): Promise<void> {
    await this.api.clearQueue();
    await this.refreshQueue();
  }

  private async clearHistory(): Promise<void> {
    if (!window.confirm('Remove every finished run from the history? (Their images stay on disk.)')) return;
    await this.api.clearHistory();
    await this.refreshHistory();
  }

  async refreshHistory(): Promise<void> {
    const h = await this.api.history(50);
    // newest first by queue number: the same order on every load, whatever order the keys come in
    const entries = Object.entries(h).sort(([, a], [, b]) => (b.prompt?.[0] ?? 0) - (a.prompt?.[0] ?? 0));
    this.historyOrder = entries.map(([id]) => id);
    const list = $('history');
    list.replaceChildren(...entries.map(([id, e]) => this.historyRow(id, e)));
    $('history-empty').hidden = entries.length > 0;
  }

  private historyRow(id: string, e: HistoryEntry): HTMLLIElement {
    const status = e.priorgraph?.status ?? e.status?.status_str ?? 'unknown';
    const number = e.prompt?.[0];
    const load = el('button', { type: 'button', className: 'load', textContent: 'Load', title: 'Load this workflow' });
    load.addEventListener('click', () => {
      const wf = e.prompt ? workflowOf(e.prompt) : undefined;
      if (wf) this.hooks.loadWorkflow(wf, `run #${number}`);
      else this.hooks.toast(`run #${number} kept no workflow`, true);
    });
    const images = Object.values(e.outputs ?? {})
      .flatMap((o) => o.images ?? [])
      .filter((img) => (img.type ?? 'output') !== 'temp');
    const thumbs = el('div', { className: 'thumbs' });
    for (const img of images.slice(0, 8)) {
      // animated WebP / PNG play by themselves in an <img>; videos in a muted looping <video>
      const t = mediaThumb(viewUrl(img), img.filename);
      t.addEventListener('click', () => this.hooks.openImage(img));
      thumbs.append(t);
    }
    const row = el(
      'li',
      { className: `job ${status}` },
      el(
        'div',
        { className: 'job-head' },
        el('span', { className: 'job-title', textContent: `#${number ?? '?'} ${status}` }),
        el('span', { className: 'muted', textContent: seconds(e.priorgraph?.started_at, e.priorgraph?.finished_at) }),
        load,
      ),
    );
    row.dataset.id = id;
    row.dataset.status = status;
    const err = e.priorgraph?.error;
    if (err) {
      const where = err.nodeId ? `node ${err.nodeId}: ` : '';
      row.append(el('div', { className: 'job-error', textContent: `${where}${err.message}` }));
    }
    if (images.length) row.append(thumbs);
    return row;
  }
}
