/**
 * `spawnWorker`: a worker thread that can run a `.ts` file (it adds `--import tsx` to the worker's
 * execArgv, since workspace packages have no build step).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

let tsxSpecifier: string | undefined;

/** The tsx loader as an absolute file URL when resolvable from here, else the bare name. */
function tsxLoader(): string {
  if (tsxSpecifier) return tsxSpecifier;
  try {
    const resolve = (import.meta as ImportMeta & { resolve?: (s: string) => string }).resolve;
    tsxSpecifier = typeof resolve === 'function' ? resolve('tsx') : 'tsx';
  } catch {
    tsxSpecifier = 'tsx';
  }
  return tsxSpecifier;
}

function isTsFile(url: string | URL): boolean {
  const s = typeof url === 'string' ? url : url.pathname;
  return /\.(c|m)?ts$/.test(s.split(/[?#]/)[0]);
}

/** Starts a worker thread on `url` (a file URL or path). For `.ts` files `--import tsx` is added. */
export function spawnWorker(url: string | URL, options: WorkerOptions = {}): Worker {
  if (!isTsFile(url)) return new Worker(url, options);
  const execArgv = [...(options.execArgv ?? [])];
  if (!execArgv.some((a, i) => a === '--import' && /tsx/.test(execArgv[i + 1] ?? ''))) {
    execArgv.push('--import', tsxLoader());
  }
  return new Worker(url, { ...options, execArgv });
}
