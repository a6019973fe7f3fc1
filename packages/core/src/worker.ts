/**
 * `spawnWorker`: a worker thread that can run a `.ts` file (workspace packages have no build step).
 *
 * Measured on Node 20.20: `execArgv: ['--import', 'tsx']` on a Worker does NOT install tsx's hooks
 * before the worker's entry is loaded ("Unknown file extension .ts"). So for a `.ts` file the worker
 * starts from a tiny ESM bootstrap (a data: URL) that calls tsx's documented `register()` API and
 * then imports the target file; `workerData`, `parentPort` and `import.meta.url` of the target
 * behave as usual. JavaScript files start directly.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

let tsxApiUrl: string | undefined;

/** File URL of tsx's ESM `register` API, resolved from this package (or the workspace root). */
function tsxApi(): string {
  if (tsxApiUrl) return tsxApiUrl;
  const resolve = (import.meta as ImportMeta & { resolve?: (s: string) => string }).resolve;
  try {
    if (typeof resolve === 'function') tsxApiUrl = resolve('tsx/esm/api');
  } catch {
    // fall through
  }
  if (!tsxApiUrl) tsxApiUrl = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
  return tsxApiUrl;
}

function toUrl(file: string | URL): URL {
  if (file instanceof URL) return file;
  return /^[a-z][a-z0-9+.-]*:/i.test(file) && !/^[a-z]:[\\/]/i.test(file) ? new URL(file) : pathToFileURL(file);
}

function isTsFile(url: URL): boolean {
  return /\.(c|m)?ts$/.test(url.pathname);
}

/** Starts a worker thread on `file` (a file URL or path). `.ts` files run through tsx. */
export function spawnWorker(file: string | URL, options: WorkerOptions = {}): Worker {
  const url = toUrl(file);
  if (!isTsFile(url)) return new Worker(url, options);
  const bootstrap =
    `import { register } from ${JSON.stringify(tsxApi())};\n` +
    `register();\n` +
    `await import(${JSON.stringify(url.href)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}
