/**
 * Caching: each planned node's ancestry signature (its type, version, mode, literals and its
 * sources' signatures), the output cache keyed by it (bounded by an estimate of the bytes its values
 * hold, least-recently-used first out), and which nodes of a plan the cache serves.
 */
import { hash } from 'node:crypto';
import { type InputSpec, sizeOf, type UiOutput } from './api.js';
import { inputNames } from './graph.js';
import { widgetValue } from './inputs.js';
import type { Plan, PlanNode } from './planning.js';
import type { RegisteredNodeType } from './registry.js';
import { isLink } from './schema.js';

const MAX_WALK = 100_000;

/** Estimates the bytes a value holds: typed arrays and buffers by byteLength, objects with the
 *  `sizeOf` symbol by their own report (a number or a function returning one), other objects walked
 *  (shared references counted once; the walk stops after 100,000 values). */
export function estimateSize(value: unknown): number {
  // Fast path: a flat plain object of primitives (the common shape of small node outputs).
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    let total = 64;
    let flat = true;
    for (const k in value) {
      const v = (value as Record<string, unknown>)[k];
      const t = typeof v;
      if (t === 'number') total += 24;
      else if (t === 'boolean') total += 20;
      else if (v === undefined || v === null) total += 16;
      else if (t === 'string') total += 32 + 2 * (v as string).length;
      else {
        flat = false;
        break;
      }
    }
    if (flat && !(sizeOf in value)) return total;
  }
  const seen = new Set<object>();
  let visited = 0;
  const walk = (v: unknown): number => {
    if (++visited > MAX_WALK) return 0;
    switch (typeof v) {
      case 'number':
        return 8;
      case 'boolean':
        return 4;
      case 'string':
        return 16 + 2 * v.length;
      case 'bigint':
        return 16;
      case 'undefined':
      case 'symbol':
      case 'function':
        return 0;
    }
    if (v === null) return 0;
    const o = v as object;
    if (seen.has(o)) return 0;
    seen.add(o);
    const own = (o as { [sizeOf]?: unknown })[sizeOf];
    if (typeof own === 'number' && Number.isFinite(own)) return Math.max(0, own);
    if (typeof own === 'function') {
      try {
        const n = (own as () => unknown).call(o);
        if (typeof n === 'number' && Number.isFinite(n)) return Math.max(0, n);
      } catch {
        // fall through to walking
      }
    }
    if (ArrayBuffer.isView(o)) return o.byteLength + 64;
    if (o instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && o instanceof SharedArrayBuffer)) {
      return o.byteLength + 64;
    }
    let total = 64;
    if (Array.isArray(o)) {
      for (const x of o) total += walk(x);
      return total;
    }
    if (o instanceof Map) {
      for (const [k, x] of o) total += walk(k) + walk(x);
      return total;
    }
    if (o instanceof Set) {
      for (const x of o) total += walk(x);
      return total;
    }
    if (o instanceof Promise || o instanceof WeakMap || o instanceof WeakSet) return total;
    for (const k of Object.keys(o)) total += 16 + walk((o as Record<string, unknown>)[k]);
    return total;
  };
  return walk(value);
}

export interface CacheEntry {
  outputs: Record<string, unknown>;
  ui: Record<string, unknown> | undefined;
  bytes: number;
  /** when it was last stored or served (a count of uses of the cache) */
  used: number;
}

/** How many Maps hold the entries (a power of two). */
const SHARDS = 16;

/**
 * The outputs by signature, least recently used first out. The entries are spread over 16 Maps by
 * their key's first character (a signature's first base64 digit), each in its own recency order:
 * the least recently used entry overall is the oldest head among them. Not one Map: past 4,096
 * entries a Map's table is allocated in V8's large-object space, on fresh pages each time it grows
 * or is rehashed, and a cold run at 10k nodes then paid ≈ 300 ns per entry stored (see
 * executor-gc.bench.ts); 16 of them stay below that size up to 65,536 entries.
 */
export class OutputCache {
  private readonly shards: Array<Map<string, CacheEntry>> = Array.from({ length: SHARDS }, () => new Map());
  private total = 0;
  private uses = 0;
  constructor(public maxBytes: number) {}

  get bytes(): number {
    return this.total;
  }
  get size(): number {
    let n = 0;
    for (const m of this.shards) n += m.size;
    return n;
  }

  private shard(key: string): Map<string, CacheEntry> {
    return this.shards[key.length === 0 ? 0 : key.charCodeAt(0) & (SHARDS - 1)];
  }

  has(key: string): boolean {
    return this.shard(key).has(key);
  }

  /** Returns the entry and marks it most recently used. */
  get(key: string): CacheEntry | undefined {
    const m = this.shard(key);
    const e = m.get(key);
    if (e) {
      m.delete(key);
      m.set(key, e);
      e.used = ++this.uses;
    }
    return e;
  }

  /** Stores an entry (evicting least-recently-used ones); an entry larger than the bound is not kept. */
  set(key: string, outputs: Record<string, unknown>, ui: Record<string, unknown> | undefined): boolean {
    const bytes = estimateSize(outputs) + (ui ? estimateSize(ui) : 0);
    const m = this.shard(key);
    const old = m.get(key);
    if (old) {
      this.total -= old.bytes;
      m.delete(key);
    }
    if (bytes > this.maxBytes) return false;
    m.set(key, { outputs, ui, bytes, used: ++this.uses });
    this.total += bytes;
    this.evict();
    return true;
  }

  /** Drops least recently used entries until the bytes held are within the bound. */
  evict(): void {
    while (this.total > this.maxBytes) {
      let oldest: Map<string, CacheEntry> | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const m of this.shards) {
        if (m.size === 0) continue;
        const head = (m.values().next().value as CacheEntry).used;
        if (head < at) {
          at = head;
          oldest = m;
        }
      }
      if (!oldest) return;
      const [k, e] = oldest.entries().next().value as [string, CacheEntry];
      oldest.delete(k);
      this.total -= e.bytes;
    }
  }

  clear(): void {
    for (const m of this.shards) m.clear();
    this.total = 0;
  }
}

/** Canonical JSON: object keys sorted, so equal values hash equally (bigints as `<digits>n`). */
export function stableStringify(v: unknown): string {
  if (v === undefined) return 'u';
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'u';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + stableStringify(v[i]);
    return s + ']';
  }
  const keys = Object.keys(v as object).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    s += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + stableStringify((v as Record<string, unknown>)[keys[i]]);
  }
  return s + '}';
}

/** What signing needs of a registered type, built once per type (signatures are built per node per
 *  run, and each string built here would otherwise be built again for every node): the signature's
 *  opening per mode, and the input names, sorted, each with its `\0name=` part, that part followed by
 *  `@` (a link) and its slot (position among the inputs, see inputSlot). */
interface Signing {
  version: number;
  normal: string;
  bypass: string;
  inputs: Array<{ name: string; part: string; linkPart: string; slot: number }>;
}
const signings = new WeakMap<RegisteredNodeType, Signing>();

function signingOf(t: RegisteredNodeType): Signing {
  const known = signings.get(t);
  if (known && known.version === t.def.version) return known;
  const slots = inputNames(t.def.inputs);
  const head = `${t.qualifiedName}\u0000${t.def.version}\u0000`;
  const s: Signing = {
    version: t.def.version,
    normal: `${head}normal`,
    bypass: `${head}bypass`,
    inputs: [...slots]
      .sort()
      .map((name) => ({ name, part: `\u0000${name}=`, linkPart: `\u0000${name}=@`, slot: slots.indexOf(name) })),
  };
  signings.set(t, s);
  return s;
}

/** A literal as the node will receive it (a seed 5 and "5" are one seed), or as written when the
 *  input-spec table refuses it (the run then fails on it). */
function canonicalLiteral(spec: InputSpec, v: unknown): unknown {
  try {
    return widgetValue(spec, v);
  } catch {
    return v;
  }
}

/** The ancestry signature: hash of (qualified type, version, mode, input literals, upstream signatures).
 *  A not-idempotent node's signature is unique to the run (`runId`). Sources must be signed first. */
export function signature(p: PlanNode, plan: Plan, runId: string): string {
  const sg = signingOf(p.t);
  let s = p.mode === 'normal' ? sg.normal : sg.bypass;
  if (p.t.def.notIdempotent && p.mode === 'normal') s += `\u0000run:${runId}`;
  const specs = p.t.def.inputs as Record<string, InputSpec>;
  const { inputs } = p;
  for (let i = 0; i < sg.inputs.length; i++) {
    const { name, part, linkPart, slot } = sg.inputs[i];
    const v = inputs[name];
    if (isLink(v)) {
      const k = plan.sourceOf(p.index, slot);
      if (k === -1) s += `${part}muted`;
      else s = s + linkPart + plan.planned[k].sig + ':' + v.output;
    } else {
      const spec = specs[name];
      s =
        s +
        part +
        stableStringify(canonicalLiteral(spec, v === undefined && spec.kind !== 'socket' ? spec.default : v));
    }
  }
  return hash('sha1', s, 'base64');
}

/** Signs every node of a plan, sources first. */
export function signPlan(plan: Plan, runId: string): void {
  for (const p of plan.planned) p.sig = signature(p, plan, runId);
}

export interface CacheLookup {
  /** outputs by plan index: those the cache served (filled as nodes run) */
  values: Array<Record<string, unknown> | undefined>;
  /** the nodes the cache served, in plan order */
  cached: string[];
  /** the plan indices of the nodes that must run, in the order the walk met them (a cached node's
   *  sources are not needed) */
  toRun: number[];
  uiOutputs: Record<string, UiOutput>;
}

/** Which nodes the cache serves and which must run, walking back from the targets (by plan index). */
export function lookupPlan(plan: Plan, targets: readonly string[], cache: OutputCache): CacheLookup {
  const { planned, sourcesFrom, sources } = plan;
  const values: Array<Record<string, unknown> | undefined> = new Array(planned.length).fill(undefined);
  const uiOutputs: Record<string, UiOutput> = {};
  const served: number[] = [];
  const toRun: number[] = [];
  const seen = new Uint8Array(planned.length); // a node either runs or the cache serves it
  const stack: number[] = [];
  for (const id of targets) stack.push(plan.indexOf(id));
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (seen[i] !== 0) continue;
    seen[i] = 1;
    const p = planned[i];
    const hit = p.mode === 'normal' && !p.t.def.notIdempotent ? cache.get(p.sig) : undefined;
    if (hit) {
      values[i] = hit.outputs;
      served.push(i);
      if (hit.ui) uiOutputs[p.id] = hit.ui;
      continue;
    }
    toRun.push(i);
    for (let k = sourcesFrom[i]; k < sourcesFrom[i + 1]; k++) stack.push(sources[k]);
  }
  if (served.length > 1) served.sort((a, b) => a - b);
  return { values, cached: served.map((i) => planned[i].id), toRun, uiOutputs };
}
