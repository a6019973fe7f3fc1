/**
 * The `priorgraph` command as installed: the workspace bin (`npx priorgraph` in the repo), the same
 * script linked from a directory outside the repo (the documented global install), `--help` on every
 * command the usage lists (also as `npm start -- --help` passes it: `serve --help`), and a missing
 * file or model directory named in the error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/priorgraph.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pg-cli-help-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(exe: string, args: string[], cwd = REPO) {
  const r = spawnSync(exe, args, { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the priorgraph command', () => {
  const workspaceBin = join(REPO, 'node_modules', '.bin', 'priorgraph');

  it('is installed as the workspace bin (npx priorgraph) and lists every command', () => {
    expect(existsSync(workspaceBin)).toBe(true);
    const r = run(workspaceBin, ['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['serve', 'run', 'validate', 'nodes']) expect(r.out).toContain(`priorgraph ${cmd}`);
  });

  it('--help works on every command, with only that command’s usage', async () => {
    const usage = run(workspaceBin, ['--help']).out;
    const commands = [...usage.matchAll(/^ {2}priorgraph (\S+)/gm)].map((m) => m[1]);
    expect(commands.length).toBeGreaterThanOrEqual(4);
    // in-process (the same main() the bin runs), as one spawn per command is slow on a busy machine
    const { main } = await import('../src/cli.js');
    const written: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    const help = async (args: string[]) => {
      written.length = 0;
      process.stdout.write = ((c: string) => written.push(String(c)) > 0) as typeof process.stdout.write;
      try {
        return { code: await main(args), out: written.join('') };
      } finally {
        process.stdout.write = orig;
      }
    };
    for (const cmd of commands) {
      for (const flag of ['--help', '-h']) {
        const r = await help([cmd, flag]);
        expect(r.code, `${cmd} ${flag}`).toBe(0);
        expect(r.out).toContain(`priorgraph ${cmd}`);
        for (const other of commands.filter((c) => c !== cmd)) expect(r.out).not.toContain(`priorgraph ${other} `);
      }
    }
    // after other arguments too (`npm start -- --port 9000 --help` runs `serve --port 9000 --help`)
    expect((await help(['serve', '--port', '9000', '--help'])).out).toContain('--port');
  });

  it('runs from a link outside the repo (the global install path the README documents)', () => {
    const binDir = join(dir, 'bin');
    mkdirSync(binDir);
    symlinkSync(BIN, join(binDir, 'priorgraph'));
    const r = run(join(binDir, 'priorgraph'), ['nodes', '--help'], dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain('priorgraph nodes');
  });

  it('a missing workflow file or model directory is named in the error', () => {
    const missing = run(workspaceBin, ['validate', 'no-such-workflow.json']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(
      `cannot read workflow no-such-workflow.json (${join(REPO, 'no-such-workflow.json')})`,
    );
    expect(missing.err).toContain('no such file');
    const models = run(workspaceBin, ['serve', '--port', '0', '--models', join(dir, 'no-models')]);
    expect(models.code).toBe(1);
    expect(models.err).toContain(`--models ${join(dir, 'no-models')}: no such directory`);
  });
});
