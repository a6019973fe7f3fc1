/**
 * Entry of the local worker process (forked by ./supervisor.ts with an IPC channel): receives `init`,
 * loads plugins into a WorkerEngine, answers `ready`, then runs jobs, streaming their events. Any
 * uncaught exception or unhandled rejection (plugin code gone wrong) is reported as `fatal` and the
 * process exits: the supervisor fails the job and starts a fresh worker. It exits when the channel
 * closes, so it never outlives its server.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '@priorgraph/core';
import { WorkerEngine } from './engine.js';
import { type FromWorkerOut, parseToWorker } from './protocol.js';

if (!process.send) {
  process.stderr.write('worker/child.ts runs as a forked child process with an IPC channel\n');
  process.exit(2);
}

function send(m: FromWorkerOut): void {
  if (process.connected) process.send!(m);
}

function fatal(kind: 'uncaught exception' | 'unhandled rejection' | 'init failed', e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  send({ type: 'fatal', kind, message: err.message || err.name, stack: err.stack });
  // Let the message leave before exiting.
  setImmediate(() => process.exit(70));
}
process.on('uncaughtException', (e) => fatal('uncaught exception', e));
process.on('unhandledRejection', (e) => fatal('unhandled rejection', e));
process.on('disconnect', () => process.exit(0));
// The server handles its own signals; a terminal's Ctrl-C reaches the whole process group.
process.on('SIGINT', () => {});

const log: Logger = {
  debug() {},
  info: (message) => send({ type: 'log', level: 'info', message }),
  warn: (message, d) =>
    send({ type: 'log', level: 'warn', message: d instanceof Error ? `${message}: ${d.message}` : message }),
  error: (message, d) =>
    send({
      type: 'log',
      level: 'error',
      message: d instanceof Error ? `${message}: ${d.stack ?? d.message}` : message,
    }),
};

/** PRIORGRAPH_WORKER_NICE=n (the server's `workerNice`): every thread of this process runs n nice
 *  levels below the server (threads started later inherit it from the thread that starts them), so
 *  the server's HTTP/ws loop gets a core first while nodes compute. Set before any plugin loads. */
function lowerPriority(): void {
  const v = process.env.PRIORGRAPH_WORKER_NICE;
  if (v === undefined || v === '' || v === '0') return;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 39) {
    log.warn(
      `PRIORGRAPH_WORKER_NICE=${v} is not a whole number of nice levels (0–39); the worker keeps the server's priority`,
    );
    return;
  }
  const to = Math.min(19, getPriority(0) + n);
  let threads = [0]; // the calling thread, where /proc is missing
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {}
  for (const tid of threads) {
    try {
      setPriority(tid, to);
    } catch {} // a thread that ended meanwhile
  }
}
lowerPriority();

let engine: WorkerEngine | null = null;
let ready: Promise<void> | null = null;

process.on('message', (raw) => {
  let m: ReturnType<typeof parseToWorker>;
  try {
    m = parseToWorker(raw);
  } catch (e) {
    log.error((e as Error).message);
    return;
  }
  switch (m.type) {
    case 'init': {
      if (engine) return;
      const eng = new WorkerEngine(m.init, log);
      engine = eng;
      ready = eng.load().then(
        (plugins) => send({ type: 'ready', pid: process.pid, plugins }),
        (e) => fatal('init failed', e),
      );
      return;
    }
    case 'run': {
      const eng = engine;
      if (!eng || !ready) {
        log.error(`run ${m.jobId} before init`);
        return;
      }
      const { jobId, document, outputs } = m;
      void ready
        .then(() => eng.run(jobId, document, outputs, (event) => send({ type: 'event', jobId, event })))
        .then(({ result, stats }) => send({ type: 'result', jobId, result, stats }))
        .catch((e) => fatal('uncaught exception', e));
      return;
    }
    case 'interrupt':
      engine?.interrupt(m.jobId);
      return;
    case 'shutdown':
      void (engine?.dispose() ?? Promise.resolve()).catch(() => {}).finally(() => process.exit(0));
      return;
  }
});
