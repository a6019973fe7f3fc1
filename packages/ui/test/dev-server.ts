/**
 * Serve the built editor with the dev plugin (no models needed):
 *   node --import tsx packages/ui/test/dev-server.ts [port]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../../server/src/index.ts';
import { devPlugin, devWorkflow } from './fixtures/dev-plugin.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'pg-ui-dev-'));
const server = createServer({
  port: Number(process.argv[2] ?? 8199),
  dataDir,
  modelRoots: [join(dataDir, 'models')],
  plugins: [devPlugin],
  defaultWorkflow: devWorkflow,
  uiDir: join(import.meta.dirname, '..', 'dist'),
});
const { url } = await server.listen();
process.stdout.write(`${url}\n`);
