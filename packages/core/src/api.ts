/**
 * The node and plugin API of priorgraph: what a node type declares and what it receives when it runs.
 *
 * This is the contract every other package is written against (the built-in nodes, third-party
 * plugins, the server, the editor through /object_info). Keep it small and stable.
 */

/** A socket type: an open string. Plugins add their own (LATENT, CONDITIONING, DENOISER, GUIDER, ...).
 *  Compatibility rule (see `socketsCompatible`): "*" matches anything; otherwise the comma-separated
 *  sets of the output's and the input's type names must intersect ("IMAGE,MASK" accepts "MASK"). */
export type SocketType = string;

interface InputBase {
  /** Shown as a tooltip in the editor and in /object_info. */
  description?: string;
  /** An optional input may be left unset; `execute` then receives `undefined` (or the default for widgets). */
  optional?: boolean;
}

/** An input fed only by a link from another node's output. */
export interface SocketInput extends InputBase {
  kind: 'socket';
  type: SocketType;
}
export interface IntInput extends InputBase {
  kind: 'int';
  default: number;
  min?: number;
  max?: number;
  step?: number;
}
export interface FloatInput extends InputBase {
  kind: 'float';
  default: number;
  min?: number;
  max?: number;
  step?: number;
  /** Round displayed/edited values to this precision in the editor (ComfyUI's `round`). */
  round?: number;
}
export interface StringInput extends InputBase {
  kind: 'string';
  default: string;
  multiline?: boolean;
}
export interface BooleanInput extends InputBase {
  kind: 'boolean';
  default: boolean;
}
/** Options may be static or computed from the host (e.g. the models found under the model roots). */
export interface ComboInput extends InputBase {
  kind: 'combo';
  options: readonly string[] | ((host: HostInfo) => readonly string[] | Promise<readonly string[]>);
  default?: string;
  /** The options are files in the input folder that the editor may upload to (ComfyUI's `image_upload`). */
  upload?: 'image';
}
/** A seed: an integer in [0, 2^64 − 1] (ComfyUI's range; see inputs.ts): in a document a number, or a
 *  decimal string above 2^53 − 1; `execute` receives a number, or a bigint above 2^53 − 1. The editor
 *  offers "randomize after each run". */
export interface SeedInput extends InputBase {
  kind: 'seed';
  default: number;
}
export type WidgetInput = IntInput | FloatInput | StringInput | BooleanInput | ComboInput | SeedInput;
export type InputSpec = SocketInput | WidgetInput;

export interface OutputSpec {
  name: string;
  type: SocketType;
  description?: string;
}

/** Where the host keeps files. Given to plugins at setup and to every node at run time. */
export interface HostInfo {
  /** Folders that model paths are confined to (absolute). */
  modelRoots: readonly string[];
  outputDir: string;
  inputDir: string;
  tempDir: string;
  /** Free-form host configuration a plugin may read (e.g. `{ executionProviders: ['cpu'] }`). */
  config: Readonly<Record<string, unknown>>;
}

export interface Logger {
  debug(msg: string, data?: unknown): void;
  info(msg: string, data?: unknown): void;
  warn(msg: string, data?: unknown): void;
  error(msg: string, data?: unknown): void;
}

/** What a node shows in the editor after it ran, e.g. `{ images: [{ filename, subfolder, type }] }`
 *  (the ComfyUI `executed.output` shape). */
export type UiOutput = Record<string, unknown>;

export interface PreviewImage {
  format: 'png' | 'jpeg';
  data: Uint8Array;
}

export interface NodeContext {
  /** Id of the node in the workflow being run. */
  readonly nodeId: string;
  /** Id of the run (the server's prompt id). */
  readonly promptId: string;
  readonly host: HostInfo;
  /** The whole document being run (e.g. to embed it in a saved PNG). Read-only. */
  readonly document: import('./schema.js').WorkflowDocument;
  /** Aborted when the run is cancelled. Long nodes check it between steps. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Report progress (value out of max). */
  progress(value: number, max: number): void;
  /** Emit a preview image (e.g. a sampler's step preview). */
  preview(image: PreviewImage): void;
  /** Set what this node shows in the editor once it finishes (merged with earlier calls). */
  ui(output: UiOutput): void;
}

/** The JS type a node's `execute` receives for each input kind. */
export type InputValue<S extends InputSpec> = S extends SocketInput
  ? unknown
  : S extends SeedInput
    ? number | bigint
    : S extends IntInput | FloatInput
      ? number
      : S extends StringInput | ComboInput
        ? string
        : S extends BooleanInput
          ? boolean
          : never;

export type InputValues<I extends Record<string, InputSpec>> = {
  [K in keyof I]: I[K] extends { optional: true } ? InputValue<I[K]> | undefined : InputValue<I[K]>;
};

export type OutputValues<O extends readonly OutputSpec[]> = { [K in O[number]['name']]: unknown };

/** A migration from one type version of a node to the next: receives the stored named inputs of
 *  version `from` and returns those of version `from + 1`. */
export type InputMigration = (inputs: Record<string, unknown>) => Record<string, unknown>;

export interface NodeDefinition<
  I extends Record<string, InputSpec> = Record<string, InputSpec>,
  O extends readonly OutputSpec[] = readonly OutputSpec[],
> {
  /** Type name, unique within its plugin: /^[A-Za-z][A-Za-z0-9_]*$/. The registry qualifies it as
   *  `<plugin>.<type>`; a bare type name resolves when exactly one plugin provides it. */
  type: string;
  /** Type version, an integer ≥ 1. A saved node records it. */
  version: number;
  category: string;
  displayName?: string;
  description?: string;
  inputs: I;
  outputs: O;
  /** An output node is a sink the executor runs by default (save, preview). */
  outputNode?: boolean;
  /** Not idempotent: never served from the cache (e.g. a node that reads the clock). */
  notIdempotent?: boolean;
  /** migrations[v] upgrades the inputs of version v to version v + 1. Documents saved with an older
   *  version are migrated on load; without a migration path the node is reported, never dropped. */
  migrations?: Record<number, InputMigration>;
  /** Extra validation after types and ranges are checked; return messages (each becomes a
   *  `custom_validation_failed` error on that input, or on the node when input is omitted). */
  validate?: (
    inputs: Partial<Record<keyof I & string, unknown>>,
    host: HostInfo,
  ) =>
    | Array<{ input?: keyof I & string; message: string }>
    | Promise<Array<{ input?: keyof I & string; message: string }>>;
  /** Static facts before anything runs (see `NodeFacts`): from the widget values (defaults filled
   *  in) and the facts of linked outputs (`linked[input]`, undefined when the source told nothing).
   *  Must be cheap (no model loads) and may throw; a throw counts as "nothing known". */
  infer?: (
    inputs: Partial<Record<keyof I & string, unknown>>,
    linked: Partial<Record<keyof I & string, unknown>>,
    host: HostInfo,
  ) => NodeFacts | undefined;
  execute(inputs: InputValues<I>, ctx: NodeContext): OutputValues<O> | Promise<OutputValues<O>>;
}

/**
 * What a node can tell about a run before it happens, from the graph alone: the facts of its outputs
 * (e.g. a latent's `{ shape }`, a scheduler's step limit) that downstream nodes receive as `linked`,
 * the bytes of tensors it will hold while it runs (its inputs and outputs; validation refuses a node
 * over the per-job memory budget, naming it), and problems that the graph makes certain (each
 * becomes a validation error on that input).
 */
export interface NodeFacts {
  outputs?: Record<string, unknown>;
  bytes?: number;
  problems?: Array<{ input?: string; message: string }>;
}

/** Identity function that checks and types a node definition. */
export function defineNode<const I extends Record<string, InputSpec>, const O extends readonly OutputSpec[]>(
  def: NodeDefinition<I, O>,
): NodeDefinition<I, O> {
  return def;
}

export interface PluginDefinition {
  /** Namespace of the plugin's node types: /^[a-z][a-z0-9_-]*$/. */
  name: string;
  version: string;
  description?: string;
  // biome-ignore lint/suspicious/noExplicitAny: node definitions are checked by defineNode
  nodes: ReadonlyArray<NodeDefinition<any, any>>;
  /** Called once when the host loads the plugin (e.g. to start a worker pool). */
  setup?(host: HostInfo, log: Logger): void | Promise<void>;
  /** Called when the host shuts down. */
  dispose?(): void | Promise<void>;
}

export function definePlugin(def: PluginDefinition): PluginDefinition {
  return def;
}

/** Socket compatibility (declared rule, used by validation and the editor). */
export function socketsCompatible(outputType: SocketType, inputType: SocketType): boolean {
  if (outputType === '*' || inputType === '*') return true;
  const outs = outputType.split(',').map((s) => s.trim());
  const ins = new Set(inputType.split(',').map((s) => s.trim()));
  return outs.some((t) => ins.has(t));
}

/** Values may declare their size for the executor's byte-bounded cache. Typed arrays and buffers are
 *  measured directly; other objects are walked; an object with this symbol reports its own size. */
export const sizeOf: unique symbol = Symbol.for('priorgraph.sizeOf');
