import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor, loadPlugins, Registry, type WorkflowDocument } from '../src/index.js';
import { host, testPlugin } from './fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const helloDir = path.resolve(here, '../../../examples/plugins/hello-plugin');

const plugin = (name: string, body = '', nodes = '[]') =>
  `export default { name: ${JSON.stringify(name)}, version: '0.1.0', nodes: ${nodes}, ${body} };\n`;
const node = (type: string) =>
  `{ type: '${type}', version: 1, category: 'x', inputs: {}, outputs: [{ name: 'V', type: 'INT' }], execute: () => ({ V: 1 }) }`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pg-plugins-'));
  const folder = (name: string, files: Record<string, string>) => {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, name, f), text);
  };
  folder('a-good', { 'index.js': plugin('good', '', `[${node('One')}, ${node('Two')}]`) });
  folder('b-syntax', { 'index.js': 'export default {{{ nope' });
  folder('c-throws-on-import', { 'index.js': "throw new Error('cannot import me');\n" });
  folder('d-no-export', { 'index.js': 'export const x = 1;\n' });
  folder('e-setup-throws', {
    'index.js': plugin('setupfail', "setup() { throw new Error('no GPU here'); }", `[${node('Three')}]`),
  });
  folder('f-collision', { 'index.js': plugin('good', '', `[${node('One')}]`) });
  folder('g-dup-types', { 'index.js': plugin('dups', '', `[${node('Same')}, ${node('Same')}]`) });
  folder('h-package', {
    'package.json': JSON.stringify({ name: 'pg-pkg', priorgraph: { plugin: './lib/entry.mjs' } }),
  });
  mkdirSync(path.join(dir, 'h-package', 'lib'));
  writeFileSync(path.join(dir, 'h-package', 'lib', 'entry.mjs'), plugin('pkg', '', `[${node('Four')}]`));
  folder('i-package-no-field', { 'package.json': JSON.stringify({ name: 'pg-nofield' }) });
  folder('j-package-missing-entry', {
    'package.json': JSON.stringify({ name: 'pg-missing', priorgraph: { plugin: './dist/index.js' } }),
  });
  folder('k-empty', {});
  folder('l-typescript', {
    'index.ts': `const n: number = 5;\nexport const plugin = { name: 'tsplug', version: '1', nodes: [{ type: 'Five', version: 1, category: 'x', inputs: {}, outputs: [{ name: 'V', type: 'INT' }], execute: () => ({ V: n }) }] };\n`,
  });
  folder('m-bad-plugin-name', { 'index.js': plugin('Not Valid') });
  writeFileSync(path.join(dir, 'not-a-folder.txt'), 'ignored');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadPlugins', () => {
  it('loads the example third-party plugin package and runs its nodes (with a node migration)', async () => {
    const registry = new Registry();
    const logs: string[] = [];
    const log = { debug() {}, info: (m: string) => logs.push(m), warn() {}, error() {} };
    const result = await loadPlugins(registry, { packages: [helloDir], host, log });
    expect(result.failed).toEqual([]);
    expect(result.loaded).toEqual([
      { name: 'hello', version: '1.0.0', source: helloDir, nodeTypes: ['hello.Greet', 'hello.ShowText'] },
    ]);
    expect(logs[0]).toMatch(/hello plugin set up/);
    const info = await registry.objectInfo(host);
    expect(info['hello.Greet'].input.required.greeting).toEqual([['Hello', 'Hi', 'Hey'], { default: 'Hello' }]);

    const doc: WorkflowDocument = {
      format: 'priorgraph',
      version: 1,
      nodes: {
        g: { type: 'Greet', version: 1, mode: 'normal', inputs: { who: 'Ada', greeting: 'Hi', times: 2 } },
        s: { type: 'hello.ShowText', version: 1, mode: 'normal', inputs: { text: { node: 'g', output: 'TEXT' } } },
      },
    };
    const res = await new Executor(registry, { host }).run(doc, { promptId: 'hello' });
    expect(res).toMatchObject({ status: 'success', outputs: { s: { text: ['Hi, Ada! Hi, Ada!'] } } });
  });

  it('reports each broken plugin with name, source and reason, and loads the rest', async () => {
    const registry = new Registry();
    const result = await loadPlugins(registry, {
      pluginsDir: dir,
      packages: [helloDir],
      plugins: [testPlugin, { plugin: { ...testPlugin }, source: 'builtin-again' }],
      host,
    });
    const loaded = result.loaded.map((l) => l.name).sort();
    expect(loaded).toEqual(['good', 'hello', 'pkg', 'test', 'tsplug']);
    const failed = Object.fromEntries(result.failed.map((f) => [path.basename(f.source), f]));
    const reason = (k: string) => failed[k]?.reason ?? '(not reported)';
    expect(reason('builtin-again')).toMatch(/plugin name "test" is already registered/);
    expect(reason('b-syntax')).toMatch(/import of .*index\.js failed/);
    expect(reason('c-throws-on-import')).toMatch(/cannot import me/);
    expect(reason('d-no-export')).toMatch(/exports no plugin/);
    expect(reason('e-setup-throws')).toMatch(/setup failed: no GPU here/);
    expect(failed['e-setup-throws'].name).toBe('setupfail');
    expect(reason('f-collision')).toMatch(/"good" is already registered/);
    expect(reason('g-dup-types')).toMatch(/"dups.Same" already exists/);
    expect(reason('i-package-no-field')).toMatch(/no "priorgraph": \{"plugin"/);
    expect(failed['i-package-no-field'].name).toBe('pg-nofield');
    expect(reason('j-package-missing-entry')).toMatch(/does not exist/);
    expect(reason('k-empty')).toMatch(/neither a package.json/);
    expect(reason('m-bad-plugin-name')).toMatch(/must match/);
    expect(result.failed).toHaveLength(11);
    expect(registry.failures).toEqual(result.failed);
    // The failed plugins left nothing behind; the loaded ones are usable.
    expect(registry.get('setupfail.Three')).toBeUndefined();
    expect(registry.get('dups.Same')).toBeUndefined();
    expect(registry.get('Four')?.qualifiedName).toBe('pkg.Four');
    expect(registry.get('tsplug.Five')).toBeDefined();
  });

  it('reports an unreadable plugins directory', async () => {
    const result = await loadPlugins(new Registry(), { pluginsDir: path.join(dir, 'does-not-exist') });
    expect(result.loaded).toEqual([]);
    expect(result.failed[0].reason).toMatch(/cannot read plugins directory/);
  });
});
