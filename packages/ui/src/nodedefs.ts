/** Node definitions the editor builds from the server's /object_info (ComfyUI V1 shape + `priorgraph`). */

export type InputKind = 'socket' | 'int' | 'float' | 'string' | 'boolean' | 'combo' | 'seed';

export interface InputDef {
  name: string;
  kind: InputKind;
  /** Socket type for sockets; the ComfyUI type name (INT, FLOAT, ...) for widgets. */
  type: string;
  optional: boolean;
  default?: unknown;
  min?: number;
  max?: number;
  step?: number;
  round?: number;
  multiline?: boolean;
  options?: string[];
  tooltip?: string;
  /** A combo of files in the server's input folder that the editor can upload to. */
  upload?: 'image';
}

export interface OutputDef {
  name: string;
  type: string;
}

export interface NodeDef {
  /** The key in /object_info: the qualified `<plugin>.<Type>` name. */
  type: string;
  /** The type name without its plugin prefix. */
  bareType: string;
  plugin?: string;
  version: number;
  displayName: string;
  category: string;
  description: string;
  inputs: InputDef[];
  outputs: OutputDef[];
  outputNode: boolean;
}

export type NodeDefs = Map<string, NodeDef>;

type Spec = [unknown, Record<string, unknown>?] | unknown[];

interface ObjectInfoEntry {
  input?: { required?: Record<string, Spec>; optional?: Record<string, Spec> };
  input_order?: { required?: string[]; optional?: string[] };
  output?: string[];
  output_name?: string[];
  name?: string;
  display_name?: string;
  description?: string;
  category?: string;
  output_node?: boolean;
  priorgraph?: { type?: string; version?: number; plugin?: string; inputs?: Record<string, { kind?: string }> };
}

const WIDGET_TYPES: Record<string, InputKind> = {
  INT: 'int',
  FLOAT: 'float',
  STRING: 'string',
  BOOLEAN: 'boolean',
  COMBO: 'combo',
  SEED: 'seed',
};

function normaliseKind(kind: string | undefined): InputKind | undefined {
  if (!kind) return undefined;
  const k = kind.toLowerCase();
  if (['socket', 'int', 'float', 'string', 'boolean', 'combo', 'seed'].includes(k)) return k as InputKind;
  return WIDGET_TYPES[kind.toUpperCase()];
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parseInput(name: string, spec: Spec, optional: boolean, declaredKind: string | undefined): InputDef {
  if (!Array.isArray(spec) || spec.length === 0) {
    throw new Error(`input "${name}": expected [TYPE, options], got ${JSON.stringify(spec)}`);
  }
  const head = spec[0];
  const opts = (spec[1] && typeof spec[1] === 'object' ? spec[1] : {}) as Record<string, unknown>;
  const tooltip = typeof opts.tooltip === 'string' ? opts.tooltip : undefined;
  if (Array.isArray(head)) {
    const options = head.map(String);
    const upload = opts.image_upload === true ? ({ upload: 'image' } as const) : {};
    return {
      name,
      kind: 'combo',
      type: 'COMBO',
      optional,
      options,
      default: opts.default ?? options[0],
      tooltip,
      ...upload,
    };
  }
  const type = String(head);
  let kind = normaliseKind(declaredKind) ?? (WIDGET_TYPES[type] as InputKind | undefined) ?? 'socket';
  if (kind === 'int' && opts.control_after_generate === true) kind = 'seed';
  if (kind === 'socket') return { name, kind, type, optional, tooltip };
  const def: InputDef = { name, kind, type, optional, default: opts.default, tooltip };
  if (kind === 'combo') {
    const options = Array.isArray(opts.options) ? opts.options.map(String) : [];
    def.options = options;
    if (def.default === undefined) def.default = options[0];
  }
  def.min = num(opts.min);
  def.max = num(opts.max);
  def.step = num(opts.step);
  def.round = num(opts.round);
  if (opts.multiline === true) def.multiline = true;
  if (def.default === undefined) {
    def.default = kind === 'string' ? '' : kind === 'boolean' ? false : (def.min ?? 0);
  }
  return def;
}

/** Parse a whole /object_info answer. A malformed entry throws an error naming the node type. */
export function parseObjectInfo(info: Record<string, unknown>): NodeDefs {
  const defs: NodeDefs = new Map();
  for (const [key, raw] of Object.entries(info)) {
    const e = raw as ObjectInfoEntry;
    try {
      const kinds = e.priorgraph?.inputs ?? {};
      const inputs: InputDef[] = [];
      for (const group of ['required', 'optional'] as const) {
        const specs = e.input?.[group] ?? {};
        const order = e.input_order?.[group] ?? Object.keys(specs);
        for (const name of order) {
          if (!(name in specs)) continue;
          inputs.push(parseInput(name, specs[name], group === 'optional', kinds[name]?.kind));
        }
      }
      const outTypes = e.output ?? [];
      const outNames = e.output_name ?? outTypes;
      const outputs = outTypes.map((t, i) => ({ name: String(outNames[i] ?? t), type: String(t) }));
      const dot = key.indexOf('.');
      const plugin = e.priorgraph?.plugin ?? (dot >= 0 ? key.slice(0, dot) : undefined);
      const bareType = plugin && key.startsWith(`${plugin}.`) ? key.slice(plugin.length + 1) : key;
      defs.set(key, {
        type: key,
        bareType,
        plugin,
        version: e.priorgraph?.version ?? 1,
        displayName: e.display_name || e.name || bareType,
        category: e.category || 'other',
        description: e.description ?? '',
        inputs,
        outputs,
        outputNode: e.output_node === true,
      });
    } catch (err) {
      throw new Error(`/object_info entry "${key}": ${(err as Error).message}`);
    }
  }
  return defs;
}

/** Find a node type by its qualified name, or by a bare name that exactly one plugin provides. */
export function resolveType(defs: NodeDefs, name: string): NodeDef | undefined {
  const direct = defs.get(name);
  if (direct) return direct;
  const matches = [...defs.values()].filter((d) => d.bareType === name);
  return matches.length === 1 ? matches[0] : undefined;
}

export function isWidget(input: InputDef): boolean {
  return input.kind !== 'socket';
}

/** Where each widget value sits in litegraph's positional `widgets_values`: the widget inputs in order,
 *  each seed followed by its "control after run" combo. */
export interface WidgetSlot {
  input: string;
  control: boolean;
}

export function widgetLayout(def: NodeDef): WidgetSlot[] {
  const out: WidgetSlot[] = [];
  for (const i of def.inputs) {
    if (!isWidget(i)) continue;
    out.push({ input: i.name, control: false });
    if (i.kind === 'seed') out.push({ input: i.name, control: true });
  }
  return out;
}

const TYPE_COLOURS: Record<string, string> = {
  MODEL: '#b39ddb',
  CLIP: '#ffd54f',
  VAE: '#ef5350',
  CONDITIONING: '#ffa726',
  LATENT: '#f06292',
  IMAGE: '#64b5f6',
  MASK: '#81c784',
  DENOISER: '#4db6ac',
  GUIDER: '#9ccc65',
  SCHEDULER: '#a1887f',
  SIGMAS: '#cddc39',
  INT: '#29b6f6',
  FLOAT: '#26a69a',
  STRING: '#bdbdbd',
  BOOLEAN: '#7986cb',
};

/** A stable colour per socket type: fixed ones for the built-in types, a hashed hue for the rest. */
export function typeColour(type: string): string {
  const fixed = TYPE_COLOURS[type.toUpperCase()];
  if (fixed) return fixed;
  let h = 0;
  for (const c of type) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360}, 55%, 62%)`;
}

/** Socket compatibility, as core's `socketsCompatible`: "*" matches anything, else the comma-separated
 *  type sets must intersect. */
export function socketsMatch(outputType: string, inputType: string): boolean {
  if (outputType === '*' || inputType === '*') return true;
  const ins = new Set(inputType.split(',').map((s) => s.trim()));
  return outputType.split(',').some((t) => ins.has(t.trim()));
}

/** What ComfyUI users type for a node that has another name here (bare type → their words). */
const SEARCH_ALIASES: Record<string, string[]> = {
  DiffusersLoader: ['load checkpoint', 'checkpointloadersimple', 'checkpoint loader'],
  UNetLoader: ['load diffusion model', 'unetloader'],
  Sampler: ['ksampler', 'samplercustom'],
  CLIPTextEncode: ['prompt'],
};

/** Node types matching a search (optionally only those with an input / output a dragged link fits): every word of the query must occur in the display name, type name
 *  or category (case-insensitive); best matches first (name starts with the query, then name contains it). */
export function searchNodeTypes(
  defs: NodeDefs,
  query: string,
  limit = 30,
  filter: { inputType?: string; outputType?: string } = {},
): string[] {
  const q = query.trim().toLowerCase();
  const words = q.split(/\s+/).filter(Boolean);
  const scored: Array<[number, string, string]> = [];
  for (const d of defs.values()) {
    const { inputType, outputType } = filter;
    if (inputType && !d.inputs.some((i) => i.kind === 'socket' && socketsMatch(inputType, i.type))) continue;
    if (outputType && !d.outputs.some((o) => socketsMatch(o.type, outputType))) continue;
    const name = d.displayName.toLowerCase();
    // the bare type name: every qualified name starts with its plugin's, which would match everything
    const aliases = (SEARCH_ALIASES[d.bareType] ?? []).join(' ');
    const hay = `${name} ${d.bareType.toLowerCase()} ${d.category.toLowerCase()} ${aliases}`;
    if (!words.every((w) => hay.includes(w))) continue;
    const compact = name.replace(/\s+/g, '');
    const score =
      name.startsWith(q) || aliases.split(' ').includes(q) || (SEARCH_ALIASES[d.bareType] ?? []).includes(q)
        ? 0
        : name.includes(q) || compact.includes(q.replace(/\s+/g, ''))
          ? 1
          : 2;
    scored.push([score, name, d.type]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
  return scored.slice(0, limit).map((s) => s[2]);
}
