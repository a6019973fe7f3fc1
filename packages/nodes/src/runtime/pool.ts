/**
 * The onnxruntime worker pool of the main thread.
 *
 * - Every InferenceSession lives in its own worker thread (model-worker.ts); run() never blocks the
 *   main event loop, and two models run in parallel.
 * - A model is loaded ONCE per (resolved path, execution providers) and shared by every node and job
 *   that uses it: the loader's handle is the one the sampler runs. Two loads of the same file at the
 *   same time share one load. A session's intra-op thread count is the pool's policy, not part of a
 *   model's identity: the host's `intraOpNumThreads` for every session when it sets one; otherwise one
 *   thread for a model file under SMALL_MODEL_BYTES and all cores above (see threadsFor).
 * - Loaded models are evicted least-recently-used when the sum of their sizes (file size, external
 *   weights included, plus loads in flight) would exceed the memory budget. Never evicted: a model
 *   pinned by a call or a sampling run (`acquire` … `release`), and a model loaded or acquired by the
 *   job (owner) that is loading now — a graph's two loaders must not evict each other before its
 *   sampler runs. A load that cannot fit after eviction proceeds with a warning naming the models in
 *   use; it never waits.
 * - A provider that fails to load falls back to cpu with a warning through the logger.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '@priorgraph/core';
import { siblingModule, spawnWorker } from '@priorgraph/core';
import type { HostTensor, ModelInfo } from './protocol.ts';

export interface PoolOptions {
  executionProviders?: string[];
  memoryBudgetMB?: number;
  /** intra-op threads of every session; default: by the model's size (threadsFor) */
  defaultThreads?: number;
  /** onnxruntime intra-op spinning (default false; see options.ts) */
  allowSpinning?: boolean;
  /** onnxruntime's memory pattern (default false; see options.ts) */
  memoryPattern?: boolean;
  /** where a model counts as large (file size, weights included; default SMALL_MODEL_BYTES): its session
   *  gets all cores unless `defaultThreads` is set, and two large models' calls may run one after the
   *  other (callsOneAtATime) */
  smallModelBytes?: number;
  log?: Logger;
}

export interface LoadOptions {
  /** the job (e.g. the prompt id) that loads it: models of the loading job are not evicted for it */
  owner?: string;
}

const MB = 1024 * 1024;
/**
 * Below this size (weights included) a model's session gets one intra-op thread unless the host sets a
 * count. Such models' operators are too short for a parallel section to pay for waking a pool thread
 * (spinning is off, see options.ts), and prior swap runs two of them at once on the same cores. Measured
 * with bench/priorswap.bench.ts on 2 cores: the demo models (1–4 MB) run CFG in 22–41 % less time and prior
 * swap ≈ 2× faster on one-thread sessions than on two-thread ones; the 0.1 M-parameter fixture UNets
 * CFG about the same, prior swap 7–10 % faster; a full-size SD 1.5 UNet (3.4 GB) keeps all cores (README "Real scale").
 */
export const SMALL_MODEL_BYTES = 64 * MB;
/**
 * Whether the calls of one sampling step to these models (their intra-op threads and file sizes) run
 * one after the other instead of concurrently: when together they would ask for more threads than
 * there are cores AND every one is a large model (SMALL_MODEL_BYTES or more). Oversubscribed (spinning
 * is off, see options.ts), each parallel section of a long call waits for its threads to be scheduled
 * again; small models' calls are too short for that to outweigh losing the overlap. Measured on 2
 * cores: two full-size SD 1.5 UNets on 2 threads each, batch 1, bare sessions interleaved in one
 * process (bench/realscale.bench.ts `floor`): one after the other 1.032 × a batch-2 call vs 1.048 ×
 * together on a quiet machine, 1.043 vs 1.358 at load ≈ 7; the demo models and fixture UNets on 2
 * threads each (bench/priorswap.bench.ts, quiet): prior swap ÷ CFG 1.38 / 1.53 one after the other vs
 * 1.01–1.29 / 0.99 together (two quiet runs). The default policy gives a small model one thread, so small models run
 * together anyway.
 */
export function callsOneAtATime(
  models: Array<{ threads: number; large: boolean }>,
  cores: number = availableParallelism(),
): boolean {
  return models.reduce((s, m) => s + m.threads, 0) > cores && models.every((m) => m.large);
}

/** A byte count as whole MB, for messages (no 32-bit shifts: budgets are often ≥ 2 GB). */
export const mb = (bytes: number) => `${Math.round(bytes / MB)} MB`;

export class ModelHandle {
  lastUsed = Date.now();
  pins = 0;
  /** the job that last loaded or acquired it */
  owner: string | undefined;
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
    /** at or above the pool's small-model size (see PoolOptions.smallModelBytes) */
    readonly large: boolean,
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
  private closing = false;
  /** keep the process alive only while the worker has work */
  hold(): void {
    if (this.busy++ === 0) this.worker.ref();
  }
  release(): void {
    if (--this.busy <= 0) {
      this.busy = 0;
      // a worker being terminated stays referenced until it exits (terminate() refs it): a late
      // confirmation (e.g. 'detached' after a prior-swap run) must not let the process end while
      // dispose() still awaits that exit (exit code 13, "unsettled top-level await")
      if (!this.closing) this.worker.unref();
    }
  }

  /** Stop the worker; resolves when it has exited. */
  terminate(): Promise<number> {
    this.closing = true;
    return this.worker.terminate();
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

/** Models pinned for a run; `release()` unpins them (idempotent). */
export interface Lease {
  readonly handles: ModelHandle[];
  release(): void;
}

export class RuntimePool {
  readonly providers: string[];
  readonly budgetBytes: number;
  /** intra-op threads of every session when the host set a count, else undefined (see threadsFor) */
  readonly fixedThreads: number | undefined;
  readonly allowSpinning: boolean;
  readonly memoryPattern: boolean;
  readonly smallModelBytes: number;
  /** loads in flight: a second load of the same file waits for the first */
  private loading = new Map<string, Promise<ModelHandle>>();
  private loaded = new Map<string, ModelHandle>();
  /** bytes of loads in flight (counted against the budget before their worker exists) */
  private loadingBytes = 0;
  /** sessions created so far (a model loaded twice counts twice) */
  loads = 0;
  private log?: Logger;
  disposed = false;

  constructor(opts: PoolOptions = {}) {
    this.providers = opts.executionProviders?.length ? opts.executionProviders : ['cpu'];
    this.budgetBytes = (opts.memoryBudgetMB ?? 4096) * MB;
    const cores = availableParallelism();
    this.fixedThreads =
      opts.defaultThreads === undefined ? undefined : Math.max(1, Math.min(opts.defaultThreads, cores));
    this.allowSpinning = opts.allowSpinning ?? false;
    this.memoryPattern = opts.memoryPattern ?? false;
    this.smallModelBytes = opts.smallModelBytes ?? SMALL_MODEL_BYTES;
    this.log = opts.log;
  }

  /** Intra-op threads of a session for a model of `sizeBytes` (weights included). */
  threadsFor(sizeBytes: number): number {
    return this.fixedThreads ?? (sizeBytes < this.smallModelBytes ? 1 : availableParallelism());
  }

  /** The handle itself while its worker lives, else the model loaded again (after an eviction). */
  live(h: ModelHandle, opts: LoadOptions = {}): Promise<ModelHandle> {
    if (!h.dead && this.loaded.get(h.key) === h) {
      h.lastUsed = Date.now();
      if (opts.owner !== undefined) h.owner = opts.owner;
      return Promise.resolve(h);
    }
    return this.load(h.path, opts);
  }

  /**
   * Pin models for a run: the live ones first (so reloading an evicted one cannot evict another of the
   * same run), then each evicted one loaded again and pinned. Release when the run ends.
   */
  async acquire(handles: ModelHandle[], opts: LoadOptions = {}): Promise<Lease> {
    const out: Array<ModelHandle | null> = handles.map((h) => (!h.dead && this.loaded.get(h.key) === h ? h : null));
    const pinned: ModelHandle[] = [];
    const pin = (h: ModelHandle) => {
      h.pins++;
      h.lastUsed = Date.now();
      if (opts.owner !== undefined) h.owner = opts.owner;
      pinned.push(h);
    };
    for (const h of out) if (h) pin(h);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const h of pinned) h.pins--;
    };
    try {
      for (let i = 0; i < handles.length; i++) {
        if (out[i]) continue;
        const h = await this.load(handles[i].path, opts);
        pin(h);
        out[i] = h;
      }
    } catch (e) {
      release();
      throw e;
    }
    return { handles: out as ModelHandle[], release };
  }

  /** Load (or share) a model. Errors name the file. */
  load(path: string, opts: LoadOptions = {}): Promise<ModelHandle> {
    if (this.disposed) return Promise.reject(new Error('the model runtime has been shut down'));
    if (!existsSync(path)) return Promise.reject(new Error(`model file not found: ${path}`));
    const real = realpathSync(path);
    const key = `${real}|${this.providers.join(',')}`;
    const touch = (h: ModelHandle) => {
      h.lastUsed = Date.now();
      if (opts.owner !== undefined) h.owner = opts.owner;
      return h;
    };
    const h = this.loaded.get(key);
    if (h && !h.dead) return Promise.resolve(touch(h));
    let p = this.loading.get(key);
    if (!p) {
      p = this.spawn(key, real, opts.owner).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p.then(touch);
  }

  private async spawn(key: string, path: string, owner: string | undefined): Promise<ModelHandle> {
    const size = modelBytes(path);
    const threads = this.threadsFor(size);
    this.evict(size, path, owner);
    this.loadingBytes += size;
    this.loads++;
    let worker: Worker;
    let r: { ok: boolean; info?: ModelInfo; warnings?: string[]; error?: string };
    try {
      worker = spawnWorker(siblingModule(import.meta.url, 'model-worker'));
      r = await new Promise((resolve) => {
        worker.once('message', resolve);
        worker.once('error', (e) => resolve({ ok: false, error: e.message }));
        worker.once('exit', (code) =>
          resolve({ ok: false, error: `model worker exited (code ${code}) while loading` }),
        );
        worker.postMessage({
          op: 'load',
          path,
          threads,
          providers: this.providers,
          tuning: { spinning: this.allowSpinning, memoryPattern: this.memoryPattern },
        });
      });
    } finally {
      this.loadingBytes -= size;
    }
    if (!r.ok) {
      await worker.terminate();
      throw new Error(`cannot load model ${path}: ${r.error}`);
    }
    for (const w of r.warnings ?? []) this.log?.warn(w);
    worker.unref();
    const h = new ModelHandle(key, path, threads, r.info!, size, worker, size >= this.smallModelBytes);
    h.owner = owner;
    if (this.disposed) {
      await worker.terminate();
      throw new Error('the model runtime has been shut down');
    }
    this.loaded.set(key, h);
    worker.on('exit', () => {
      // a newer load of the same file may already be registered under the key: leave that one alone
      if (this.loaded.get(key) === h) this.loaded.delete(key);
    });
    return h;
  }

  /**
   * Evict least-recently-used models until `incoming` more bytes fit the budget. Pinned models and
   * models of the loading job are kept; if the load still does not fit it proceeds with a warning.
   */
  private evict(incoming: number, path: string, owner: string | undefined): void {
    const all = [...this.loaded.values()];
    let used = all.reduce((s, h) => s + h.sizeBytes, 0) + this.loadingBytes;
    if (used + incoming <= this.budgetBytes) return;
    const kept = (h: ModelHandle) => h.pins > 0 || (owner !== undefined && h.owner === owner);
    const lru = all.filter((h) => !kept(h)).sort((a, b) => a.lastUsed - b.lastUsed);
    while (used + incoming > this.budgetBytes && lru.length) {
      const h = lru.shift()!;
      used -= h.sizeBytes;
      this.loaded.delete(h.key);
      this.log?.info(
        `model runtime: evicting ${h.path} (${mb(h.sizeBytes)}) to load ${path} (${mb(incoming)}; memory budget ${mb(this.budgetBytes)})`,
      );
      void h.terminate();
    }
    if (used + incoming > this.budgetBytes) {
      const inUse = all.filter(kept).map((h) => `${h.path} (${mb(h.sizeBytes)}${h.pins > 0 ? ', running' : ''})`);
      this.log?.warn(
        `model runtime: loading ${path} (${mb(incoming)}) exceeds the memory budget of ${mb(this.budgetBytes)}: ` +
          `${mb(used)} ${inUse.length ? `are in use by this run or a running job: ${inUse.join(', ')}` : 'are loading'}. ` +
          'Loading anyway; raise modelMemoryBudgetMB in the host config to silence this.',
      );
    }
  }

  stats() {
    return {
      providers: this.providers,
      memoryBudgetMB: this.budgetBytes / MB,
      threads: this.fixedThreads ?? 'by model size',
      loads: this.loads,
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
    // A worker being terminated must hold the process open until it exits, or a caller awaiting
    // dispose() with nothing else pending sees its process exit mid-await (code 13, "unsettled
    // top-level await"). worker.terminate() refs it, but a late release (the 'detached' confirmation
    // of a prior-swap run) used to unref it again: ModelHandle.terminate() stops that.
    await Promise.all(hs.map((h) => h.terminate()));
  }
}
