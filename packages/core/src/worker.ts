/**
 * Starting code in another thread or process, from source or from a build.
 *
 * In the workspace the packages run from their `.ts` sources through tsx; a published package runs
 * from the `.js` files `npm run pack` builds. `siblingModule` picks the right file next to the
 * caller, `spawnWorker` starts a worker thread on it and `forkArgs` gives the node flags a child
 * process needs for it; only a `.ts` entry needs tsx, so a built install never loads it.
 *
 * Measured on Node 20.20: `execArgv: ['--import', 'tsx']` on a Worker does NOT install tsx's hooks
 * before the worker's entry is loaded ("Unknown file extension .ts"). So for a `.ts` file the worker
 * starts from a tiny ESM bootstrap (a data: URL) that calls tsx's documented `register()` API and
 * then imports the target file; `workerData`, `parentPort` and `import.meta.url` of the target
 * behave as usual. A forked child process takes `--import tsx` as a node flag.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** File URL of a module of tsx (`tsx` itself or `tsx/esm/api`), resolved from here or the workspace. */
function tsxModule(specifier: string): string {
  const resolve = (import.meta as ImportMeta & { resolve?: (s: string) => string }).resolve;
  try {
    if (typeof resolve === 'function') return resolve(specifier);
  } catch {
    // fall through
  }
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve(specifier)).href;
  } catch {
    throw new Error(
      `${specifier} is needed to run priorgraph from its TypeScript sources and is not installed ` +
        '(a built package runs its .js files and does not need it)',
    );
  }
}

function toUrl(file: string | URL): URL {
  if (file instanceof URL) return file;
  return /^[a-z][a-z0-9+.-]*:/i.test(file) && !/^[a-z]:[\\/]/i.test(file) ? new URL(file) : pathToFileURL(file);
}

function isTsFile(url: URL): boolean {
  return /\.(c|m)?ts$/.test(url.pathname);
}

/**
 * The module `name` (no extension) in the caller's folder: `name.ts` when the caller itself runs
 * from source, `name.js` when it runs from a build. Pass `import.meta.url`.
 */
export function siblingModule(callerUrl: string, name: string): URL {
  const ext = isTsFile(new URL(callerUrl)) ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, callerUrl);
}

/** Node flags a child process needs to run `file` (tsx's loader for a `.ts` entry, none otherwise). */
export function forkArgs(file: string | URL): string[] {
  return isTsFile(toUrl(file)) ? ['--import', tsxModule('tsx')] : [];
}

/** Starts a worker thread on `file` (a file URL or path). `.ts` files run through tsx. */
export function spawnWorker(file: string | URL, options: WorkerOptions = {}): Worker {
  const url = toUrl(file);
  if (!isTsFile(url)) return new Worker(url, options);
  const bootstrap =
    `import { register } from ${JSON.stringify(tsxModule('tsx/esm/api'))};\n` +
    `register();\n` +
    `await import(${JSON.stringify(url.href)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}
