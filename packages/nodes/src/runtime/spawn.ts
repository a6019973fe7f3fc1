/**
 * Start a worker on a module file. For a `.ts` file the worker first registers tsx's loader through
 * its API and then imports the file: on Node 20, `execArgv: ['--import', 'tsx']` does not make a
 * worker's own `.ts` entry loadable ("Unknown file extension .ts"), which is why core's spawnWorker
 * is not used here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

let tsxApi: string | null = null;

/** The ESM build of tsx's register API (its `import` export of "tsx/esm/api"). */
function tsxEsmApi(): string {
  const req = createRequire(import.meta.url);
  const pkgFile = req.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports?: Record<string, unknown> };
  const exp = pkg.exports?.['./esm/api'] as { import?: string | { default?: string } } | undefined;
  const rel = typeof exp?.import === 'string' ? exp.import : (exp?.import?.default ?? './dist/esm/api/index.mjs');
  return pathToFileURL(join(dirname(pkgFile), rel)).href;
}

export function spawnModuleWorker(url: URL): Worker {
  if (!/\.(c|m)?ts$/.test(url.pathname)) return new Worker(url);
  tsxApi ??= tsxEsmApi();
  const code =
    `import(${JSON.stringify(tsxApi)})` +
    '.then((m) => { (m.register ?? m.default.register)(); ' +
    `return import(${JSON.stringify(url.href)}); })` +
    ".catch((e) => { require('node:worker_threads').parentPort?.postMessage({ op: 'bootError', error: String(e && e.stack || e) }); throw e; });";
  return new Worker(code, { eval: true });
}
