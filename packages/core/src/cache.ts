/**
 * The executor's output cache: keyed by a node's ancestry signature, bounded by an estimate of the
 * bytes its values hold, least-recently-used first out.
 */
import { sizeOf } from './api.js';

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
}

export class OutputCache {
  private readonly map = new Map<string, CacheEntry>();
  private total = 0;
  constructor(public maxBytes: number) {}

  get bytes(): number {
    return this.total;
  }
  get size(): number {
    return this.map.size;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** Returns the entry and marks it most recently used. */
  get(key: string): CacheEntry | undefined {
    const e = this.map.get(key);
    if (e) {
      this.map.delete(key);
      this.map.set(key, e);
    }
    return e;
  }

  /** Stores an entry (evicting least-recently-used ones); an entry larger than the bound is not kept. */
  set(key: string, outputs: Record<string, unknown>, ui: Record<string, unknown> | undefined): boolean {
    const bytes = estimateSize(outputs) + (ui ? estimateSize(ui) : 0);
    const old = this.map.get(key);
    if (old) {
      this.total -= old.bytes;
      this.map.delete(key);
    }
    if (bytes > this.maxBytes) return false;
    this.map.set(key, { outputs, ui, bytes });
    this.total += bytes;
    this.evict();
    return true;
  }

  evict(): void {
    while (this.total > this.maxBytes && this.map.size > 0) {
      const [k, e] = this.map.entries().next().value as [string, CacheEntry];
      this.map.delete(k);
      this.total -= e.bytes;
    }
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
