#!/usr/bin/env node
// The `priorgraph` command: runs src/cli.ts through tsx (the workspace has no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
setTimeout(() => process.exit(code), 200).unref();
