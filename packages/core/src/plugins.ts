/**
 * Plugin loading: npm package directories whose package.json declares
 * `"priorgraph": {"plugin": "<entry>"}`, folders of a plugins directory (each a package like that,
 * or a folder with index.js / index.mjs / index.ts), and plugin objects given inline. Every failure
 * (import error, bad export, throwing setup, invalid or colliding node types) is reported as
 * `{name, source, reason}` and the other plugins still load.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HostInfo, Logger, PluginDefinition } from './api.js';
import type { PluginFailure, Registry } from './registry.js';

export interface LoadPluginsOptions {
  /** Package directories whose package.json has `"priorgraph": {"plugin": "<entry>"}`. */
  packages?: string[];
  /** A directory whose sub-folders are plugins. */
  pluginsDir?: string;
  /** Plugin definitions already imported (e.g. the built-in nodes), with a source label. */
  plugins?: Array<PluginDefinition | { plugin: PluginDefinition; source: string }>;
  /** When given, each plugin's `setup(host, log)` runs before its nodes are registered;
   *  a plugin whose setup throws is reported as failed and not registered. */
  host?: HostInfo;
  log?: Logger;
  /** How long a plugin's import and its setup may take before it is reported as failed (default
   *  30 s). A module whose top-level await never settles would otherwise leave the host waiting
   *  forever, or exiting silently once nothing else keeps the event loop alive. */
  settleTimeoutMs?: number;
}

export const DEFAULT_PLUGIN_SETTLE_MS = 30_000;

/** `p`, or a rejection naming `what` once `ms` pass (the timer keeps the process alive meanwhile). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${what} did not settle within ${(ms / 1000).toFixed(1)} s (a top-level await or setup that never finishes?)`,
          ),
        ),
      ms,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export interface LoadedPlugin {
  name: string;
  version: string;
  source: string;
  nodeTypes: string[];
}

export interface LoadPluginsResult {
  loaded: LoadedPlugin[];
  failed: PluginFailure[];
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function readPackageJson(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'package.json');
  const text = readFileSync(file, 'utf8');
  try {
    const json = JSON.parse(text);
    if (typeof json !== 'object' || json === null) throw new Error('not an object');
    return json;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${message(e)}`);
  }
}

/** Finds the entry file of a plugin folder or package; throws with a reason. */
export function pluginEntry(dir: string): { entry: string; name: string } {
  if (existsSync(path.join(dir, 'package.json'))) {
    const pkg = readPackageJson(dir);
    const name = typeof pkg.name === 'string' ? pkg.name : path.basename(dir);
    const field = (pkg.priorgraph as { plugin?: unknown } | undefined)?.plugin;
    if (typeof field !== 'string' || field === '') {
      throw Object.assign(new Error(`package.json has no "priorgraph": {"plugin": "<entry>"} field`), {
        pluginName: name,
      });
    }
    const entry = path.resolve(dir, field);
    if (!existsSync(entry)) {
      throw Object.assign(new Error(`plugin entry ${field} does not exist (${entry})`), { pluginName: name });
    }
    return { entry, name };
  }
  for (const f of ['index.js', 'index.mjs', 'index.ts']) {
    const entry = path.join(dir, f);
    if (existsSync(entry)) return { entry, name: path.basename(dir) };
  }
  throw Object.assign(new Error('neither a package.json with "priorgraph.plugin" nor an index.js/index.mjs/index.ts'), {
    pluginName: path.basename(dir),
  });
}

function asPlugin(mod: Record<string, unknown>): PluginDefinition {
  const candidate = (mod.default ?? mod.plugin) as unknown;
  // A CommonJS-style double default (`module.exports.default`).
  const c =
    candidate && typeof candidate === 'object' && 'default' in candidate && !('nodes' in candidate)
      ? (candidate as { default: unknown }).default
      : candidate;
  if (typeof c !== 'object' || c === null) {
    throw new Error('the module exports no plugin (expected a default export or a `plugin` export from definePlugin)');
  }
  const p = c as PluginDefinition;
  if (typeof p.name !== 'string' || !Array.isArray(p.nodes)) {
    throw new Error('the exported plugin needs a name and a nodes array');
  }
  return p;
}

async function install(
  registry: Registry,
  plugin: PluginDefinition,
  source: string,
  options: LoadPluginsOptions,
): Promise<LoadedPlugin> {
  if (options.host && typeof plugin.setup === 'function') {
    try {
      await within(
        Promise.resolve().then(() => plugin.setup!(options.host!, options.log ?? silent)),
        options.settleTimeoutMs ?? DEFAULT_PLUGIN_SETTLE_MS,
        'setup',
      );
    } catch (e) {
      throw new Error(`setup failed: ${message(e)}`);
    }
  }
  const reg = registry.register(plugin, source);
  return { name: reg.name, version: reg.version, source, nodeTypes: [...reg.nodeTypes] };
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Loads plugins into the registry; never throws for a broken plugin. */
export async function loadPlugins(registry: Registry, options: LoadPluginsOptions = {}): Promise<LoadPluginsResult> {
  const loaded: LoadedPlugin[] = [];
  const failed: PluginFailure[] = [];
  const report = (f: PluginFailure) => {
    failed.push(f);
    registry.failures.push(f);
    options.log?.warn(`plugin ${f.name} (${f.source}) failed to load: ${f.reason}`);
  };

  for (const item of options.plugins ?? []) {
    const { plugin, source } = 'plugin' in item && 'source' in item ? item : { plugin: item, source: '<inline>' };
    try {
      loaded.push(await install(registry, plugin as PluginDefinition, source, options));
    } catch (e) {
      report({ name: String((plugin as PluginDefinition)?.name ?? '<unnamed>'), source, reason: message(e) });
    }
  }

  const dirs: string[] = [...(options.packages ?? [])].map((d) => path.resolve(d));
  if (options.pluginsDir) {
    const root = path.resolve(options.pluginsDir);
    let entries: string[] = [];
    try {
      entries = readdirSync(root).sort();
    } catch (e) {
      report({ name: path.basename(root), source: root, reason: `cannot read plugins directory: ${message(e)}` });
    }
    for (const name of entries) {
      if (name.startsWith('.') || name === 'node_modules') continue;
      const full = path.join(root, name);
      try {
        if (statSync(full).isDirectory()) dirs.push(full);
      } catch {
        // vanished
      }
    }
  }

  for (const dir of dirs) {
    let name = path.basename(dir);
    try {
      const found = pluginEntry(dir);
      name = found.name;
      let mod: Record<string, unknown>;
      try {
        mod = (await within(
          import(pathToFileURL(found.entry).href),
          options.settleTimeoutMs ?? DEFAULT_PLUGIN_SETTLE_MS,
          'the import',
        )) as Record<string, unknown>;
      } catch (e) {
        throw new Error(`import of ${found.entry} failed: ${message(e)}`);
      }
      const plugin = asPlugin(mod);
      name = plugin.name;
      loaded.push(await install(registry, plugin, dir, options));
    } catch (e) {
      const n = (e as { pluginName?: string }).pluginName ?? name;
      report({ name: n, source: dir, reason: message(e) });
    }
  }
  return { loaded, failed };
}
