/**
 * The workflow document: zod schemas (the single source of the TypeScript types and of the JSON
 * Schema), document-format migrations and `parseDocument`.
 */
import { z } from 'zod';

/** The document format version this build writes and reads natively. */
export const CURRENT_DOCUMENT_VERSION = 1;

/** A link: the value of an input fed by another node's output, by node id and OUTPUT NAME. */
export const NodeLinkSchema = z
  .object({
    node: z.string().min(1).describe('Id of the source node'),
    output: z.string().min(1).describe('Name of the source output'),
  })
  .strict();
export type NodeLink = z.infer<typeof NodeLinkSchema>;

/** Any JSON value (widget literals are numbers, strings, booleans or arrays). */
export const JsonValueSchema = z.json();
export type JsonValue = z.infer<typeof JsonValueSchema>;

export const InputValueSchema = z.union([NodeLinkSchema, JsonValueSchema]);
/** An input value: a link or a JSON literal. */
export type DocumentInputValue = NodeLink | JsonValue;

export const NodeModeSchema = z.enum(['normal', 'muted', 'bypass']);
export type NodeMode = z.infer<typeof NodeModeSchema>;

const Vec2 = z.tuple([z.number(), z.number()]);

export const NodeUiSchema = z
  .looseObject({
    pos: Vec2.optional(),
    size: Vec2.optional(),
    color: z.string().optional(),
    bgcolor: z.string().optional(),
    collapsed: z.boolean().optional(),
  })
  .describe('Editor-only data; execution never reads it');
export type NodeUi = z.infer<typeof NodeUiSchema>;

export const WorkflowNodeSchema = z.object({
  type: z.string().min(1).describe('Qualified `<plugin>.<Type>` or a bare type name'),
  version: z.number().int().min(1).default(1).describe('The node type version the node was saved with'),
  title: z.string().optional(),
  mode: NodeModeSchema.default('normal'),
  inputs: z.record(z.string(), InputValueSchema).default({}),
  ui: NodeUiSchema.optional(),
});
export type WorkflowNode = z.infer<typeof WorkflowNodeSchema>;

export const WorkflowGroupSchema = z.looseObject({
  title: z.string().optional(),
  bounding: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  color: z.string().optional(),
});

export const WorkflowUiSchema = z.looseObject({
  groups: z.array(WorkflowGroupSchema).optional(),
  viewport: z.looseObject({ offset: Vec2.optional(), scale: z.number().optional() }).optional(),
});

export const WorkflowDocumentSchema = z.object({
  format: z.literal('priorgraph'),
  version: z.literal(CURRENT_DOCUMENT_VERSION),
  nodes: z.record(z.string().min(1), WorkflowNodeSchema),
  ui: WorkflowUiSchema.optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
});
/** A parsed (defaults filled) workflow document. */
export type WorkflowDocument = z.infer<typeof WorkflowDocumentSchema>;
/** A document as it may be written (defaults optional). */
export type WorkflowDocumentInput = z.input<typeof WorkflowDocumentSchema>;

/** True when `v` is a link `{node, output}` (exactly those two string keys). */
export function isLink(v: unknown): v is NodeLink {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.node !== 'string' || typeof o.output !== 'string') return false;
  for (const k in o) if (k !== 'node' && k !== 'output') return false;
  return true;
}

/** JSON Schema (draft 2020-12) of a workflow document, as accepted on input (defaults optional). */
export function workflowJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(WorkflowDocumentSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Document-format migrations

/** Upgrades a raw document of format version `from` to version `from + 1`. */
export type DocumentMigration = (doc: Record<string, unknown>) => Record<string, unknown>;

/** The registry of document-format migrations: key `v` upgrades version v to v + 1.
 *  Version 1 is the first format, so it is empty today; new format versions add entries here. */
export const documentMigrations: Map<number, DocumentMigration> = new Map();

export class DocumentError extends Error {
  readonly issues: Array<{ path: string; message: string }>;
  constructor(message: string, issues: Array<{ path: string; message: string }> = []) {
    super(message);
    this.name = 'DocumentError';
    this.issues = issues;
  }
}

/** What `parseDocument` needs from a registry to upgrade node type versions (see `Registry.migrateNode`). */
export interface NodeMigrator {
  migrateNode(
    node: Pick<WorkflowNode, 'type' | 'version' | 'inputs'>,
  ):
    | { ok: true; inputs: Record<string, unknown>; version: number; migrated: boolean }
    | { ok: false; reason: string; message: string };
}

/**
 * Upgrades every node saved with an older type version to the registered version by running its
 * definition's migrations. Nodes of unknown types, of newer versions, or without a migration path
 * are kept exactly as they are and listed in `problems` (validation reports them too).
 */
export function upgradeNodes(
  doc: WorkflowDocument,
  registry: NodeMigrator,
): { doc: WorkflowDocument; warnings: string[]; problems: Array<{ nodeId: string; reason: string; message: string }> } {
  const warnings: string[] = [];
  const problems: Array<{ nodeId: string; reason: string; message: string }> = [];
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, node] of Object.entries(doc.nodes)) {
    const r = registry.migrateNode(node);
    if (r.ok && r.migrated) {
      nodes[id] = { ...node, version: r.version, inputs: r.inputs as WorkflowNode['inputs'] };
      warnings.push(`node ${id} (${node.type}) migrated from version ${node.version} to ${r.version}`);
    } else {
      nodes[id] = node;
      if (!r.ok) problems.push({ nodeId: id, reason: r.reason, message: r.message });
    }
  }
  return { doc: { ...doc, nodes }, warnings, problems };
}

export interface ParseDocumentOptions {
  /** When given, node type versions are upgraded too (`upgradeNodes`); problems become warnings. */
  registry?: NodeMigrator;
  /** Document migrations to use (default: the built-in `documentMigrations`). */
  migrations?: ReadonlyMap<number, DocumentMigration>;
  /** Target version (default: CURRENT_DOCUMENT_VERSION). Only for tests of the mechanism. */
  targetVersion?: number;
}

/** Runs document-format migrations on a raw object until it reaches the target version. */
export function migrateDocument(
  raw: Record<string, unknown>,
  options: ParseDocumentOptions = {},
): { doc: Record<string, unknown>; warnings: string[] } {
  const migrations = options.migrations ?? documentMigrations;
  const target = options.targetVersion ?? CURRENT_DOCUMENT_VERSION;
  const warnings: string[] = [];
  let doc = raw;
  let version = doc.version;
  if (version === undefined) throw new DocumentError('document has no "version" field');
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw new DocumentError(`document "version" must be an integer, got ${JSON.stringify(version)}`);
  }
  if (version > target) {
    throw new DocumentError(
      `document format version ${version} is newer than this priorgraph supports (${target}); upgrade priorgraph`,
    );
  }
  while (version < target) {
    const m = migrations.get(version);
    if (!m) throw new DocumentError(`no migration from document format version ${version} to ${version + 1}`);
    try {
      doc = m(structuredClone(doc));
    } catch (e) {
      throw new DocumentError(
        `document migration ${version} → ${version + 1} failed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    warnings.push(`document migrated from format version ${version} to ${version + 1}`);
    version += 1;
    doc.version = version;
  }
  return { doc, warnings };
}

function formatIssues(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}

/**
 * Parses a workflow document (a JSON string or an already-parsed value): runs document-format
 * migrations, then checks it against the schema and fills defaults. Throws `DocumentError` with
 * every schema issue (path + message) when it is not a valid document. Node type versions are not
 * touched here: see `Registry.migrateNode` / `migrateNodes`.
 */
export function parseDocument(
  json: unknown,
  options: ParseDocumentOptions = {},
): { doc: WorkflowDocument; warnings: string[] } {
  let value = json;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw new DocumentError(`document is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DocumentError('a workflow document must be a JSON object');
  }
  const raw = value as Record<string, unknown>;
  if (raw.format !== 'priorgraph') {
    throw new DocumentError(
      `not a priorgraph document (format is ${JSON.stringify(raw.format)}); ComfyUI API prompts are imported with fromComfyPrompt`,
    );
  }
  const { doc: migrated, warnings } = migrateDocument(raw, options);
  const parsed = safeParseDocument(migrated);
  if (!parsed.ok) {
    const issues = parsed.issues;
    throw new DocumentError(
      `invalid workflow document: ${issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}${issues.length > 5 ? ` (+${issues.length - 5} more)` : ''}`,
      issues,
    );
  }
  if (options.registry) {
    const up = upgradeNodes(parsed.doc, options.registry);
    warnings.push(...up.warnings, ...up.problems.map((p) => `node ${p.nodeId}: ${p.message}`));
    return { doc: up.doc, warnings };
  }
  return { doc: parsed.doc, warnings };
}

/** Non-throwing variant of the schema check (no migrations). Defaults are filled; the result is a
 *  fresh object tree for the document and its nodes (input values are shared with the argument). */
export function safeParseDocument(
  json: unknown,
): { ok: true; doc: WorkflowDocument } | { ok: false; issues: Array<{ path: string; message: string }> } {
  return parseForRun(json);
}

/** The ids and nodes of a document, in document order. */
export interface DocumentOrder {
  ids: string[];
  nodes: WorkflowNode[];
}

/** safeParseDocument for the executor: on the fast path also the node ids and nodes in document
 *  order, so that the run's resolved graph need not enumerate the node dictionary a second time
 *  (enumerating a 10k-key dictionary costs ≈ 100 ns per key, ≈ 25 ns at 1k: V8 sorts its keys), and
 *  the document's `nodes` dictionary is built only when something reads it (see lazyDocument). */
export function parseForRun(
  json: unknown,
):
  | { ok: true; doc: WorkflowDocument; order?: DocumentOrder }
  | { ok: false; issues: Array<{ path: string; message: string }> } {
  const order: DocumentOrder = { ids: [], nodes: [] };
  const fast = fastNormalize(json, order);
  if (fast) return { ok: true, doc: lazyDocument(order, fast), order };
  const parsed = WorkflowDocumentSchema.safeParse(json);
  if (parsed.success) return { ok: true, doc: parsed.data };
  return { ok: false, issues: formatIssues(parsed.error) };
}

// ---------------------------------------------------------------------------------------------
// Fast path: the schema's happy case checked by hand (zod is ~20-40 µs per node on large graphs,
// which dominated the executor's overhead). Anything unusual returns null and zod decides,
// so zod stays the single definition of what is valid and of every error message.

const MODES = new Set(['normal', 'muted', 'bypass']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object':
      if (v === null) return true;
      if (depth > 64) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!isJson(v[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(v)) return false;
      for (const k in v) if (!isJson(v[k], depth + 1)) return false;
      return true;
    default:
      return false;
  }
}

function isVec2(v: unknown): boolean {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number';
}

function fastNodeUi(ui: unknown): boolean {
  if (!isPlainObject(ui)) return false;
  if (ui.pos !== undefined && !isVec2(ui.pos)) return false;
  if (ui.size !== undefined && !isVec2(ui.size)) return false;
  if (ui.color !== undefined && typeof ui.color !== 'string') return false;
  if (ui.bgcolor !== undefined && typeof ui.bgcolor !== 'string') return false;
  if (ui.collapsed !== undefined && typeof ui.collapsed !== 'boolean') return false;
  return true;
}

/** Checks the schema's happy case, collecting the nodes' copies into `order`; returns the document's
 *  other checked fields, null when zod must decide. */
function fastNormalize(json: unknown, order: DocumentOrder): Pick<WorkflowDocument, 'ui' | 'meta'> | null {
  if (!isPlainObject(json) || json.format !== 'priorgraph' || json.version !== CURRENT_DOCUMENT_VERSION) return null;
  if (!isPlainObject(json.nodes)) return null;
  for (const id in json.nodes) {
    if (id === '') return null;
    const n = json.nodes[id];
    if (!isPlainObject(n)) return null;
    if (typeof n.type !== 'string' || n.type === '') return null;
    let version = 1;
    if (n.version !== undefined) {
      if (typeof n.version !== 'number' || !Number.isSafeInteger(n.version) || n.version < 1) return null;
      version = n.version;
    }
    let mode: NodeMode = 'normal';
    if (n.mode !== undefined) {
      if (typeof n.mode !== 'string' || !MODES.has(n.mode)) return null;
      mode = n.mode as NodeMode;
    }
    if (n.title !== undefined && typeof n.title !== 'string') return null;
    let inputs: Record<string, JsonValue> = {};
    if (n.inputs !== undefined) {
      if (!isPlainObject(n.inputs)) return null;
      for (const k in n.inputs) if (!isJson(n.inputs[k], 0)) return null;
      inputs = { ...(n.inputs as Record<string, JsonValue>) };
    }
    const node: WorkflowNode = { type: n.type, version, mode, inputs };
    if (n.title !== undefined) node.title = n.title as string;
    if (n.ui !== undefined) {
      if (!fastNodeUi(n.ui)) return null;
      node.ui = n.ui as NodeUi;
    }
    order.ids.push(id);
    order.nodes.push(node);
  }
  const rest: Pick<WorkflowDocument, 'ui' | 'meta'> = {};
  if (json.ui !== undefined) {
    const ui = WorkflowUiSchema.safeParse(json.ui);
    if (!ui.success) return null;
    rest.ui = ui.data;
  }
  if (json.meta !== undefined) {
    if (!isPlainObject(json.meta)) return null;
    rest.meta = json.meta;
  }
  return rest;
}

/**
 * The parsed document. Its `nodes` dictionary is an enumerable property built from `order` on first
 * read (or replaced by the first write), then an ordinary data property. Not built up front: a run
 * reads the nodes through `order` (the resolved graph), and a 10k-key dictionary is a large object
 * that V8 allocates on fresh pages every run, growing it 2× at a time as keys arrive (see
 * bench/executor-gc.bench.ts). Readers (spread, JSON.stringify, structuredClone, `in`) see the same
 * dictionary, in the same key order, as an eager copy would give them.
 */
function lazyDocument(order: DocumentOrder, rest: Pick<WorkflowDocument, 'ui' | 'meta'>): WorkflowDocument {
  const doc = { format: 'priorgraph', version: CURRENT_DOCUMENT_VERSION } as WorkflowDocument;
  Object.defineProperty(doc, 'nodes', lazyNodes);
  if (rest.ui !== undefined) doc.ui = rest.ui;
  if (rest.meta !== undefined) doc.meta = rest.meta;
  Object.defineProperty(doc, ORDER, { value: order, writable: true });
  return doc;
}

/** Where a document whose dictionary is not built yet keeps its order: a non-enumerable property
 *  under a private symbol (spread, JSON, structuredClone and key listings other than Reflect.ownKeys
 *  do not see it). Not a WeakMap, whose entries the GC treats as ephemerons: with one, executor-gc's
 *  parse column read 0.50 µs/node at 1k in 3 of 3 runs, with this 0.25 in 5 of 7 (0.51 in 2; JIT). */
const ORDER = Symbol('priorgraph.documentOrder');

type Pending = { [ORDER]?: DocumentOrder };

/** The dictionaries built for documents frozen or sealed before their first read. */
const builtFrozen = new WeakMap<object, Record<string, WorkflowNode>>();

/** Makes `nodes` an ordinary data property of `doc`; false when `doc` is frozen or sealed. */
const settle = (doc: Pending, nodes: Record<string, WorkflowNode>): boolean => {
  const ok = Reflect.defineProperty(doc, 'nodes', {
    value: nodes,
    writable: true,
    enumerable: true,
    configurable: true,
  });
  if (ok) doc[ORDER] = undefined;
  return ok;
};

/** One accessor pair for every document (a pair per document would give each its own hidden class). */
const lazyNodes: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: Pending) {
    const frozen = builtFrozen.get(this);
    if (frozen) return frozen;
    const order = this[ORDER];
    const nodes: Record<string, WorkflowNode> = {};
    if (order) for (let i = 0; i < order.ids.length; i++) nodes[order.ids[i]] = order.nodes[i];
    if (!settle(this, nodes)) builtFrozen.set(this, nodes);
    return nodes;
  },
  set(this: Pending, nodes: Record<string, WorkflowNode>) {
    if (!settle(this, nodes)) throw new TypeError("Cannot assign to read only property 'nodes' of the document");
  },
};
