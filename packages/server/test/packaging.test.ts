/**
 * The published form (issue 14, "Publishable"): `npm run pack` builds core, nodes, server and the
 * editor to JavaScript and packs them; the tarballs are installed with npm into an empty folder — no
 * tsx, no workspace — where a plain-JavaScript plugin that depends on @priorgraph/core is written,
 * and the installed `priorgraph` binary runs the shipped demo workflow (model workers start from the
 * built .js), runs the plugin's and the example plugin's nodes, and serves them (the job runs in the
 * forked worker process, built .js again) with the editor from @priorgraph/ui.
 *
 * `npm install` reaches the npm registry, as `npm test`'s own install does. It runs with
 * --ignore-scripts: better-sqlite3's install script would fetch a prebuilt addon from GitHub (no
 * internet but the registry here) or compile one (~2 min), so the addon the workspace install already
 * compiled — same version, same node — is copied in its place, as the prebuild would have been.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const work = mkdtempSync(join(tmpdir(), 'pg-pack-'));
const app = join(work, 'app');

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mustSh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = sh(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const priorgraph = (args: string[]) => sh(process.execPath, [join(app, 'node_modules/.bin/priorgraph'), ...args], app);

// A third-party plugin written in plain JavaScript against the published core.
const PLUGIN = `import { definePlugin, defineNode } from '@priorgraph/core';

const Shout = defineNode({
  type: 'Shout',
  version: 1,
  category: 'examples/packed',
  inputs: { text: { kind: 'socket', type: 'STRING' } },
  outputs: [{ name: 'TEXT', type: 'STRING' }],
  execute: ({ text }) => ({ TEXT: text.toUpperCase() }),
});

export default definePlugin({ name: 'packed', version: '1.0.0', nodes: [Shout] });
`;

const TEXT_PROMPT = {
  greet: { class_type: 'hello.Greet', inputs: { name: 'tarball', greeting: 'Hi', times: 2 } },
  shout: { class_type: 'packed.Shout', inputs: { text: ['greet', 0] } },
  show: { class_type: 'hello.ShowText', inputs: { text: ['shout', 0] } },
};

beforeAll(() => {
  const packed = mustSh(process.execPath, [join(repo, 'scripts/run.mjs'), 'pack', '--out', join(work, 'tgz')], repo);
  const tarballs = packed
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((f) => f.endsWith('.tgz'));
  expect(tarballs.map((t) => t.replace(/.*\//, ''))).toEqual([
    'priorgraph-core-0.1.0.tgz',
    'priorgraph-nodes-0.1.0.tgz',
    'priorgraph-server-0.1.0.tgz',
    'priorgraph-ui-0.1.0.tgz',
  ]);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  mustSh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', ...tarballs], app, {
    ONNXRUNTIME_NODE_INSTALL: 'skip',
  });
  // The compiled addon, where better-sqlite3's install script would have put the prebuilt one.
  const fromServer = createRequire(join(repo, 'packages/server/package.json'));
  const addon = join(dirname(fromServer.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');
  const target = join(app, 'node_modules/better-sqlite3/build/Release');
  mkdirSync(target, { recursive: true });
  copyFileSync(addon, join(target, 'better_sqlite3.node'));
  // Plugins: the repository's example (plain JS, no dependency) and one importing @priorgraph/core.
  mkdirSync(join(app, 'plugins/packed'), { recursive: true });
  writeFileSync(join(app, 'plugins/packed/index.js'), PLUGIN);
  mkdirSync(join(app, 'plugins/hello/dist'), { recursive: true });
  for (const f of ['package.json', 'dist/index.js'])
    copyFileSync(join(repo, 'examples/plugins/hello-plugin', f), join(app, 'plugins/hello', f));
  writeFileSync(join(app, 'text.json'), JSON.stringify(TEXT_PROMPT));
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed tarballs installed with npm into an empty folder', () => {
  it('hold built JavaScript only: no TypeScript sources, no tsx', () => {
    const pg = join(app, 'node_modules/@priorgraph');
    expect(readdirSync(pg).sort()).toEqual(['core', 'nodes', 'server', 'ui']);
    for (const p of ['core', 'nodes', 'server']) {
      expect(existsSync(join(pg, p, 'src')), `${p} ships src/`).toBe(false);
      expect(existsSync(join(pg, p, 'dist/index.js'))).toBe(true);
      expect(existsSync(join(pg, p, 'dist/index.d.ts'))).toBe(true);
    }
    expect(existsSync(join(pg, 'ui/dist/index.html'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/tsx'))).toBe(false);
  });

  it('`priorgraph --help` and `priorgraph run` on the shipped demo workflow run on plain node', {
    timeout: 300_000,
  }, () => {
    const help = priorgraph(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/priorgraph run/);
    const out = join(work, 'out');
    const r = priorgraph([
      'run',
      join(repo, 'examples/workflows/t2i-cfg-vs-priorswap.json'),
      '--models',
      join(repo, 'models'),
      '--out',
      out,
    ]);
    expect(r.stderr).not.toMatch(/tsx/);
    expect(r.code, r.stderr).toBe(0);
    const files = r.stdout.trim().split('\n');
    expect(files).toHaveLength(1);
    expect(files[0].startsWith(out)).toBe(true);
    expect(existsSync(files[0])).toBe(true);
  });

  it('`priorgraph run --plugins-dir` runs the example plugin and a plugin built on @priorgraph/core', () => {
    const r = priorgraph(['run', 'text.json', '--plugins-dir', 'plugins', '--out', join(work, 'out-text')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('HI, TARBALL! HI, TARBALL!');
  });

  it('a TypeScript project type-checks against the published declarations (no skipLibCheck)', () => {
    writeFileSync(
      join(app, 'check.ts'),
      `import { definePlugin, defineNode, Registry } from '@priorgraph/core';
import nodes from '@priorgraph/nodes';
import { createServer, type ServerOptions } from '@priorgraph/server';
const Twice = defineNode({
  type: 'Twice', version: 1, category: 'c',
  inputs: { a: { kind: 'int', default: 1 } }, outputs: [{ name: 'O', type: 'INT' }],
  execute: ({ a }) => ({ O: a * 2 }),
});
const registry = new Registry();
registry.register(nodes, '@priorgraph/nodes');
registry.register(definePlugin({ name: 'x', version: '1', nodes: [Twice] }), 'x');
const options: Partial<ServerOptions> = { port: 0 };
export { options, createServer };
`,
    );
    const tsc = join(repo, 'node_modules/.bin/tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
    ];
    const types = ['--skipLibCheck', 'false', '--types', 'node', '--typeRoots', join(repo, 'node_modules/@types')];
    const r = sh(tsc, [...flags, ...types, 'check.ts'], app);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  }, 300_000); // tsc over every declaration: ~5 s on a quiet machine, over a minute under load

  it('`priorgraph serve` serves the editor and runs the plugins in its worker process', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [join(app, 'node_modules/.bin/priorgraph'), 'serve', '--port', '0', '--plugins-dir', 'plugins'],
      { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stderr!.on('data', (d) => {
      log += String(d);
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += String(d);
          const m = out.match(/(http:\/\/127\.0\.0\.1:\d+)/);
          if (m) resolve(m[1]);
        });
        child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${log}${out}`)));
      });
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script[^>]+src=/);
      const info = (await (await fetch(`${url}/object_info`)).json()) as Record<string, unknown>;
      expect(Object.keys(info)).toEqual(expect.arrayContaining(['hello.Greet', 'packed.Shout', 'priorgraph.Sampler']));
      const posted = await fetch(`${url}/prompt`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: TEXT_PROMPT }),
      });
      expect(posted.status, await posted.clone().text()).toBe(200);
      const { prompt_id } = (await posted.json()) as { prompt_id: string };
      let entry: { status?: { status_str?: string }; outputs?: Record<string, { text?: string[] }> } | undefined;
      for (let i = 0; i < 600 && !entry?.status?.status_str; i++) {
        const h = (await (await fetch(`${url}/history/${prompt_id}`)).json()) as Record<string, typeof entry>;
        entry = h[prompt_id];
        if (!entry?.status?.status_str) await new Promise((r) => setTimeout(r, 50));
      }
      expect(entry?.status?.status_str, log).toBe('success');
      expect(entry?.outputs?.show?.text).toEqual(['HI, TARBALL! HI, TARBALL!']);
      // Its defaults live in the folder it runs in, not inside node_modules.
      expect(existsSync(join(app, '.priorgraph'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
