#!/usr/bin/env node
// The one entry behind `npm start`, `npm test`, `npm run bench`: installs what is missing on a fresh
// machine (pnpm pinned at 12.4.2 through npx, since corepack fails here), then runs the job.
// Plain JavaScript on purpose: it must run before any dependency is installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@12.4.2';
const stampFile = join(root, 'node_modules', '.priorgraph-install-stamp');

function log(msg) {
  process.stderr.write(`[priorgraph] ${msg}\n`);
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function installStamp() {
  const h = createHash('sha256');
  for (const f of ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json']) {
    if (existsSync(join(root, f))) h.update(readFileSync(join(root, f)));
  }
  for (const dir of ['packages', 'examples/plugins']) {
    const base = join(root, dir);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const pj = join(base, name, 'package.json');
      if (existsSync(pj)) h.update(readFileSync(pj));
    }
  }
  return h.digest('hex');
}

/** Install workspace dependencies when node_modules is missing or older than the lockfile. */
function ensureInstalled() {
  const want = installStamp();
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return;
  log(`installing dependencies with ${PNPM} (first run or changed lockfile)...`);
  const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
  const status = sh('npx', ['-y', PNPM, 'install', ...frozen], {
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip' },
  });
  if (status !== 0) {
    log('dependency installation failed (see above).');
    process.exit(status);
  }
  writeFileSync(stampFile, want);
}

/** Debian's Chromium for the editor's end-to-end tests. Installs it where we can (root with apt). */
function ensureChromium() {
  if (process.env.PRIORGRAPH_SKIP_BROWSER === '1') {
    log('PRIORGRAPH_SKIP_BROWSER=1: browser tests will be skipped.');
    return;
  }
  const exe = process.env.PRIORGRAPH_CHROMIUM ?? '/usr/bin/chromium';
  if (existsSync(exe)) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    log('installing Debian chromium for the editor tests (apt-get)...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    sh('apt-get', ['update', '-qq'], { env });
    sh('apt-get', ['install', '-y', '-qq', 'chromium'], { env });
  }
  if (!existsSync(exe)) {
    log(
      `Chromium not found at ${exe} and it could not be installed here. Install Debian's chromium ` +
        '(or set PRIORGRAPH_CHROMIUM), or opt out of the browser tests with PRIORGRAPH_SKIP_BROWSER=1.',
    );
    process.exit(1);
  }
}

/**
 * Debian's redis-server for the queue transport's tests (they start their own on a free port).
 * Installed where we can (root with apt); elsewhere those tests skip, saying so.
 */
function ensureRedis() {
  if (process.env.PRIORGRAPH_SKIP_REDIS === '1') {
    log('PRIORGRAPH_SKIP_REDIS=1: the queue (Redis) tests will be skipped.');
    return;
  }
  const exe = process.env.PRIORGRAPH_REDIS_SERVER ?? '/usr/bin/redis-server';
  if (existsSync(exe)) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    log('installing Debian redis-server for the queue tests (apt-get)...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    sh('apt-get', ['update', '-qq'], { env });
    sh('apt-get', ['install', '-y', '-qq', 'redis-server'], { env });
  }
  if (!existsSync(exe)) {
    log(
      `redis-server not found at ${exe} and it could not be installed here (not root, or no apt): ` +
        "the queue tests will be skipped. Install Debian's redis-server (or set PRIORGRAPH_REDIS_SERVER) to run them.",
    );
  }
}

function bin(name) {
  return join(root, 'node_modules', '.bin', name);
}

/** Build the editor's static files when its sources are newer than the build. */
function ensureUiBuilt() {
  const ui = join(root, 'packages', 'ui');
  if (!existsSync(join(ui, 'index.html'))) return;
  const out = join(ui, 'dist', 'index.html');
  const newest = (dir) => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'dist', 'test', 'test-artifacts'].includes(e.name)) continue;
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  if (existsSync(out) && statSync(out).mtimeMs >= newest(ui)) return;
  log('building the editor (vite)...');
  const status = sh(join(ui, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], { cwd: ui });
  if (status !== 0) process.exit(status);
}

/** The workspace, then the editor with its own DOM/litegraph settings. */
function typecheck() {
  return (
    sh(bin('tsc'), ['-p', 'tsconfig.json']) ||
    sh(bin('tsc'), ['-p', join('packages', 'ui', 'tsconfig.json'), '--noEmit'])
  );
}

const job = process.argv[2] ?? 'test';
const rest = process.argv.slice(3);
ensureInstalled();

switch (job) {
  case 'start': {
    // `npm start -- --help` only prints the usage of `serve`: no build first
    if (!rest.includes('--help') && !rest.includes('-h')) ensureUiBuilt();
    process.exit(sh(process.execPath, ['--import', 'tsx', 'packages/server/src/cli.ts', 'serve', ...rest]));
    break;
  }
  case 'test': {
    ensureChromium();
    ensureRedis();
    ensureUiBuilt();
    log('type-checking...');
    let status = typecheck();
    if (status !== 0) process.exit(status);
    log('linting...');
    status = sh(bin('biome'), ['check', '--diagnostic-level=error', '.']);
    if (status !== 0) process.exit(status);
    const report = join(tmpdir(), `priorgraph-vitest-${process.pid}.json`);
    status = sh(bin('vitest'), [
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...rest,
    ]);
    // One plain closing line that any CI reader understands.
    if (existsSync(report)) {
      const r = JSON.parse(readFileSync(report, 'utf8'));
      const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
      process.stdout.write(
        `\n${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
      );
      rmSync(report, { force: true });
    }
    process.exit(status);
    break;
  }
  case 'bench': {
    // run only when named: one makes gigabytes of models (`npm run bench realscale`), one compares this
    // checkout with another and needs its path (`node --import tsx bench/executor-ab.bench.ts <checkout>`)
    const onlyWhenNamed = ['realscale.bench.ts', 'executor-ab.bench.ts'];
    const benches = readdirSync(join(root, 'bench'))
      .filter((f) => f.endsWith('.bench.ts'))
      .filter((f) => (rest.length === 0 ? !onlyWhenNamed.includes(f) : rest.some((r) => f.includes(r))));
    for (const f of benches) {
      log(`bench/${f}`);
      const status = sh(process.execPath, ['--import', 'tsx', join('bench', f)]);
      if (status !== 0) process.exit(status);
    }
    break;
  }
  case 'pack': {
    // the publishable tarballs (scripts/pack.mjs): the editor's build goes in as @priorgraph/ui
    ensureUiBuilt();
    process.exit(sh(process.execPath, [join(root, 'scripts', 'pack.mjs'), ...rest]));
    break;
  }
  case 'lint':
    process.exit(sh(bin('biome'), ['check', ...(rest.length ? rest : ['.'])]));
    break;
  case 'typecheck':
    process.exit(typecheck());
    break;
  default:
    log(`unknown job ${job}; use start | test | bench | lint | typecheck`);
    process.exit(2);
}
