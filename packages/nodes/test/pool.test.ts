/**
 * The worker pool on the shipped demo family (models/shapes-*), with memory budgets far below the
 * models' sizes: one session per model file shared by loader and sampler, models of a running job or
 * run never evicted, over-budget loads proceed with a warning instead of stalling, and concurrent or
 * racing loads of one file make one session.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ExecutionEvent, Executor, type HostInfo, type Logger, Registry } from '@priorgraph/core';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import plugin, { runtimeStats, stopRuntime } from '../src/index.ts';
import { poolOptionsFromHost } from '../src/runtime/index.ts';
import {
  callsOneAtATime,
  type ModelHandle,
  mb,
  modelBytes,
  RuntimePool,
  SMALL_MODEL_BYTES,
} from '../src/runtime/pool.ts';
import { doc, link, makeHost } from './helpers.ts';

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const present = existsSync(join(MODELS, 'shapes-t2i', 'model_index.json'));
const unet = (family: string) => join(MODELS, family, 'unet', 'model.onnx');
const T2I = unet('shapes-t2i');
const BASE = unet('shapes-base');
const EDIT = unet('shapes-edit');

function capture() {
  const warnings: string[] = [];
  const infos: string[] = [];
  const log: Logger = { debug() {}, info: (m) => infos.push(m), warn: (m) => warnings.push(m), error() {} };
  return { log, warnings, infos };
}

const dead = (h: ModelHandle) =>
  h.dead ? Promise.resolve() : new Promise<void>((r) => h.worker.once('exit', () => r()));

afterAll(() => stopRuntime());

describe.skipIf(!present)('model pool at budgets below the models (demo family)', () => {
  const pools: RuntimePool[] = [];
  const pool = (memoryBudgetMB: number, log?: Logger) => {
    const p = new RuntimePool({ defaultThreads: 1, memoryBudgetMB, log });
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.dispose()));
  });

  it('two loads of one file at the same time make one session', async () => {
    const p = pool(64);
    const [a, b, c] = await Promise.all([p.load(T2I), p.load(T2I), p.load(T2I)]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(p.loads).toBe(1);
  });

  it('a load right after an eviction of the same file keeps the new session when the old worker exits', async () => {
    const p = pool(1); // below one UNet: every load by another job evicts the rest
    const a1 = await p.load(T2I, { owner: 'job1' });
    await p.load(BASE, { owner: 'job2' }); // evicts a1 (another job's, idle)
    const a2 = await p.load(T2I, { owner: 'job3' });
    expect(a2).not.toBe(a1);
    await dead(a1); // the evicted worker's exit must not unregister the new session
    expect(await p.load(T2I, { owner: 'job3' })).toBe(a2);
    expect(p.loads).toBe(3);
  });

  it('a model pinned by a run is not evicted; the over-budget load proceeds with a warning naming it', async () => {
    const { log, warnings } = capture();
    const p = pool(1, log);
    const a = await p.load(T2I, { owner: 'job1' });
    const lease = await p.acquire([a], { owner: 'job1' });
    const b = await p.load(BASE, { owner: 'job2' });
    expect(a.dead).toBeNull();
    expect(p.stats().loaded.map((l) => l.path)).toEqual([a.path, b.path]);
    expect(warnings.join('\n')).toMatch(
      /loading .*shapes-base.* exceeds the memory budget of 1 MB.*shapes-t2i.*running/,
    );
    lease.release();
    lease.release(); // idempotent
    await p.load(EDIT, { owner: 'job3' }); // now both earlier ones may go
    expect(p.stats().loaded.map((l) => l.path)).toEqual([p.stats().loaded[0].path]);
    expect(p.stats().loaded[0].path).toMatch(/shapes-edit/);
  });

  it("a job's own models are not evicted by its next load; another job's are", async () => {
    const { log, infos } = capture();
    const p = pool(1, log);
    const a = await p.load(T2I, { owner: 'job1' });
    const b = await p.load(BASE, { owner: 'job1' });
    expect(a.dead).toBeNull();
    expect(p.stats().workers).toBe(2);
    await p.load(EDIT, { owner: 'job2' });
    await Promise.all([dead(a), dead(b)]);
    expect(p.stats().loaded.map((l) => l.path)).toEqual([p.stats().loaded[0].path]);
    expect(infos.join('\n')).toMatch(
      new RegExp(`evicting .*shapes-t2i.* \\(${mb(modelBytes(T2I))}\\) to load .*shapes-edit.*memory budget 1 MB`),
    );
  });

  it('acquire loads an evicted model again and pins it with the live ones', async () => {
    const p = pool(1);
    const a = await p.load(T2I, { owner: 'job1' });
    const b = await p.load(BASE, { owner: 'job2' }); // evicts a
    await dead(a);
    const lease = await p.acquire([a, b], { owner: 'job3' });
    expect(lease.handles[1]).toBe(b);
    expect(lease.handles[0]).not.toBe(a);
    expect(lease.handles.every((h) => h.dead === null && h.pins === 1)).toBe(true);
    lease.release();
    expect(lease.handles.every((h) => h.pins === 0)).toBe(true);
  });

  it('budgets of several GB are logged in MB (no 32-bit overflow to "0 MB")', () => {
    expect(mb(4096 * 1024 * 1024)).toBe('4096 MB');
    expect(mb(16 * 1024 ** 3)).toBe('16384 MB');
    expect(pool(4096).stats().memoryBudgetMB).toBe(4096);
  });
});

describe.skipIf(!present)('prior swap through the engine at budgets below its models', () => {
  const PS = (prior: string) =>
    doc({
      load: { type: 'DiffusersLoader', inputs: { model_path: 'shapes-t2i' } },
      enc: { type: 'CLIPTextEncode', inputs: { clip: link('load', 'CLIP'), text: 'a red circle' } },
      pos: { type: 'Denoiser', inputs: { model: link('load', 'MODEL'), conditioning: link('enc', 'CONDITIONING') } },
      base: { type: 'UNetLoader', inputs: { unet_path: prior } },
      bden: { type: 'Denoiser', inputs: { model: link('base', 'MODEL') } },
      ps: {
        type: 'PriorSwapCFGGuider',
        inputs: {
          model: link('pos', 'DENOISER'),
          prior: link('bden', 'DENOISER'),
          cfg: 3,
          guidance_rescale: 0,
          interval_sigma_lo: 0,
          interval_sigma_hi: 0,
        },
      },
      sched: { type: 'Scheduler', inputs: { scheduler: 'ddim', use_karras_sigmas: false, eta: 0, config_json: '{}' } },
      s: {
        type: 'Sampler',
        inputs: {
          guider: link('ps', 'GUIDER'),
          scheduler: link('sched', 'SCHEDULER'),
          seed: 5,
          steps: 3,
          denoise: 1,
          batch_size: 1,
          preview_every: 0,
        },
      },
      d: { type: 'VAEDecode', inputs: { samples: link('s', 'LATENT'), vae: link('load', 'VAE') } },
      out: { type: 'PreviewImage', inputs: { images: link('d', 'IMAGE') } },
    });
  const files = ['shapes-t2i/unet', 'shapes-t2i/text_encoder', 'shapes-t2i/vae_decoder', 'shapes-t2i/vae_encoder'];

  async function run(config: HostInfo['config']) {
    await stopRuntime();
    const { log, warnings } = capture();
    const host = makeHost({ modelRoots: [MODELS], config });
    const registry = new Registry();
    registry.register(plugin, '@priorgraph/nodes');
    const executor = new Executor(registry, { host, log });
    const events: ExecutionEvent[] = [];
    const result = await executor.run(PS('shapes-base'), { promptId: 'ps1', onEvent: (e) => events.push(e) });
    return { result, events, warnings, stats: runtimeStats() as ReturnType<RuntimePool['stats']> };
  }

  it('a 1 MB budget: the run completes, warns, and loads every file once', async () => {
    const { result, warnings, stats } = await run({ executionProviders: ['cpu'], modelMemoryBudgetMB: 1 });
    expect(result.error?.message).toBeUndefined();
    expect(result.status).toBe('success');
    expect(warnings.join('\n')).toMatch(/exceeds the memory budget of 1 MB/);
    const paths = stats.loaded.map((l) => l.path);
    for (const f of [...files, 'shapes-base/unet']) expect(paths.filter((p) => p.includes(`/${f}/`))).toHaveLength(1);
    expect(stats.loads).toBe(files.length + 1);
  });

  it('the default budget and two intra-op threads: loader and sampler share each session', async () => {
    const { result, stats } = await run({ executionProviders: ['cpu'], intraOpNumThreads: 2 });
    expect(result.status).toBe('success');
    expect(stats.loads).toBe(files.length + 1);
    expect(stats.workers).toBe(files.length + 1);
  });
});

// A prior-swap run ends by detaching the second model's channel; that worker confirms with 'detached',
// which releases its hold. When the confirmation arrives after dispose() has begun terminating the
// worker (the benchmark disposes right after sampling), the release used to unref the worker that
// terminate() had just ref'd, and a process whose last await was dispose() ended with exit code 13.
describe('disposing right after a channel is detached (committed fixture model)', () => {
  const FIXTURE = fileURLToPath(new URL('./fixtures/models/single/bench_unet.onnx', import.meta.url));

  it('a release that arrives while the worker is being terminated leaves it referenced', async () => {
    const pool = new RuntimePool({ defaultThreads: 1 });
    const h = await pool.load(FIXTURE);
    h.hold();
    const unref = vi.spyOn(h.worker, 'unref');
    const disposed = pool.dispose();
    h.release(); // the late confirmation
    expect(unref).not.toHaveBeenCalled();
    await disposed;
    expect(h.dead?.message).toMatch(/model worker exited/);
  });

  it('a process whose last await is dispose() right after a detach exits with 0', () => {
    const mod = (f: string) => JSON.stringify(fileURLToPath(new URL(f, import.meta.url)));
    const code = `import { RuntimePool } from ${mod('../src/runtime/pool.ts')};
      import { createChannel, detachChannel } from ${mod('../src/runtime/protocol.ts')};
      const pool = new RuntimePool({ defaultThreads: 1 });
      const h = await pool.load(${JSON.stringify(FIXTURE)});
      const ch = createChannel(1 << 16);
      void h.attach(ch);
      await new Promise((r) => setTimeout(r, 200));
      detachChannel(ch);
      // block this thread so the worker's 'detached' is queued but handled only after terminate()
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
      await pool.dispose();
      process.stdout.write('disposed');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 0,
      stdout: 'disposed',
      stderr: '',
    });
  }, 180_000); // a fresh Node process with tsx and a model worker: slow on the loaded 2-core machine
});

// The thread policy (runtime/pool.ts threadsFor): the host's count when it sets one, else one thread
// for a small model and all cores for a large one; the session is created with that count.
describe('intra-op threads by model size', () => {
  const FIXTURE = fileURLToPath(new URL('./fixtures/models/single/bench_unet.onnx', import.meta.url));

  it('a small model gets one thread, a large one all cores, and a host count wins', async () => {
    const policy = new RuntimePool();
    expect(policy.threadsFor(SMALL_MODEL_BYTES - 1)).toBe(1);
    expect(policy.threadsFor(SMALL_MODEL_BYTES)).toBe(availableParallelism());
    expect(new RuntimePool({ defaultThreads: 2 }).threadsFor(1)).toBe(Math.min(2, availableParallelism()));
    const h = await policy.load(FIXTURE);
    expect(h.threads).toBe(1);
    expect(policy.stats().loaded[0].threads).toBe(1);
    await policy.dispose();
  });

  it("a step's calls run one after the other only for large models whose threads exceed the cores", () => {
    const m = (threads: number, large = true) => ({ threads, large });
    expect(callsOneAtATime([m(1), m(1)], 2)).toBe(false);
    expect(callsOneAtATime([m(2), m(2)], 2)).toBe(true);
    expect(callsOneAtATime([m(2), m(1)], 2)).toBe(true);
    expect(callsOneAtATime([m(4), m(4)], 8)).toBe(false);
    expect(callsOneAtATime([m(1)], 1)).toBe(false);
    // small models run together even oversubscribed
    expect(callsOneAtATime([m(2, false), m(2)], 2)).toBe(false);
    expect(callsOneAtATime([m(2, false), m(2, false)], 2)).toBe(false);
  });

  it('a host without intraOpNumThreads leaves the choice to the policy', () => {
    expect(poolOptionsFromHost(makeHost()).defaultThreads).toBeUndefined();
    expect(poolOptionsFromHost(makeHost({ config: { intraOpNumThreads: 1 } })).defaultThreads).toBe(1);
  });
});
