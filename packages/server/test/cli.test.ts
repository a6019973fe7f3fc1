/**
 * The CLI as users run it (child processes): run (headless, progress bar, --set, --out, prints the
 * saved files), validate, nodes, serve (--open, refusing a non-loopback host without a token), and
 * clear non-zero failures. Uses the built-in plugin on the node library's ONNX fixtures.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { demoWorkflow, EXAMPLES_DIR, FIXTURES_DIR, hasDemoModels, pngSize } from '../testkit/demo-workflow.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/priorgraph.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pg-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], timeout = 170_000) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const wfFile = join(dir, 'wf.json');
writeFileSync(wfFile, JSON.stringify(demoWorkflow(FIXTURES_DIR, { steps: 3, prefix: 'cli/pg' })));

describe('priorgraph CLI', () => {
  it('run: headless, a progress line per sampler step, --set overrides, prints the saved files', () => {
    const out = join(dir, 'out');
    const r = cli([
      'run',
      wfFile,
      '--models',
      FIXTURES_DIR,
      '--out',
      out,
      '--data-dir',
      join(dir, 'data'),
      '--set',
      'sample.steps=5',
      '--set',
      'enc.text=a blue square',
    ]);
    expect(r.err).not.toMatch(/priorgraph: /);
    expect(r.code).toBe(0);
    for (let i = 1; i <= 5; i++) expect(r.err).toContain(`${i}/5`);
    const files = r.out.trim().split('\n');
    expect(files.length).toBe(1);
    expect(files[0].startsWith(out)).toBe(true);
    expect(pngSize(readFileSync(files[0]))).toEqual([32, 32]);
  });

  it('run: failures are clear and non-zero', () => {
    const missing = cli(['run', join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cannot read workflow .*nope\.json.*: no such file \(ENOENT\)/);
    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{"a":');
    expect(cli(['run', badJson]).err).toMatch(/bad\.json is not valid JSON/);
    const badSet = cli([
      'run',
      wfFile,
      '--models',
      FIXTURES_DIR,
      '--data-dir',
      join(dir, 'data'),
      '--set',
      'ghost.steps=3',
    ]);
    expect(badSet.code).toBe(2);
    expect(badSet.err).toMatch(/no node "ghost"/);
    const invalid = cli([
      'run',
      wfFile,
      '--models',
      FIXTURES_DIR,
      '--data-dir',
      join(dir, 'data'),
      '--set',
      'sample.steps=0',
    ]);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toMatch(/node sample \(.*Sampler\) input "steps"/);
    expect(cli(['frobnicate']).code).toBe(2);
    expect(cli(['run', wfFile, '--bogus-flag']).code).toBe(2);
  });

  it('validate: ok exits 0; an unknown node or bad value exits 1 naming it', () => {
    const ok = cli(['validate', wfFile, '--models', FIXTURES_DIR]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/valid/);
    const bad = join(dir, 'invalid.json');
    const p = demoWorkflow(FIXTURES_DIR, { steps: 3 }) as Record<
      string,
      { class_type: string; inputs: Record<string, unknown> }
    >;
    p.sample.inputs.denoise = 7;
    p.extra = { class_type: 'NoSuchNode', inputs: {} };
    writeFileSync(bad, JSON.stringify(p));
    const r = cli(['validate', bad, '--models', FIXTURES_DIR]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/NoSuchNode/);
  });

  it('nodes: lists the built-in node types (also through the bin entry)', () => {
    const r = cli(['nodes']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/priorgraph\.PriorSwapCFGGuider v1/);
    const b = spawnSync(process.execPath, [BIN, 'nodes', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(b.status).toBe(0);
    expect(Object.keys(JSON.parse(b.stdout))).toContain('priorgraph.Sampler');
  });

  it('serve: exposes --open at /api/default-workflow; refuses 0.0.0.0 without a token', async () => {
    const refused = cli(['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(dir, 'srv')]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/refusing to listen on 0\.0\.0\.0 without a token/);

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'serve',
        '--port',
        '0',
        '--data-dir',
        join(dir, 'srv'),
        '--models',
        FIXTURES_DIR,
        '--open',
        wfFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += String(d);
          const m = out.match(/(http:\/\/\S+)\n/);
          if (m) resolve(m[1]);
        });
        child.once('exit', (c) => reject(new Error(`serve exited ${c}`)));
      });
      // the --open file is an API-format prompt: the editor gets it as a priorgraph document
      const wf = await (await fetch(`${url}/api/default-workflow`)).json();
      expect(wf.format).toBe('priorgraph');
      expect(Object.keys(wf.nodes).sort()).toEqual(Object.keys(JSON.parse(readFileSync(wfFile, 'utf8'))).sort());
      expect(wf.nodes.sample.type).toBe('priorgraph.Sampler');
      const stop = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await stop).toBe(0);
      expect(existsSync(join(dir, 'srv', 'priorgraph.sqlite'))).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it.skipIf(!hasDemoModels())(
    'run: the shipped example on the demo models (priorgraph document, default models root)',
    () => {
      const out = join(dir, 'example-out');
      const r = cli([
        'run',
        join(EXAMPLES_DIR, 'workflows', 't2i-cfg-vs-priorswap.json'),
        '--out',
        out,
        '--data-dir',
        join(dir, 'data'),
        '--set',
        'sample_cfg.seed=3',
      ]);
      expect(r.err).not.toMatch(/priorgraph: /);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/\[sample_swap [^\]]*\] \S+ 30\/30/);
      const files = r.out.trim().split('\n');
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(pngSize(readFileSync(f))[0]).toBeGreaterThanOrEqual(32);
    },
  );
});
