/**
 * createServer: express 5 + ws on one HTTP server. Composes core's Registry/Executor with plugins,
 * the durable JobStore, the JobRunner and the websocket hub; serves the editor's build at `/`.
 * Routes: ./routes/ (one router per resource); options and the routes' context: ./context.ts.
 */
import { timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Executor, type HostInfo, type Logger, loadPlugins, Registry } from '@priorgraph/core';
import express, { type NextFunction, type Request, type Response } from 'express';
import { DEFAULT_HISTORY_MAX, PROMPT_TURN_BUDGET_MS, type ServerContext, type ServerOptions } from './context.js';
import { installRoutes, queueFastPath, queueItem } from './routes/index.js';
import { inlineEngine, type JobEngine, type JobFinishedEvent, JobRunner } from './runner.js';
import { apiError } from './schemas.js';
import { FINISHED_STATUSES, type JobStore, SqliteJobStore, storageFailure } from './store.js';
import { progressInterval } from './throttle.js';
import { TurnShare } from './turns.js';
import { BullmqEngine, redisConnection } from './worker/bullmq.js';
import { ClusterSync } from './worker/cluster.js';
import { ProcessEngine } from './worker/supervisor.js';
import { WsHub } from './ws.js';

export interface PriorgraphServer {
  listen(): Promise<{ url: string }>;
  close(): Promise<void>;
  /** Set once listening. */
  readonly url: string | undefined;
  readonly registry: Registry;
  readonly store: JobStore;
  /** The express app (e.g. to mount it elsewhere, or to list its routes). */
  readonly app: express.Express;
}

/** "8GiB", "512M", "1e9", "4096 MiB" → bytes (binary units; k/m/g/t with or without "iB"/"B"). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new Error(`not a size: ${JSON.stringify(text)} (expected e.g. 8GiB, 512M or a byte count)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[
    m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
  ];
  return Math.floor(Number(m[1]) * mult);
}

export function defaultMemoryBudget(env: NodeJS.ProcessEnv = process.env): number {
  const e = env.PRIORGRAPH_MEMORY_BUDGET;
  if (e !== undefined && e !== '') {
    try {
      return parseBytes(e);
    } catch (err) {
      throw new Error(`PRIORGRAPH_MEMORY_BUDGET: ${(err as Error).message}`);
    }
  }
  return Math.min(8 * 2 ** 30, Math.floor(totalmem() / 2));
}

/** One line to stderr; never throws (a full disk or a closed pipe drops the line). */
function toStderr(line: string): void {
  try {
    process.stderr.write(line);
  } catch {
    /* nowhere left to report it */
  }
}
let stderrGuarded = false;
/** An asynchronous stderr failure (a pipe's EPIPE, a file's ENOSPC) must not end the process. */
function guardStderr(): void {
  if (stderrGuarded) return;
  stderrGuarded = true;
  process.stderr.on('error', () => {});
}

export const consoleLogger: Logger = {
  debug() {},
  info: (m, d) => toStderr(`[priorgraph] ${m}${d !== undefined ? ` ${fmt(d)}` : ''}\n`),
  warn: (m, d) => toStderr(`[priorgraph] warning: ${m}${d !== undefined ? ` ${fmt(d)}` : ''}\n`),
  error: (m, d) => toStderr(`[priorgraph] error: ${m}${d !== undefined ? ` ${fmt(d)}` : ''}\n`),
};

/** Logging never kills the server: a logger that throws is replaced by stderr (said once there). */
export function guardedLogger(inner: Logger): Logger {
  let sink = inner;
  const call = (level: keyof Logger, m: string, d?: unknown) => {
    try {
      sink[level](m, d);
    } catch (e) {
      if (sink === consoleLogger) return;
      sink = consoleLogger;
      consoleLogger.error(`the log sink failed (${(e as Error)?.message ?? String(e)}); logging to stderr from now on`);
      consoleLogger[level](m, d);
    }
  };
  return {
    debug: (m, d) => call('debug', m, d),
    info: (m, d) => call('info', m, d),
    warn: (m, d) => call('warn', m, d),
    error: (m, d) => call('error', m, d),
  };
}
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function fmt(d: unknown): string {
  if (d instanceof Error) return d.stack ?? d.message;
  try {
    return JSON.stringify(d);
  } catch {
    return String(d);
  }
}

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function requestToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.toLowerCase().startsWith('bearer ')) return auth.slice(7).trim();
  try {
    const u = new URL(req.url ?? '/', 'http://x');
    return u.searchParams.get('token') ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Without a token the server trusts the machine it runs on, so it must not be driven by a web page
 * from elsewhere: the Host header must name a loopback address (defeats DNS rebinding) and an Origin
 * header, when present, must be a loopback origin (any port: the editor's dev server works).
 * With a token these checks are unnecessary (a foreign page cannot know the token).
 */
export function localRequestAllowed(req: IncomingMessage): boolean {
  const hostHeader = req.headers.host;
  if (hostHeader) {
    let hostname: string;
    try {
      hostname = new URL(`http://${hostHeader}`).hostname;
    } catch {
      return false;
    }
    if (!isLoopback(hostname)) return false;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return isLoopback(new URL(origin).hostname);
  } catch {
    return false;
  }
}

const here = dirname(fileURLToPath(import.meta.url));
const workspaceRoot = resolve(here, '../../..');
const inWorkspace = existsSync(join(workspaceRoot, 'pnpm-workspace.yaml'));
/**
 * Where the defaults live (models/, .priorgraph/, examples/): the repository when priorgraph runs
 * from its workspace, the current directory when it runs from an npm install.
 */
export const HOME_DIR = inWorkspace ? workspaceRoot : process.cwd();

/** The editor's build: the workspace's packages/ui/dist, or an installed @priorgraph/ui's dist. */
function defaultUiDir(): string {
  if (inWorkspace) return join(workspaceRoot, 'packages', 'ui', 'dist');
  for (const from of [join(process.cwd(), 'noop.js'), import.meta.url]) {
    try {
      return join(dirname(createRequire(from).resolve('@priorgraph/ui/package.json')), 'dist');
    } catch {
      // not installed from there
    }
  }
  return join(process.cwd(), 'node_modules', '@priorgraph', 'ui', 'dist');
}

type ResolvedOptions = ServerContext['options'];

/** The options with their defaults; refuses a network address without a token, and a short token. */
function withDefaults(options: ServerOptions): ResolvedOptions {
  const opts = {
    ...options,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8188,
    maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
    maxUploadBytes: options.maxUploadBytes ?? 32 * 1024 * 1024,
    memoryBudgetBytes: options.memoryBudgetBytes ?? defaultMemoryBudget(),
  };
  if (!isLoopback(opts.host) && !opts.token) {
    throw new Error(
      `refusing to listen on ${opts.host} without a token: binding to a non-loopback address exposes the server to the network. ` +
        'Pass --token <secret> (or PRIORGRAPH_TOKEN), or bind to 127.0.0.1.',
    );
  }
  if (opts.token !== undefined && opts.token.length < 8) throw new Error('the token must be at least 8 characters');
  return opts;
}

/** The directories and config plugins see; the directories are created. */
function hostInfo(opts: ResolvedOptions, dataDir: string): HostInfo {
  const host: HostInfo = {
    modelRoots: opts.modelRoots.map((r) => resolve(r)),
    outputDir: resolve(opts.outputDir ?? join(dataDir, 'output')),
    inputDir: resolve(opts.inputDir ?? join(dataDir, 'input')),
    tempDir: resolve(opts.tempDir ?? join(dataDir, 'temp')),
    config: { ...(opts.maxImagePixels ? { maxImagePixels: opts.maxImagePixels } : {}), ...(opts.config ?? {}) },
  };
  for (const d of [dataDir, host.outputDir, host.inputDir, host.tempDir]) mkdirSync(d, { recursive: true });
  return host;
}

/**
 * What runs jobs: the given engine, a BullMQ queue, core's Executor in this thread (when a plugin
 * was given without its module), or the supervised worker process.
 */
function jobEngine(
  opts: ResolvedOptions,
  host: HostInfo,
  registry: Registry,
  log: Logger,
): { executor: JobEngine; inProcess: boolean } {
  const modules = opts.plugins.map((p) => ('plugin' in p && 'module' in p ? p.module : undefined));
  // Node code runs in a worker process when the worker can import every plugin; the server then
  // loads plugin definitions only for validation and /object_info, without running their setup.
  const inProcess = !opts.engine && !opts.queue && modules.some((m) => !m);
  const queueUrl = opts.queue;
  const executor: JobEngine =
    opts.engine ??
    (queueUrl
      ? new BullmqEngine({ url: queueUrl, log, outputDir: host.outputDir, tempDir: host.tempDir })
      : undefined) ??
    (inProcess
      ? inlineEngine(new Executor(registry, { host, cacheBytes: opts.cacheBytes, log }), opts.runtimeStats)
      : new ProcessEngine({
          init: {
            host: { ...host, modelRoots: [...host.modelRoots], config: { ...host.config } },
            plugins: opts.plugins.map((p, i) => ({
              module: modules[i]!,
              source: 'source' in p ? (p as { source: string }).source : undefined,
            })),
            pluginPackages: (opts.pluginPackages ?? []).map((d) => resolve(d)),
            pluginsDir: opts.pluginsDir ? resolve(opts.pluginsDir) : undefined,
            cacheBytes: opts.cacheBytes,
          },
          log,
          interruptGraceMs: opts.interruptGraceMs,
          nodeTimeoutMs: opts.nodeTimeoutMs,
          execArgv: opts.workerExecArgv,
          nice: opts.workerNice,
        }));
  if (!inProcess) opts.runtimeStats = () => executor.runtimeStats();
  return { executor, inProcess };
}

/** The answer to an error a route threw or passed on: 413 / 400 for the client's, the storage failure's own status, else 500. */
function errorAnswer(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; code?: string; message?: string; field?: string };
    if (res.headersSent) {
      res.end();
      return;
    }
    const f = storageFailure(err);
    if (e?.type === 'entity.too.large' || e?.code === 'LIMIT_FILE_SIZE' || e?.code === 'LIMIT_FIELD_VALUE') {
      res.status(413).json(apiError('body_too_large', `request body too large: ${e.message}`, { field: e.field }));
    } else if (e?.type === 'entity.parse.failed') {
      res.status(400).json(apiError('invalid_json', `request body is not valid JSON: ${e.message}`, { field: 'body' }));
    } else if (typeof e?.code === 'string' && e.code.startsWith('LIMIT_')) {
      res.status(400).json(apiError('invalid_upload', `upload rejected: ${e.message}`, { field: e.field }));
    } else if (f) {
      log.error(`${req.method} ${req.path}: ${f.message}`);
      res.status(f.status).json(apiError(f.type, f.message));
    } else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      res.status(e.status).json(apiError(e.type ?? 'bad_request', e.message ?? 'bad request'));
    } else {
      log.error(`${req.method} ${req.path} failed`, err);
      res.status(500).json(apiError('internal_error', e?.message ?? 'internal error'));
    }
  };
}

/** Why a request is refused (see localRequestAllowed and the token), or null when it may go on. */
function refusal(opts: ResolvedOptions, req: IncomingMessage): { status: 401 | 403; body: unknown } | null {
  if (!opts.token && !localRequestAllowed(req)) {
    return {
      status: 403,
      body: apiError(
        'forbidden_origin',
        `request from origin ${req.headers.origin ?? '?'} / host ${req.headers.host ?? '?'} refused: without a token only local pages may call this server`,
      ),
    };
  }
  if (opts.token && !tokenMatches(requestToken(req), opts.token)) {
    return {
      status: 401,
      body: apiError('unauthorized', 'missing or wrong token: send Authorization: Bearer <token> or ?token='),
    };
  }
  return null;
}

/** The express app: the editor's static build, the token and origin checks, the routes, 404 and errors. */
function buildApp(ctx: ServerContext): express.Express {
  const opts = ctx.options;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Static editor build (public: no data in it), before auth.
  const uiDir = resolve(opts.uiDir ?? defaultUiDir());
  if (existsSync(join(uiDir, 'index.html'))) {
    const files = express.static(uiDir, { index: 'index.html', fallthrough: true });
    // Only what can be one of its files (the page, or a name with an extension): an API request
    // (/prompt, /queue, /history, /view?…) never waits for a file-system lookup on its way.
    app.use((req: Request, res: Response, next: NextFunction) => {
      const file = (req.method === 'GET' || req.method === 'HEAD') && (req.path === '/' || req.path.includes('.'));
      if (file) files(req, res, next);
      else next();
    });
  } else {
    app.get('/', (_req, res) => {
      res
        .type('html')
        .send(
          '<!doctype html><meta charset="utf-8"><title>priorgraph</title>' +
            '<h1>priorgraph server is running</h1><p>The editor is not built. Build it with ' +
            '<code>npm start</code> (which runs <code>vite build</code> in packages/ui) or ' +
            '<code>cd packages/ui && npx vite build</code>, then reload.</p>' +
            '<p>API: <a href="/api/openapi.json">/api/openapi.json</a></p>',
        );
    });
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    const refused = refusal(opts, req);
    if (!refused) return next();
    if (refused.status === 401) res.set('WWW-Authenticate', 'Bearer');
    res.status(refused.status).json(refused.body);
  });

  installRoutes(app, ctx);

  app.use((req: Request, res: Response) => {
    res.status(404).json(apiError('not_found', `no route for ${req.method} ${req.path}`));
  });
  app.use(errorAnswer(ctx.log));
  return app;
}

/** Load the plugins, start the engine, re-attach or mark interrupted the jobs a stop left running. */
async function startUp(ctx: ServerContext, inProcess: boolean, prune: () => Promise<void>): Promise<void> {
  const { options: opts, registry, host, log, executor, store, cluster } = ctx;
  const r = await loadPlugins(registry, {
    plugins: opts.plugins.map((p) => ('plugin' in p && 'source' in p ? { plugin: p.plugin, source: p.source } : p)),
    packages: opts.pluginPackages ?? [],
    pluginsDir: opts.pluginsDir,
    ...(inProcess ? { host } : {}),
    log,
    settleTimeoutMs: opts.pluginSettleTimeoutMs ?? (Number(process.env.PRIORGRAPH_PLUGIN_TIMEOUT_MS) || undefined),
  });
  ctx.plugins.loaded.push(...r.loaded);
  ctx.plugins.failed.push(...r.failed);
  for (const f of r.failed) log.error(`plugin ${f.name} (${f.source}) failed to load: ${f.reason}`);
  await prune();
  await executor.start();
  await cluster?.start();
  const left = (await store.list(['running'])).map((j) => j.id);
  const resume = new Set(left.length > 0 ? ((await executor.resumable?.(left)) ?? []) : []);
  const recovered = await store.recover(resume);
  if (resume.size > 0) log.info(`re-attached ${resume.size} job(s) still held by the queue`, [...resume]);
  if (recovered.length > 0) {
    log.warn(`marked ${recovered.length} job(s) interrupted that were running when the server stopped`, recovered);
  }
  await ctx.refreshQueue();
}

/** The websocket upgrade: /ws and /api/ws only, with the same token and origin checks as HTTP. */
function upgradeHandler(opts: ResolvedOptions, hub: WsHub) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let path = '';
    let clientId: string | null = null;
    try {
      const u = new URL(req.url ?? '/', 'http://x');
      path = u.pathname;
      clientId = u.searchParams.get('clientId');
    } catch {
      /* bad url */
    }
    const deny = (code: number, text: string) => {
      socket.end(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path !== '/ws' && path !== '/api/ws') return deny(404, 'Not Found');
    if (!opts.token && !localRequestAllowed(req)) return deny(403, 'Forbidden');
    if (opts.token && !tokenMatches(requestToken(req), opts.token)) return deny(401, 'Unauthorized');
    hub.handleUpgrade(req, socket, head, clientId);
  };
}

/** Everything but HTTP: the store, the engine, the websocket hub, the runner, the cluster link. */
function assemble(options: ServerOptions): { ctx: ServerContext; inProcess: boolean; prune: () => Promise<void> } {
  const opts = withDefaults(options);
  guardStderr();
  const log = guardedLogger(opts.log ?? consoleLogger);
  const dataDir = resolve(opts.dataDir);
  const host = hostInfo(opts, dataDir);
  const store =
    opts.store ??
    new SqliteJobStore(dataDir, {
      outputDir: host.outputDir,
      allowHistoryLoss:
        opts.allowHistoryLoss ?? ['1', 'true', 'yes'].includes(process.env.PRIORGRAPH_ALLOW_HISTORY_LOSS ?? ''),
      log,
    });
  const registry = new Registry();
  const { executor, inProcess } = jobEngine(opts, host, registry, log);
  const queueUrl = opts.queue;

  const ctx = {} as ServerContext;
  const hub = new WsHub({ queueRemaining: () => ctx.queueRemaining, maxUploadBytes: opts.maxUploadBytes });
  // Queue changes come in bursts (20 clients posting at once): the count is kept exact, the status
  // broadcasts to every socket are coalesced in time and carry the latest count (hub.statusChanged).
  const refreshCount = async () => {
    try {
      // several servers on one queue: every live server's prompts (see worker/cluster.ts)
      ctx.queueRemaining = (await store.count(['pending', 'running'])) + (cluster?.peerRemaining() ?? 0);
    } catch (e) {
      log.error('could not count the queue', e);
    }
    hub.statusChanged();
  };
  const cluster = queueUrl
    ? new ClusterSync({
        connect: () => redisConnection(queueUrl, log),
        store,
        dirs: host,
        log,
        queueItem,
        onControl: async (m) => {
          if (m.op === 'interrupt') runner.interrupt(m.id);
        },
        onQueueChanged: () => refreshQueue(),
        onPeersChanged: () => void refreshCount(),
      })
    : undefined;
  const refreshQueue = async () => {
    await refreshCount();
    cluster?.queueChanged();
  };
  const runner = new JobRunner(store, executor, hub, log, refreshQueue, progressInterval(opts.progressIntervalMs));
  if (cluster) runner.on('finished', (e: JobFinishedEvent) => void cluster.announce(e.id));
  executor.onCapacity = () => runner.kick();
  const keep = opts.historyMaxItems ?? (Number(process.env.PRIORGRAPH_HISTORY_MAX) || DEFAULT_HISTORY_MAX);
  const prune = async () => {
    try {
      if ((await store.count(FINISHED_STATUSES)) > keep) await store.prune(keep);
    } catch (e) {
      log.warn('could not prune the history', e);
    }
  };
  runner.on('finished', () => void prune());
  Object.assign(ctx, {
    options: opts,
    host,
    registry,
    executor,
    store,
    hub,
    runner,
    log,
    plugins: { loaded: [], failed: [] },
    queueRemaining: 0,
    refreshQueue,
    turns: new TurnShare(PROMPT_TURN_BUDGET_MS),
    startedAt: Date.now(),
    cluster,
  } satisfies ServerContext);
  return { ctx, inProcess, prune };
}

export function createServer(options: ServerOptions): PriorgraphServer {
  const { ctx, inProcess, prune } = assemble(options);
  const { options: opts, registry, store, executor, hub, runner, cluster, log } = ctx;
  const app = buildApp(ctx);

  let http: Server | undefined;
  let url: string | undefined;
  let initialized = false;

  async function init(): Promise<void> {
    if (initialized) return;
    initialized = true;
    await startUp(ctx, inProcess, prune);
  }

  const server: PriorgraphServer = {
    get url() {
      return url;
    },
    registry,
    store,
    app,
    async listen() {
      await init();
      // GET /queue, polled by every client, is answered before express's middleware and routers
      // (the same answer: routes/queue.ts); anything else, or a request it cannot answer, goes to app
      const fast = queueFastPath(ctx, app, (req) => refusal(opts, req) === null);
      http = createHttpServer((req, res) => {
        if (!fast(req, res)) app(req, res);
      });
      http.on('upgrade', upgradeHandler(opts, hub));
      http.headersTimeout = 30_000;
      http.requestTimeout = 10 * 60_000;
      await new Promise<void>((res, rej) => {
        http!.once('error', rej);
        http!.listen(opts.port, opts.host, () => {
          http!.off('error', rej);
          res();
        });
      });
      const addr = http.address() as AddressInfo;
      const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      url = `http://${h}:${addr.port}`;
      runner.kick();
      return { url };
    },
    async close() {
      await runner.stop();
      await cluster?.close();
      await executor.close();
      hub.close();
      if (http) {
        const h = http;
        await new Promise<void>((res) => {
          h.close(() => res());
          h.closeAllConnections();
        });
      }
      await registry.dispose(log);
      await store.close();
    },
  };
  return server;
}
