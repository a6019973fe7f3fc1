/**
 * The onnxruntime worker pool of the main thread.
 *
 * - Every InferenceSession lives in its own worker thread (model-worker.ts); run() never blocks the
 *   main event loop, and two models run in parallel.
 * - A model is loaded once per (resolved path, execution providers, intra-op threads) and shared by
 *   every node and job that uses it.
 * - Loaded models are evicted least-recently-used when the sum of their sizes (estimated by file size,
 *   external weights included) exceeds the memory budget; a model in use by a sampling run is pinned.
 * - A provider that fails to load falls back to cpu with a warning through the logger.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '@priorgraph/core';
import { spawnWorker } from '@priorgraph/core';
import type { HostTensor, ModelInfo } from './protocol.ts';

export interface PoolOptions {
  executionProviders?: string[];
  memoryBudgetMB?: number;
  /** intra-op threads of a session when a caller does not ask for a count; default: all cores */
  defaultThreads?: number;
  /** onnxruntime intra-op spinning (default false; see options.ts) */
  allowSpinning?: boolean;
  log?: Logger;
}

export interface LoadOptions {
  threads?: number;
}

export class ModelHandle {
  lastUsed = Date.now();
  pins = 0;
  private nextId = 1;
  private pending = new Map<number, { resolve: (o: HostTensor[]) => void; reject: (e: Error) => void }>();
  private detachWaiters: Array<() => void> = [];
  dead: Error | null = null;

  constructor(
    readonly key: string,
    readonly path: string,
    readonly threads: number,
    readonly info: ModelInfo,
    readonly sizeBytes: number,
    readonly worker: Worker,
  ) {
    worker.on('message', (m: { op: string; id?: number; ok?: boolean; outputs?: HostTensor[]; error?: string }) => {
      if (m.op === 'result' && m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (!p) return;
        this.release();
        if (m.ok) p.resolve(m.outputs!);
        else p.reject(new Error(`${this.path}: ${m.error}`));
      } else if (m.op === 'detached') {
        this.release();
        this.detachWaiters.shift()?.();
      }
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      for (const w of this.detachWaiters.splice(0)) w();
    };
    worker.on('error', (e) => fail(new Error(`${this.path}: model worker failed: ${e.message}`)));
    worker.on('exit', () => fail(new Error(`${this.path}: model worker exited`)));
  }

  private busy = 0;
  /** keep the process alive only while the worker has work */
  hold(): void {
    if (this.busy++ === 0) this.worker.ref();
  }
  release(): void {
    if (--this.busy <= 0) {
      this.busy = 0;
      this.worker.unref();
    }
  }

  /** One call from the main thread (text encoder, VAE): the message round trip is negligible here. */
  run(feeds: HostTensor[]): Promise<HostTensor[]> {
    if (this.dead) return Promise.reject(this.dead);
    this.lastUsed = Date.now();
    const id = this.nextId++;
    this.hold();
    this.pins++; // not evicted mid-call
    return new Promise<HostTensor[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ op: 'run', id, feeds });
    }).finally(() => {
      this.pins--;
    });
  }

  /** Hand the session to another worker's sampling loop over a shared channel; resolves when the channel is detached. */
  attach(sab: SharedArrayBuffer): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    this.lastUsed = Date.now();
    this.hold();
    return new Promise((resolve) => {
      this.detachWaiters.push(resolve);
      this.worker.postMessage({ op: 'attach', sab });
    });
  }

  input(name: string) {
    return this.info.inputs.find((i) => i.name === name);
  }
}

/** File size of a model including external-data files next to it (model.onnx_data, *.onnx.data, weights.pb). */
export function modelBytes(path: string): number {
  let n = statSync(path).size;
  for (const extra of [`${path}_data`, `${path}.data`, path.replace(/model\.onnx$/, 'weights.pb')]) {
    if (extra !== path && existsSync(extra)) n += statSync(extra).size;
  }
  return n;
}

export class RuntimePool {
  readonly providers: string[];
  readonly budgetBytes: number;
  readonly defaultThreads: number;
  readonly allowSpinning: boolean;
  private models = new Map<string, Promise<ModelHandle>>();
  private loaded = new Map<string, ModelHandle>();
  private log?: Logger;
  disposed = false;

  constructor(opts: PoolOptions = {}) {
    this.providers = opts.executionProviders?.length ? opts.executionProviders : ['cpu'];
    this.budgetBytes = (opts.memoryBudgetMB ?? 4096) * 1024 * 1024;
    this.defaultThreads = Math.max(1, opts.defaultThreads ?? availableParallelism());
    this.allowSpinning = opts.allowSpinning ?? false;
    this.log = opts.log;
  }

  /** The handle itself while its worker lives, else the model loaded again (after an eviction). */
  live(h: ModelHandle): Promise<ModelHandle> {
    return h.dead || !this.loaded.has(h.key) ? this.load(h.path, { threads: h.threads }) : Promise.resolve(h);
  }

  /** Load (or share) a model. Errors name the file. */
  load(path: string, opts: LoadOptions = {}): Promise<ModelHandle> {
    if (this.disposed) return Promise.reject(new Error('the model runtime has been shut down'));
    if (!existsSync(path)) return Promise.reject(new Error(`model file not found: ${path}`));
    const real = realpathSync(path);
    const threads = Math.max(1, Math.min(opts.threads ?? this.defaultThreads, availableParallelism()));
    const key = `${real}|${this.providers.join(',')}|${threads}`;
    let p = this.models.get(key);
    if (!p) {
      p = this.spawn(key, real, threads);
      this.models.set(key, p);
      p.catch(() => this.models.delete(key));
    }
    return p.then((h) => {
      h.lastUsed = Date.now();
      return h;
    });
  }

  private async spawn(key: string, path: string, threads: number): Promise<ModelHandle> {
    const size = modelBytes(path);
    this.evict(size);
    const worker = spawnWorker(new URL('./model-worker.ts', import.meta.url));
    const r = await new Promise<{ ok: boolean; info?: ModelInfo; warnings?: string[]; error?: string }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (e) => resolve({ ok: false, error: e.message }));
      worker.postMessage({ op: 'load', path, threads, providers: this.providers, spinning: this.allowSpinning });
    });
    if (!r.ok) {
      await worker.terminate();
      throw new Error(`cannot load model ${path}: ${r.error}`);
    }
    for (const w of r.warnings ?? []) this.log?.warn(w);
    worker.unref();
    const h = new ModelHandle(key, path, threads, r.info!, size, worker);
    this.loaded.set(key, h);
    worker.on('exit', () => {
      this.loaded.delete(key);
      this.models.delete(key);
    });
    return h;
  }

  /** Evict least-recently-used unpinned models until `incoming` more bytes fit the budget. */
  private evict(incoming: number): void {
    let used = [...this.loaded.values()].reduce((s, h) => s + h.sizeBytes, 0);
    const lru = [...this.loaded.values()].filter((h) => h.pins === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (used + incoming > this.budgetBytes && lru.length) {
      const h = lru.shift()!;
      used -= h.sizeBytes;
      this.loaded.delete(h.key);
      this.models.delete(h.key);
      this.log?.info(`model runtime: evicting ${h.path} (memory budget ${this.budgetBytes >> 20} MB)`);
      void h.worker.terminate();
    }
  }

  stats() {
    return {
      providers: this.providers,
      memoryBudgetMB: this.budgetBytes / 1024 / 1024,
      loaded: [...this.loaded.values()].map((h) => ({
        path: h.path,
        threads: h.threads,
        provider: h.info.provider,
        sizeBytes: h.sizeBytes,
        pinned: h.pins > 0,
      })),
      workers: this.loaded.size,
    };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const hs = [...this.loaded.values()];
    this.loaded.clear();
    this.models.clear();
    await Promise.all(hs.map((h) => h.worker.terminate()));
  }
}
