import type { HostInfo, Logger } from '@priorgraph/core';
import { sizeOf } from '@priorgraph/core';
import { confinePath } from '../models/paths.ts';
import { getRuntime } from '../runtime/index.ts';
import type { RuntimePool } from '../runtime/pool.ts';

export const runtime = (ctx: { host: HostInfo; log: Logger }): RuntimePool => getRuntime(ctx.host, ctx.log);

/** Prefix an error with the node input it concerns (the executor adds the node id and type). */
export async function forInput<T>(input: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(`input "${input}"`) ? msg : `input "${input}": ${msg}`);
  }
}

/** A `validate` hook confining a path input to the model roots. */
export function confineValidator<K extends string>(
  input: K,
  what = 'model',
  roots: (h: HostInfo) => readonly string[] = (h) => h.modelRoots,
) {
  return (inputs: Partial<Record<K, unknown>>, host: HostInfo): Array<{ input?: K; message: string }> => {
    const v = inputs[input];
    if (typeof v !== 'string') return [];
    try {
      confinePath(v, roots(host), input, what);
      return [];
    } catch (e) {
      return [{ input, message: (e as Error).message }];
    }
  };
}

/** Values holding live model handles report a small size to the executor's byte-bounded cache
 *  (the weights live in the worker pool, under its own memory budget). */
export function handleValue<T extends object>(v: T): T {
  Object.defineProperty(v, sizeOf, { value: () => 1024, enumerable: false });
  return v;
}

export function checkFinite(name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${name} contains non-finite values`);
  }
}
