#!/usr/bin/env node
// `npm run pack [-- --out DIR]`: builds the publishable packages and packs each with `npm pack`.
//
// In the workspace the packages run from their TypeScript sources (exports point at src/*.ts, the
// programs run through tsx). A published package must run on plain node, so this compiles core,
// nodes and server to JavaScript with declarations (one tsc program, tsconfig.pack.json), stages
// each package with a package.json that points at the build (workspace:* pinned to the version,
// devDependencies and tsx dropped), adds the editor's vite build as @priorgraph/ui, and runs
// `npm pack` in each staging folder. The tarballs install with `npm install <tgz>...` anywhere.
// Plain JavaScript, like run.mjs, so it needs nothing but node, npm and the workspace's tsc.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string' } } });
const out = resolve(values.out ?? join(root, '.pack'));

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}) in ${cwd}`);
  return r.stdout;
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Relative `.ts` specifiers left in declaration files (tsc rewrites them only in .js) become `.js`. */
function fixDeclarations(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) fixDeclarations(p);
    else if (e.name.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8');
      const fixed = text.replace(/(['"])(\.{1,2}\/[^'"]*?)\.ts\1/g, '$1$2.js$1');
      if (fixed !== text) writeFileSync(p, fixed);
    }
  }
}

const PACKAGES = ['core', 'nodes', 'server', 'ui'];
const versions = Object.fromEntries(
  PACKAGES.map((p) => {
    const pj = readJson(join(root, 'packages', p, 'package.json'));
    return [pj.name, pj.version];
  }),
);

/** The published package.json: entry points in dist/, workspace versions pinned, dev-only parts dropped. */
function publishedManifest(pj, name) {
  const pinned = (deps) =>
    deps &&
    Object.fromEntries(
      Object.entries(deps)
        .filter(([d]) => d !== 'tsx')
        .map(([d, v]) => [d, String(v).startsWith('workspace:') ? versions[d] : v]),
    );
  const m = {
    name: pj.name,
    version: pj.version,
    description: pj.description,
    type: 'module',
    engines: { node: '>=20.19' },
    files: ['dist', 'README.md', ...(pj.bin ? ['bin'] : [])],
  };
  if (name !== 'ui') {
    m.main = './dist/index.js';
    m.types = './dist/index.d.ts';
    m.exports = { '.': { types: './dist/index.d.ts', default: './dist/index.js' }, './package.json': './package.json' };
  } else {
    m.exports = { './package.json': './package.json' };
  }
  if (pj.bin) m.bin = pj.bin;
  if (pj.priorgraph) m.priorgraph = { ...pj.priorgraph, plugin: './dist/index.js' };
  // The declarations name express, ws, better-sqlite3...: their @types go with them.
  const types = Object.fromEntries(Object.entries(pj.devDependencies ?? {}).filter(([d]) => d.startsWith('@types/')));
  const deps = pinned(name === 'ui' ? undefined : { ...pj.dependencies, ...types });
  if (deps && Object.keys(deps).length) m.dependencies = deps;
  return m;
}

function stage(name) {
  const src = join(root, 'packages', name);
  const dir = join(out, 'stage', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const built = name === 'ui' ? join(src, 'dist') : join(out, 'build', name, 'src');
  if (!existsSync(built)) throw new Error(`${built} is missing (the editor is built by \`npm start\` or \`npm test\`)`);
  cpSync(built, join(dir, 'dist'), { recursive: true });
  for (const extra of ['README.md', 'bin']) {
    if (existsSync(join(src, extra))) cpSync(join(src, extra), join(dir, extra), { recursive: true });
  }
  const pj = readJson(join(src, 'package.json'));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(publishedManifest(pj, name), null, 2)}\n`);
  const file = run('npm', ['pack', '--silent', '--pack-destination', out], dir).trim().split('\n').pop();
  return join(out, file);
}

const started = Date.now();
rmSync(join(out, 'build'), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.pack.json', '--outDir', join(out, 'build')], root);
fixDeclarations(join(out, 'build'));
const tarballs = PACKAGES.map(stage);
for (const t of tarballs) process.stdout.write(`${t} (${(statSync(t).size / 1024).toFixed(0)} KiB)\n`);
process.stderr.write(`packed ${tarballs.length} packages in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
