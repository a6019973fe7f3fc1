/**
 * The registry of node types: plugins register their nodes under `<plugin>.<Type>`; lookups accept
 * a qualified name or a bare type name that exactly one plugin provides. Also produces ComfyUI's
 * V1 `/object_info` entries and JSON Schemas of node inputs.
 */
import { z } from 'zod';
import type { HostInfo, InputSpec, Logger, NodeDefinition, OutputSpec, PluginDefinition } from './api.js';
import { WIDGET_KINDS, widgetRange } from './inputs.js';
import type { WorkflowNode } from './schema.js';

export const PLUGIN_NAME_RE = /^[a-z][a-z0-9_-]*$/;
export const NODE_TYPE_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

export interface RegisteredNodeType {
  /** `<plugin>.<type>` */
  readonly qualifiedName: string;
  readonly plugin: string;
  readonly type: string;
  // biome-ignore lint/suspicious/noExplicitAny: heterogeneous node definitions
  readonly def: NodeDefinition<any, any>;
  /** Where the plugin came from (a package dir, a file, `<inline>`). */
  readonly source: string;
}

export interface RegisteredPlugin {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly source: string;
  readonly definition: PluginDefinition;
  readonly nodeTypes: readonly string[];
}

export interface PluginFailure {
  name: string;
  source: string;
  reason: string;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

export type ResolveResult =
  | { ok: true; node: RegisteredNodeType }
  | { ok: false; reason: 'unknown' | 'ambiguous'; message: string; candidates: string[] };

const INPUT_KINDS = new Set(['socket', 'int', 'float', 'string', 'boolean', 'combo', 'seed']);

/** Checks a node definition's shape; returns a reason or null. */
function checkNodeDefinition(def: unknown): string | null {
  if (typeof def !== 'object' || def === null) return 'a node definition must be an object';
  const d = def as Record<string, unknown>;
  if (typeof d.type !== 'string' || !NODE_TYPE_RE.test(d.type)) {
    return `node type name ${JSON.stringify(d.type)} must match ${NODE_TYPE_RE}`;
  }
  const where = `node type "${d.type}"`;
  if (typeof d.version !== 'number' || !Number.isInteger(d.version) || d.version < 1) {
    return `${where}: version must be an integer ≥ 1`;
  }
  if (typeof d.category !== 'string') return `${where}: category must be a string`;
  if (typeof d.execute !== 'function') return `${where}: execute must be a function`;
  if (typeof d.inputs !== 'object' || d.inputs === null || Array.isArray(d.inputs)) {
    return `${where}: inputs must be an object of input specs`;
  }
  for (const [name, spec] of Object.entries(d.inputs as Record<string, unknown>)) {
    const s = spec as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null || !INPUT_KINDS.has(s.kind as string)) {
      return `${where}: input "${name}" has an unknown kind ${JSON.stringify(s?.kind)}`;
    }
    if (s.kind === 'socket' && (typeof s.type !== 'string' || s.type === '')) {
      return `${where}: socket input "${name}" needs a type`;
    }
    if (s.kind === 'combo' && !Array.isArray(s.options) && typeof s.options !== 'function') {
      return `${where}: combo input "${name}" needs options (an array or a function of the host)`;
    }
  }
  if (!Array.isArray(d.outputs)) return `${where}: outputs must be an array`;
  const seen = new Set<string>();
  for (const o of d.outputs as unknown[]) {
    const out = o as Record<string, unknown> | null;
    if (typeof out?.name !== 'string' || out.name === '' || typeof out.type !== 'string') {
      return `${where}: every output needs a name and a type`;
    }
    if (out.name.startsWith('#')) return `${where}: output names may not start with "#"`;
    if (seen.has(out.name)) return `${where}: duplicate output name "${out.name}"`;
    seen.add(out.name);
  }
  return null;
}

export class Registry {
  private readonly types = new Map<string, RegisteredNodeType>();
  private readonly byBare = new Map<string, RegisteredNodeType[]>();
  /** one shared (frozen) successful ResolveResult per registered type: resolve() runs per node per run */
  private readonly found = new Map<RegisteredNodeType, ResolveResult>();
  private readonly pluginMap = new Map<string, RegisteredPlugin>();
  /** Plugins that failed to load (filled by `loadPlugins`, exposed for /api/plugins). */
  readonly failures: PluginFailure[] = [];

  /**
   * Registers a plugin and all its node types, atomically: if the plugin is malformed, its name is
   * taken, or any of its types already exists, nothing is registered and a `RegistryError` with the
   * reason is thrown (loadPlugins turns it into a `failed` entry).
   */
  register(plugin: PluginDefinition, source = '<inline>'): RegisteredPlugin {
    if (typeof plugin !== 'object' || plugin === null) throw new RegistryError('a plugin must be an object');
    if (typeof plugin.name !== 'string' || !PLUGIN_NAME_RE.test(plugin.name)) {
      throw new RegistryError(`plugin name ${JSON.stringify(plugin.name)} must match ${PLUGIN_NAME_RE}`);
    }
    if (typeof plugin.version !== 'string')
      throw new RegistryError(`plugin "${plugin.name}": version must be a string`);
    if (this.pluginMap.has(plugin.name)) {
      const other = this.pluginMap.get(plugin.name)!;
      throw new RegistryError(`plugin name "${plugin.name}" is already registered (from ${other.source})`);
    }
    if (!Array.isArray(plugin.nodes)) throw new RegistryError(`plugin "${plugin.name}": nodes must be an array`);
    const names = new Set<string>();
    for (const def of plugin.nodes) {
      const problem = checkNodeDefinition(def);
      if (problem) throw new RegistryError(`plugin "${plugin.name}": ${problem}`);
      const q = `${plugin.name}.${def.type}`;
      if (names.has(q) || this.types.has(q)) {
        throw new RegistryError(`plugin "${plugin.name}": node type "${q}" already exists`);
      }
      names.add(q);
    }
    const nodeTypes: string[] = [];
    for (const def of plugin.nodes) {
      const entry: RegisteredNodeType = {
        qualifiedName: `${plugin.name}.${def.type}`,
        plugin: plugin.name,
        type: def.type,
        def,
        source,
      };
      this.types.set(entry.qualifiedName, entry);
      this.found.set(entry, Object.freeze({ ok: true as const, node: entry }));
      const list = this.byBare.get(def.type) ?? [];
      list.push(entry);
      this.byBare.set(def.type, list);
      nodeTypes.push(entry.qualifiedName);
    }
    const reg: RegisteredPlugin = {
      name: plugin.name,
      version: plugin.version,
      description: plugin.description,
      source,
      definition: plugin,
      nodeTypes,
    };
    this.pluginMap.set(plugin.name, reg);
    return reg;
  }

  /** Resolves a qualified or bare type name without throwing. */
  resolve(type: string): ResolveResult {
    const exact = this.types.get(type);
    if (exact) return this.found.get(exact)!;
    if (typeof type !== 'string' || type.includes('.')) {
      return { ok: false, reason: 'unknown', message: `unknown node type "${type}"`, candidates: [] };
    }
    const list = this.byBare.get(type);
    if (!list || list.length === 0) {
      return { ok: false, reason: 'unknown', message: `unknown node type "${type}"`, candidates: [] };
    }
    if (list.length > 1) {
      const candidates = list.map((e) => e.qualifiedName);
      return {
        ok: false,
        reason: 'ambiguous',
        message: `node type "${type}" is ambiguous: provided by ${candidates.join(', ')}; use the qualified name`,
        candidates,
      };
    }
    return this.found.get(list[0])!;
  }

  /** The node type for a qualified name or a unique bare name; undefined when unknown.
   *  Throws `RegistryError` when a bare name is provided by several plugins. */
  get(type: string): RegisteredNodeType | undefined {
    const r = this.resolve(type);
    if (r.ok) return r.node;
    if (r.reason === 'ambiguous') throw new RegistryError(r.message);
    return undefined;
  }

  has(type: string): boolean {
    return this.resolve(type).ok;
  }

  list(): RegisteredNodeType[] {
    return [...this.types.values()];
  }

  plugins(): RegisteredPlugin[] {
    return [...this.pluginMap.values()];
  }

  /**
   * Upgrades a node's stored inputs from the version it was saved with to the registered version,
   * running the definition's `migrations`. Never throws; reports why it cannot.
   */
  migrateNode(
    node: Pick<WorkflowNode, 'type' | 'version' | 'inputs'>,
  ):
    | { ok: true; inputs: Record<string, unknown>; version: number; migrated: boolean }
    | { ok: false; reason: 'unknown_type' | 'newer_version' | 'no_migration' | 'migration_failed'; message: string } {
    const r = this.resolve(node.type);
    if (!r.ok) return { ok: false, reason: 'unknown_type', message: r.message };
    const def = r.node.def;
    const saved = node.version ?? 1;
    if (saved === def.version) return { ok: true, inputs: node.inputs, version: saved, migrated: false };
    if (saved > def.version) {
      return {
        ok: false,
        reason: 'newer_version',
        message: `saved with version ${saved} of ${r.node.qualifiedName}, but only version ${def.version} is installed`,
      };
    }
    let inputs: Record<string, unknown> = { ...node.inputs };
    for (let v = saved; v < def.version; v++) {
      const m = def.migrations?.[v];
      if (typeof m !== 'function') {
        return {
          ok: false,
          reason: 'no_migration',
          message: `${r.node.qualifiedName} has no migration from version ${v} to ${v + 1} (saved with ${saved}, installed ${def.version})`,
        };
      }
      try {
        const next = m(inputs);
        if (typeof next !== 'object' || next === null) throw new Error('migration returned no inputs object');
        inputs = next;
      } catch (e) {
        return {
          ok: false,
          reason: 'migration_failed',
          message: `${r.node.qualifiedName} migration ${v} → ${v + 1} failed: ${e instanceof Error ? e.message : String(e)}`,
        };
      }
    }
    return { ok: true, inputs, version: def.version, migrated: true };
  }

  /** ComfyUI V1 `/object_info` entries for every node type, keyed by qualified name. */
  async objectInfo(host: HostInfo, log?: Logger): Promise<Record<string, ObjectInfoEntry>> {
    const out: Record<string, ObjectInfoEntry> = {};
    for (const t of this.types.values()) out[t.qualifiedName] = await objectInfoEntry(t, host, log);
    return out;
  }

  /** JSON Schema of each node type's `inputs` object (links as `{node, output}`), keyed by qualified name. */
  jsonSchemas(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const t of this.types.values()) {
      out[t.qualifiedName] = z.toJSONSchema(inputsZodSchema(t.def.inputs), {
        unrepresentable: 'any',
      }) as Record<string, unknown>;
    }
    return out;
  }

  /** Calls every registered plugin's `dispose` (errors are logged, not thrown). */
  async dispose(log?: Logger): Promise<void> {
    for (const p of this.pluginMap.values()) {
      try {
        await p.definition.dispose?.();
      } catch (e) {
        log?.error(`plugin "${p.name}" dispose failed`, e);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// /object_info

export type ObjectInfoInputSpec = [string | string[], Record<string, unknown>];

export interface ObjectInfoEntry {
  input: {
    required: Record<string, ObjectInfoInputSpec>;
    optional: Record<string, ObjectInfoInputSpec>;
    hidden?: Record<string, unknown>;
  };
  input_order: { required: string[]; optional: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  output_tooltips: string[];
  name: string;
  display_name: string;
  description: string;
  python_module: string;
  category: string;
  output_node: boolean;
  deprecated: boolean;
  experimental: boolean;
  priorgraph: {
    type: string;
    version: number;
    plugin: string;
    inputs: Record<string, { kind: string; type?: string; optional: boolean }>;
  };
}

/** Resolves a combo's options (static or through the host); never throws. */
export async function comboOptions(
  spec: Extract<InputSpec, { kind: 'combo' }>,
  host: HostInfo,
): Promise<{ options: string[]; error?: string }> {
  try {
    const opts = typeof spec.options === 'function' ? await spec.options(host) : spec.options;
    if (!Array.isArray(opts)) return { options: [], error: 'combo options resolver did not return an array' };
    return { options: opts.map(String) };
  } catch (e) {
    return { options: [], error: `could not list options: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) r[k] = v;
  return r;
}

async function inputInfo(spec: InputSpec, host: HostInfo, log?: Logger): Promise<ObjectInfoInputSpec> {
  const tooltip = spec.description;
  switch (spec.kind) {
    case 'socket':
      return [spec.type, definedOnly({ tooltip })];
    case 'int':
      return ['INT', definedOnly({ default: spec.default, min: spec.min, max: spec.max, step: spec.step, tooltip })];
    case 'float':
      return [
        'FLOAT',
        definedOnly({
          default: spec.default,
          min: spec.min,
          max: spec.max,
          step: spec.step,
          round: spec.round,
          tooltip,
        }),
      ];
    case 'string':
      return ['STRING', definedOnly({ default: spec.default, multiline: spec.multiline ?? false, tooltip })];
    case 'boolean':
      return ['BOOLEAN', definedOnly({ default: spec.default, tooltip })];
    case 'seed':
      return [
        'INT',
        definedOnly({ default: spec.default, ...widgetRange(spec), control_after_generate: true, tooltip }),
      ];
    case 'combo': {
      const { options, error } = await comboOptions(spec, host);
      if (error) log?.warn(error);
      const upload = spec.upload === 'image' ? { image_upload: true } : {};
      return [options, definedOnly({ default: spec.default ?? options[0], tooltip, ...upload })];
    }
  }
}

async function objectInfoEntry(t: RegisteredNodeType, host: HostInfo, log?: Logger): Promise<ObjectInfoEntry> {
  const def = t.def;
  const required: Record<string, ObjectInfoInputSpec> = {};
  const optional: Record<string, ObjectInfoInputSpec> = {};
  const order = { required: [] as string[], optional: [] as string[] };
  const kinds: ObjectInfoEntry['priorgraph']['inputs'] = {};
  for (const [name, spec] of Object.entries(def.inputs as Record<string, InputSpec>)) {
    const info = await inputInfo(spec, host, log);
    if (spec.optional) {
      optional[name] = info;
      order.optional.push(name);
    } else {
      required[name] = info;
      order.required.push(name);
    }
    kinds[name] = {
      kind: spec.kind.toUpperCase(),
      ...(spec.kind === 'socket' ? { type: spec.type } : {}),
      optional: spec.optional === true,
    };
  }
  const outputs = def.outputs as readonly OutputSpec[];
  return {
    input: { required, optional },
    input_order: order,
    output: outputs.map((o) => o.type),
    output_is_list: outputs.map(() => false),
    output_name: outputs.map((o) => o.name),
    output_tooltips: outputs.map((o) => o.description ?? ''),
    name: t.qualifiedName,
    display_name: def.displayName ?? def.type,
    description: def.description ?? '',
    python_module: t.plugin,
    category: def.category,
    output_node: def.outputNode === true,
    deprecated: false,
    experimental: false,
    priorgraph: { type: t.qualifiedName, version: def.version, plugin: t.plugin, inputs: kinds },
  };
}

// ---------------------------------------------------------------------------------------------
// JSON Schema of a node's inputs

const LinkZ = z.object({ node: z.string(), output: z.string() }).strict();

function inputZod(spec: InputSpec): z.ZodType {
  if (spec.kind === 'socket') return LinkZ.describe(spec.description ?? `link to a ${spec.type} output`);
  const literal = WIDGET_KINDS[spec.kind].zod(spec);
  const s = 'default' in spec && spec.default !== undefined ? literal.default(spec.default as never) : literal;
  const withLink = z.union([s, LinkZ]);
  return spec.description ? withLink.describe(spec.description) : withLink;
}

function inputsZodSchema(inputs: Record<string, InputSpec>): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const s = inputZod(spec);
    shape[name] = spec.optional ? s.optional() : s;
  }
  return z.object(shape);
}
