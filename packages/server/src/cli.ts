#!/usr/bin/env node
/**
 * The priorgraph command line:
 *   priorgraph serve    [--host --port --data-dir --models DIR... --output-dir --input-dir --token --plugins-dir --open <workflow.json>]
 *   priorgraph run      <workflow.json> [--set node.input=value ...] [--out DIR] [--models DIR...] [--data-dir DIR]
 *   priorgraph validate <workflow.json> [--models DIR...]
 *   priorgraph nodes    [--json]
 * Workflows may be priorgraph documents or ComfyUI API-format prompts. Every failure prints a clear
 * message and exits non-zero. Run as `node --import tsx packages/server/src/cli.ts ...` or `priorgraph`.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Executor,
  type HostInfo,
  type Logger,
  loadPlugins,
  type PluginDefinition,
  Registry,
  type ValidationResult,
  validateWorkflow,
} from '@priorgraph/core';
import { consoleLogger, createServer, HOME_DIR, parseBytes } from './server.js';
import { editorUrls } from './urls.js';
import { applyOverrides, normalizeWorkflow } from './workflow.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const USAGE = `usage:
  priorgraph serve    [--host 127.0.0.1] [--port 8188] [--data-dir DIR] [--models DIR ...] [--output-dir DIR]
                      [--input-dir DIR] [--token SECRET] [--plugins-dir DIR] [--open workflow.json]
                      [--node-timeout SECONDS (default 3600; 0 = none)] [--interrupt-grace SECONDS (default 10)]
                      [--worker-max-heap MiB] [--queue redis://HOST:6379/0 (or PRIORGRAPH_QUEUE)]
                      [--memory-budget SIZE (per job, e.g. 6GiB; or PRIORGRAPH_MEMORY_BUDGET)]
                      [--allow-history-loss (start on a damaged or missing job database; or PRIORGRAPH_ALLOW_HISTORY_LOSS=1)]
  priorgraph worker   --queue redis://HOST:6379/0 [--models DIR ...] [--plugins-dir DIR] [--plugin MODULE ...]
                      [--concurrency 1] [--name NAME] [--data-dir DIR] [--node-timeout SECONDS]
                      [--interrupt-grace SECONDS] [--stall-timeout SECONDS (default 30)]
  priorgraph run      <workflow.json> [--set node.input=value ...] [--out DIR] [--models DIR ...] [--data-dir DIR]
                      [--plugins-dir DIR]
  priorgraph validate <workflow.json> [--models DIR ...]
  priorgraph nodes    [--json]
Defaults: models root <home>/models, data dir <home>/.priorgraph (home: the repository, or the current directory when installed from npm), port 8188 (or PORT; --port 0 picks a free one).
The token may also come from PRIORGRAPH_TOKEN. Every command takes --help.`;

interface Builtin {
  plugin: PluginDefinition;
  runtimeStats?: () => unknown;
}

async function loadBuiltin(): Promise<Builtin> {
  try {
    const mod = (await import('@priorgraph/nodes')) as { default?: PluginDefinition; runtimeStats?: () => unknown };
    if (!mod.default) throw new Error('@priorgraph/nodes has no default export');
    return { plugin: mod.default, runtimeStats: mod.runtimeStats };
  } catch (e) {
    throw new CliError(`could not load the built-in node plugin (@priorgraph/nodes): ${(e as Error).message}`);
  }
}

/** Why a path could not be read, in words (with the errno code for searching). */
function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file (ENOENT)';
  if (code === 'EISDIR') return 'it is a directory, not a file (EISDIR)';
  if (code === 'EACCES') return 'permission denied (EACCES)';
  return code ?? (e as Error).message;
}

function readWorkflow(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read workflow ${file} (${resolve(file)}): ${fsReason(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Model roots named on the command line must exist (the default one may not, yet). */
function checkModelDirs(dirs: string[] | undefined): void {
  for (const d of dirs ?? []) {
    let ok = false;
    try {
      ok = statSync(d).isDirectory();
    } catch {
      // missing
    }
    if (!ok) throw new CliError(`--models ${d}: no such directory (${resolve(d)})`);
  }
}

function hostFor(values: { models?: string[]; 'data-dir'?: string; out?: string }): HostInfo {
  checkModelDirs(values.models);
  const dataDir = resolve(values['data-dir'] ?? join(HOME_DIR, '.priorgraph'));
  return {
    modelRoots: (values.models?.length ? values.models : [join(HOME_DIR, 'models')]).map((m) => resolve(m)),
    outputDir: resolve(values.out ?? join(dataDir, 'output')),
    inputDir: join(dataDir, 'input'),
    tempDir: join(dataDir, 'temp'),
    config: {},
  };
}

/** Human-readable validation errors, one line each, naming the node and input. */
export function formatValidation(v: ValidationResult): string {
  const lines: string[] = [];
  if (v.error) lines.push(`${v.error.type}: ${v.error.message}${v.error.details ? ` (${v.error.details})` : ''}`);
  for (const [id, ne] of Object.entries(v.node_errors)) {
    for (const e of ne.errors) {
      const input = e.extra_info?.input_name ? ` input "${e.extra_info.input_name}"` : '';
      lines.push(
        `  node ${id} (${ne.class_type})${input}: ${e.type}: ${e.message}${e.details ? ` — ${e.details}` : ''}`,
      );
    }
  }
  return lines.join('\n');
}

const quietLog: Logger = { debug() {}, info() {}, warn: consoleLogger.warn, error: consoleLogger.error };

async function registryWith(builtin: Builtin, host: HostInfo, setup: boolean, pluginsDir?: string): Promise<Registry> {
  const registry = new Registry();
  const r = await loadPlugins(registry, {
    plugins: [{ plugin: builtin.plugin, source: '@priorgraph/nodes' }],
    pluginsDir: pluginsDir ? resolve(pluginsDir) : undefined,
    ...(setup ? { host } : {}),
    log: quietLog,
  });
  if (r.failed.length > 0) {
    throw new CliError(
      `plugin failed to load: ${r.failed.map((f) => `${f.name} (${f.source}): ${f.reason}`).join('; ')}`,
    );
  }
  return registry;
}

function progressBar(value: number, max: number, width = 30): string {
  const frac = max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  const n = Math.round(frac * width);
  return `${'█'.repeat(n)}${'░'.repeat(width - n)} ${value}/${max}`;
}

async function cmdRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      models: { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
      'plugins-dir': { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CliError(`run needs exactly one workflow file\n${USAGE}`, 2);
  const raw = readWorkflow(file);
  const builtin = await loadBuiltin();
  const host = hostFor(values);
  const registry = await registryWith(builtin, host, true, values['plugins-dir']);
  try {
    const norm = normalizeWorkflow(raw, registry);
    if (!norm.ok) throw new CliError(`${file}: ${norm.message}`);
    let doc = norm.doc;
    try {
      doc = applyOverrides(doc, values.set ?? []);
    } catch (e) {
      throw new CliError((e as Error).message, 2);
    }
    const v = await validateWorkflow(doc, registry, host);
    if (!v.ok) throw new CliError(`${file} is not valid:\n${formatValidation(v)}`);
    const executor = new Executor(registry, { host, log: quietLog });
    const controller = new AbortController();
    const onSigint = () => {
      process.stderr.write('\ninterrupting...\n');
      controller.abort(new Error('interrupted'));
    };
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY;
    let barOpen = false;
    const titles = new Map<string, string>();
    for (const [id, n] of Object.entries(doc.nodes)) titles.set(id, n.title ?? n.type);
    const started = Date.now();
    const result = await executor.run(doc, {
      promptId: `cli-${Date.now().toString(36)}`,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'progress') {
          const line = `[${e.nodeId} ${titles.get(e.nodeId) ?? ''}] ${progressBar(e.value, e.max)}`;
          if (tty) {
            process.stderr.write(`\r${line}`);
            barOpen = true;
          } else {
            process.stderr.write(`${line}\n`);
          }
        } else if (e.type === 'node_start') {
          if (barOpen) process.stderr.write('\n');
          barOpen = false;
          process.stderr.write(`running node ${e.nodeId} (${e.nodeType})\n`);
        }
      },
    });
    process.off('SIGINT', onSigint);
    if (barOpen) process.stderr.write('\n');
    if (result.status === 'interrupted') throw new CliError('interrupted', 130);
    if (result.status === 'error') {
      const err = result.error;
      const where = err?.nodeId ? `node ${err.nodeId} (${err.nodeType})` : 'the workflow';
      const detail = err?.validation ? `\n${formatValidation(err.validation)}` : '';
      throw new CliError(`${where} failed: ${err?.message ?? 'unknown error'}${detail}`);
    }
    const files: string[] = [];
    const texts: string[] = [];
    for (const ui of Object.values(result.outputs)) {
      const out = ui as { images?: Array<{ filename: string; subfolder?: string; type?: string }>; text?: unknown[] };
      for (const img of out.images ?? []) {
        const base = img.type === 'temp' ? host.tempDir : img.type === 'input' ? host.inputDir : host.outputDir;
        files.push(join(base, img.subfolder ?? '', img.filename));
      }
      for (const t of out.text ?? []) if (typeof t === 'string') texts.push(t);
    }
    process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
    for (const f of files) process.stdout.write(`${f}\n`);
    for (const t of texts) process.stdout.write(`${t}\n`);
    if (files.length === 0 && texts.length === 0) process.stderr.write('(the workflow saved no files)\n');
    return 0;
  } finally {
    await registry.dispose(quietLog);
  }
}

async function cmdValidate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { models: { type: 'string', multiple: true } },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CliError(`validate needs exactly one workflow file\n${USAGE}`, 2);
  const raw = readWorkflow(file);
  const builtin = await loadBuiltin();
  const host = hostFor(values);
  const registry = await registryWith(builtin, host, false);
  const norm = normalizeWorkflow(raw, registry);
  if (!norm.ok) throw new CliError(`${file}: ${norm.message}`);
  for (const w of norm.warnings) process.stderr.write(`warning: ${w}\n`);
  const v = await validateWorkflow(norm.doc, registry, host);
  if (!v.ok) throw new CliError(`${file} is not valid:\n${formatValidation(v)}`);
  process.stdout.write(
    `${file}: valid (${Object.keys(norm.doc.nodes).length} nodes, outputs ${v.outputs.join(', ')})\n`,
  );
  return 0;
}

async function cmdNodes(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const builtin = await loadBuiltin();
  const host = hostFor({});
  const registry = await registryWith(builtin, host, false);
  const list = registry
    .list()
    .sort((a, b) => a.def.category.localeCompare(b.def.category) || a.qualifiedName.localeCompare(b.qualifiedName));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(await registry.objectInfo(host), null, 2)}\n`);
    return 0;
  }
  let cat = '';
  for (const t of list) {
    if (t.def.category !== cat) {
      cat = t.def.category;
      process.stdout.write(`\n${cat}\n`);
    }
    const ins = Object.entries(t.def.inputs as Record<string, { kind: string; type?: string }>)
      .map(([n, s]) => `${n}:${s.kind === 'socket' ? s.type : s.kind}`)
      .join(', ');
    const outs = (t.def.outputs as Array<{ name: string; type: string }>).map((o) => `${o.name}:${o.type}`).join(', ');
    process.stdout.write(`  ${t.qualifiedName} v${t.def.version}  (${ins}) -> (${outs})\n`);
  }
  return 0;
}

/**
 * The workflow the editor opens when `serve` gets no --open: the first priorgraph document under
 * <repo>/examples (text-to-image ones first, then by path), so that `npm start` shows an example.
 */
export function defaultExampleWorkflow(examplesDir = join(HOME_DIR, 'examples')): string | null {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 3) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'plugins' && !e.name.startsWith('.')) walk(p, depth + 1);
      } else if (e.isFile() && e.name.endsWith('.json') && e.name !== 'package.json') {
        try {
          if (JSON.parse(readFileSync(p, 'utf8'))?.format === 'priorgraph') found.push(p);
        } catch {
          /* not a workflow */
        }
      }
    }
  };
  walk(examplesDir, 0);
  const t2i = /t2i|text.?to.?image|txt2img/i;
  found.sort((a, b) => Number(t2i.test(b)) - Number(t2i.test(a)) || a.localeCompare(b));
  return found[0] ?? null;
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      models: { type: 'string', multiple: true },
      'output-dir': { type: 'string' },
      'input-dir': { type: 'string' },
      token: { type: 'string' },
      'plugins-dir': { type: 'string' },
      open: { type: 'string' },
      'node-timeout': { type: 'string' },
      'interrupt-grace': { type: 'string' },
      'worker-max-heap': { type: 'string' },
      queue: { type: 'string' },
      'memory-budget': { type: 'string' },
      'allow-history-loss': { type: 'boolean' },
    },
  });
  const nodeTimeoutMs = seconds('node-timeout', values['node-timeout'] ?? process.env.PRIORGRAPH_NODE_TIMEOUT);
  const interruptGraceMs = seconds('interrupt-grace', values['interrupt-grace']);
  const queue = values.queue ?? (process.env.PRIORGRAPH_QUEUE || undefined);
  if (queue !== undefined && !/^rediss?:\/\//.test(queue))
    throw new CliError(`--queue must be a redis:// or rediss:// URL, got ${queue}`, 2);
  const heap = values['worker-max-heap'];
  if (heap !== undefined && !/^[1-9]\d*$/.test(heap))
    throw new CliError(`--worker-max-heap must be MiB, got ${heap}`, 2);
  let memoryBudgetBytes: number | undefined;
  if (values['memory-budget'] !== undefined) {
    try {
      memoryBudgetBytes = parseBytes(values['memory-budget']);
    } catch (e) {
      throw new CliError(`--memory-budget: ${(e as Error).message}`, 2);
    }
  }
  const port = values.port === undefined ? Number(process.env.PORT ?? 8188) : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`--port must be 0..65535, got ${values.port}`, 2);
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  checkModelDirs(values.models);
  let defaultWorkflow: Record<string, unknown> | undefined;
  const open = values.open ?? defaultExampleWorkflow() ?? undefined;
  if (open) {
    const raw = readWorkflow(open);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new CliError(`${open}: not a workflow object`);
    defaultWorkflow = raw as Record<string, unknown>;
    process.stderr.write(`the editor opens ${open} first\n`);
  }
  const builtin = await loadBuiltin();
  let server: ReturnType<typeof createServer>;
  try {
    server = createServer({
      host,
      port,
      dataDir: values['data-dir'] ?? join(HOME_DIR, '.priorgraph'),
      modelRoots: values.models?.length ? values.models : [join(HOME_DIR, 'models')],
      outputDir: values['output-dir'],
      inputDir: values['input-dir'],
      token: values.token ?? process.env.PRIORGRAPH_TOKEN,
      // with its module: node code runs in the server's worker process
      plugins: [{ plugin: builtin.plugin, source: '@priorgraph/nodes', module: '@priorgraph/nodes' }],
      pluginsDir: values['plugins-dir'],
      nodeTimeoutMs,
      interruptGraceMs,
      workerExecArgv: heap ? [`--max-old-space-size=${heap}`] : undefined,
      queue,
      defaultWorkflow,
      runtimeStats: builtin.runtimeStats,
      memoryBudgetBytes,
      allowHistoryLoss: values['allow-history-loss'] || undefined,
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  let url: string;
  try {
    ({ url } = await server.listen());
  } catch (e) {
    await server.close().catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'EADDRINUSE'
        ? `port ${port} on ${host} is already in use (pass --port)`
        : `cannot listen: ${(e as Error).message}`,
    );
  }
  const token = values.token ?? process.env.PRIORGRAPH_TOKEN;
  const urls = editorUrls(url, token);
  process.stderr.write(
    `priorgraph listening on ${url}\nopen the editor at ${urls[0]}${urls.length > 1 ? `\n  or ${urls.slice(1).join('\n  or ')}` : ''}\n`,
  );
  process.stdout.write(`${urls[0]}\n`);
  await closeOnSignal('shutting down', () => server.close());
  return 0;
}

/** A `--name SECONDS` option (≥ 0) in milliseconds; undefined when not given. */
function seconds(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`--${name} must be a number of seconds >= 0, got ${v}`, 2);
  return n * 1000;
}

/** Waits for SIGINT or SIGTERM, then closes (reporting, not throwing, an error while closing). */
function closeOnSignal(what: string, close: () => Promise<unknown>): Promise<void> {
  return new Promise<void>((resolveStop) => {
    const stop = (sig: string) => {
      process.stderr.write(`\n${sig}: ${what}...\n`);
      close()
        .catch((e) => process.stderr.write(`error while closing: ${(e as Error).message}\n`))
        .finally(() => resolveStop());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** `priorgraph worker`: takes jobs from the BullMQ queue and runs them in supervised worker processes. */
async function cmdWorker(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      queue: { type: 'string' },
      models: { type: 'string', multiple: true },
      'plugins-dir': { type: 'string' },
      plugin: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      name: { type: 'string' },
      'data-dir': { type: 'string' },
      'node-timeout': { type: 'string' },
      'interrupt-grace': { type: 'string' },
      'stall-timeout': { type: 'string' },
    },
  });
  const url = values.queue ?? process.env.PRIORGRAPH_QUEUE;
  if (!url) throw new CliError(`worker needs --queue redis://HOST:PORT/DB (or PRIORGRAPH_QUEUE)\n${USAGE}`, 2);
  if (!/^rediss?:\/\//.test(url)) throw new CliError(`--queue must be a redis:// or rediss:// URL, got ${url}`, 2);
  const concurrency = Number(values.concurrency ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new CliError(`--concurrency must be 1..64, got ${values.concurrency}`, 2);
  const name = values.name ?? `${hostname()}-${process.pid}`;
  const dataDir = resolve(values['data-dir'] ?? join(HOME_DIR, '.priorgraph', 'worker', name));
  const host = hostFor({ models: values.models, 'data-dir': dataDir });
  for (const d of [host.outputDir, host.inputDir, host.tempDir]) mkdirSync(d, { recursive: true });
  const { runQueueWorker } = await import('./worker/bullmq.js');
  const worker = await runQueueWorker({
    url,
    name,
    concurrency,
    log: consoleLogger,
    init: {
      host: { ...host, modelRoots: [...host.modelRoots], config: {} },
      plugins: [
        { module: '@priorgraph/nodes', source: '@priorgraph/nodes' },
        ...(values.plugin ?? []).map((m) => ({ module: m })),
      ],
      pluginPackages: [],
      pluginsDir: values['plugins-dir'] ? resolve(values['plugins-dir']) : undefined,
    },
    nodeTimeoutMs: seconds('node-timeout', values['node-timeout'] ?? process.env.PRIORGRAPH_NODE_TIMEOUT),
    interruptGraceMs: seconds('interrupt-grace', values['interrupt-grace']),
    lockDurationMs: seconds('stall-timeout', values['stall-timeout']),
  });
  process.stdout.write(`worker ${name} ready\n`);
  await closeOnSignal(`worker ${name} stopping`, () => worker.close());
  return 0;
}

/** The usage lines of one command (its line and the indented lines that continue it). */
export function commandUsage(cmd: string): string | undefined {
  const lines = USAGE.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  priorgraph ${cmd} `) || l === `  priorgraph ${cmd}`);
  if (at < 0) return undefined;
  let end = at + 1;
  while (end < lines.length && /^ {4,}\S/.test(lines[end])) end++;
  const notes = lines.filter((l) => l.startsWith('Defaults:'));
  return ['usage:', ...lines.slice(at, end), ...notes].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // `priorgraph <command> --help` (also `npm start -- --help`, which runs `serve --help`)
  const dashDash = rest.indexOf('--');
  const flags = dashDash < 0 ? rest : rest.slice(0, dashDash);
  if (cmd && (flags.includes('--help') || flags.includes('-h'))) {
    process.stdout.write(`${commandUsage(cmd) ?? USAGE}\n`);
    return 0;
  }
  try {
    switch (cmd) {
      case 'serve':
        return await cmdServe(rest);
      case 'run':
        return await cmdRun(rest);
      case 'worker':
        return await cmdWorker(rest);
      case 'validate':
        return await cmdValidate(rest);
      case 'nodes':
        return await cmdNodes(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return cmd === undefined ? 2 : 0;
      default:
        throw new CliError(`unknown command "${cmd}"\n${USAGE}`, 2);
    }
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`priorgraph: ${e.message}\n`);
      return e.exitCode;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (
      code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
      code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
    ) {
      process.stderr.write(`priorgraph: ${(e as Error).message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`priorgraph: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

const isMain =
  process.argv[1] &&
  resolve(process.argv[1]).replace(/\.[cm]?[jt]s$/, '') ===
    resolve(import.meta.filename ?? '').replace(/\.[cm]?[jt]s$/, '');
if (isMain) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Worker pools and sockets are closed by now; exit even if a stray handle lingers.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
