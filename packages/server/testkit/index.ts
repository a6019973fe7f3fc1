/**
 * The server's test kit, shared by its tests (packages/server/test) and the benchmarks (bench/):
 * the test plugin (./test-plugin.ts), a real server on an ephemeral loopback port with a temporary
 * data dir (in this process, or in a child process through ./serve.ts), a websocket client that
 * records frames, and small HTTP helpers. Imported as `@priorgraph/server/testkit`; not published.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createServer, type PriorgraphServer, type ServerOptions, silentLogger } from '../src/index.js';
import { testPlugin, testPluginItem } from './test-plugin.js';

export { demoWorkflow, EXAMPLES_DIR, FIXTURES_DIR, hasDemoModels, MODELS_DIR, pngSize } from './demo-workflow.js';
export { testPlugin, testPluginItem, WebSocket };

/** The server-in-a-child-process script: `node --import tsx SERVE_SCRIPT <dataDir> [options-json]`. */
export const SERVE_SCRIPT = fileURLToPath(new URL('./serve.ts', import.meta.url));
/** The test plugin's module URL (for `priorgraph worker --plugin`). */
export const TEST_PLUGIN_URL = new URL('./test-plugin.ts', import.meta.url).href;
/** A plugins directory with a node that hangs, one that crashes its process, and so on. */
export const HOSTILE_PLUGINS_DIR = fileURLToPath(new URL('./hostile-plugins', import.meta.url));

export interface SpawnedServer {
  child: ChildProcess;
  url: string;
  /** The child's exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/**
 * A server with the test plugin in a child process (./serve.ts), resolved once it listens; rejected,
 * with its stderr when piped, if it exits before. `options` is merged into the server options.
 */
export function spawnServer(
  dataDir: string,
  opts: {
    options?: Record<string, unknown>;
    env?: Record<string, string>;
    /** Where the child's stderr goes (default: piped, and quoted when it exits early). */
    stderr?: 'pipe' | 'inherit' | number;
    /** Node flags before the script (e.g. --cpu-prof). */
    execArgv?: string[];
    /** The child is added here as soon as it is spawned (to kill it after a test that failed). */
    track?: ChildProcess[];
  } = {},
): Promise<SpawnedServer> {
  const args = [...(opts.execArgv ?? []), '--import', 'tsx', SERVE_SCRIPT, dataDir];
  if (opts.options) args.push(JSON.stringify(opts.options));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  opts.track?.push(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = out.match(/(http:\/\/\S+)\n/);
      if (m) resolve({ child, url: m[1], exited });
    });
    child.stderr?.on('data', (d) => {
      err += String(d);
    });
    void exited.then((code) => reject(new Error(`server exited before listening (code ${code}): ${err}`)));
  });
}

/** 1 → Slow(steps) → Save; API format. */
export function slowPrompt(steps = 5, ms = 20, value = 3, prefix = 'num'): Record<string, unknown> {
  return {
    '1': { class_type: 'Number', inputs: { value } },
    '2': { class_type: 'Slow', inputs: { x: ['1', 0], steps, ms, seed: value } },
    '3': { class_type: 'SaveNumber', inputs: { value: ['2', 0], prefix } },
  };
}

export interface Started {
  server: PriorgraphServer;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startServer(extra: Partial<ServerOptions> = {}): Promise<Started> {
  const dataDir = extra.dataDir ?? mkdtempSync(join(tmpdir(), 'pg-server-'));
  const server = createServer({
    port: 0,
    dataDir,
    modelRoots: [join(dataDir, 'models')],
    plugins: [testPluginItem],
    log: silentLogger,
    ...extra,
  });
  const { url } = await server.listen();
  return {
    server,
    url,
    dataDir,
    async close() {
      await server.close();
      if (!extra.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface WsFrame {
  type: string;
  data: Record<string, unknown>;
}

/** A websocket client that keeps every text frame and binary frame. */
export class WsRecorder {
  readonly frames: WsFrame[] = [];
  readonly binary: Buffer[] = [];
  readonly ws: WebSocket;
  private waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(Buffer.from(data as Buffer));
      else this.frames.push(JSON.parse(String(data)));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, clientId?: string, token?: string): Promise<WsRecorder> {
    const u = new URL(url.replace(/^http/, 'ws'));
    u.pathname = '/ws';
    if (clientId) u.searchParams.set('clientId', clientId);
    if (token) u.searchParams.set('token', token);
    const ws = new WebSocket(u);
    const rec = new WsRecorder(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(rec));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`ws refused: ${res.statusCode}`)));
    });
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** Wait until a frame satisfies `pred` (checks frames already received). */
  async waitFor(pred: (f: WsFrame) => boolean, timeoutMs = 20_000): Promise<WsFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for a ws frame; got: ${this.frames.map((x) => x.type).join(', ')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  of(promptId: string): WsFrame[] {
    return this.frames.filter((f) => f.data?.prompt_id === promptId);
  }

  close(): void {
    this.ws.close();
  }
}

export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return answer(res);
}

export async function get(url: string, path: string, headers: Record<string, string> = {}) {
  return answer(await fetch(url + path, { headers }));
}

/** Status, body (JSON when it parses, else the text) and headers. */
async function answer(res: Response) {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: res.status, json: json as any, headers: res.headers };
}

/**
 * What a client may see of a node's per-step progress now that it is coalesced (throttle.ts): some
 * of the values, strictly increasing, within 1..max, and always the last one. Null when `values`
 * is such a sequence, else what is wrong.
 */
export function coalescedProgressProblem(values: number[], max: number): string | null {
  if (values.length === 0) return 'no progress at all (the last value must always arrive)';
  if (values.length > max) return `${values.length} progress values for ${max} steps`;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 1 || values[i] > max) return `value ${values[i]} outside 1..${max}`;
    if (i > 0 && values[i] <= values[i - 1]) return `not increasing: ${values.join(', ')}`;
  }
  if (values[values.length - 1] !== max) return `the last value ${values[values.length - 1]} is not ${max}`;
  return null;
}
