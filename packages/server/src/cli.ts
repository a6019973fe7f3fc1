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
import { readdirSync, readFileSync } from 'node:fs';
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
import { consoleLogger, createServer, parseBytes, REPO_ROOT } from './server.js';
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
                      [--memory-budget SIZE (per job, e.g. 6GiB; or PRIORGRAPH_MEMORY_BUDGET)]
                      [--allow-history-loss (start on a damaged or missing job database; or PRIORGRAPH_ALLOW_HISTORY_LOSS=1)]
  priorgraph run      <workflow.json> [--set node.input=value ...] [--out DIR] [--models DIR ...] [--data-dir DIR]
  priorgraph validate <workflow.json> [--models DIR ...]
  priorgraph nodes    [--json]
Defaults: models root <repo>/models, data dir <repo>/.priorgraph. The token may also come from PRIORGRAPH_TOKEN.`;

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

function readWorkflow(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read workflow ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

function hostFor(values: { models?: string[]; 'data-dir'?: string; out?: string }): HostInfo {
  const dataDir = resolve(values['data-dir'] ?? join(REPO_ROOT, '.priorgraph'));
  return {
    modelRoots: (values.models?.length ? values.models : [join(REPO_ROOT, 'models')]).map((m) => resolve(m)),
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

async function registryWith(builtin: Builtin, host: HostInfo, setup: boolean): Promise<Registry> {
  const registry = new Registry();
  const r = await loadPlugins(registry, {
    plugins: [{ plugin: builtin.plugin, source: '@priorgraph/nodes' }],
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
    },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CliError(`run needs exactly one workflow file\n${USAGE}`, 2);
  const raw = readWorkflow(file);
  const builtin = await loadBuiltin();
  const host = hostFor(values);
  const registry = await registryWith(builtin, host, true);
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
    for (const ui of Object.values(result.outputs)) {
      const images = (ui as { images?: Array<{ filename: string; subfolder?: string; type?: string }> }).images;
      for (const img of images ?? []) {
        const base = img.type === 'temp' ? host.tempDir : img.type === 'input' ? host.inputDir : host.outputDir;
        files.push(join(base, img.subfolder ?? '', img.filename));
      }
    }
    process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
    for (const f of files) process.stdout.write(`${f}\n`);
    if (files.length === 0) process.stderr.write('(the workflow saved no files)\n');
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
export function defaultExampleWorkflow(examplesDir = join(REPO_ROOT, 'examples')): string | null {
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
      'memory-budget': { type: 'string' },
      'allow-history-loss': { type: 'boolean' },
    },
  });
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
      dataDir: values['data-dir'] ?? join(REPO_ROOT, '.priorgraph'),
      modelRoots: values.models?.length ? values.models : [join(REPO_ROOT, 'models')],
      outputDir: values['output-dir'],
      inputDir: values['input-dir'],
      token: values.token ?? process.env.PRIORGRAPH_TOKEN,
      plugins: [{ plugin: builtin.plugin, source: '@priorgraph/nodes' }],
      pluginsDir: values['plugins-dir'],
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
  process.stderr.write(`priorgraph listening on ${url}\n`);
  process.stdout.write(`${url}\n`);
  await new Promise<void>((resolveStop) => {
    const stop = (sig: string) => {
      process.stderr.write(`\n${sig}: shutting down...\n`);
      server
        .close()
        .catch((e) => process.stderr.write(`error while closing: ${(e as Error).message}\n`))
        .finally(() => resolveStop());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        return await cmdServe(rest);
      case 'run':
        return await cmdRun(rest);
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
