/** The server's HTTP and WebSocket API (ComfyUI-compatible, see shared/reference/comfyui-api.md). */
import type { WorkflowDocument } from './types.ts';

export interface ImageRef {
  filename: string;
  subfolder?: string;
  type?: string;
}

export interface NodeError {
  errors: Array<{ type: string; message: string; details?: string; extra_info?: { input_name?: string } }>;
  dependent_outputs?: string[];
  class_type?: string;
}

export interface QueueResult {
  ok: boolean;
  promptId?: string;
  error?: { type?: string; message: string; details?: string };
  nodeErrors: Record<string, NodeError>;
}

export type WsEvent =
  | { type: 'status'; data: { status?: { exec_info?: { queue_remaining?: number } }; sid?: string } }
  | { type: 'execution_start'; data: { prompt_id: string } }
  | { type: 'execution_cached'; data: { prompt_id: string; nodes: string[] } }
  | { type: 'executing'; data: { prompt_id: string; node: string | null } }
  | { type: 'progress'; data: { prompt_id: string; node: string; value: number; max: number } }
  | {
      type: 'executed';
      data: { prompt_id: string; node: string; output: { images?: ImageRef[] } & Record<string, unknown> };
    }
  | { type: 'execution_success'; data: { prompt_id: string } }
  | {
      type: 'execution_error';
      data: {
        prompt_id: string;
        node_id: string;
        node_type: string;
        exception_message: string;
        exception_type?: string;
      };
    }
  | { type: 'execution_interrupted'; data: { prompt_id: string; node_id?: string } };

/** ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]. */
export type QueueItem = [number, string, Record<string, unknown>, Record<string, unknown>?, string[]?];

/** One row of GET /api/workers. */
export interface WorkerInfo {
  name: string;
  /** 'local': the server's own worker process; 'queue': a queue worker (GET /api/workers says) */
  kind: 'local' | 'queue';
  host: string;
  models: string[];
  plugins: string[];
  current_job: string | null;
  last_heartbeat: string;
}

export interface HistoryEntry {
  prompt?: QueueItem;
  outputs?: Record<string, { images?: ImageRef[] }>;
  status?: { status_str?: string; completed?: boolean };
  priorgraph?: {
    status?: string;
    error?: { message: string; nodeId?: string; nodeType?: string } | null;
    created_at?: number;
    started_at?: number | null;
    finished_at?: number | null;
  };
}

/** One saved workflow: its file name under workflows/, size and time of its last save (ms). */
export interface SavedWorkflow {
  path: string;
  size: number;
  modified: number;
}

/** ComfyUI's user file route for `workflows/<path>` (the whole path is one encoded segment). */
function userdataUrl(path: string): string {
  return `userdata/${encodeURIComponent(`workflows/${path}`)}`;
}

export interface PreviewFrame {
  blob: Blob;
  nodeId?: string;
  promptId?: string;
}

/** The server refused the access token (missing or wrong): the page shows how to get in. */
export class AuthError extends Error {
  constructor(readonly hadToken: boolean) {
    super(hadToken ? 'the access token is wrong' : 'this server needs an access token');
  }
}

/** A random client id. crypto.randomUUID exists only in secure contexts (https, localhost); a page
 *  opened over plain HTTP by address has crypto.getRandomValues only. */
export function newClientId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function json<T>(res: Response, what: string): Promise<T> {
  if (res.status === 401) throw new AuthError(token !== undefined);
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  }
  return (await res.json()) as T;
}

/** A server started with --token: the page is opened once as `/?token=...`; the token is kept in
 *  sessionStorage and sent as a Bearer header (and as ?token= where headers cannot go: images, ws). */
function readToken(): string | undefined {
  if (typeof location === 'undefined') return undefined;
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    sessionStorage.setItem('priorgraph.token', fromUrl);
    return fromUrl;
  }
  return sessionStorage.getItem('priorgraph.token') ?? undefined;
}
const token = readToken();

/** Keep a token typed into the page and reload with it. */
export function useToken(t: string): void {
  sessionStorage.setItem('priorgraph.token', t);
  const u = new URL(location.href);
  u.searchParams.delete('token');
  location.replace(u.href);
}

function withToken(url: string): string {
  return token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url;
}

function request(url: string, init: RequestInit = {}): Promise<Response> {
  if (!token) return fetch(url, init);
  return fetch(url, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
}

export function viewUrl(img: ImageRef): string {
  const q = new URLSearchParams({ filename: img.filename, subfolder: img.subfolder ?? '', type: img.type ?? 'output' });
  return withToken(`view?${q}`);
}

/** Parse a binary WebSocket frame: type 1 `[u32 1][u32 format][image]` or type 4 with JSON metadata. */
export function parseBinaryFrame(buf: ArrayBuffer): PreviewFrame | undefined {
  if (buf.byteLength < 8) return undefined;
  const view = new DataView(buf);
  const event = view.getUint32(0);
  if (event === 1) {
    const format = view.getUint32(4);
    return { blob: new Blob([buf.slice(8)], { type: format === 2 ? 'image/png' : 'image/jpeg' }) };
  }
  if (event === 4) {
    const len = view.getUint32(4);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, len))) as {
      node_id?: string;
      prompt_id?: string;
      image_type?: string;
    };
    return {
      blob: new Blob([buf.slice(8 + len)], { type: meta.image_type ?? 'image/jpeg' }),
      nodeId: meta.node_id,
      promptId: meta.prompt_id,
    };
  }
  return undefined;
}

export class Api {
  readonly clientId: string;
  private ws?: WebSocket;
  private closed = false;
  onEvent: (e: WsEvent) => void = () => {};
  onPreview: (f: PreviewFrame) => void = () => {};
  onConnection: (connected: boolean) => void = () => {};

  constructor(clientId?: string) {
    this.clientId = clientId ?? newClientId();
  }

  objectInfo(): Promise<Record<string, unknown>> {
    return request('object_info').then((r) => json(r, 'GET /object_info'));
  }

  async defaultWorkflow(): Promise<WorkflowDocument | undefined> {
    const r = await request('api/default-workflow');
    if (r.status === 404 || r.status === 204) return undefined;
    return json<WorkflowDocument>(r, 'GET /api/default-workflow');
  }

  async queue(doc: WorkflowDocument): Promise<QueueResult> {
    const r = await request('prompt', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // the document goes along as ComfyUI's frontend sends its workflow: the history loads it back
      body: JSON.stringify({ prompt: doc, client_id: this.clientId, extra_data: { extra_pnginfo: { workflow: doc } } }),
    });
    const body = (await r.json().catch(() => ({}))) as {
      prompt_id?: string;
      error?: QueueResult['error'] | string;
      node_errors?: Record<string, NodeError>;
    };
    if (r.ok) return { ok: true, promptId: body.prompt_id, nodeErrors: body.node_errors ?? {} };
    const error =
      typeof body.error === 'string' ? { message: body.error } : (body.error ?? { message: `HTTP ${r.status}` });
    return { ok: false, error, nodeErrors: body.node_errors ?? {} };
  }

  /** Interrupt the running prompt (only that one when `promptId` is given). */
  async interrupt(promptId?: string): Promise<void> {
    await this.post('interrupt', promptId ? { prompt_id: promptId } : {});
  }

  async history(maxItems = 30): Promise<Record<string, HistoryEntry>> {
    return json(await request(`history?max_items=${maxItems}`), 'GET /history');
  }

  /** The workers a queue-mode server hands jobs to (empty when it runs them itself). */
  async workers(): Promise<WorkerInfo[]> {
    return json(await request('api/workers'), 'GET /api/workers');
  }

  async queueState(): Promise<{ queue_running: QueueItem[]; queue_pending: QueueItem[] }> {
    return json(await request('queue'), 'GET /queue');
  }

  private async post(path: string, body: unknown): Promise<void> {
    await json(
      await request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
      `POST /${path}`,
    );
  }

  /** Upload a file into the server's input folder; its name there (maybe made unique) comes back. */
  async uploadImage(file: File): Promise<string> {
    const form = new FormData();
    form.append('image', file, file.name);
    const r = await json<{ name: string; subfolder?: string }>(
      await request('upload/image', { method: 'POST', body: form }),
      'POST /upload/image',
    );
    return r.subfolder ? `${r.subfolder}/${r.name}` : r.name;
  }

  /** The named workflows kept on the server (ComfyUI's /userdata, folder workflows/), newest first. */
  async listWorkflows(): Promise<SavedWorkflow[]> {
    const r = await request('userdata?dir=workflows&full_info=true');
    if (r.status === 404) return []; // nothing saved yet
    const files = await json<SavedWorkflow[]>(r, 'GET /userdata');
    return files.filter((f) => f.path.endsWith('.json')).sort((a, b) => b.modified - a.modified);
  }

  async loadWorkflow(path: string): Promise<unknown> {
    return json(await request(userdataUrl(path)), `GET /userdata/${path}`);
  }

  /** Store a workflow under `workflows/<path>`; false when it exists and `overwrite` is false. */
  async saveWorkflow(path: string, doc: unknown, overwrite: boolean): Promise<boolean> {
    const r = await request(`${userdataUrl(path)}?overwrite=${overwrite}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(doc, null, 2),
    });
    if (r.status === 409) return false;
    await json(r, `POST /userdata/${path}`);
    return true;
  }

  async deleteWorkflow(path: string): Promise<void> {
    const r = await request(userdataUrl(path), { method: 'DELETE' });
    if (!r.ok) await json(r, `DELETE /userdata/${path}`);
  }

  deleteQueued(ids: string[]): Promise<void> {
    return this.post('queue', { delete: ids });
  }

  clearQueue(): Promise<void> {
    return this.post('queue', { clear: true });
  }

  clearHistory(): Promise<void> {
    return this.post('history', { clear: true });
  }

  connect(): void {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.replace(/[^/]*$/, '');
    const ws = new WebSocket(
      withToken(`${proto}//${location.host}${base}ws?clientId=${encodeURIComponent(this.clientId)}`),
    );
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
      this.onConnection(true);
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        try {
          this.onEvent(JSON.parse(m.data) as WsEvent);
        } catch {
          // not JSON: ignore
        }
      } else {
        const frame = parseBinaryFrame(m.data as ArrayBuffer);
        if (frame) this.onPreview(frame);
      }
    };
    ws.onclose = () => {
      this.onConnection(false);
      if (!this.closed) setTimeout(() => this.connect(), 1000);
    };
    ws.onerror = () => {
      // onclose follows and reconnects
    };
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
  }
}
