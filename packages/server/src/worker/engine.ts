/**
 * The worker's engine: loads plugins (running their setup) into a registry, keeps one Executor for
 * the life of the process (so loaded models and cached outputs stay warm between jobs), and runs
 * jobs. Transport-free: the local child process (./child.ts) drives it over IPC; a queue transport
 * can drive the same class.
 */
import { type ExecutionEvent, Executor, type Logger, loadPlugins, Registry, type RunResult } from '@priorgraph/core';
import { asDocument, type PluginModuleRef, type WorkerInit, type WorkerStats } from './protocol.js';

export interface LoadReport {
  loaded: Array<{ name: string; version: string; source: string; nodeTypes: string[] }>;
  failed: Array<{ name: string; source: string; reason: string }>;
}

export class WorkerEngine {
  readonly registry = new Registry();
  private executor!: Executor;
  private readonly running = new Map<string, AbortController>();
  private readonly statsFns: Array<{ module: string; fn: () => unknown }> = [];

  constructor(
    private readonly init: WorkerInit,
    private readonly log: Logger,
  ) {}

  /** Imports and sets up every plugin; a broken plugin is reported, the rest load. */
  async load(): Promise<LoadReport> {
    const inline = [];
    const failed: LoadReport['failed'] = [];
    for (const ref of this.init.plugins) {
      try {
        const mod = (await import(ref.module)) as Record<string, unknown>;
        const plugin = (mod.default ?? mod.plugin) as never;
        inline.push({ plugin, source: ref.source ?? ref.module });
        if (typeof mod.runtimeStats === 'function') {
          this.statsFns.push({ module: ref.source ?? ref.module, fn: mod.runtimeStats as () => unknown });
        }
      } catch (e) {
        failed.push({ name: ref.source ?? ref.module, source: ref.module, reason: `import failed: ${msg(e)}` });
      }
    }
    const r = await loadPlugins(this.registry, {
      plugins: inline,
      packages: this.init.pluginPackages,
      pluginsDir: this.init.pluginsDir,
      host: this.init.host,
      log: this.log,
    });
    this.executor = new Executor(this.registry, {
      host: this.init.host,
      cacheBytes: this.init.cacheBytes,
      log: this.log,
    });
    return { loaded: r.loaded, failed: [...failed, ...r.failed] };
  }

  async run(
    jobId: string,
    document: Record<string, unknown>,
    outputs: string[] | undefined,
    onEvent: (e: ExecutionEvent) => void,
  ): Promise<{ result: RunResult; stats: WorkerStats }> {
    const controller = new AbortController();
    this.running.set(jobId, controller);
    try {
      const result = await this.executor.run(asDocument(document), {
        promptId: jobId,
        outputs,
        signal: controller.signal,
        onEvent,
      });
      return { result, stats: this.stats() };
    } finally {
      this.running.delete(jobId);
    }
  }

  interrupt(jobId: string): void {
    this.running.get(jobId)?.abort(new Error('interrupted'));
  }

  stats(): WorkerStats {
    let runtime: unknown = null;
    if (this.statsFns.length === 1) runtime = safe(this.statsFns[0].fn);
    else if (this.statsFns.length > 1) runtime = Object.fromEntries(this.statsFns.map((s) => [s.module, safe(s.fn)]));
    return { cache: this.executor.cacheInfo(), runtime };
  }

  async dispose(): Promise<void> {
    for (const c of this.running.values()) c.abort(new Error('worker shutting down'));
    await this.registry.dispose(this.log);
  }
}

export type { PluginModuleRef };

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function safe(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    return { error: msg(e) };
  }
}
