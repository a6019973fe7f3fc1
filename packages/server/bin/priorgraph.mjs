#!/usr/bin/env node
// The `priorgraph` command. In the repository it runs src/cli.ts through tsx (no build step while
// developing); an npm-installed package has no src/ and runs its built dist/cli.js on plain node.
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../src/cli.ts', import.meta.url));
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { main } = await import(fromSource ? '../src/cli.ts' : '../dist/cli.js');
const code = await main(process.argv.slice(2));
process.exitCode = code;
setTimeout(() => process.exit(code), 200).unref();
